package main

import (
	"testing"
	"time"

	"github.com/mediasync/mediasync/internal/devtools"
)

// TestMain fails the run if a goroutine of this program is still running
// after every test: each process the benchmark starts is waited for, and
// its samplers and proxies are stopped, before run returns.
func TestMain(m *testing.M) {
	devtools.ExitCheckingLeaks(m, "\nmain.", time.Second)
}
