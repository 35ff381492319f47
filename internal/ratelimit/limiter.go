package ratelimit

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/mediasync/mediasync/internal/sleep"
)

// opTimeout bounds each Redis call the Limiter makes. The calls that take
// or give back a slot run detached from the caller's context (see Acquire),
// so this is what keeps them from hanging on a stuck Redis.
const opTimeout = 5 * time.Second

// Wait reasons passed to the test hook.
const (
	waitFull    = "full"
	waitBackoff = "backoff"
	waitRate    = "rate"
)

// Limiter bounds the requests to one Twilio account across every process
// that shares its Redis and Config.Key: at most MaxInFlight in flight at
// once, at most PerSecond started per second, none while a back-off is in
// force. It is safe for concurrent use. Create it with New.
type Limiter struct {
	rdb   redis.UniversalClient
	cfg   Config
	rate  *redis_rate.Limiter // nil when cfg.PerSecond is 0
	limit redis_rate.Limit

	slotsKey   string
	backoffKey string
	ceilingKey string
	rateKey    string // redis_rate prefixes it with "rate:"

	// onWait, when set by a test, is called before each wait.
	onWait func(reason string, d time.Duration)
}

// New returns a Limiter on rdb. It checks cfg (an error names the field)
// but does not contact Redis.
func New(rdb redis.UniversalClient, cfg Config) (*Limiter, error) {
	if rdb == nil {
		return nil, errors.New("ratelimit: Redis client is nil")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(rdb); err != nil {
		return nil, fmt.Errorf("ratelimit: invalid config: %w", err)
	}
	l := &Limiter{
		rdb:        rdb,
		cfg:        cfg,
		slotsKey:   cfg.Key + ":slots",
		backoffKey: cfg.Key + ":backoff",
		ceilingKey: cfg.Key + ":ceiling",
		rateKey:    cfg.Key + ":rps",
	}
	if cfg.PerSecond > 0 {
		l.rate = redis_rate.NewLimiter(rdb)
		l.limit = rateLimit(cfg.PerSecond)
	}
	return l, nil
}

// Acquire blocks until the caller may send one request, then returns the
// function that gives the slot back. release must be called once the
// request is over (its response body closed); calling it again does
// nothing. A slot that is never released frees itself after HoldTTL.
//
// Acquire waits while a back-off recorded by Backoff is in force, while
// every slot is taken (polling at jittered PollInterval steps), and while
// the rate bound says no (for the time redis_rate reports). If ctx ends
// first it returns an error wrapping ctx.Err() and holds no slot. Redis
// errors are returned wrapped, not retried.
//
// The Redis calls that take and give back a slot are not cut short by
// ctx (each is bounded by a few seconds instead): a call abandoned halfway
// could take a slot nobody knows about. So a cancel is noticed at once
// while waiting, and within one Redis round trip otherwise.
func (l *Limiter) Acquire(ctx context.Context) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, l.acquireErr("before waiting", err)
	}
	holder := rand.Text() // 128 random bits: unique per acquisition
	for {
		code, backoffMS, err := l.tryAcquire(ctx, holder)
		if err != nil {
			// The script may have run although its reply was lost: make
			// sure the holder is gone before giving up.
			return nil, l.acquireErr("take slot", errors.Join(err, l.remove(ctx, holder)))
		}
		switch code {
		case acquireBackedOff:
			d := time.Duration(backoffMS)*time.Millisecond + mrand.N(l.cfg.PollInterval)
			if err := l.wait(ctx, waitBackoff, d); err != nil {
				return nil, l.acquireErr("wait for the account's back-off to end", err)
			}
		case acquireFull:
			d := l.cfg.PollInterval/2 + mrand.N(l.cfg.PollInterval)
			if err := l.wait(ctx, waitFull, d); err != nil {
				return nil, l.acquireErr("wait for a free slot", err)
			}
		case acquireTaken:
			if err := ctx.Err(); err != nil {
				return nil, l.acquireErr("take slot", errors.Join(err, l.remove(ctx, holder)))
			}
			retryAfter, err := l.allowRate(ctx)
			if err != nil {
				return nil, l.acquireErr("check rate", errors.Join(err, l.remove(ctx, holder)))
			}
			if retryAfter < 0 {
				return l.releaser(ctx, holder), nil
			}
			// Denied by the rate bound: give the slot back rather than
			// hold it idle, and try again when a request may start.
			if err := l.remove(ctx, holder); err != nil {
				return nil, l.acquireErr("give back slot", err)
			}
			d := retryAfter + mrand.N(l.cfg.PollInterval)
			if err := l.wait(ctx, waitRate, d); err != nil {
				return nil, l.acquireErr("wait for the rate bound", err)
			}
		default:
			return nil, l.acquireErr("take slot", fmt.Errorf("unexpected reply code %d from Redis script", code))
		}
	}
}

// Backoff records that the account was told to slow down (HTTP 429,
// Twilio error 20429): no process's Acquire hands out a slot until d has
// passed by Redis's clock. A back-off already in force that ends later is
// kept. d is capped at MaxBackoff; d <= 0 records nothing. Requests
// already in flight are not affected.
func (l *Limiter) Backoff(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	d = min(d, l.cfg.MaxBackoff)
	ms := (d + time.Millisecond - 1) / time.Millisecond
	if err := backoffScript.Run(ctx, l.rdb, []string{l.backoffKey}, int64(ms)).Err(); err != nil {
		return fmt.Errorf("ratelimit: record back-off of %v on %s: %w", d, l.cfg.Key, err)
	}
	return nil
}

// Refused records that Twilio refused a request for the account's
// concurrency (HTTP 429, Twilio error 20429): its real limit is below the
// slots Acquire hands out. It lowers the ceiling every process's Acquire
// keeps to: to the slots held now (the requests Twilio was serving when it
// refused), at least one below the ceiling in force, never below 1. The
// ceiling then rises by one slot every Config.Recovery, back to
// MaxInFlight. Without it the fleet would send MaxInFlight requests after
// every back-off and have most of them refused.
func (l *Limiter) Refused(ctx context.Context) error {
	err := refusedScript.Run(ctx, l.rdb, []string{l.slotsKey, l.ceilingKey},
		l.cfg.MaxInFlight, l.cfg.Recovery.Milliseconds()).Err()
	if err != nil {
		return fmt.Errorf("ratelimit: lower the ceiling on %s: %w", l.cfg.Key, err)
	}
	return nil
}

// Stats reports how many slots are held now across every process, and
// when the back-off in force ends (the zero Time if none is), by Redis's
// clock. It is meant for metrics and tests.
func (l *Limiter) Stats(ctx context.Context) (inFlight int, backoffUntil time.Time, err error) {
	vals, err := statsScript.Run(ctx, l.rdb, []string{l.slotsKey, l.backoffKey}).Int64Slice()
	if err == nil && len(vals) != 3 {
		err = fmt.Errorf("unexpected reply %v from Redis script", vals)
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("ratelimit: read stats of %s: %w", l.cfg.Key, err)
	}
	if vals[1] > 0 {
		backoffUntil = time.UnixMilli(vals[1])
	}
	return int(vals[0]), backoffUntil, nil
}

// tryAcquire runs acquireScript once.
func (l *Limiter) tryAcquire(ctx context.Context, holder string) (code, backoffMS int64, err error) {
	ctx, cancel := detached(ctx)
	defer cancel()
	vals, err := acquireScript.Run(ctx, l.rdb, []string{l.slotsKey, l.backoffKey, l.ceilingKey},
		l.cfg.MaxInFlight, l.cfg.HoldTTL.Milliseconds(), holder, l.cfg.Recovery.Milliseconds()).Int64Slice()
	if err != nil {
		return 0, 0, err
	}
	if len(vals) != 2 {
		return 0, 0, fmt.Errorf("unexpected reply %v from Redis script", vals)
	}
	return vals[0], vals[1], nil
}

// allowRate spends one request of the rate bound. It returns -1 if the
// request may start now, or how long to wait before trying again.
func (l *Limiter) allowRate(ctx context.Context) (time.Duration, error) {
	if l.rate == nil {
		return -1, nil
	}
	ctx, cancel := detached(ctx)
	defer cancel()
	res, err := l.rate.Allow(ctx, l.rateKey, l.limit)
	if err != nil {
		return 0, err
	}
	if res.Allowed > 0 {
		return -1, nil
	}
	return max(res.RetryAfter, 0), nil
}

// remove gives back the holder's slot, if it has one.
func (l *Limiter) remove(ctx context.Context, holder string) error {
	ctx, cancel := detached(ctx)
	defer cancel()
	return l.rdb.ZRem(ctx, l.slotsKey, holder).Err()
}

// releaser returns the release function for a slot held by holder.
func (l *Limiter) releaser(ctx context.Context, holder string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			if err := l.remove(ctx, holder); err != nil && l.cfg.OnReleaseError != nil {
				l.cfg.OnReleaseError(fmt.Errorf("ratelimit: release slot on %s (it frees itself within %v): %w", l.cfg.Key, l.cfg.HoldTTL, err))
			}
		})
	}
}

// wait sleeps for d or until ctx ends.
func (l *Limiter) wait(ctx context.Context, reason string, d time.Duration) error {
	if l.onWait != nil {
		l.onWait(reason, d)
	}
	return sleep.For(ctx, d)
}

func (l *Limiter) acquireErr(step string, err error) error {
	return fmt.Errorf("ratelimit: acquire on %s: %s: %w", l.cfg.Key, step, err)
}

// detached returns a context that keeps ctx's values but not its
// cancellation, bounded by opTimeout.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
}
