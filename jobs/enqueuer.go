package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/mediasync/mediasync/internal/sleep"
)

// Enqueuer puts tasks on the queues. A task whose ID is already queued is
// not an error: the same work is already on its way.
type Enqueuer struct {
	rdb       redis.UniversalClient
	client    *asynq.Client
	inspector *asynq.Inspector
	queues    Queues
}

// NewEnqueuer returns an enqueuer on a shared Redis client (closing it is
// the caller's business).
func NewEnqueuer(rdb redis.UniversalClient, q Queues) *Enqueuer {
	return &Enqueuer{
		rdb:       rdb,
		client:    asynq.NewClientFromRedisClient(rdb),
		inspector: asynq.NewInspectorFromRedisClient(rdb),
		queues:    q,
	}
}

// In returns a function that queues, under ctx, the task a constructor
// returns: enqueue := e.In(ctx); err := enqueue(NewStartRunTask(q, id)).
func (e *Enqueuer) In(ctx context.Context) func(*asynq.Task, error) error {
	return func(t *asynq.Task, err error) error {
		if err != nil {
			return err
		}
		return e.Enqueue(ctx, t)
	}
}

// Enqueue queues t; a duplicate task ID counts as success.
func (e *Enqueuer) Enqueue(ctx context.Context, t *asynq.Task) error {
	if _, err := e.client.EnqueueContext(ctx, t); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue %s: %w", t.Type(), err)
	}
	return nil
}

// RequeueIn is In for work Postgres says is outstanding: it queues with
// Requeue, and counts what it found and did in the reconcile pass ctx
// belongs to, if any.
func (e *Enqueuer) RequeueIn(ctx context.Context) func(*asynq.Task, error) error {
	var tally *RequeueTally
	if p := passOf(ctx); p != nil {
		tally = &p.tasks
	}
	return e.requeueInto(ctx, tally)
}

// requeueInto is RequeueIn counting into tally (nil: nowhere).
func (e *Enqueuer) requeueInto(ctx context.Context, tally *RequeueTally) func(*asynq.Task, error) error {
	return func(t *asynq.Task, err error) error {
		if err != nil {
			return err
		}
		o, wait, err := e.requeue(ctx, t)
		if err == nil {
			tally.add(o, wait)
		}
		return err
	}
}

// Requeue is Enqueue for work Postgres says is outstanding (the
// reconciler's). asynq archives a task whose retries ran out, and keeps it
// under its ID for 90 days; when its failure could not be recorded (Postgres
// was down for the whole of its retries, or crashes used them up), the
// archived task would pass for "already queued" and the run would never
// finish. Such a task is deleted and queued afresh, with all its retries.
//
// A task waiting out a retry backoff, or a pause it asked for (a
// RetryLaterError: Twilio's 429, the listing backpressure), is left to it:
// the backoff paces retries through an outage (RetryDelay), and is counted,
// with its wait, in the pass's log line.
func (e *Enqueuer) Requeue(ctx context.Context, t *asynq.Task) error {
	_, _, err := e.requeue(ctx, t)
	return err
}

// RequeueOutcome is what Requeue found of a task and did with it.
type RequeueOutcome int

const (
	RequeueQueued  RequeueOutcome = iota // not in Redis: queued
	RequeueWaiting                       // pending or scheduled: left
	RequeueActive                        // being handled: left
	RequeueBackoff                       // in a retry backoff: left
	RequeuePaused                        // in a pause it asked for (RetryLaterError): left
	RequeueRevived                       // archived, its retries spent: queued afresh
	RequeueDone                          // handled meanwhile (gone from Redis after the conflict)
	requeueOutcomes
)

var requeueOutcomeNames = [requeueOutcomes]string{"queued", "waiting", "active", "backoff", "paused", "revived", "done"}

func (o RequeueOutcome) String() string { return requeueOutcomeNames[o] }

// RequeueTally counts Requeue's outcomes over a reconcile pass, for its log
// line, and the longest a task left in backoff or a pause still waits. The
// zero value is ready; a nil *RequeueTally counts nothing.
type RequeueTally struct {
	N       [requeueOutcomes]int
	Longest time.Duration
}

func (t *RequeueTally) add(o RequeueOutcome, wait time.Duration) {
	if t != nil {
		t.N[o]++
		t.Longest = max(t.Longest, wait)
	}
}

// Total is how many tasks were looked at.
func (t *RequeueTally) Total() int {
	n := 0
	for _, c := range t.N {
		n += c
	}
	return n
}

// requeue is Requeue, saying what it found and, for a task left in a
// backoff or a pause, how long it still waits.
func (e *Enqueuer) requeue(ctx context.Context, t *asynq.Task) (RequeueOutcome, time.Duration, error) {
	_, err := e.client.EnqueueContext(ctx, t)
	if !errors.Is(err, asynq.ErrTaskIDConflict) {
		if err != nil {
			return 0, 0, fmt.Errorf("enqueue %s: %w", t.Type(), err)
		}
		return RequeueQueued, 0, nil
	}
	queue, id := t.Headers()[headerQueue], t.Headers()[headerTaskID]
	if queue == "" || id == "" {
		return RequeueWaiting, 0, nil // not built by this package's constructors: queued, as far as we can tell
	}
	// The Inspector's calls take no context: a pass past its deadline
	// stops here rather than after one more round trip each.
	if err := ctx.Err(); err != nil {
		return 0, 0, fmt.Errorf("requeue %s %s: %w", t.Type(), id, err)
	}
	info, err := e.inspector.GetTaskInfo(queue, id)
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound):
		return RequeueDone, 0, nil // done meanwhile
	case err != nil:
		return 0, 0, fmt.Errorf("requeue %s %s: %w", t.Type(), id, err)
	case info.State == asynq.TaskStateRetry:
		wait := max(time.Until(info.NextProcessAt), 0)
		if strings.HasPrefix(info.LastErr, retryLaterPrefix) {
			return RequeuePaused, wait, nil
		}
		return RequeueBackoff, wait, nil
	case info.State == asynq.TaskStateActive:
		return RequeueActive, 0, nil
	case info.State != asynq.TaskStateArchived:
		return RequeueWaiting, 0, nil
	}
	if err := e.inspector.DeleteTask(queue, id); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
		return 0, 0, fmt.Errorf("requeue %s %s: %w", t.Type(), id, err)
	}
	if err := e.Enqueue(ctx, t); err != nil {
		return 0, 0, err
	}
	return RequeueRevived, 0, nil
}

// listingSlotTTL is the longest one page task keeps the listing slot: a
// worker that dies holding it delays listing by this much at most, and a
// page slower than this lets the next one in (which loosens the backlog
// bound, nothing else).
const listingSlotTTL = 2 * time.Minute

// releaseScript deletes a lock only if it still holds the holder's token.
var releaseScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end
return 0`)

// ListingSlot takes the deployment's one listing slot, for the time of a
// page: checking the backlog, fetching the page and queueing its tasks. One
// page at a time across the fleet is what makes the backlog check a bound:
// without it every page running at once (a run of many windows on many
// workers) passes the check before any of them adds its thousand tasks.
//
// A page holds the slot for milliseconds to a second, so a caller waits
// for it here, up to wait, rather than going back to the queue: a run of
// two hundred days (a policy's first run) has two hundred pages to list
// one after the other. ok is false if the slot stayed taken that long.
func (e *Enqueuer) ListingSlot(ctx context.Context, wait time.Duration) (release func(), ok bool, err error) {
	key := e.queues.Keys.ListingSlot()
	token := uuid.NewString()
	deadline := time.Now().Add(wait)
	for {
		ok, err = e.rdb.SetNX(ctx, key, token, listingSlotTTL).Result()
		if err != nil {
			return nil, false, fmt.Errorf("listing slot: %w", err)
		}
		if ok {
			break
		}
		if !time.Now().Before(deadline) {
			return nil, false, nil
		}
		if err := sleep.For(ctx, jitter(40*time.Millisecond)); err != nil {
			return nil, false, fmt.Errorf("listing slot: %w", err)
		}
	}
	return func() {
		// Released even when ctx is done: otherwise every other page waits
		// out the TTL.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = releaseScript.Run(rctx, e.rdb, []string{key}, token).Err()
	}, true, nil
}

// Backlog counts tasks waiting in the deployment's queues (pending,
// scheduled or awaiting retry). Listing pauses while it is high, which
// bounds Redis memory however many media a run finds.
func (e *Enqueuer) Backlog() (int, error) {
	// GetQueueInfo fails on a queue never used, with an error asynq does
	// not export: ask which queues exist first.
	known, err := e.inspector.Queues()
	if err != nil {
		return 0, fmt.Errorf("queue backlog: %w", err)
	}
	total := 0
	for _, q := range []string{e.queues.Media, e.queues.List} {
		if !slices.Contains(known, q) {
			continue
		}
		info, err := e.inspector.GetQueueInfo(q)
		if err != nil {
			return 0, fmt.Errorf("queue %s backlog: %w", q, err)
		}
		total += info.Pending + info.Scheduled + info.Retry
	}
	return total, nil
}
