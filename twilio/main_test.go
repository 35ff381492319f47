package twilio

import (
	"testing"

	"github.com/mediasync/mediasync/internal/testenv"
)

// TestMain fails the run if a goroutine is still running after every test
// and its cleanups are done. The package starts no goroutines of its own
// and test servers are closed (which waits for their handlers), so any
// such goroutine is a leak: an iterator or a body that was never finished.
func TestMain(m *testing.M) { testenv.VerifyTestMain(m) }
