package ratelimit_test

import (
	"testing"

	"github.com/mediasync/mediasync/internal/testenv"
)

// TestMain fails the run if a goroutine is still running once every test
// and its cleanups are done. The package starts no goroutines of its own,
// and every goroutine a test starts is waited for, so any such goroutine
// is a leak (an Acquire that never returned).
func TestMain(m *testing.M) { testenv.VerifyTestMain(m) }
