package testenv

import (
	"strings"
	"testing"
	"time"
)

// pollEvery is how often WaitFor checks its condition: often enough that
// a test which acts the moment something happens (kill the worker once
// deletes are under way) acts close to that moment.
const pollEvery = 5 * time.Millisecond

// WaitFor calls cond, from the test's goroutine, until it returns true;
// if it has not within the given time, WaitFor fails the test with what
// it waited for and the text of each details function (a worker's log,
// say), called only then. Tests wait on this, never on a bare sleep.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() bool, details ...func() string) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			var b strings.Builder
			for _, d := range details {
				b.WriteString("\n")
				b.WriteString(d())
			}
			t.Fatalf("waited %v for %s: not reached%s", within, what, b.String())
		case <-tick.C:
		}
	}
}
