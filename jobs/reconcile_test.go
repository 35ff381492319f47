package jobs

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/testenv"
)

// A run whose reconciliation fails (here an export run whose export row is
// missing) is logged and skipped: the runs after it are still reconciled,
// instead of one broken run starving every newer one of its lost tasks.
func TestReconcileGoesOnPastAFailingRun(t *testing.T) {
	t.Parallel()
	b := holdSetup(t, 0)
	ctx := t.Context()
	r := testenv.NewRedis(t)
	b.h.queues = QueuesFor(r.Namespace)
	b.h.enqueuer = NewEnqueuer(r.Client, b.h.queues)
	pool := b.catalog.Pool()
	// The oldest run fails to reconcile.
	_, err := pool.Exec(ctx, `UPDATE runs SET kind = 'export', started_at = now() - interval '1 hour' WHERE id = $1`, b.run)
	require.NoError(t, err)

	run, err := b.catalog.CreateRun(ctx, catalog.RunSpec{Kind: catalog.KindBackfill, AccountSID: testAccount,
		Since: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), Actor: "test"})
	require.NoError(t, err)
	_, err = b.catalog.StartRun(ctx, run.ID)
	require.NoError(t, err)
	const msg, media = "MM00000000000000000000000000000fff", "ME00000000000000000000000000000fff"
	require.NoError(t, b.catalog.RecordMessages(ctx, run.ID, []catalog.MessageRecord{{
		SID: msg, AccountSID: testAccount, DateSent: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), From: "+15550100", To: "+15550199",
		NumMedia: 1, NumMediaKnown: true,
	}}, false))
	require.NoError(t, b.catalog.RecordMedia(ctx, run.ID, []catalog.MediaRecord{
		{SID: media, AccountSID: testAccount, MessageSID: msg, ContentType: "image/jpeg"}}, false))
	_, err = pool.Exec(ctx, `UPDATE run_media SET updated_at = now() - interval '1 hour' WHERE run_id = $1`, run.ID)
	require.NoError(t, err)

	err = b.h.Reconcile(ctx, time.Minute)
	require.Error(t, err, "the broken run's failure is reported")
	var stale bool
	require.NoError(t, pool.QueryRow(ctx, `SELECT updated_at < now() - interval '30 minutes' FROM run_media
		WHERE run_id = $1 AND media_sid = $2`, run.ID, media).Scan(&stale))
	require.False(t, stale, "the newer run's lost archive task was not queued again")
}

// The reconcile lock outlives the pass (no second worker starts one while
// it runs) and is deleted when the pass ends; a lock another worker holds
// is left alone.
func TestReconcileLockIsHeldForThePassAndReleased(t *testing.T) {
	t.Parallel()
	b := holdSetup(t, 0)
	ctx := t.Context()
	b.h.passTimeout = 2 * time.Minute
	key := b.redis.Namespace + ":reconcile"
	b.h.reconcilePass(ctx, b.redis.Client, key, b.h.passTimeout+time.Second, time.Minute, time.Minute)
	n, err := b.redis.Client.Exists(ctx, key).Result()
	require.NoError(t, err)
	require.Zero(t, n, "the lock is deleted when the pass ends")

	require.NoError(t, b.redis.Client.Set(ctx, key, "another worker", time.Minute).Err())
	b.h.reconcilePass(ctx, b.redis.Client, key, b.h.passTimeout+time.Second, time.Minute, time.Minute)
	v, err := b.redis.Client.Get(ctx, key).Result()
	require.NoError(t, err)
	require.Equal(t, "another worker", v, "another worker's lock is left alone")
	ttl, err := b.redis.Client.TTL(ctx, key).Result()
	require.NoError(t, err)
	require.Positive(t, ttl)
}
