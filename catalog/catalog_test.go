package catalog_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/objects"
	"github.com/mediasync/mediasync/internal/testenv"
)

const (
	acct = "AC00000000000000000000000000000001"
	msg1 = "MM00000000000000000000000000000001"
	me1  = "ME00000000000000000000000000000001"
	me2  = "ME00000000000000000000000000000002"
)

func newCatalog(t *testing.T) *catalog.Catalog {
	t.Helper()
	pool := testenv.Postgres(t)
	_, err := catalog.Migrate(t.Context(), pool)
	require.NoError(t, err)
	return catalog.NewCatalog(pool)
}

func TestMigrateTwiceAppliesOnce(t *testing.T) {
	t.Parallel()
	pool := testenv.Postgres(t)
	first, err := catalog.Migrate(t.Context(), pool)
	require.NoError(t, err)
	require.NotEmpty(t, first)
	second, err := catalog.Migrate(t.Context(), pool)
	require.NoError(t, err)
	require.Empty(t, second, "a second start must not apply anything again")
}

func TestCreateRunCutsUTCDays(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	since := time.Date(2026, 1, 30, 0, 0, 0, 0, time.UTC)
	run, err := c.CreateRun(ctx, catalog.RunSpec{Kind: catalog.KindBackfill, AccountSID: acct,
		Since: since, Until: since.AddDate(0, 0, 3), Actor: "test"})
	require.NoError(t, err)
	require.Equal(t, catalog.RunQueued, run.State)
	ws, err := c.ReleaseWindows(ctx, run.ID, 10)
	require.NoError(t, err)
	require.Len(t, ws, 3)
	for i, w := range ws {
		require.Equal(t, since.AddDate(0, 0, i), w.StartsAt, "window %d start", i)
		require.Equal(t, since.AddDate(0, 0, i+1), w.EndsAt, "window %d end", i)
	}

	_, err = c.CreateRun(ctx, catalog.RunSpec{Kind: catalog.KindBackfill, AccountSID: acct,
		Since: since, Until: since, Actor: "test"})
	require.Error(t, err, "an empty range is refused")
	_, err = c.CreateRun(ctx, catalog.RunSpec{Kind: catalog.KindMessage, AccountSID: acct,
		MessageSID: msg1, Delete: true, DryRun: true, Actor: "test"})
	require.Error(t, err, "delete with dry-run is refused")
}

// A range Twilio cannot have messages for is refused by the catalog
// itself, whoever asks: before 2008, or ending more than a day from now
// (1990-2090 would be 36,500 windows of nothing).
func TestCatalogRefusesDaysTwilioCannotHave(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	day := func(s string) time.Time {
		d, err := time.Parse(time.DateOnly, s)
		require.NoError(t, err)
		return d
	}
	var rangeErr *catalog.DayRangeError
	for _, r := range []struct{ since, until string }{
		{"2007-12-31", "2008-01-02"},
		{"1990-01-01", "2090-01-01"},
		{"2026-01-01", time.Now().UTC().Add(49 * time.Hour).Format(time.DateOnly)},
	} {
		_, err := c.CreateRun(ctx, catalog.RunSpec{Kind: catalog.KindBackfill, AccountSID: acct,
			Since: day(r.since), Until: day(r.until), Actor: "test"})
		require.ErrorAs(t, err, &rangeErr, "run %v", r)
		_, err = c.CreateExport(ctx, catalog.ExportSpec{AccountSID: acct, Since: day(r.since), Until: day(r.until),
			Out: "file:///tmp/x", Format: catalog.ExportDir, Actor: "test"})
		require.ErrorAs(t, err, &rangeErr, "export %v", r)
	}
	_, err := c.SetPolicy(ctx, catalog.Policy{Name: "p", AccountSID: acct, Schedule: "@every 1h", Watermark: day("2007-06-01")}, "test")
	require.ErrorAs(t, err, &rangeErr)
	require.ErrorContains(t, err, "2007-06-01 is before 2008-01-01")

	// The bounds themselves are fine: 2008-01-01 and tomorrow.
	tomorrow := time.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	_, err = c.CreateRun(ctx, catalog.RunSpec{Kind: catalog.KindBackfill, AccountSID: acct,
		Since: catalog.EarliestDay, Until: catalog.EarliestDay.Add(24 * time.Hour), Actor: "test"})
	require.NoError(t, err)
	_, err = c.CreateRun(ctx, catalog.RunSpec{Kind: catalog.KindBackfill, AccountSID: acct,
		Since: tomorrow.Add(-24 * time.Hour), Until: tomorrow, Actor: "test"})
	require.NoError(t, err)
}

// A page handled twice must advance its window once.
func TestAdvanceWindowIsGuardedByPage(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	run, err := c.CreateRun(ctx, catalog.RunSpec{Kind: catalog.KindBackfill, AccountSID: acct,
		Since: since, Until: since.AddDate(0, 0, 1), Actor: "test"})
	require.NoError(t, err)
	ok, err := c.AdvanceWindow(ctx, run.ID, 0, 0, "/next?PageToken=PA1")
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = c.AdvanceWindow(ctx, run.ID, 0, 0, "/next?PageToken=PA1")
	require.NoError(t, err)
	require.False(t, ok, "the same page must not advance the window twice")
	w, err := c.GetWindow(ctx, run.ID, 0)
	require.NoError(t, err)
	require.Equal(t, 1, w.Page)
	require.Equal(t, "/next?PageToken=PA1", w.NextPageURI)

	ok, err = c.AdvanceWindow(ctx, run.ID, 0, 1, "")
	require.NoError(t, err)
	require.True(t, ok)
	w, err = c.GetWindow(ctx, run.ID, 0)
	require.NoError(t, err)
	require.Equal(t, catalog.WindowDone, w.State)
}

func seedMedia(t *testing.T, c *catalog.Catalog, delete bool) catalog.Run {
	t.Helper()
	ctx := t.Context()
	run, err := c.CreateRun(ctx, catalog.RunSpec{Kind: catalog.KindMessage, AccountSID: acct,
		MessageSID: msg1, Delete: delete, Actor: "test"})
	require.NoError(t, err)
	_, err = c.StartRun(ctx, run.ID)
	require.NoError(t, err)
	seedMessage(t, c, run.ID, msg1, "+15550100", me1, "image/jpeg", me2, "image/png")
	require.NoError(t, c.FinishMessage(ctx, run.ID, msg1, 2))
	return run
}

// seedMessage records, as a run's listing does, message msg from `from`
// to +15550199, sent 2026-02-03, with its media given as SID, content
// type, SID, content type….
func seedMessage(t *testing.T, c *catalog.Catalog, run uuid.UUID, msg, from string, media ...string) {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, c.RecordMessages(ctx, run, []catalog.MessageRecord{{
		SID: msg, AccountSID: acct, DateSent: time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC),
		From: from, To: "+15550199", NumMedia: len(media) / 2, NumMediaKnown: true,
	}}, false))
	var recs []catalog.MediaRecord
	for i := 0; i+1 < len(media); i += 2 {
		recs = append(recs, catalog.MediaRecord{SID: media[i], AccountSID: acct, MessageSID: msg, ContentType: media[i+1]})
	}
	require.NoError(t, c.RecordMedia(ctx, run, recs, false))
}

// copyAt is where the row says a media's copy is (empty if none).
func copyAt(t *testing.T, c *catalog.Catalog, sid string) catalog.CopyAt {
	t.Helper()
	it, err := c.GetMedia(t.Context(), sid)
	require.NoError(t, err)
	return catalog.CopyAt{Store: it.Store, Bucket: it.Bucket, Key: it.Key}
}

// Invariant 1 at the last gate: a claim needs the archived row with exactly
// the size and sha256 that were just verified, at the store, bucket and key
// verified.
func TestClaimDeleteNeedsMatchingArchivedRow(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	run := seedMedia(t, c, true)
	sum := sha256.Sum256([]byte("bytes"))

	require.ErrorIs(t, c.ClaimDelete(ctx, me1, 5, sum, copyAt(t, c, me1)), catalog.ErrNotDeletable, "a pending media cannot be claimed")
	wanted, err := c.MarkArchived(ctx, run.ID, me1, catalog.ArchivedCopy{
		Size: 5, SHA256: sum, Store: "s3", Bucket: "b", Key: "k/" + me1})
	require.NoError(t, err)
	require.True(t, wanted, "a run with --delete deletes what it archived next")
	require.ErrorIs(t, c.ClaimDelete(ctx, me1, 6, sum, copyAt(t, c, me1)), catalog.ErrNotDeletable, "wrong size")
	require.ErrorIs(t, c.ClaimDelete(ctx, me1, 5, sha256.Sum256([]byte("other")), copyAt(t, c, me1)), catalog.ErrNotDeletable, "wrong sha256")
	for _, at := range []catalog.CopyAt{
		{Store: "s3", Bucket: "other", Key: "k/" + me1}, {Store: "file", Bucket: "b", Key: "k/" + me1}, {Store: "s3", Bucket: "b", Key: "k/other"},
	} {
		require.ErrorIs(t, c.ClaimDelete(ctx, me1, 5, sum, at), catalog.ErrNotDeletable, "a copy elsewhere (%v), same bytes, is not the row's", at)
	}
	require.NoError(t, c.ClaimDelete(ctx, me1, 5, sum, copyAt(t, c, me1)))
	require.NoError(t, c.MarkDeleted(ctx, run, me1))
	require.NoError(t, c.MarkDeleted(ctx, run, me1), "a task run twice")
	it, err := c.GetMedia(ctx, me1)
	require.NoError(t, err)
	require.Equal(t, catalog.MediaDeleted, it.State)
	require.Equal(t, "+15550100", it.From)
	// One audit entry, written with the delete, saying what was deleted and
	// where its copy is; the chain verifies.
	var deleted []catalog.AuditEntry
	for e, err := range c.AuditLog(ctx, time.Time{}) {
		require.NoError(t, err)
		if e.Action == catalog.AuditMediaDeleted {
			deleted = append(deleted, e)
		}
	}
	require.Len(t, deleted, 1)
	require.Equal(t, me1, deleted[0].Subject)
	require.Equal(t, run.Actor, deleted[0].Actor)
	require.JSONEq(t, fmt.Sprintf(`{"message_sid": %q, "object_key": "k/%s", "sha256": %q, "size": 5, "run_id": %q}`,
		msg1, me1, hex.EncodeToString(sum[:]), run.ID), string(deleted[0].Details))
	v, err := c.VerifyAudit(ctx, func(func(objects.AuditAnchor, error) bool) {})
	require.NoError(t, err)
	require.Nil(t, v.Broken)

	// MarkDeleted without a claim changes nothing.
	_, err = c.MarkArchived(ctx, run.ID, me2, catalog.ArchivedCopy{
		Size: 5, SHA256: sum, Store: "s3", Bucket: "b", Key: "k/" + me2})
	require.NoError(t, err)
	require.ErrorIs(t, c.MarkDeleted(ctx, run, me2), catalog.ErrNotDeletable)
	it, err = c.GetMedia(ctx, me2)
	require.NoError(t, err)
	require.Equal(t, catalog.MediaArchived, it.State, "no claim, no deleted state")
}

// A copy archived before copies were judged plausibly the media
// (plausible_at NULL, as every row archived before migration 00013) cannot
// be claimed for delete until MarkPlausible records that judgement, and only
// for the copy the row records.
func TestClaimDeleteNeedsPlausibleCopy(t *testing.T) {
	t.Parallel()
	pool := testenv.Postgres(t)
	_, err := catalog.Migrate(t.Context(), pool)
	require.NoError(t, err)
	c := catalog.NewCatalog(pool)
	ctx := t.Context()
	run := seedMedia(t, c, true)
	sum := sha256.Sum256([]byte("bytes"))
	_, err = c.MarkArchived(ctx, run.ID, me1, catalog.ArchivedCopy{Size: 5, SHA256: sum, Store: "s3", Bucket: "b", Key: "k/" + me1})
	require.NoError(t, err)
	it, err := c.GetMedia(ctx, me1)
	require.NoError(t, err)
	require.False(t, it.PlausibleAt.IsZero(), "MarkArchived records the copy judged plausible")

	_, err = pool.Exec(ctx, `UPDATE media SET plausible_at = NULL WHERE sid = $1`, me1)
	require.NoError(t, err)
	it, err = c.GetMedia(ctx, me1)
	require.NoError(t, err)
	require.True(t, it.PlausibleAt.IsZero())
	require.ErrorIs(t, c.ClaimDelete(ctx, me1, 5, sum, copyAt(t, c, me1)), catalog.ErrNotDeletable, "a copy never judged is not deleted")

	require.NoError(t, c.MarkPlausible(ctx, me1, 5, sha256.Sum256([]byte("other"))))
	require.ErrorIs(t, c.ClaimDelete(ctx, me1, 5, sum, copyAt(t, c, me1)), catalog.ErrNotDeletable, "another copy was judged, not this one")
	require.NoError(t, c.MarkPlausible(ctx, me1, 5, sum))
	require.NoError(t, c.ClaimDelete(ctx, me1, 5, sum, copyAt(t, c, me1)))
}

// The database itself refuses a row that says archived without the proof.
func TestSchemaRefusesArchivedWithoutProof(t *testing.T) {
	t.Parallel()
	pool := testenv.Postgres(t)
	_, err := catalog.Migrate(t.Context(), pool)
	require.NoError(t, err)
	c := catalog.NewCatalog(pool)
	seedMedia(t, c, false)
	_, err = pool.Exec(t.Context(), `UPDATE media SET state = 'archived' WHERE sid = $1`, me1)
	require.Error(t, err)
	_, err = pool.Exec(t.Context(), `UPDATE media SET state = 'deleted', deleted_at = now(),
		size_bytes = 1, sha256 = repeat('a', 64), object_key = 'k', archived_at = now() WHERE sid = $1`, me1)
	require.Error(t, err, "deleted needs a verified copy")
}

// However many tasks finish together, the run ends exactly once, and as
// failed when any media failed.
func TestFinishRunIfDoneExactlyOnce(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	run := seedMedia(t, c, false)
	done, err := c.FinishRunIfDone(ctx, run.ID)
	require.NoError(t, err)
	require.False(t, done, "two media are pending")

	sum := sha256.Sum256([]byte("x"))
	wanted, err := c.MarkArchived(ctx, run.ID, me1, catalog.ArchivedCopy{Size: 1, SHA256: sum, Store: "s3", Bucket: "b", Key: "k1"})
	require.NoError(t, err)
	require.False(t, wanted, "a run without --delete deletes nothing")
	require.NoError(t, c.MarkFailed(ctx, run.ID, me2, "HTTP 403 from Twilio"))

	var finished atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			ok, err := c.FinishRunIfDone(ctx, run.ID)
			if err == nil && ok {
				finished.Add(1)
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, 1, finished.Load())
	st, err := c.RunStatus(ctx, run.ID)
	require.NoError(t, err)
	require.Equal(t, catalog.RunFailed, st.State)
	require.Equal(t, 2, st.MediaFound)
	require.Equal(t, 1, st.MediaArchived)
	require.Equal(t, 1, st.MediaFailed)
	require.Equal(t, int64(1), st.BytesArchived)
	require.Equal(t, []catalog.Failure{{Kind: catalog.FailureMedia, SID: me2, Reason: "HTTP 403 from Twilio"}}, st.Failures)
}

func TestGetRunUnknown(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	_, err := c.GetRun(t.Context(), uuid.New())
	require.ErrorIs(t, err, catalog.ErrRunNotFound)
}

// A run's windows are released in order, n at a time: the next only when
// one is listed to the end or fails, however often release is asked.
func TestReleaseWindowsKeepsNReleased(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	since := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	run, err := c.CreateRun(ctx, catalog.RunSpec{Kind: catalog.KindBackfill, AccountSID: acct,
		Since: since, Until: since.AddDate(1, 0, 0), Actor: "test"})
	require.NoError(t, err)
	_, err = c.StartRun(ctx, run.ID)
	require.NoError(t, err)
	seqs := func(ws []catalog.Window) []int {
		var s []int
		for _, w := range ws {
			s = append(s, w.Seq)
		}
		return s
	}
	var wg sync.WaitGroup
	var released atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ws, err := c.ReleaseWindows(ctx, run.ID, 2)
			if err != nil {
				t.Error(err)
				return
			}
			released.Add(int64(len(ws)))
		}()
	}
	wg.Wait()
	require.EqualValues(t, 2, released.Load(), "eight releases at once release two windows")
	ws, err := c.ReleasedWindows(ctx, run.ID)
	require.NoError(t, err)
	require.Equal(t, []int{0, 1}, seqs(ws))
	n, err := c.WindowsListing(ctx, acct)
	require.NoError(t, err)
	require.Equal(t, 2, n)

	_, err = c.AdvanceWindow(ctx, run.ID, 0, 0, "")
	require.NoError(t, err)
	require.NoError(t, c.FailWindow(ctx, run.ID, 1, "test"))
	ws, err = c.ReleaseWindows(ctx, run.ID, 2)
	require.NoError(t, err)
	require.Equal(t, []int{2, 3}, seqs(ws))
	ws, err = c.ReleaseWindows(ctx, run.ID, 2)
	require.NoError(t, err)
	require.Empty(t, ws)
}

// A cursor seen again on a later page is a cycle; the same page recorded
// twice (a task run twice) is not.
func TestFollowCursorFindsCycles(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	since := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	run, err := c.CreateRun(ctx, catalog.RunSpec{Kind: catalog.KindBackfill, AccountSID: acct,
		Since: since, Until: since.AddDate(0, 0, 1), Actor: "test"})
	require.NoError(t, err)
	for _, step := range []struct {
		page  int
		uri   string
		first int
	}{
		{0, "/Messages.json?DateSent=2025-01-01&PageSize=1000", 0},
		{0, "/Messages.json?DateSent=2025-01-01&PageSize=1000", 0}, // replayed
		{1, "/Messages.json?PageToken=PA&Page=1", 1},
		{2, "/Messages.json?PageToken=PB&Page=2", 2},
		{3, "/Messages.json?Page=1&PageToken=PA", 1}, // A again, its query in another order
	} {
		first, err := c.FollowCursor(ctx, run.ID, 0, step.page, step.uri)
		require.NoError(t, err)
		require.Equal(t, step.first, first, "page %d at %s", step.page, step.uri)
	}
}
