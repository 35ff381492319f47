package worker

import (
	"testing"

	"github.com/mediasync/mediasync/internal/testenv"
)

// TestMain fails the run if a goroutine outlives the tests: a worker's
// pool, server or loop that did not stop with it.
func TestMain(m *testing.M) { testenv.VerifyTestMain(m) }
