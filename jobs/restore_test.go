package jobs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/testenv"
	"github.com/mediasync/mediasync/twilio"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// The archived copy is checked on its way out, and the bytes that would
// complete the file are withheld until it is proven: a copy that is short,
// long or altered never reaches the transport whole.
func TestVerifiedBodyWithholdsTheLastBytesOfABadCopy(t *testing.T) {
	t.Parallel()
	file := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	sum := sha256.Sum256(file)
	altered := bytes.Clone(file)
	altered[len(altered)-1] ^= 1
	cases := []struct {
		desc  string
		src   []byte
		size  int64
		ok    bool
		bad   bool // the copy differs (not a read error)
		reads func(io.Reader) io.Reader
	}{
		{"exact", file, int64(len(file)), true, false, nil},
		{"exact, one byte per read", file, int64(len(file)), true, false, iotest.OneByteReader},
		{"exact, data with EOF", file, int64(len(file)), true, false, iotest.DataErrReader},
		{"short", file[:len(file)-1], int64(len(file)), false, true, nil},
		{"long", append(bytes.Clone(file), 'x'), int64(len(file)), false, true, nil},
		{"altered last byte", altered, int64(len(file)), false, true, nil},
		{"altered, one byte per read", altered, int64(len(file)), false, true, iotest.OneByteReader},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			var src io.Reader = bytes.NewReader(tc.src)
			if tc.reads != nil {
				src = tc.reads(src)
			}
			b := newVerifiedBody(src, tc.size, sum)
			// What net/http does with a Content-Length body.
			var sent bytes.Buffer
			_, err := io.Copy(&sent, io.LimitReader(b, tc.size))
			if err == nil {
				_, err = io.Copy(io.Discard, b)
			}
			whole, bad := b.state()
			require.Equal(t, tc.ok, err == nil, "err %v", err)
			require.Equal(t, tc.ok, whole)
			require.Equal(t, tc.bad, bad != nil)
			if tc.ok {
				require.Equal(t, file, sent.Bytes())
			} else {
				require.Less(t, int64(sent.Len()), tc.size, "a bad copy is never handed over whole")
			}
		})
	}
	b := newVerifiedBody(iotest.ErrReader(io.ErrClosedPipe), 10, sum)
	_, err := io.Copy(io.Discard, b)
	require.ErrorIs(t, err, io.ErrClosedPipe)
	whole, bad := b.state()
	require.False(t, whole)
	require.NoError(t, bad, "a read error is not a bad copy: it is retried")
}

// restoreBundle is handlers on a file archive and the emulator, with some
// archived media of one account, and a second Conversations service to
// restore into.
type restoreBundle struct {
	h       *Handlers
	catalog *catalog.Catalog
	pool    *pgxpool.Pool
	emu     *twiliotest.Server
	acct    twiliotest.Account
	service string
	run     uuid.UUID
	media   map[string][]byte // archived media SID → bytes
}

func restoreSetup(t testing.TB, n int) *restoreBundle { return restoreSetupSized(t, n, 0) }

// restoreSetupSized is restoreSetup with media of size bytes each (0: a
// few KB, each its own size).
func restoreSetupSized(t testing.TB, n, size int) *restoreBundle {
	t.Helper()
	ctx := t.Context()
	db := testenv.NewDatabase(t)
	pool := db.Pool(t)
	_, err := catalog.Migrate(ctx, pool)
	require.NoError(t, err)
	store, err := archive.NewFileStore(t.TempDir())
	require.NoError(t, err)
	emu := twiliotest.NewTestServer(t, twiliotest.Config{})
	acct, err := emu.AddAccount(twiliotest.AccountOptions{})
	require.NoError(t, err)
	svc, err := emu.AddService(acct.SID)
	require.NoError(t, err)
	tw, err := twilio.New(acct.SID, twilio.WithAuthToken(acct.AuthToken), twilio.WithBaseURL(emu.URL()),
		twilio.WithMCSURL(emu.URL()), twilio.WithConversationsURL(emu.URL()))
	require.NoError(t, err)
	rds := testenv.NewRedis(t)
	q := QueuesFor(rds.Namespace)
	b := &restoreBundle{catalog: catalog.NewCatalog(pool), pool: pool, emu: emu, acct: acct, service: svc, media: map[string][]byte{}}
	b.h = &Handlers{catalog: b.catalog, twilio: tw, store: store, prefix: "archive", log: zerolog.Nop(), requeueBatch: 1000,
		queues: q, enqueuer: NewEnqueuer(rds.Client, q), spoolDir: t.TempDir()}
	run, err := b.catalog.CreateRun(ctx, catalog.RunSpec{Kind: catalog.KindBackfill, AccountSID: acct.SID,
		Since: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC), Actor: "test"})
	require.NoError(t, err)
	_, err = b.catalog.StartRun(ctx, run.ID)
	require.NoError(t, err)
	b.run = run.ID
	for i := range n {
		msg, sid := fmt.Sprintf("MM%032x", i+1), fmt.Sprintf("ME%032x", i+1)
		sent := time.Date(2026, 1, 2, 3, 4, i, 0, time.UTC)
		require.NoError(t, b.catalog.RecordMessages(ctx, run.ID, []catalog.MessageRecord{{
			SID: msg, AccountSID: acct.SID, DateSent: sent, From: "+15550100", To: "+15550199", NumMedia: 1, NumMediaKnown: true,
		}}, false))
		require.NoError(t, b.catalog.RecordMedia(ctx, run.ID, []catalog.MediaRecord{
			{SID: sid, AccountSID: acct.SID, MessageSID: msg, ContentType: "image/png"}}, false))
		body := bytes.Repeat([]byte(fmt.Sprintf("png %d ", i)), 1000+i*700)
		if size > 0 {
			body = bytes.Repeat([]byte{byte(i)}, size)
		}
		sum := sha256.Sum256(body)
		key := archive.ObjectKey("archive", archive.KeyInfo{AccountSID: acct.SID, MessageSID: msg, MediaSID: sid, ContentType: "image/png", DateSent: sent})
		_, err := store.Put(ctx, archive.PutInput{Key: key, ContentType: "image/png", Size: int64(len(body)), SHA256: sum}, bytes.NewReader(body))
		require.NoError(t, err)
		loc := store.Location()
		_, err = b.catalog.MarkArchived(ctx, run.ID, sid, catalog.ArchivedCopy{Size: int64(len(body)), SHA256: sum, Store: loc.Kind, Bucket: loc.Bucket, Key: key})
		require.NoError(t, err)
		b.media[sid] = body
	}
	return b
}

// restore records and starts a restore of the bundle's run into its
// service.
func (b *restoreBundle) restore(t testing.TB) uuid.UUID {
	t.Helper()
	r, err := b.catalog.CreateRestore(t.Context(), catalog.RestoreSpec{AccountSID: b.acct.SID, FromRun: b.run,
		ServiceSIDs: []string{b.service}, Actor: "test"})
	require.NoError(t, err)
	task, err := NewStartRunTask(b.h.queues, r.ID)
	require.NoError(t, err)
	require.NoError(t, b.h.StartRun(t.Context(), task))
	return r.ID
}

func (b *restoreBundle) batch(t testing.TB, id uuid.UUID, n int) error {
	t.Helper()
	task, err := NewRestoreBatchTask(b.h.queues, RestoreBatchPayload{RunID: id, Batch: n})
	require.NoError(t, err)
	return b.h.RestoreBatch(t.Context(), task)
}

func (b *restoreBundle) finish(t *testing.T, id uuid.UUID) catalog.Status {
	t.Helper()
	task, err := NewRestoreFinishTask(b.h.queues, id)
	require.NoError(t, err)
	require.NoError(t, b.h.RestoreFinish(t.Context(), task))
	st, err := b.catalog.RunStatus(t.Context(), id)
	require.NoError(t, err)
	return st
}

// uploads counts the MCS uploads Twilio accepted (201) into the service.
func (b *restoreBundle) uploads() int {
	n := 0
	for _, r := range b.emu.Requests() {
		if r.Route == "mcs.upload" && r.Status == 201 && strings.Contains(r.Path, b.service) {
			n++
		}
	}
	return n
}

// rows returns each item's state and new Media SID, by archived media SID.
func (b *restoreBundle) rows(t *testing.T, id uuid.UUID) map[string][2]string {
	t.Helper()
	rows, err := b.pool.Query(t.Context(), `SELECT media_sid, state, coalesce(new_media_sid, '') FROM restore_media WHERE run_id = $1`, id)
	require.NoError(t, err)
	defer rows.Close()
	out := map[string][2]string{}
	for rows.Next() {
		var sid, state, neu string
		require.NoError(t, rows.Scan(&sid, &state, &neu))
		out[sid] = [2]string{state, neu}
	}
	require.NoError(t, rows.Err())
	return out
}

// A restore task run twice (a redelivery, a retry, the reconciler) uploads
// each media once: the second run finds every item settled. Every new
// Media holds the archived bytes, as downloaded from MCS.
func TestRestoreTaskRunTwiceUploadsEachMediaOnce(t *testing.T) {
	t.Parallel()
	b := restoreSetup(t, 12) // two batches
	id := b.restore(t)
	// Two deliveries of the same batch at once: the claims split the
	// media between them.
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Go(func() { errs <- b.batch(t, id, 0) })
	}
	wg.Wait()
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)
	for range 2 {
		require.NoError(t, b.batch(t, id, 0))
		require.NoError(t, b.batch(t, id, 1))
	}
	require.Equal(t, 12, b.uploads(), "one upload per media")
	st := b.finish(t, id)
	require.Equal(t, catalog.RunSucceeded, st.State, "%+v", st.Failures)
	require.Equal(t, 12, st.Restores.Restored)
	st = b.finish(t, id) // a finish run twice changes nothing
	require.Equal(t, catalog.RunSucceeded, st.State)

	rows := b.rows(t, id)
	require.Len(t, rows, 12)
	for sid, r := range rows {
		require.Equal(t, "restored", r[0])
		c, err := b.h.twilio.MCS.Open(t.Context(), b.service, r[1])
		require.NoError(t, err)
		got, err := io.ReadAll(c.Body)
		require.NoError(t, c.Body.Close())
		require.NoError(t, err)
		require.Equal(t, sha256.Sum256(b.media[sid]), sha256.Sum256(got), "media %s restored as %s", sid, r[1])
		require.Equal(t, sid+".png", c.Media.Filename)
		require.Equal(t, "image/png", c.Media.ContentType)
	}

	// The manifest in the archive says the same, and matches its record.
	key := archive.RestoreManifestKey("archive", b.acct.SID, id)
	require.Equal(t, key, st.Restore.ManifestKey)
	rc, err := b.h.store.Open(t.Context(), key)
	require.NoError(t, err)
	m, err := io.ReadAll(rc)
	require.NoError(t, rc.Close())
	require.NoError(t, err)
	sum := sha256.Sum256(m)
	require.Equal(t, hex.EncodeToString(sum[:]), st.Restore.ManifestSHA256)
	lines := strings.Split(strings.TrimSpace(string(m)), "\n")
	require.Len(t, lines, 12)
	for sid, r := range rows {
		require.Contains(t, string(m), `"media_sid":"`+sid+`"`)
		require.Contains(t, string(m), `"new_media_sid":"`+r[1]+`"`)
	}
}

// A worker that died between its upload and its commit leaves a claim
// nobody can settle from Twilio (MCS has no list): once its lease has run
// out the item ends unconfirmed and is never uploaded again by the
// restore, which fails naming it; the other media are restored.
func TestRestoreClaimOfADeadWorkerIsNeverUploadedAgain(t *testing.T) {
	t.Parallel()
	b := restoreSetup(t, 3)
	id := b.restore(t)
	ctx := t.Context()

	// The dead worker: it claimed the first item and uploaded it, and
	// died before it could record the answer.
	var first catalog.RestoreItem
	for it, err := range b.catalog.RestoreItems(ctx, id, 0, 1, true) {
		require.NoError(t, err)
		first = it
	}
	_, ok, err := b.catalog.ClaimRestore(ctx, id, first.Seq, time.Hour)
	require.NoError(t, err)
	require.True(t, ok)
	_, err = b.h.twilio.MCS.Upload(ctx, b.service, twilio.MCSUploadParams{ContentType: "image/png",
		Body: bytes.NewReader(b.media[first.MediaSID]), Size: int64(len(b.media[first.MediaSID]))})
	require.NoError(t, err)

	// While its lease holds, the claim is left alone: its worker may be
	// alive.
	require.NoError(t, b.batch(t, id, 0))
	require.Equal(t, 3, b.uploads())
	require.Equal(t, "uploading", b.rows(t, id)[first.MediaSID][0])

	_, err = b.pool.Exec(ctx, `UPDATE restore_media SET lease_until = now() - interval '1 second' WHERE run_id = $1 AND seq = $2`, id, first.Seq)
	require.NoError(t, err)
	require.NoError(t, b.batch(t, id, 0))
	require.NoError(t, b.batch(t, id, 0))
	require.Equal(t, 3, b.uploads(), "the dead worker's media is not uploaded a second time")
	rows := b.rows(t, id)
	require.Equal(t, "unconfirmed", rows[first.MediaSID][0])

	st := b.finish(t, id)
	require.Equal(t, catalog.RunFailed, st.State)
	require.Equal(t, 2, st.Restores.Restored)
	require.Equal(t, 1, st.Restores.Unconfirmed)
	require.Len(t, st.Failures, 1)
	require.Contains(t, st.Failures[0].SID, first.MediaSID)
	require.Contains(t, st.Failures[0].Reason, "not uploaded again")
}

// An archived copy that no longer matches its row is not uploaded: Twilio
// never gets the whole file, so no Media is created, and the item fails
// naming the object.
func TestRestoreRefusesAnAlteredArchivedCopy(t *testing.T) {
	t.Parallel()
	b := restoreSetup(t, 2)
	var victim string
	for sid := range b.media {
		victim = sid
		break
	}
	_, err := b.pool.Exec(t.Context(), `UPDATE media SET sha256 = $2 WHERE sid = $1`, victim, strings.Repeat("ab", 32))
	require.NoError(t, err)
	id := b.restore(t)
	require.NoError(t, b.batch(t, id, 0))
	require.Equal(t, 1, b.uploads())
	rows := b.rows(t, id)
	require.Equal(t, "failed", rows[victim][0])
	require.Empty(t, rows[victim][1])
	st := b.finish(t, id)
	require.Equal(t, catalog.RunFailed, st.State)
	require.Contains(t, st.Failures[0].Reason, "differs from its record")
}

// Each scope selects the archived media it names, once per target service;
// media in scope without an archived copy are counted, not selected.
func TestRestoreScopesSelectArchivedMediaPerService(t *testing.T) {
	t.Parallel()
	b := restoreSetup(t, 4) // sent 2026-01-02 03:04:00..03
	ctx := t.Context()
	// A media listed but not archived, in the same message as the first.
	require.NoError(t, b.catalog.RecordMedia(ctx, b.run, []catalog.MediaRecord{
		{SID: fmt.Sprintf("ME%032x", 99), AccountSID: b.acct.SID, MessageSID: fmt.Sprintf("MM%032x", 1), ContentType: "image/png"}}, false))
	other, err := b.emu.AddService(b.acct.SID)
	require.NoError(t, err)
	day := func(d int) time.Time { return time.Date(2026, 1, d, 0, 0, 0, 0, time.UTC) }
	cases := []struct {
		desc              string
		spec              catalog.RestoreSpec
		want, notArchived int
	}{
		{"run, one service", catalog.RestoreSpec{FromRun: b.run, ServiceSIDs: []string{b.service}}, 4, 1},
		{"run, two services", catalog.RestoreSpec{FromRun: b.run, ServiceSIDs: []string{b.service, other}}, 8, 1},
		{"messages", catalog.RestoreSpec{MessageSIDs: []string{fmt.Sprintf("MM%032x", 1), fmt.Sprintf("MM%032x", 3)}, ServiceSIDs: []string{b.service}}, 2, 1},
		{"days covering them", catalog.RestoreSpec{Since: day(2), Until: day(3), ServiceSIDs: []string{other}}, 4, 1},
		{"days before them", catalog.RestoreSpec{Since: day(1), Until: day(2), ServiceSIDs: []string{other}}, 0, 0},
	}
	for _, tc := range cases {
		tc.spec.AccountSID, tc.spec.Actor = b.acct.SID, "test"
		r, err := b.catalog.CreateRestore(ctx, tc.spec)
		require.NoError(t, err, tc.desc)
		n, err := b.catalog.SelectRestoreMedia(ctx, r.ID)
		require.NoError(t, err)
		require.Equal(t, tc.want, n, tc.desc)
		n, err = b.catalog.SelectRestoreMedia(ctx, r.ID) // once
		require.NoError(t, err)
		require.Equal(t, tc.want, n, tc.desc)
		r, err = b.catalog.GetRestore(ctx, r.ID)
		require.NoError(t, err)
		require.Equal(t, tc.notArchived, r.NotArchived, tc.desc)
	}
	// A run of another account is refused by name.
	_, err = b.catalog.CreateRestore(ctx, catalog.RestoreSpec{AccountSID: "AC" + strings.Repeat("0", 32), FromRun: b.run,
		ServiceSIDs: []string{b.service}, Actor: "test"})
	var ie *catalog.InvalidError
	require.ErrorAs(t, err, &ie)
	require.Equal(t, "run", ie.Field)
}

// A restore whose tasks Redis lost is queued again by the reconciler, from
// Postgres: its batches while media are open, then its finish.
func TestReconcileRequeuesALostRestore(t *testing.T) {
	t.Parallel()
	b := restoreSetup(t, 12)
	id := b.restore(t)
	ins := asynq.NewInspectorFromRedisClient(b.h.enqueuer.rdb)
	queued := func(taskID string) bool {
		_, err := ins.GetTaskInfo(b.h.queues.Media, taskID)
		return err == nil
	}
	batch1 := "restore-batch:" + id.String() + ":1"
	require.True(t, queued(batch1))
	_, err := ins.DeleteAllPendingTasks(b.h.queues.Media)
	require.NoError(t, err)
	require.False(t, queued(batch1))

	require.NoError(t, b.h.Reconcile(t.Context(), 0))
	require.True(t, queued(batch1), "the lost batch is queued again")
	require.False(t, queued("restore-finish:"+id.String()), "no finish while media are open")

	require.NoError(t, b.batch(t, id, 0))
	require.NoError(t, b.batch(t, id, 1))
	_, err = ins.DeleteAllPendingTasks(b.h.queues.Media)
	require.NoError(t, err)
	require.NoError(t, b.h.Reconcile(t.Context(), 0))
	require.True(t, queued("restore-finish:"+id.String()), "the lost finish is queued again")
}
