package catalog_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/catalog"
)

// The runs list pages newest first by cursor: every run once, in order,
// whatever the page size; and each run comes with its progress.
func TestRunsPageNewestFirstByCursor(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	since := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var ids []uuid.UUID // oldest first
	for i := range 5 {
		r, err := c.CreateRun(ctx, catalog.RunSpec{Kind: catalog.KindBackfill, AccountSID: acct,
			Since: since.AddDate(0, 0, i), Until: since.AddDate(0, 0, i+2), Actor: "test"})
		require.NoError(t, err)
		ids = append(ids, r.ID)
	}
	for i, state := range []string{"pending", "archived", "failed", "suspect"} {
		_, err := c.Pool().Exec(ctx, `INSERT INTO run_media (run_id, media_sid, message_sid, state) VALUES ($1, $2, $3, $4)`,
			ids[4], fmt.Sprintf("ME%032d", i), msg1, state)
		require.NoError(t, err)
	}
	require.NoError(t, c.FailRun(ctx, ids[1], "injected"))

	var got []uuid.UUID
	before := uuid.Nil
	for range 10 {
		page, err := c.RunsPage(ctx, catalog.RunsPageFilter{Before: before, Limit: 2})
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), 2)
		if len(page) == 0 {
			break
		}
		for _, s := range page {
			got = append(got, s.ID)
		}
		before = page[len(page)-1].ID
	}
	require.Equal(t, []uuid.UUID{ids[4], ids[3], ids[2], ids[1], ids[0]}, got)

	page, err := c.RunsPage(ctx, catalog.RunsPageFilter{Limit: 1})
	require.NoError(t, err)
	s := page[0]
	require.Equal(t, "messaging", s.Source)
	require.Equal(t, 2, s.WindowsTotal)
	require.Equal(t, [3]int{4, 3, 2}, [3]int{s.MediaFound, s.MediaDone, s.MediaFailed}, "found, done, failed or suspect")

	// An export counts its own media.
	exp, err := c.CreateExport(ctx, catalog.ExportSpec{AccountSID: acct, Since: since, Until: since.AddDate(0, 0, 1),
		Out: "file:///tmp/x", Format: catalog.ExportDir, Actor: "test"})
	require.NoError(t, err)
	_, err = c.Pool().Exec(ctx, `INSERT INTO messages (sid, account_sid) VALUES ($1, $2)`, msg1, acct)
	require.NoError(t, err)
	for i, state := range []string{"pending", "exported", "failed"} {
		sid := fmt.Sprintf("ME%032d", 100+i)
		_, err = c.Pool().Exec(ctx, `INSERT INTO media (sid, account_sid, message_sid) VALUES ($1, $2, $3)`, sid, acct, msg1)
		require.NoError(t, err)
		_, err = c.Pool().Exec(ctx, `INSERT INTO export_media (run_id, seq, media_sid, state) VALUES ($1, $2, $3, $4)`, exp.ID, i, sid, state)
		require.NoError(t, err)
	}
	page, err = c.RunsPage(ctx, catalog.RunsPageFilter{Limit: 1})
	require.NoError(t, err)
	require.Equal(t, exp.ID, page[0].ID)
	require.Equal(t, [3]int{3, 2, 1}, [3]int{page[0].MediaFound, page[0].MediaDone, page[0].MediaFailed})

	failed, err := c.RunsPage(ctx, catalog.RunsPageFilter{State: catalog.RunFailed})
	require.NoError(t, err)
	require.Len(t, failed, 1)
	require.Equal(t, ids[1], failed[0].ID)
}

// A run's failures page by cursor through windows, messages and media:
// each once, in order, with its reason.
func TestRunFailuresPageByCursor(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	since := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	run, err := c.CreateRun(ctx, catalog.RunSpec{Kind: catalog.KindBackfill, AccountSID: acct,
		Since: since, Until: since.AddDate(0, 0, 12), Actor: "test"})
	require.NoError(t, err)
	pool := c.Pool()
	_, err = pool.Exec(ctx, `UPDATE run_windows SET state = 'failed', error = 'window broke' WHERE run_id = $1 AND seq IN (2, 10)`, run.ID)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO run_messages (run_id, message_sid, state, error) VALUES ($1, $2, 'failed', 'message broke'), ($1, $3, 'listed', NULL)`,
		run.ID, msg1, "MM00000000000000000000000000000002")
	require.NoError(t, err)
	var want []string
	for i := range 5 {
		state := "failed"
		if i == 3 {
			state = "suspect"
		}
		sid := fmt.Sprintf("ME%032d", i)
		_, err = pool.Exec(ctx, `INSERT INTO run_media (run_id, media_sid, message_sid, state, error) VALUES ($1, $2, $3, $4, $5)`,
			run.ID, sid, msg1, state, "media <broke> "+sid)
		require.NoError(t, err)
		if i != 3 {
			want = append(want, "media "+sid)
		}
	}
	want = append(want, "message "+msg1, "suspect "+fmt.Sprintf("ME%032d", 3), "window window 2 (2026-03-03)", "window window 10 (2026-03-11)")
	_, err = pool.Exec(ctx, `INSERT INTO run_media (run_id, media_sid, message_sid, state) VALUES ($1, 'ME99999999999999999999999999999999', $2, 'archived')`, run.ID, msg1)
	require.NoError(t, err)

	for _, size := range []int{1, 2, 3, 100} {
		var got []string
		var after catalog.FailureCursor
		for range 20 {
			page, err := c.RunFailures(ctx, run.ID, after, size)
			require.NoError(t, err)
			require.LessOrEqual(t, len(page), size)
			if len(page) == 0 {
				break
			}
			for _, f := range page {
				got = append(got, f.Kind+" "+f.SID)
				require.NotEmpty(t, f.Reason, "%s %s has its reason", f.Kind, f.SID)
			}
			// Through its text, as the runs page's links carry it.
			after, err = catalog.ParseFailureCursor(page[len(page)-1].Cursor().String())
			require.NoError(t, err)
		}
		require.Equal(t, want, got, "page size %d", size)
	}

	_, err = catalog.ParseFailureCursor("9/x")
	var inv *catalog.InvalidError
	require.True(t, errors.As(err, &inv), "a bad cursor is the caller's error: %v", err)

	ws, err := c.RunWindowsPage(ctx, run.ID, 9, 100)
	require.NoError(t, err)
	require.Len(t, ws, 2, "windows 10 and 11")
	require.Equal(t, 10, ws[0].Seq)
	require.Equal(t, catalog.WindowFailed, ws[0].State)
	require.Equal(t, since.AddDate(0, 0, 10), ws[0].StartsAt)
}
