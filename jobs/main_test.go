package jobs

import (
	"testing"

	"github.com/mediasync/mediasync/internal/testenv"
)

// TestMain fails the run if a goroutine outlives the tests: the handlers
// start none that should survive a task (the anchor loop and the
// reconciler end with their context), and every test server, pool and
// client is closed at cleanup.
func TestMain(m *testing.M) { testenv.VerifyTestMain(m) }
