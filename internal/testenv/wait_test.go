package testenv_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/internal/testenv"
)

// fatalRecorder is a testing.TB whose Fatalf records the message and ends
// the goroutine, as testing.T's does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(f)
}

func TestWaitFor(t *testing.T) {
	t.Parallel()
	calls := 0
	testenv.WaitFor(t, 10*time.Second, "the third call", func() bool { calls++; return calls == 3 })
	require.Equal(t, 3, calls)

	rec := &fatalRecorder{TB: t}
	func() {
		defer func() { require.Same(t, rec, recover()) }()
		testenv.WaitFor(rec, 20*time.Millisecond, "a thing that never happens", func() bool { return false },
			func() string { return "worker log: nothing" })
	}()
	require.Equal(t, "waited 20ms for a thing that never happens: not reached\nworker log: nothing", rec.msg)
}
