package main

import (
	"testing"

	"github.com/mediasync/mediasync/internal/testenv"
)

// TestMain fails the run if a goroutine is still running after every
// test: each process the benchmark starts is waited for, and its samplers
// and proxies are stopped, before run returns.
func TestMain(m *testing.M) { testenv.VerifyTestMain(m) }
