package archive_test

import (
	"testing"

	"github.com/mediasync/mediasync/internal/testenv"
)

// TestMain fails the run if a goroutine outlives the tests: an object
// reader or a multipart upload left open.
func TestMain(m *testing.M) { testenv.VerifyTestMain(m) }
