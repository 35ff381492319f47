package catalog_test

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/objects"
	"github.com/stretchr/testify/require"
)

// claimedMedia archives me1 in a --delete run and claims its delete.
func claimedMedia(t *testing.T, c *catalog.Catalog) catalog.Run {
	t.Helper()
	ctx := t.Context()
	run := seedMedia(t, c, true)
	sum := sha256.Sum256([]byte("bytes"))
	_, err := c.MarkArchived(ctx, run.ID, me1, catalog.ArchivedCopy{
		Size: 5, SHA256: sum, Store: "s3", Bucket: "b", Key: "k/" + me1})
	require.NoError(t, err)
	require.NoError(t, c.ClaimDelete(ctx, me1, 5, sum, copyAt(t, c, me1)))
	return run
}

// A hold placed after a delete was claimed wins: the catalog refuses to
// record the delete, and the claim is released as held, with an audit row.
func TestMarkDeletedRefusesHeldMedia(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	run := claimedMedia(t, c)
	h, err := c.AddHold(ctx, catalog.Hold{Reason: "case 1", MessageSIDs: []string{msg1}, CreatedBy: "legal"})
	require.NoError(t, err)

	require.ErrorIs(t, c.MarkDeleted(ctx, run, me1), catalog.ErrHeld)
	it, err := c.GetMedia(ctx, me1)
	require.NoError(t, err)
	require.Equal(t, catalog.MediaArchived, it.State, "a held media is never recorded deleted")
	_, err = c.LeaseDelete(ctx, me1)
	require.ErrorIs(t, err, catalog.ErrHeld, "no attempt may be sent once the hold is in force")

	require.NoError(t, c.ReleaseHeldDelete(ctx, run, me1, true))
	var held int
	for e, err := range c.AuditLog(ctx, time.Time{}) {
		require.NoError(t, err)
		if e.Action == catalog.AuditDeleteHeld && e.Subject == me1 {
			held++
		}
	}
	require.Equal(t, 1, held, "the held delete is in the audit log")
	_, err = c.ReleaseHold(ctx, h.ID, "legal", "case closed")
	require.NoError(t, err)
	_, err = c.LeaseDelete(ctx, me1)
	require.ErrorIs(t, err, catalog.ErrNotDeletable, "the claim was released: a later run claims again")
}

// AddHold returns only once a delete leased before it can no longer be
// sent: it waits out the lease unless the delete is recorded first.
func TestAddHoldWaitsForLeasedDeletes(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	run := claimedMedia(t, c)
	send, err := c.LeaseDelete(ctx, me1)
	require.NoError(t, err)
	require.Equal(t, catalog.DeleteSendWindow, send)
	require.Less(t, send, catalog.DeleteLease, "a request may be written only early in its lease")

	added := make(chan error, 1)
	go func() {
		_, err := c.AddHold(ctx, catalog.Hold{Reason: "case 2", MessageSIDs: []string{msg1}, CreatedBy: "legal"})
		added <- err
	}()
	select {
	case err := <-added:
		t.Fatalf("AddHold returned (%v) while a delete it covers was leased", err)
	case <-time.After(time.Second):
	}
	// Another task for the same media (another run's) meets the hold and
	// gives up its claim: that says nothing of the leased request, which
	// may still be on the wire, so the hold keeps waiting.
	require.ErrorIs(t, c.ClaimDelete(ctx, me1, 5, sha256.Sum256([]byte("bytes")), copyAt(t, c, me1)), catalog.ErrHeld)
	require.NoError(t, c.ReleaseHeldDelete(ctx, run, me1, false))
	select {
	case err := <-added:
		t.Fatalf("AddHold returned (%v) when another task released its claim, while the lease was live", err)
	case <-time.After(time.Second):
	}
	// The leased attempt's answer: the catalog refuses to record the
	// delete under the hold, and the hold waits the lease out.
	require.ErrorIs(t, c.MarkDeleted(ctx, run, me1), catalog.ErrHeld)
	select {
	case err := <-added:
		require.NoError(t, err)
	case <-time.After(catalog.DeleteLease + 10*time.Second):
		t.Fatal("AddHold still waiting after the lease ended")
	}
	var sent int
	for e, err := range c.AuditLog(ctx, time.Time{}) {
		require.NoError(t, err)
		if e.Action == catalog.AuditDeleteHeld && e.Subject == me1 && strings.Contains(string(e.Details), "delete_sent_before_hold") {
			sent++
		}
	}
	require.Equal(t, 1, sent, "the audit says a DELETE may have reached Twilio: a lease was taken")
}

// A later attempt's lease never shortens an earlier one's still running.
func TestDeleteLeaseOnlyGrows(t *testing.T) {
	t.Parallel()
	c, pool := newCatalogPool(t)
	ctx := t.Context()
	claimedMedia(t, c)
	_, err := c.LeaseDelete(ctx, me1)
	require.NoError(t, err)
	var first time.Time
	require.NoError(t, pool.QueryRow(ctx, `SELECT delete_lease_until FROM media WHERE sid = $1`, me1).Scan(&first))
	_, err = pool.Exec(ctx, `UPDATE media SET delete_lease_until = delete_lease_until + interval '1 hour' WHERE sid = $1`, me1)
	require.NoError(t, err)
	_, err = c.LeaseDelete(ctx, me1)
	require.NoError(t, err)
	var now time.Time
	require.NoError(t, pool.QueryRow(ctx, `SELECT delete_lease_until FROM media WHERE sid = $1`, me1).Scan(&now))
	require.True(t, now.Equal(first.Add(time.Hour)), "lease %v shortened to %v", first.Add(time.Hour), now)
}

// A delete recorded before a hold stays recorded: the same task run again
// under the hold records its run's outcome, not a refusal.
func TestMarkDeletedTwiceAcrossAHold(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	run := claimedMedia(t, c)
	require.NoError(t, c.MarkDeleted(ctx, run, me1))
	_, err := c.AddHold(ctx, catalog.Hold{Reason: "case 3", MessageSIDs: []string{msg1}, CreatedBy: "legal"})
	require.NoError(t, err)
	require.NoError(t, c.MarkDeleted(ctx, run, me1))
	it, err := c.GetMedia(ctx, me1)
	require.NoError(t, err)
	require.Equal(t, catalog.MediaDeleted, it.State)
}

// A delete that was never claimed is not recorded: the media stays
// archived, and its run does not count it deleted.
func TestMarkDeletedNeedsAClaim(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	run := seedMedia(t, c, true)
	sum := sha256.Sum256([]byte("bytes"))
	_, err := c.MarkArchived(ctx, run.ID, me1, catalog.ArchivedCopy{
		Size: 5, SHA256: sum, Store: "s3", Bucket: "b", Key: "k/" + me1})
	require.NoError(t, err)

	require.ErrorIs(t, c.MarkDeleted(ctx, run, me1), catalog.ErrNotDeletable)
	it, err := c.GetMedia(ctx, me1)
	require.NoError(t, err)
	require.Equal(t, catalog.MediaArchived, it.State)
	st, err := c.RunStatus(ctx, run.ID)
	require.NoError(t, err)
	require.Zero(t, st.MediaDeleted, "the run counts a media deleted that the catalog holds archived")

	require.NoError(t, c.ClaimDelete(ctx, me1, 5, sum, copyAt(t, c, me1)))
	require.NoError(t, c.MarkDeleted(ctx, run, me1))
	require.NoError(t, c.MarkDeleted(ctx, run, me1), "recorded twice: the second only records the outcome")
	st, err = c.RunStatus(ctx, run.ID)
	require.NoError(t, err)
	require.Equal(t, 1, st.MediaDeleted)
}

// A hold on a message SID typed with upper-case hex covers the message
// Twilio wrote in lower case: otherwise the hold is placed, says so, and
// covers nothing.
func TestHoldOnUpperCaseSIDCoversTheMessage(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	const sid = "MMabcdef0123456789abcdef0123456789"
	run, err := c.CreateRun(ctx, catalog.RunSpec{Kind: catalog.KindMessage, AccountSID: acct,
		MessageSID: sid, Delete: true, Actor: "test"})
	require.NoError(t, err)
	_, err = c.StartRun(ctx, run.ID)
	require.NoError(t, err)
	require.NoError(t, c.RecordMessages(ctx, run.ID, []catalog.MessageRecord{{
		SID: sid, AccountSID: acct, DateSent: time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC), NumMedia: 1, NumMediaKnown: true,
	}}, false))
	require.NoError(t, c.RecordMedia(ctx, run.ID, []catalog.MediaRecord{
		{SID: me1, AccountSID: acct, MessageSID: sid, ContentType: "image/jpeg"}}, false))
	sum := sha256.Sum256([]byte("bytes"))
	_, err = c.MarkArchived(ctx, run.ID, me1, catalog.ArchivedCopy{
		Size: 5, SHA256: sum, Store: "s3", Bucket: "b", Key: "k/" + me1})
	require.NoError(t, err)

	h, err := c.AddHold(ctx, catalog.Hold{Reason: "case 4", MessageSIDs: []string{"MM" + strings.ToUpper(sid[2:])}, CreatedBy: "legal"})
	require.NoError(t, err)
	require.Equal(t, []string{sid}, h.MessageSIDs, "the hold records the SID as Twilio writes it")
	require.ErrorIs(t, c.ClaimDelete(ctx, me1, 5, sum, copyAt(t, c, me1)), catalog.ErrHeld)
}

// A policy run over held media neither seeds their deletes (no task, no S3
// HEAD) nor writes an audit row per media: a hold on a million media costs
// nothing per run. A delete refused before any claim or lease is the run's
// outcome `held`, without an audit row; one a hold stopped after its claim
// keeps its row (TestMarkDeletedRefusesHeldMedia).
func TestPolicyRunOverHeldMediaIsCheap(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	run := seedMedia(t, c, false)
	for _, sid := range []string{me1, me2} {
		_, err := c.MarkArchived(ctx, run.ID, sid, catalog.ArchivedCopy{
			Size: 5, SHA256: sha256.Sum256([]byte("bytes")), Store: "s3", Bucket: "b", Key: "k/" + sid})
		require.NoError(t, err)
	}
	h, err := c.AddHold(ctx, catalog.Hold{Reason: "case 2", MessageSIDs: []string{msg1}, CreatedBy: "legal"})
	require.NoError(t, err)
	audits := func() int {
		n := 0
		for e, err := range c.AuditLog(ctx, time.Time{}) {
			require.NoError(t, err)
			if e.Action == catalog.AuditDeleteHeld {
				n++
			}
		}
		return n
	}
	policyRun := func() catalog.Run {
		r, err := c.CreateRun(ctx, catalog.RunSpec{Kind: catalog.KindMessage, AccountSID: acct,
			MessageSID: msg1, Delete: true, Actor: "policy"})
		require.NoError(t, err)
		r.DeleteBefore = time.Now().Add(24 * time.Hour)
		return r
	}

	seeded, err := c.SeedDeletes(ctx, policyRun())
	require.NoError(t, err)
	require.Zero(t, seeded, "held media are not seeded for deletion")

	_, err = c.ReleaseHold(ctx, h.ID, "legal", "case closed")
	require.NoError(t, err)
	later := policyRun()
	seeded, err = c.SeedDeletes(ctx, later)
	require.NoError(t, err)
	require.EqualValues(t, 2, seeded, "once released, the next run seeds them")

	// Held again between seeding and the delete task: refused before any
	// claim, recorded as the run's outcome, no audit row per media.
	_, err = c.AddHold(ctx, catalog.Hold{Reason: "case 3", MessageSIDs: []string{msg1}, CreatedBy: "legal"})
	require.NoError(t, err)
	sum := sha256.Sum256([]byte("bytes"))
	require.ErrorIs(t, c.ClaimDelete(ctx, me1, 5, sum, copyAt(t, c, me1)), catalog.ErrHeld)
	require.NoError(t, c.ReleaseHeldDelete(ctx, later, me1, false))
	var state catalog.MediaState
	require.NoError(t, c.Pool().QueryRow(ctx, `SELECT state FROM run_media WHERE run_id = $1 AND media_sid = $2`,
		later.ID, me1).Scan(&state))
	require.Equal(t, catalog.MediaHeld, state)
	require.Zero(t, audits(), "a hold that stopped no claim writes no audit row per media")
}

// HeldMedia pages through a hold's messages a batch at a time, in SID
// order, and yields each archived object not yet confirmed to follow the
// hold exactly once: across batches, messages with two media or none, and
// objects already confirmed, which it skips.
func TestHeldMediaPagesThroughTheHold(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	pool := c.Pool()
	_, err := pool.Exec(ctx, `
		INSERT INTO messages (sid, account_sid, date_sent, from_number, to_number)
		SELECT 'MMpage'||lpad(i::text, 6, '0'), $1, timestamptz '2026-01-01' + i * interval '1 minute',
			CASE WHEN i % 3 = 0 THEN '+15550000999' ELSE '+15550000777' END, '+15550000111'
		FROM generate_series(1, 1600) i`, acct)
	require.NoError(t, err)
	// One media per message, a second on every 7th, none on every 11th.
	_, err = pool.Exec(ctx, `
		INSERT INTO media (sid, account_sid, message_sid, state, size_bytes, sha256, store, bucket, object_key, archived_at)
		SELECT 'ME'||n||'page'||lpad(i::text, 6, '0'), $1, 'MMpage'||lpad(i::text, 6, '0'), 'archived', 1, repeat('0', 64),
			's3', 'b', 'k/'||n||'/'||i, now()
		FROM generate_series(1, 1600) i, generate_series(1, 2) n
		WHERE i % 11 <> 0 AND (n = 1 OR i % 7 = 0)`, acct)
	require.NoError(t, err)
	var want int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM media m JOIN messages g ON g.sid = m.message_sid
		WHERE g.from_number = '+15550000777'`).Scan(&want))
	h, err := c.AddHold(ctx, catalog.Hold{Reason: "case 4", From: "+15550000777", CreatedBy: "legal"})
	require.NoError(t, err)
	held := func() map[string]bool {
		seen := map[string]bool{}
		for o, err := range c.HeldMedia(ctx, h.ID, objects.Location{Kind: "s3", Bucket: "b"}) {
			require.NoError(t, err)
			require.False(t, seen[o.MediaSID], "yielded twice: %s", o.MediaSID)
			seen[o.MediaSID] = true
		}
		return seen
	}
	require.Len(t, held(), want)
	tag, err := pool.Exec(ctx, `UPDATE media SET legal_hold_s3 = true WHERE sid LIKE 'ME1%'`)
	require.NoError(t, err)
	confirmed, err := pool.Exec(ctx, `SELECT 1 FROM media m JOIN messages g ON g.sid = m.message_sid
		WHERE g.from_number = '+15550000777' AND m.legal_hold_s3`)
	require.NoError(t, err)
	require.NotZero(t, tag.RowsAffected())
	require.Len(t, held(), want-int(confirmed.RowsAffected()), "objects confirmed ON are not read again")
}

// A Conversations policy deletes only in its own services: named ones, and
// the default service (known by the SID its runs listed) when it names
// none. Archived messages of any other service stay on Twilio.
func TestConversationsPolicyDeletesOnlyInItsServices(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	pool := c.Pool()
	old := time.Now().AddDate(0, 0, -30)
	const defaultSvc, namedSvc, otherSvc = "IS00000000000000000000000000000001", "IS00000000000000000000000000000002", "IS00000000000000000000000000000003"
	media := map[string]string{} // service → its archived media
	for i, svc := range []string{defaultSvc, namedSvc, otherSvc} {
		msg, me := fmt.Sprintf("IM%032d", i+1), fmt.Sprintf("ME%032d", i+1)
		_, err := pool.Exec(ctx, `INSERT INTO messages (sid, source, account_sid, date_created, service_sid) VALUES ($1, 'conversations', $2, $3, $4)`, msg, acct, old, svc)
		require.NoError(t, err)
		_, err = pool.Exec(ctx, `INSERT INTO media (sid, source, account_sid, message_sid, state, size_bytes, sha256, store, bucket, object_key, archived_at)
			VALUES ($1, 'conversations', $2, $3, 'archived', 5, $4, 's3', 'b', $5, now())`, me, acct, msg, strings.Repeat("0", 64), "k/"+me)
		require.NoError(t, err)
		media[svc] = me
	}
	// An earlier run over the default service listed a conversation of it.
	earlier, err := c.CreateRun(ctx, catalog.RunSpec{Kind: catalog.KindBackfill, AccountSID: acct, Source: catalog.SourceConversations,
		Services: []string{""}, Since: old.AddDate(0, 0, -1), Until: time.Now(), Actor: "test"})
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO run_conversations (run_id, conversation_sid, service_sid) VALUES ($1, 'CH00000000000000000000000000000001', $2)`, earlier.ID, defaultSvc)
	require.NoError(t, err)

	for _, tc := range []struct {
		services []string
		want     []string
	}{
		{[]string{namedSvc}, []string{media[namedSvc]}},
		{nil, []string{media[defaultSvc]}},
		{[]string{"", namedSvc}, []string{media[defaultSvc], media[namedSvc]}},
	} {
		run, err := c.CreateRun(ctx, catalog.RunSpec{Kind: catalog.KindBackfill, AccountSID: acct, Source: catalog.SourceConversations,
			Services: tc.services, Delete: true, Since: old.AddDate(0, 0, -1), Until: time.Now(), Actor: "policy"})
		require.NoError(t, err)
		run.DeleteBefore = time.Now()
		_, err = c.SeedDeletes(ctx, run)
		require.NoError(t, err)
		rows, err := pool.Query(ctx, `SELECT media_sid FROM run_media WHERE run_id = $1 ORDER BY media_sid`, run.ID)
		require.NoError(t, err)
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		require.Equal(t, tc.want, got, "services %q", tc.services)
	}
}
