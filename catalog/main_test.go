package catalog_test

import (
	"testing"

	"github.com/mediasync/mediasync/internal/testenv"
)

// TestMain fails the run if a goroutine outlives the tests: a cursor or a
// listener left open.
func TestMain(m *testing.M) { testenv.VerifyTestMain(m) }
