// Package sleep is mediasync's one way to wait: a pause that ends early,
// with the context's error, when the context does.
package sleep

import (
	"context"
	"time"
)

// For waits for d or until ctx is done, whichever comes first. It returns
// ctx.Err() if ctx is done by then (at once, for a d of zero or less), and
// nil once d has passed. Its timer is stopped on return, so a cancelled
// wait leaves nothing behind.
func For(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
