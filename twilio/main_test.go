package twilio

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"testing"
)

// TestMain fails the run if a goroutine is still running code of this
// package after every test and its cleanups are done. The package starts no
// goroutines of its own and test servers are closed (which waits for their
// handlers), so any such goroutine is a leak: an iterator or a body that
// was never finished.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaks := leakedGoroutines(); leaks != "" {
			fmt.Fprintf(os.Stderr, "leaked goroutines:\n%s\n", leaks)
			code = 1
		}
	}
	os.Exit(code)
}

func leakedGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var leaks [][]byte
	for i, g := range bytes.Split(buf, []byte("\n\n")) {
		if i == 0 { // this goroutine
			continue
		}
		if bytes.Contains(g, []byte("github.com/mediasync/mediasync/twilio.")) {
			leaks = append(leaks, g)
		}
	}
	return string(bytes.Join(leaks, []byte("\n\n")))
}
