package ratelimit_test

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
)

// TestMain fails the run if a goroutine is still running code of this
// package once every test and its cleanups are done. The package starts no
// goroutines of its own, and every goroutine a test starts is waited for,
// so any such goroutine is a leak (an Acquire that never returned). A
// goroutine that has delivered its result may still be on its way out, so
// the check polls until a deadline.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaks := leakedGoroutines(5 * time.Second); leaks != "" {
			fmt.Fprintf(os.Stderr, "leaked goroutines:\n%s\n", leaks)
			code = 1
		}
	}
	os.Exit(code)
}

func leakedGoroutines(within time.Duration) string {
	deadline := time.Now().Add(within)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		leaks := ourGoroutines()
		if leaks == "" || time.Now().After(deadline) {
			return leaks
		}
		<-tick.C
	}
}

func ourGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var leaks [][]byte
	for i, g := range bytes.Split(buf, []byte("\n\n")) {
		if i == 0 { // this goroutine
			continue
		}
		if bytes.Contains(g, []byte("github.com/mediasync/mediasync/internal/ratelimit")) {
			leaks = append(leaks, g)
		}
	}
	return string(bytes.Join(leaks, []byte("\n\n")))
}
