package ratelimit_test

import (
	"testing"
	"time"

	"github.com/mediasync/mediasync/internal/devtools"
)

// TestMain fails the run if a goroutine is still running code of this
// package once every test and its cleanups are done. The package starts no
// goroutines of its own, and every goroutine a test starts is waited for,
// so any such goroutine is a leak (an Acquire that never returned). A
// goroutine that has delivered its result may still be on its way out, so
// the check polls until a deadline.
func TestMain(m *testing.M) {
	devtools.ExitCheckingLeaks(m, "github.com/mediasync/mediasync/internal/ratelimit", 5*time.Second)
}
