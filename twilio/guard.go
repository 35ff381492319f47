package twilio

import (
	"context"
	"time"
)

// Guard decides, for each attempt of a call, whether its request may be
// sent. The client calls it after the attempt holds its limiter slot (so
// after any wait for a slot or for the fleet's back-off on 429) and
// immediately before the request is written; retries call it again. An
// error stops the call with nothing sent and is returned wrapped, and not
// retried. A non-zero until is the attempt's deadline: the request is not
// written after it, and the attempt is abandoned when it passes.
//
// It lets a caller keep a decision made elsewhere (a legal hold, checked
// in the catalog) true up to the moment a DELETE goes out, without this
// package knowing what the decision is.
type Guard func(ctx context.Context) (until time.Time, err error)

// CallOption configures one call.
type CallOption func(*request)

// WithGuard has every attempt of the call ask g first.
func WithGuard(g Guard) CallOption {
	return func(r *request) { r.guard = g }
}
