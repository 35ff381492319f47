package testenv

import (
	"testing"

	"go.uber.org/goleak"
)

// VerifyTestMain runs a package's tests and then fails the run if a
// goroutine is still running, other than the few long-lived ones that
// LeakOptions names. A package's TestMain calls it:
//
//	func TestMain(m *testing.M) { testenv.VerifyTestMain(m) }
func VerifyTestMain(m *testing.M) {
	goleak.VerifyTestMain(m, LeakOptions()...)
}

// LeakOptions are the goroutines a leak check ignores, each a known
// long-lived one that no test can end.
func LeakOptions() []goleak.Option {
	return []goleak.Option{
		// The process's one versitygw gateway (S3): started on first use
		// and kept for the whole test process on purpose, killed by the
		// kernel when the process exits. devtools.Start keeps a goroutine
		// waiting on the child, and os/exec one copying its output into
		// the tail kept for error messages.
		goleak.IgnoreAnyFunction("github.com/mediasync/mediasync/internal/devtools.Start.func1"),
		goleak.IgnoreAnyFunction("os/exec.(*Cmd).Start.func2"),
		// Idle keep-alive connections of HTTP clients that have no Close:
		// the AWS SDK's, one per S3 client or S3Store, to that gateway.
		// Each connection has a writeLoop, and a readLoop that waits in
		// persistConn.Read for the next response; they end with the
		// transport's idle timeout. A response body left unclosed keeps
		// its readLoop waiting elsewhere (for the body to be read), so it
		// is still reported: TestLeakOptionsStillCatchAnUnclosedBody.
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).Read"),
	}
}
