package jobs

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/testenv"
	"github.com/mediasync/mediasync/twilio"
)

// Many runs ending within the gap after an anchor, on two workers, do not
// write one anchor each: their requests wait for the fleet's next slot and
// are written as one anchor of the newest head (coalesced, not dropped); a
// head that has not moved is not anchored again.
func TestAnchorsAreAtMostOnePerGap(t *testing.T) {
	t.Parallel()
	pool := testenv.Postgres(t)
	_, err := catalog.Migrate(t.Context(), pool)
	require.NoError(t, err)
	r := testenv.NewRedis(t)
	tw, err := twilio.New(testAccount, twilio.WithAuthToken("unused"))
	require.NoError(t, err)
	store, err := archive.NewFileStore(t.TempDir())
	require.NoError(t, err)
	var workers [2]*Handlers
	for i := range workers {
		workers[i], err = NewHandlers(Deps{Catalog: catalog.NewCatalog(pool), Twilio: tw, Store: store,
			Queues: QueuesFor(r.Namespace), Enqueuer: NewEnqueuer(r.Client, QueuesFor(r.Namespace)), Log: zerolog.Nop()})
		require.NoError(t, err)
	}
	ctx := t.Context()
	var head int64
	runs := 0
	runFinished := func() {
		require.NoError(t, pool.QueryRow(ctx, `INSERT INTO audit_log (actor, action, subject, details, prev_hash, hash)
			VALUES ('ops', 'run.finished', 'run', '{}', '', '') RETURNING id`).Scan(&head))
		workers[runs%2].requestAnchor()
		runs++
	}
	anchors := func() []int64 {
		var ids []int64
		for a, err := range archive.ListAuditAnchors(ctx, store, "", testAccount) {
			require.NoError(t, err)
			ids = append(ids, a.HeadID)
		}
		return ids
	}

	runFinished()
	const gap = 3 * time.Second
	lctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, h := range workers {
		wg.Go(func() { h.AnchorLoop(lctx, r.Client, r.Namespace+":audit-anchor", time.Hour, gap) })
	}
	defer func() { cancel(); wg.Wait() }()
	require.Eventually(t, func() bool { return len(anchors()) == 1 }, 10*time.Second, 5*time.Millisecond, "the loop anchors at start")
	first := time.Now()

	for range 10 {
		runFinished()
		time.Sleep(30 * time.Millisecond)
	}
	if time.Since(first) < gap-500*time.Millisecond {
		require.Equal(t, []int64{1}, anchors(), "runs ending within the gap write no anchor of their own")
	}
	require.Eventually(t, func() bool { return len(anchors()) > 1 }, 10*time.Second, 5*time.Millisecond,
		"the runs' requests are written in the next slot")
	require.GreaterOrEqual(t, time.Since(first), gap-100*time.Millisecond, "the next slot is a gap after the last anchor")
	require.Equal(t, []int64{1, head}, anchors(), "one anchor, of the newest head, for all the runs")

	workers[0].requestAnchor()
	workers[1].requestAnchor()
	time.Sleep(gap + 500*time.Millisecond)
	require.Equal(t, []int64{1, head}, anchors(), "a head that has not moved is not anchored again")
}
