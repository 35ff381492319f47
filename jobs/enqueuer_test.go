package jobs

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/internal/testenv"
)

// A task asynq archived (its retries spent) blocks its ID: Enqueue takes it
// for "already queued", while Requeue, the reconciler's, queues the work
// again with all its retries. A task still waiting is left alone.
func TestRequeueReplacesAnArchivedTask(t *testing.T) {
	t.Parallel()
	r := testenv.NewRedis(t)
	q := QueuesFor(r.Namespace)
	e := NewEnqueuer(r.Client, q)
	insp := asynq.NewInspectorFromRedisClient(r.Client)
	task := func() *asynq.Task {
		tk, err := NewDeleteMediaTask(q, MediaPayload{RunID: uuid.Must(uuid.NewV7()), MediaSID: "ME0123456789abcdef0123456789abcdef"})
		require.NoError(t, err)
		return tk
	}()
	id := task.Headers()[headerTaskID]
	require.Equal(t, q.Media, task.Headers()[headerQueue])
	ctx := t.Context()

	require.NoError(t, e.Enqueue(ctx, task))
	require.NoError(t, e.Requeue(ctx, task))
	info, err := insp.GetTaskInfo(q.Media, id)
	require.NoError(t, err)
	require.Equal(t, asynq.TaskStatePending, info.State, "a waiting task is left as it is")

	require.NoError(t, insp.ArchiveTask(q.Media, id))
	require.NoError(t, e.Enqueue(ctx, task))
	info, err = insp.GetTaskInfo(q.Media, id)
	require.NoError(t, err)
	require.Equal(t, asynq.TaskStateArchived, info.State, "Enqueue leaves the archived task blocking its ID")

	require.NoError(t, e.Requeue(ctx, task))
	info, err = insp.GetTaskInfo(q.Media, id)
	require.NoError(t, err)
	require.Equal(t, asynq.TaskStatePending, info.State)
	require.Zero(t, info.Retried)
	require.Equal(t, task.Payload(), info.Payload)
}

// One page lists at a time across the fleet: a second holder is refused
// until the first releases, and a release by a holder whose slot expired
// and passed to another does not free the other's.
func TestListingSlotIsExclusive(t *testing.T) {
	t.Parallel()
	r := testenv.NewRedis(t)
	ctx := t.Context()
	a, b := NewEnqueuer(r.Client, QueuesFor(r.Namespace)), NewEnqueuer(r.Client, QueuesFor(r.Namespace))

	release, ok, err := a.ListingSlot(ctx, 0)
	require.NoError(t, err)
	require.True(t, ok)
	_, ok, err = b.ListingSlot(ctx, 100*time.Millisecond)
	require.NoError(t, err)
	require.False(t, ok, "a second page must wait while one lists")

	other := NewEnqueuer(r.Client, QueuesFor(r.Namespace+"-other"))
	rel, ok, err := other.ListingSlot(ctx, 0)
	require.NoError(t, err)
	require.True(t, ok, "another deployment's namespace has its own slot")
	rel()

	// A waiter gets the slot as soon as it is released.
	go func() {
		time.Sleep(150 * time.Millisecond)
		release()
	}()
	releaseB, ok, err := b.ListingSlot(ctx, 10*time.Second)
	require.NoError(t, err)
	require.True(t, ok, "released: the waiting page may list")

	release() // a stale holder's release must not free b's slot
	_, ok, err = a.ListingSlot(ctx, 0)
	require.NoError(t, err)
	require.False(t, ok, "a stale release freed another holder's slot")
	releaseB()
}

// A task of outstanding work waiting out a retry backoff or a pause is
// left to it, and the reconciler's tally says so and for how long: a run
// that waits on one is not silent about it.
func TestRequeueLeavesBackoffsAndSaysHowLong(t *testing.T) {
	t.Parallel()
	r := testenv.NewRedis(t)
	q := QueuesFor(r.Namespace)
	e := NewEnqueuer(r.Client, q)
	insp := asynq.NewInspectorFromRedisClient(r.Client)
	run := uuid.Must(uuid.NewV7())
	failing, paused := func() (*asynq.Task, *asynq.Task) {
		a, err := NewListPageTask(q, ListPagePayload{RunID: run, Window: 1, Page: 3})
		require.NoError(t, err)
		b, err := NewListPageTask(q, ListPagePayload{RunID: run, Window: 2, Page: 0})
		require.NoError(t, err)
		return a, b
	}()
	ctx := t.Context()
	require.NoError(t, e.Enqueue(ctx, failing))
	require.NoError(t, e.Enqueue(ctx, paused))

	// A worker whose attempts fail, the one with an error, the other with a
	// pause, each sent 4 minutes back.
	srv := asynq.NewServerFromRedisClient(r.Client, asynq.Config{
		Concurrency: 2, Queues: map[string]int{q.List: 1}, TaskCheckInterval: 10 * time.Millisecond,
		IsFailure:      IsFailure,
		RetryDelayFunc: func(int, error, *asynq.Task) time.Duration { return 4 * time.Minute },
		LogLevel:       asynq.FatalLevel,
	})
	require.NoError(t, srv.Start(asynq.HandlerFunc(func(_ context.Context, tk *asynq.Task) error {
		if tk.ResultWriter().TaskID() == paused.Headers()[headerTaskID] {
			return &RetryLaterError{After: 4 * time.Minute, Reason: "Twilio rate limit (429)"}
		}
		return errors.New("postgres: connection refused")
	})))
	inRetry := func(tk *asynq.Task) bool {
		info, err := insp.GetTaskInfo(q.List, tk.Headers()[headerTaskID])
		return err == nil && info.State == asynq.TaskStateRetry
	}
	require.Eventually(t, func() bool { return inRetry(failing) && inRetry(paused) }, 10*time.Second, 10*time.Millisecond)
	srv.Shutdown()

	var tally RequeueTally
	enqueue := e.requeueInto(ctx, &tally)
	require.NoError(t, enqueue(failing, nil))
	require.NoError(t, enqueue(paused, nil))
	require.True(t, inRetry(failing) && inRetry(paused), "left to their backoff and pause")
	require.Equal(t, 1, tally.N[RequeueBackoff])
	require.Equal(t, 1, tally.N[RequeuePaused])
	require.Equal(t, 2, tally.Total())
	require.Greater(t, tally.Longest, 3*time.Minute)
	require.LessOrEqual(t, tally.Longest, 4*time.Minute)
}
