package twilio

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mediasync/mediasync/internal/sleep"
)

// RetryPolicy bounds how the client retries a request that failed in a way
// that may pass: 429 (Twilio's 20429 concurrency limit, a request Twilio
// never processed), 5xx, and connection errors or timeouts. Other failures
// are returned at once.
type RetryPolicy struct {
	// MaxAttempts is the number of attempts per call, the first included.
	// 1 disables retries. Defaults to 4; at most 20.
	MaxAttempts int
	// BaseDelay is the backoff before the second attempt; it doubles for
	// each further attempt, and each wait is jittered to between half and
	// all of it. Defaults to 500ms.
	BaseDelay time.Duration
	// MaxDelay caps one backoff wait. A server's Retry-After is not capped
	// by it, only by MaxTotalWait. Defaults to 20s.
	MaxDelay time.Duration
	// MaxTotalWait caps the time one call spends waiting between attempts.
	// When the next wait would pass it (or pass ctx's deadline) the client
	// gives up at once and returns the error, a *RateLimitError for 429, so
	// the job layer can reschedule instead of holding a worker. Defaults to
	// 1m.
	MaxTotalWait time.Duration
}

const maxAttemptsLimit = 20

// DefaultRetryPolicy returns the policy a Client uses unless
// WithRetryPolicy is given.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 4, BaseDelay: 500 * time.Millisecond, MaxDelay: 20 * time.Second, MaxTotalWait: time.Minute}
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	d := DefaultRetryPolicy()
	if p.MaxAttempts == 0 {
		p.MaxAttempts = d.MaxAttempts
	}
	if p.BaseDelay == 0 {
		p.BaseDelay = d.BaseDelay
	}
	if p.MaxDelay == 0 {
		p.MaxDelay = max(d.MaxDelay, p.BaseDelay)
	}
	if p.MaxTotalWait == 0 {
		p.MaxTotalWait = d.MaxTotalWait
	}
	return p
}

func (p RetryPolicy) validate() error {
	switch {
	case p.MaxAttempts < 1 || p.MaxAttempts > maxAttemptsLimit:
		return fmt.Errorf("twilio: RetryPolicy.MaxAttempts is %d: must be between 1 and %d (0 for the default)", p.MaxAttempts, maxAttemptsLimit)
	case p.BaseDelay < 0:
		return fmt.Errorf("twilio: RetryPolicy.BaseDelay is %s: must not be negative", p.BaseDelay)
	case p.MaxDelay < 0:
		return fmt.Errorf("twilio: RetryPolicy.MaxDelay is %s: must not be negative", p.MaxDelay)
	case p.MaxTotalWait < 0:
		return fmt.Errorf("twilio: RetryPolicy.MaxTotalWait is %s: must not be negative", p.MaxTotalWait)
	case p.BaseDelay > p.MaxDelay:
		return fmt.Errorf("twilio: RetryPolicy.BaseDelay %s is longer than MaxDelay %s", p.BaseDelay, p.MaxDelay)
	}
	return nil
}

// backoff is the jittered wait after failed attempt n (1-based):
// BaseDelay·2^(n-1), capped at MaxDelay, then drawn from [d/2, d] so that
// workers that failed together do not retry together.
func (p RetryPolicy) backoff(n int, jitter func(int64) int64) time.Duration {
	d := p.BaseDelay
	for i := 1; i < n && d < p.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, p.MaxDelay)
	half := int64(d / 2)
	return time.Duration(int64(d) - half + jitter(half+1))
}

// RetryCause says, for metrics, why an attempt failed in a retryable way.
type RetryCause string

// The causes of a retry.
const (
	CauseRateLimited RetryCause = "rate_limited" // 429 / 20429
	CauseServerError RetryCause = "server_error" // 5xx
	CauseNetwork     RetryCause = "network"      // connection reset, refused, timeout, body cut short
)

// RetryEvent describes one retry decision, for logs and metrics. It holds no
// credentials and no query strings.
type RetryEvent struct {
	Method      string
	Path        string // sanitised: no query; scheme and host too for hosts other than the API
	Attempt     int    // the attempt that failed, from 1
	MaxAttempts int
	Cause       RetryCause
	Status      int   // HTTP status, 0 for network errors
	Err         error // what the failed attempt returned
	// Wait is how long the client waits before the next attempt; when
	// GiveUp is set it is the wait the client would have needed (the
	// RetryAfter of a *RateLimitError).
	Wait           time.Duration
	FromRetryAfter bool // Wait is the server's Retry-After
	GiveUp         bool
	Reason         string // the decision in words
}

// Clock is what the client reads and waits on between retries.
type Clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx is done, and then returns ctx's error.
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error { return sleep.For(ctx, d) }

// maxRetryAfter bounds what a server can make us report or wait.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date
// (RFC 9110 §10.2.3). ok is false when the header is absent or malformed.
// The result is never negative and at most maxRetryAfter.
func parseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if strings.Trim(v, "0123456789") == "" {
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil || secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true // too many digits for int64 is still "a long time"
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return min(max(t.Sub(now), 0), maxRetryAfter), true
}
