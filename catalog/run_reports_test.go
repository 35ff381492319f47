package catalog_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/testenv"
)

// Every failure of a run, however many, is read page by page in one order
// with none twice: media, messages and windows, the windows by number.
func TestAllRunFailuresPagesThroughEvery(t *testing.T) {
	t.Parallel()
	pool := testenv.Postgres(t)
	_, err := catalog.Migrate(t.Context(), pool)
	require.NoError(t, err)
	c := catalog.NewCatalog(pool)
	ctx := t.Context()
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	run, err := c.CreateRun(ctx, catalog.RunSpec{Kind: catalog.KindBackfill, AccountSID: acct,
		Since: since, Until: since.AddDate(0, 0, 12), Actor: "test"})
	require.NoError(t, err)
	const media = 1203 // more than two pages
	_, err = pool.Exec(ctx, `
		INSERT INTO run_media (run_id, media_sid, message_sid, state, error)
		SELECT $1, 'ME' || lpad(to_hex(i), 32, '0'), 'MM' || lpad(to_hex(i), 32, '0'), 'failed', 'boom ' || i
		FROM generate_series(1, $2) AS i`, run.ID, media)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE run_windows SET state = 'failed', error = 'listing failed' WHERE run_id = $1 AND seq IN (2, 10)`, run.ID)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO run_messages (run_id, message_sid, state, error) VALUES ($1, $2, 'failed', 'gone bad')`, run.ID, msg1)
	require.NoError(t, err)

	var got []catalog.RunFailure
	seen := map[string]bool{}
	for f, err := range c.AllRunFailures(ctx, run.ID) {
		require.NoError(t, err)
		require.False(t, seen[f.Kind+f.SID], "twice: %v", f)
		seen[f.Kind+f.SID] = true
		got = append(got, f)
	}
	require.Len(t, got, media+3)
	require.Equal(t, catalog.FailureMedia, got[0].Kind)
	require.Equal(t, "boom 1", got[0].Reason)
	require.Equal(t, catalog.RunFailure{Kind: catalog.FailureMessage, SID: msg1, Reason: "gone bad", Key: msg1}, got[media])
	require.Equal(t, "window 2 (2026-01-03)", got[media+1].SID, "windows by number, not as text")
	require.Equal(t, "window 10 (2026-01-11)", got[media+2].SID)

	counts, err := c.FailureCounts(ctx, run.ID)
	require.NoError(t, err)
	require.Equal(t, map[string]int{"media": media, "message": 1, "window": 2}, counts)

	// Stopping early stops reading.
	n := 0
	for range c.AllRunFailures(ctx, run.ID) {
		if n++; n == 3 {
			break
		}
	}
	require.Equal(t, 3, n)
}

// ListRuns: newest first, by state, bounded, paged by Before.
func TestListRunsByState(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	var ids []string
	for i := range 5 {
		r, err := c.CreateRun(ctx, catalog.RunSpec{Kind: catalog.KindMessage, AccountSID: acct,
			MessageSID: fmt.Sprintf("MM%032x", i+1), Actor: "test"})
		require.NoError(t, err)
		ids = append(ids, r.ID.String())
	}
	_, _, err := c.CancelRun(ctx, uuid.MustParse(ids[1]), "op")
	require.NoError(t, err)

	all, err := c.ListRuns(ctx, catalog.RunFilter{})
	require.NoError(t, err)
	require.Len(t, all, 5)
	for i, r := range all {
		require.Equal(t, ids[4-i], r.ID.String(), "newest first")
	}
	cancelled, err := c.ListRuns(ctx, catalog.RunFilter{State: catalog.RunCancelled})
	require.NoError(t, err)
	require.Len(t, cancelled, 1)
	require.Equal(t, ids[1], cancelled[0].ID.String())
	page, err := c.ListRuns(ctx, catalog.RunFilter{Limit: 2})
	require.NoError(t, err)
	require.Len(t, page, 2)
	next, err := c.ListRuns(ctx, catalog.RunFilter{Limit: 2, Before: page[1].CreatedAt})
	require.NoError(t, err)
	require.Equal(t, ids[2], next[0].ID.String())
	other, err := c.ListRuns(ctx, catalog.RunFilter{Account: "AC" + fmt.Sprintf("%032x", 99)})
	require.NoError(t, err)
	require.Empty(t, other)
}
