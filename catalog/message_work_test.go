package catalog_test

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/objects"
)

// A message's work is what Postgres says is left: its media to archive,
// then, committed in one statement, the archived ones its run deletes; a
// replay after the commit finds nothing to archive again, and each commit
// is guarded like MarkArchived (a second copy leaves the first proof).
func TestMessageWorkIsWhatIsLeft(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	run := seedMedia(t, c, true)

	work, err := c.MessageWork(ctx, run.ID, msg1, "", 50)
	require.NoError(t, err)
	require.Len(t, work, 2)
	for _, it := range work {
		require.Equal(t, catalog.MediaPending, it.RunState)
		require.Equal(t, catalog.MediaPending, it.State)
		require.True(t, it.DeleteWanted)
	}
	page, err := c.MessageWork(ctx, run.ID, msg1, "", 1)
	require.NoError(t, err)
	require.Equal(t, []string{me1}, sids(page))
	page, err = c.MessageWork(ctx, run.ID, msg1, me1, 1)
	require.NoError(t, err)
	require.Equal(t, []string{me2}, sids(page), "keyset paging by media SID")

	sum := sha256.Sum256([]byte("bytes"))
	cp := func(sid string) catalog.ArchivedMedia {
		return catalog.ArchivedMedia{SID: sid, Copy: catalog.ArchivedCopy{Size: 5, SHA256: sum, Store: "s3", Bucket: "b", Key: "k/" + sid}}
	}
	committed, wanted, _, err := c.CommitMessage(ctx, run.ID, []catalog.ArchivedMedia{cp(me1), cp(me2)}, nil)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{me1, me2}, committed, "both rows are these copies")
	require.ElementsMatch(t, []string{me1, me2}, wanted, "the run deletes both next")
	for _, sid := range []string{me1, me2} {
		it, err := c.GetMedia(ctx, sid)
		require.NoError(t, err)
		require.Equal(t, catalog.MediaArchived, it.State)
		require.Equal(t, int64(5), it.Size)
		require.Equal(t, sum, it.SHA256)
		require.False(t, it.PlausibleAt.IsZero(), "the commit records the plausibility judgement")
	}
	work, err = c.MessageWork(ctx, run.ID, msg1, "", 50)
	require.NoError(t, err)
	require.Len(t, work, 2, "archived, still to delete")
	for _, it := range work {
		require.Equal(t, catalog.MediaArchived, it.RunState)
	}

	// A second commit of other bytes keeps the first proof.
	other := cp(me1)
	other.Copy.Size, other.Copy.SHA256 = 6, sha256.Sum256([]byte("other!"))
	committed, _, _, err = c.CommitMessage(ctx, run.ID, []catalog.ArchivedMedia{other}, nil)
	require.NoError(t, err)
	require.Empty(t, committed, "the second copy is not the row's")
	it, err := c.GetMedia(ctx, me1)
	require.NoError(t, err)
	require.Equal(t, int64(5), it.Size)

	// Deleted: nothing is left of the message.
	for _, sid := range []string{me1, me2} {
		require.NoError(t, c.ClaimDelete(ctx, sid, 5, sum, copyAt(t, c, sid)))
		require.NoError(t, c.MarkDeleted(ctx, run, sid))
	}
	work, err = c.MessageWork(ctx, run.ID, msg1, "", 50)
	require.NoError(t, err)
	require.Empty(t, work)

	// A later run reuses what is done: outcomes, with no copy.
	later, err := c.CreateRun(ctx, catalog.RunSpec{Kind: catalog.KindMessage, AccountSID: acct, MessageSID: msg1, Actor: "test"})
	require.NoError(t, err)
	require.NoError(t, c.RecordLastMedia(ctx, later.ID, msg1, []catalog.MediaRecord{
		{SID: me1, AccountSID: acct, MessageSID: msg1}, {SID: me2, AccountSID: acct, MessageSID: msg1}}, 2, false))
	work, err = c.MessageWork(ctx, later.ID, msg1, "", 50)
	require.NoError(t, err)
	require.Len(t, work, 2)
	for _, it := range work {
		require.Equal(t, catalog.MediaDeleted, it.State, "the media row keeps its state")
	}
	_, wanted, _, err = c.CommitMessage(ctx, later.ID, nil, []catalog.RunOutcome{
		{SID: me1, State: catalog.MediaDeleted, Reused: true}, {SID: me2, State: catalog.MediaDeleted, Reused: true}})
	require.NoError(t, err)
	require.Empty(t, wanted)
	st, err := c.RunStatus(ctx, later.ID)
	require.NoError(t, err)
	require.Equal(t, 2, st.MediaReused)
	require.Equal(t, 0, st.MediaPending)
}

// Two tasks commit the same media (two workers, two archives, one pending
// media): the loser learns its copy is not the row's (it must prove the
// catalogued copy, not its own, before any delete), and a commit that
// comes after a concurrent task recorded the run's outcome (deleted,
// failed) leaves that outcome: only a pending run row changes.
func TestCommitMessageSaysWhoseCopyIsTheRow(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	run := seedMedia(t, c, true)
	sum := sha256.Sum256([]byte("bytes"))
	in := func(sid, bucket string) catalog.ArchivedMedia {
		return catalog.ArchivedMedia{SID: sid, Copy: catalog.ArchivedCopy{Size: 5, SHA256: sum, Store: "s3", Bucket: bucket, Key: "k/" + sid}}
	}

	committed, wanted, _, err := c.CommitMessage(ctx, run.ID, []catalog.ArchivedMedia{in(me1, "a")}, nil)
	require.NoError(t, err)
	require.Equal(t, []string{me1}, committed)
	require.Equal(t, []string{me1}, wanted)

	// The loser: same bytes, other bucket. The run row is already archived
	// (the winner's), so it neither commits nor is told to delete.
	committed, wanted, _, err = c.CommitMessage(ctx, run.ID, []catalog.ArchivedMedia{in(me1, "b")}, nil)
	require.NoError(t, err)
	require.Empty(t, committed, "the row is the other worker's copy")
	require.Empty(t, wanted)
	it, err := c.GetMedia(ctx, me1)
	require.NoError(t, err)
	require.Equal(t, "a", it.Bucket, "the first proof stays")

	// The loser while the run row is still pending (its read came first,
	// the winner committed only the media row): told to delete, but not
	// that the row is its copy.
	require.NoError(t, c.SetRunMedia(ctx, run.ID, me1, catalog.MediaPending, false, ""))
	committed, wanted, _, err = c.CommitMessage(ctx, run.ID, []catalog.ArchivedMedia{in(me1, "b")}, nil)
	require.NoError(t, err)
	require.Empty(t, committed)
	require.Equal(t, []string{me1}, wanted, "the caller proves the catalogued copy (GetMedia), not its own")

	// Deleted by a concurrent task: a late commit (a copy, or an outcome)
	// leaves the run's outcome deleted.
	require.NoError(t, c.ClaimDelete(ctx, me1, 5, sum, copyAt(t, c, me1)))
	require.NoError(t, c.MarkDeleted(ctx, run, me1))
	_, wanted, _, err = c.CommitMessage(ctx, run.ID, []catalog.ArchivedMedia{in(me1, "b")},
		[]catalog.RunOutcome{{SID: me1, State: catalog.MediaArchived}})
	require.NoError(t, err)
	require.Empty(t, wanted)
	require.NoError(t, c.SetRunMedia(ctx, run.ID, me2, catalog.MediaFailed, false, "injected"))
	_, _, _, err = c.CommitMessage(ctx, run.ID, []catalog.ArchivedMedia{in(me2, "b")}, nil)
	require.NoError(t, err)
	var states []string
	require.NoError(t, c.Pool().QueryRow(ctx, `SELECT array_agg(state::text ORDER BY media_sid) FROM run_media WHERE run_id = $1`, run.ID).Scan(&states))
	require.Equal(t, []string{"deleted", "failed"}, states, "outcomes recorded by concurrent tasks are not reverted")
}

func sids(items []catalog.RunMediaItem) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.SID
	}
	return out
}

// A message task's reads in one round trip each: the run with its
// messages' states, and the media it records with the work they leave,
// which sees the rows just recorded (one transaction), as MessagesWork
// would, paged by (message, media).
func TestRecordListedWorkReadsWhatItRecorded(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	const msg2 = "MM00000000000000000000000000000002"
	const me3 = "ME00000000000000000000000000000003"
	run, err := c.CreateRun(ctx, catalog.RunSpec{Kind: catalog.KindBackfill, AccountSID: acct,
		Since: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 2, 2, 0, 0, 0, 0, time.UTC),
		Delete: true, Actor: "test"})
	require.NoError(t, err)
	_, err = c.StartRun(ctx, run.ID)
	require.NoError(t, err)
	msgs := []string{msg1, msg2}

	got, states, err := c.GetRunMessages(ctx, run.ID, msgs)
	require.NoError(t, err)
	require.Equal(t, run.ID, got.ID)
	require.Empty(t, states, "not recorded yet")
	require.NoError(t, c.RecordMessages(ctx, run.ID, []catalog.MessageRecord{
		{SID: msg1, AccountSID: acct, NumMedia: 2, NumMediaKnown: true},
		{SID: msg2, AccountSID: acct, NumMedia: 1, NumMediaKnown: true},
	}, false))
	_, states, err = c.GetRunMessages(ctx, run.ID, msgs)
	require.NoError(t, err)
	require.Equal(t, map[string]catalog.MessageState{msg1: catalog.MessagePending, msg2: catalog.MessagePending}, states)

	work, err := c.RecordListedWork(ctx, run.ID, []catalog.ListedMessage{
		{SID: msg1, MediaFound: 2, Media: []catalog.MediaRecord{
			{SID: me1, AccountSID: acct, MessageSID: msg1, ContentType: "image/jpeg"},
			{SID: me2, AccountSID: acct, MessageSID: msg1, ContentType: "image/png"},
		}},
		{SID: msg2, MediaFound: 1, Media: []catalog.MediaRecord{{SID: me3, AccountSID: acct, MessageSID: msg2}}},
	}, msgs, 50)
	require.NoError(t, err)
	require.Equal(t, []string{me1, me2, me3}, sids(work))
	for _, it := range work {
		require.Equal(t, catalog.MediaPending, it.RunState)
		require.True(t, it.DeleteWanted)
	}
	again, err := c.MessagesWork(ctx, run.ID, msgs, "", "", 50)
	require.NoError(t, err)
	require.Equal(t, work, again, "the same as MessagesWork after the record")
	page, err := c.MessagesWork(ctx, run.ID, msgs, msg1, me2, 50)
	require.NoError(t, err)
	require.Equal(t, []string{me3}, sids(page), "keyset paging by (message, media)")
	_, states, err = c.GetRunMessages(ctx, run.ID, msgs)
	require.NoError(t, err)
	require.Equal(t, map[string]catalog.MessageState{msg1: catalog.MessageListed, msg2: catalog.MessageListed}, states)

	_, _, err = c.GetRunMessages(ctx, uuid.New(), msgs)
	require.ErrorIs(t, err, catalog.ErrRunNotFound)
}

// A message queued in another message's task says so, for the reconciler:
// stale, it is named with that task's first message; on its own, with "".
func TestStaleWorkNamesEachMessagesTask(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	const msg2 = "MM00000000000000000000000000000002"
	run, err := c.CreateRun(ctx, catalog.RunSpec{Kind: catalog.KindBackfill, AccountSID: acct,
		Since: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 2, 2, 0, 0, 0, 0, time.UTC), Actor: "test"})
	require.NoError(t, err)
	_, err = c.StartRun(ctx, run.ID)
	require.NoError(t, err)
	require.NoError(t, c.RecordMessages(ctx, run.ID, []catalog.MessageRecord{
		{SID: msg1, AccountSID: acct, NumMedia: 1, NumMediaKnown: true},
		{SID: msg2, AccountSID: acct, NumMedia: 1, NumMediaKnown: true, TaskSID: msg1},
	}, false))
	w, err := c.StaleWork(ctx, run.ID, time.Now().Add(time.Hour), 10)
	require.NoError(t, err)
	got := map[string]string{}
	for i, m := range w.Messages {
		got[m] = w.Tasks[i]
	}
	require.Equal(t, map[string]string{msg1: "", msg2: msg1}, got)
}

// A list that repeats an item (a Twilio stand-in's quirk, or a page read
// while the data changed) is recorded once, as first listed: the page's
// and the message task's one statement each must not fail the whole
// batch, retried for ever, because a row would be upserted twice.
func TestRepeatedListingsAreRecordedOnce(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	const msg2 = "MM00000000000000000000000000000002"
	const me3 = "ME00000000000000000000000000000003"
	run, err := c.CreateRun(ctx, catalog.RunSpec{Kind: catalog.KindBackfill, AccountSID: acct,
		Since: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 2, 2, 0, 0, 0, 0, time.UTC), Actor: "test"})
	require.NoError(t, err)
	_, err = c.StartRun(ctx, run.ID)
	require.NoError(t, err)
	require.NoError(t, c.RecordMessages(ctx, run.ID, []catalog.MessageRecord{
		{SID: msg1, AccountSID: acct, NumMedia: 2, NumMediaKnown: true, From: "+15550001"},
		{SID: msg2, AccountSID: acct, NumMedia: 1, NumMediaKnown: true},
		{SID: msg1, AccountSID: acct, NumMedia: 3, NumMediaKnown: true, From: "+15550002"},
	}, false))
	work, err := c.RecordListedWork(ctx, run.ID, []catalog.ListedMessage{
		{SID: msg1, MediaFound: 3, Media: []catalog.MediaRecord{
			{SID: me1, AccountSID: acct, MessageSID: msg1, ContentType: "image/jpeg"},
			{SID: me2, AccountSID: acct, MessageSID: msg1},
			{SID: me1, AccountSID: acct, MessageSID: msg1, ContentType: "image/png"},
		}},
		{SID: msg2, MediaFound: 1, Media: []catalog.MediaRecord{{SID: me3, AccountSID: acct, MessageSID: msg2}}},
	}, []string{msg1, msg2}, 50)
	require.NoError(t, err)
	require.Equal(t, []string{me1, me2, me3}, sids(work))
	require.Equal(t, "image/jpeg", work[0].ContentType, "the first listing of a media is its row")
	var from string
	var numMedia int
	require.NoError(t, c.Pool().QueryRow(ctx, `SELECT from_number, num_media FROM messages WHERE sid = $1`, msg1).Scan(&from, &numMedia))
	require.Equal(t, "+15550001", from, "the first listing of a message is its row")
	require.Equal(t, 2, numMedia)
	st, err := c.RunStatus(ctx, run.ID)
	require.NoError(t, err)
	require.Equal(t, 2, st.MessagesSeen)
	require.Equal(t, 3, st.MediaFound, "a media listed twice is found once")
}

// The commit records off the S3 legal hold of each copy whose PUT created
// its object where no hold covers its media, and leaves unknown (for the
// caller's S3 request, or the reconciler's sweep) a held media's and an
// object's that was there already.
func TestCommitConfirmsCreatedUnheldObjectsOff(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	run := seedMedia(t, c, false)
	const msg2, me3, me4 = "MM00000000000000000000000000000002", "ME00000000000000000000000000000003", "ME00000000000000000000000000000004"
	seedMessage(t, c, run.ID, msg2, "+15550177", me3, "image/jpeg", me4, "image/jpeg")
	_, err := c.AddHold(ctx, catalog.Hold{Reason: "case", From: "+15550177", CreatedBy: "test"})
	require.NoError(t, err)

	sum := sha256.Sum256([]byte("bytes"))
	cp := func(sid string, created bool) catalog.ArchivedMedia {
		return catalog.ArchivedMedia{SID: sid, Copy: catalog.ArchivedCopy{Size: 5, SHA256: sum, Store: "s3", Bucket: "b", Key: "k/" + sid, Created: created}}
	}
	committed, _, unknown, err := c.CommitMessage(ctx, run.ID,
		[]catalog.ArchivedMedia{cp(me1, true), cp(me2, false), cp(me3, true), cp(me4, false)}, nil)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{me1, me2, me3, me4}, committed)
	require.ElementsMatch(t, []string{me2, me3, me4}, unknown, "held, or there already")
	for sid, want := range map[string]*bool{me1: new(false), me2: nil, me3: nil, me4: nil} {
		st, err := c.MediaLegalHold(ctx, sid)
		require.NoError(t, err)
		require.Equal(t, want, st.Confirmed, sid)
	}
	var swept []string
	for o, err := range c.UnknownLegalHolds(ctx, objects.Location{Kind: "s3", Bucket: "b"}) {
		require.NoError(t, err)
		swept = append(swept, o.MediaSID)
	}
	require.ElementsMatch(t, []string{me2, me3, me4}, swept, "the reconciler's sweep reads only the unknown")
}
