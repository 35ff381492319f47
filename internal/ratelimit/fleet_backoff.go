package ratelimit

import (
	"context"
	"time"

	"github.com/mediasync/mediasync/twilio"
)

// fleetOpTimeout bounds the Redis calls FleetBackoff makes on a retry
// hook's goroutine, which is the request's: a stuck Redis must not hold the
// request (and its retries) for longer than this.
const fleetOpTimeout = 2 * time.Second

// minFleetBackoff is the least back-off a 429 imposes on the fleet, when
// Twilio gives no (or a shorter) Retry-After.
const minFleetBackoff = time.Second

// FleetBackoff is the twilio.Limiter a worker gives its Twilio client: it
// takes slots from Limiter, and its OnRetry, given to twilio.WithRetryHook,
// makes one worker's 429 slow the whole fleet. Twilio's limit is on the
// account's concurrency, which every worker shares, so each 429 records a
// back-off every process's Acquire honours (Limiter.Backoff) and lowers
// the shared ceiling to what Twilio was serving (Limiter.Refused): without
// the ceiling every back-off would end in a burst of 429s.
//
//	fleet := &ratelimit.FleetBackoff{Limiter: lim, OnError: logIt}
//	client, err := twilio.New(sid, twilio.WithLimiter(fleet), twilio.WithRetryHook(fleet.OnRetry))
type FleetBackoff struct {
	*Limiter
	// OnError is told when a back-off or a ceiling could not be recorded
	// (Redis unreachable): the request still waits and retries on its own,
	// only the fleet is not told. Nil ignores such errors.
	OnError func(error)
}

// OnRetry passes a retry decision of the Twilio client on to the fleet: an
// HTTP 429 records a back-off of the event's wait (at least a second) and
// lowers the shared concurrency ceiling. Other events are ignored. It is
// safe for concurrent use, and waits on Redis for at most two seconds per
// call.
func (f *FleetBackoff) OnRetry(e twilio.RetryEvent) {
	if e.Status != 429 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), fleetOpTimeout)
	defer cancel()
	f.report(f.Backoff(ctx, max(e.Wait, minFleetBackoff)))
	f.report(f.Refused(ctx))
}

func (f *FleetBackoff) report(err error) {
	if err != nil && f.OnError != nil {
		f.OnError(err)
	}
}
