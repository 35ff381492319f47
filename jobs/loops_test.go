package jobs

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/testenv"
	"github.com/mediasync/mediasync/twilio"
)

// deadlineCounter counts log lines of passes that ran out of time.
type deadlineCounter struct{ n atomic.Int32 }

func (c *deadlineCounter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("context deadline exceeded")) {
		c.n.Add(1)
	}
	return len(p), nil
}

// A reconcile, schedule or audit anchor pass that Postgres never answers (a table locked
// by someone else, on a connection with no lock_timeout) fails at its
// deadline and the loop goes on with the next pass, instead of waiting
// forever.
func TestLoopPassesHaveADeadline(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc  string
		table string
		loop  func(ctx context.Context, h *Handlers, r *testenv.Redis)
	}{
		{"reconcile", "runs", func(ctx context.Context, h *Handlers, r *testenv.Redis) {
			h.ReconcileLoop(ctx, r.Client, r.Keys.ReconcileLock(), 20*time.Millisecond, time.Minute)
		}},
		{"schedule", "policies", func(ctx context.Context, h *Handlers, _ *testenv.Redis) {
			h.ScheduleLoop(ctx, 20*time.Millisecond)
		}},
		{"audit anchor", "audit_log", func(ctx context.Context, h *Handlers, r *testenv.Redis) {
			h.AnchorLoop(ctx, r.Client, r.Namespace+":audit-anchor", 20*time.Millisecond, time.Millisecond)
		}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			pool := testenv.Postgres(t)
			_, err := catalog.Migrate(t.Context(), pool)
			require.NoError(t, err)
			r := testenv.NewRedis(t)
			tw, err := twilio.New(testAccount, twilio.WithAuthToken("unused"))
			require.NoError(t, err)
			var passes deadlineCounter
			h, err := NewHandlers(Deps{Catalog: catalog.NewCatalog(pool), Twilio: tw, Store: &flakyHolds{},
				Queues: QueuesFor(r.Namespace), Enqueuer: NewEnqueuer(r.Client, QueuesFor(r.Namespace)),
				Log: zerolog.New(&passes), PassTimeout: 200 * time.Millisecond})
			require.NoError(t, err)

			blocker, err := pool.Begin(t.Context())
			require.NoError(t, err)
			defer blocker.Rollback(context.WithoutCancel(t.Context()))
			_, err = blocker.Exec(t.Context(), `LOCK TABLE `+tc.table+` IN ACCESS EXCLUSIVE MODE`)
			require.NoError(t, err)

			ctx, cancel := context.WithCancel(t.Context())
			var wg sync.WaitGroup
			wg.Go(func() { tc.loop(ctx, h, r) })
			defer func() { cancel(); wg.Wait() }()
			testenv.WaitFor(t, 20*time.Second, "a second pass (the loop is stuck in its first pass)",
				func() bool { return passes.n.Load() >= 2 })
		})
	}
}
