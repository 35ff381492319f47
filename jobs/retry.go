package jobs

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"

	"github.com/mediasync/mediasync/twilio"
)

// RetryLaterError asks for the task to run again after a pause without
// counting an attempt: the queue is full (backpressure) or Twilio said 429.
type RetryLaterError struct {
	After  time.Duration
	Reason string
}

func (e *RetryLaterError) Error() string {
	return fmt.Sprintf(retryLaterPrefix+"%s: %s", e.After.Round(time.Millisecond), e.Reason)
}

// retryLaterPrefix begins every RetryLaterError's text: asynq keeps a
// task's last error as text only, and Requeue tells a pause from a failure
// by it.
const retryLaterPrefix = "retry in "

// maxRetryDelay caps every pause a task takes, as the fleet's shared
// back-off is capped (internal/ratelimit DefaultMaxBackoff): a Retry-After
// of hours (the client accepts up to 24 h) must not park the work that
// long; the task asks again within minutes, and the shared back-off keeps
// the fleet from hammering Twilio meanwhile.
const maxRetryDelay = 5 * time.Minute

// retryLater classifies err: Twilio's rate limit becomes a RetryLaterError,
// anything else is returned as it is.
func retryLater(err error) error {
	var rl *twilio.RateLimitError
	if errors.As(err, &rl) {
		after := rl.RetryAfter
		if after <= 0 {
			after = 2 * time.Second
		}
		reason := "Twilio rate limit (429)"
		if after > maxRetryDelay {
			reason += fmt.Sprintf("; Retry-After %s capped at %s", after, maxRetryDelay)
			after = maxRetryDelay
		}
		return &RetryLaterError{After: jitter(after), Reason: reason}
	}
	return err
}

// IsFailure is asynq's Config.IsFailure: pauses asked for on purpose do not
// use up a task's retries.
func IsFailure(err error) bool {
	var rl *RetryLaterError
	return !errors.As(err, &rl)
}

// RetryDelay is asynq's Config.RetryDelayFunc: the pause a RetryLaterError
// asks for, else exponential backoff with jitter from 2s; both capped at
// maxRetryDelay, 5 min (asynq's default reaches hours after a dozen
// attempts), and the backoff of a listing task (start, page, message) at
// maxListRetryDelay; a message task whose media are listed, failing in
// their downloads or stores (mediaStageError), backs off as media work.
func RetryDelay(n int, err error, t *asynq.Task) time.Duration {
	var rl *RetryLaterError
	if errors.As(err, &rl) {
		return min(rl.After, maxRetryDelay)
	}
	limit := maxRetryDelay
	var media *mediaStageError
	if t != nil && listingTask(t.Type()) && !errors.As(err, &media) {
		limit = maxListRetryDelay
	}
	d := 2 * time.Second << min(n, 8)
	return jitter(min(d, limit))
}

// maxListRetryDelay caps the backoff of a listing task. A listing task is a
// gate: a day's next page, or a message's media, waits on it, and when it
// is a run's last work the whole run waits. At 5 minutes, a page task a few
// failures in kept its run idle that long while the reconciler, rightly,
// counted it as queued. A listing call is one cheap GET, and Twilio is
// protected by the fleet's limiter and 429 pauses (which this cap leaves
// alone), so the backoff buys little; listMaxRetry keeps the time a listing
// task keeps trying through an outage what it was.
const maxListRetryDelay = time.Minute

// listMaxRetry is a listing task's retries: with backoff capped at
// maxListRetryDelay and jittered to [½, 1), about 34 to 68 minutes of
// trying, as 20 retries capped at 5 minutes were.
const listMaxRetry = 70

// listingTask reports whether a task type lists (TypeStartRun,
// TypeListPage, TypeArchiveMessage, and the old TypeListMessage).
func listingTask(typ string) bool {
	return typ == TypeStartRun || typ == TypeListPage || typ == TypeArchiveMessage || typ == TypeListMessage
}

// jitter spreads d over [d/2, d) so workers that failed together do not
// retry together.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}

// permanent marks err as one that no retry can fix.
func permanent(err error) error { return fmt.Errorf("%w (%w)", err, asynq.SkipRetry) }

// isPermanent reports whether err already gave up on retries.
func isPermanent(err error) bool { return errors.Is(err, asynq.SkipRetry) }

// lastAttempt reports whether a failure now would be the task's last.
func lastAttempt(ctx context.Context) bool {
	n, ok1 := asynq.GetRetryCount(ctx)
	max, ok2 := asynq.GetMaxRetry(ctx)
	return ok1 && ok2 && n >= max
}

// twilioPermanent reports whether a Twilio error will not change on retry:
// a 4xx from the API itself (it carries a Twilio error code) other than 404
// (handled as gone), 408 and 429. A 4xx without a code comes from the
// signed-URL storage host (an expired or refused signature): a new request
// gets a new URL, so it is retried.
func twilioPermanent(err error) bool {
	var te *twilio.Error
	if !errors.As(err, &te) {
		return false
	}
	return te.Code != 0 && te.Status >= 400 && te.Status < 500 &&
		te.Status != 404 && te.Status != 408 && te.Status != 429
}
