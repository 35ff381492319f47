package jobs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
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

const testAccount = "AC00000000000000000000000000000001"

// flakyHolds is the archive with S3 legal holds that fail while fail > 0:
// a PUT that errors after the rows asking for it committed.
type flakyHolds struct {
	*archive.S3Store
	fail  atomic.Int32
	calls atomic.Int32 // SetLegalHold requests
}

func (f *flakyHolds) SetLegalHold(ctx context.Context, key, versionID string, on bool) error {
	f.calls.Add(1)
	if f.fail.Add(-1) >= 0 {
		return errors.New("injected: S3 legal hold refused")
	}
	return f.S3Store.SetLegalHold(ctx, key, versionID, on)
}

type holdBundle struct {
	h       *Handlers
	catalog *catalog.Catalog
	store   *flakyHolds
	run     uuid.UUID
	n       int
	redis   *testenv.Redis
}

// queued says whether the hold:apply task of a hold's event is queued.
func (b *holdBundle) queued(t *testing.T, id int64, event string) bool {
	t.Helper()
	_, err := asynq.NewInspectorFromRedisClient(b.redis.Client).GetTaskInfo(b.h.queues.List, fmt.Sprintf("hold:%d:%s", id, event))
	if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
		return false
	}
	require.NoError(t, err)
	return true
}

// messageQueued says whether a message's message:archive task is queued.
func (b *holdBundle) messageQueued(t *testing.T, message string) bool {
	t.Helper()
	_, err := asynq.NewInspectorFromRedisClient(b.redis.Client).GetTaskInfo(b.h.queues.Media, "message:"+b.run.String()+":"+message)
	if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
		return false
	}
	require.NoError(t, err)
	return true
}

// holdSetup returns handlers on an Object-Lock bucket and a catalog whose
// pool has maxConns connections (0: pgxpool's default).
func holdSetup(t *testing.T, maxConns int) *holdBundle {
	t.Helper()
	db := testenv.NewDatabase(t)
	url := db.URL
	if maxConns > 0 {
		url += fmt.Sprintf("&pool_max_conns=%d", maxConns)
	}
	pool, err := pgxpool.New(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, err = catalog.Migrate(t.Context(), pool)
	require.NoError(t, err)
	srv := testenv.S3(t)
	s3, err := archive.NewS3Store(t.Context(), archive.S3Config{
		Bucket: testenv.Bucket(t, testenv.WithObjectLock()), Region: srv.Region, Endpoint: srv.Endpoint, CABundle: srv.CABundle,
		UsePathStyle: true, Credentials: srv.Credentials(),
	})
	require.NoError(t, err)
	b := &holdBundle{catalog: catalog.NewCatalog(pool), store: &flakyHolds{S3Store: s3}, redis: testenv.NewRedis(t)}
	tw, err := twilio.New(testAccount, twilio.WithAuthToken("unused"))
	require.NoError(t, err)
	q := QueuesFor(b.redis.Namespace)
	b.h = &Handlers{catalog: b.catalog, twilio: tw, store: b.store, legalHolds: true, log: zerolog.Nop(), requeueBatch: 1000,
		queues: q, enqueuer: NewEnqueuer(b.redis.Client, q)}
	run, err := b.catalog.CreateRun(t.Context(), catalog.RunSpec{Kind: catalog.KindBackfill, AccountSID: testAccount,
		Since: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), Actor: "test"})
	require.NoError(t, err)
	_, err = b.catalog.StartRun(t.Context(), run.ID)
	require.NoError(t, err)
	b.run = run.ID
	return b
}

// archive records one message from `from` with one media, stores its
// object and marks it archived, as ArchiveMedia does up to (not including)
// its S3 legal hold: a worker that died right after the row committed.
func (b *holdBundle) archive(t *testing.T, from string) (mediaSID, key string) {
	t.Helper()
	ctx := t.Context()
	b.n++
	msg := fmt.Sprintf("MM%032x", b.n)
	mediaSID = fmt.Sprintf("ME%032x", b.n)
	sent := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	require.NoError(t, b.catalog.RecordMessages(ctx, b.run, []catalog.MessageRecord{{
		SID: msg, AccountSID: testAccount, DateSent: sent, From: from, To: "+15550199", NumMedia: 1, NumMediaKnown: true,
	}}, false))
	require.NoError(t, b.catalog.RecordMedia(ctx, b.run, []catalog.MediaRecord{
		{SID: mediaSID, AccountSID: testAccount, MessageSID: msg, ContentType: "image/jpeg"}}, false))
	body := []byte("media " + mediaSID)
	sum := sha256.Sum256(body)
	key = archive.ObjectKey("archive", archive.KeyInfo{AccountSID: testAccount, MessageSID: msg, MediaSID: mediaSID,
		ContentType: "image/jpeg", DateSent: sent})
	res, err := b.store.Put(ctx, archive.PutInput{Key: key, ContentType: "image/jpeg", Size: int64(len(body)), SHA256: sum},
		bytes.NewReader(body))
	require.NoError(t, err)
	loc := b.store.Location()
	_, err = b.catalog.MarkArchived(ctx, b.run, mediaSID, catalog.ArchivedCopy{Size: int64(len(body)), SHA256: sum,
		Store: loc.Kind, Bucket: loc.Bucket, Key: key, VersionID: res.VersionID})
	require.NoError(t, err)
	return mediaSID, key
}

// emulator starts a Twilio emulator holding the test account and points
// the handlers' client at it, with opts after the emulator's own.
func (b *holdBundle) emulator(t *testing.T, opts ...twilio.Option) *twiliotest.Server {
	t.Helper()
	srv, err := twiliotest.NewServer(twiliotest.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	acct, err := srv.AddAccount(twiliotest.AccountOptions{SID: testAccount})
	require.NoError(t, err)
	b.h.twilio, err = twilio.New(testAccount,
		append([]twilio.Option{twilio.WithAuthToken(acct.AuthToken), twilio.WithBaseURL(srv.URL())}, opts...)...)
	require.NoError(t, err)
	return srv
}

func (b *holdBundle) hold(t *testing.T, from string) int64 {
	t.Helper()
	h, err := b.catalog.AddHold(t.Context(), catalog.Hold{Reason: "case " + from, From: from, CreatedBy: "test"})
	require.NoError(t, err)
	return h.ID
}

func (b *holdBundle) apply(ctx context.Context, id int64, event string) error {
	task, err := NewApplyHoldTask(Queues{Media: "m", List: "l"}, ApplyHoldPayload{HoldID: id, Event: event})
	if err != nil {
		return err
	}
	return b.h.ApplyHold(ctx, task)
}

func (b *holdBundle) s3Hold(t *testing.T, key string) bool {
	t.Helper()
	on, err := b.store.LegalHold(t.Context(), key, "")
	require.NoError(t, err)
	return on
}

func (b *holdBundle) unconfirmed(t *testing.T) (perHold map[int64]int, media []string) {
	t.Helper()
	perHold, err := b.catalog.UnconfirmedLegalHolds(t.Context(), b.store.Location())
	require.NoError(t, err)
	for o, err := range b.catalog.LegalHoldsToSync(t.Context(), b.store.Location()) {
		require.NoError(t, err)
		media = append(media, o.MediaSID)
	}
	return perHold, media
}

// An S3 legal hold that failed to set is set by the next attempt, and is
// shown as unconfirmed until then; an object whose worker died after its
// row committed is found and set by the reconciler's pass, and so is the
// lift of a released hold whose task was lost.
func TestS3LegalHoldThatFailedIsSetLater(t *testing.T) {
	t.Parallel()
	b := holdSetup(t, 0)
	ctx := t.Context()
	const customer = "+15550100001"
	first, firstKey := b.archive(t, customer)
	id := b.hold(t, customer)

	b.store.fail.Store(1)
	require.Error(t, b.apply(ctx, id, "added"), "the injected failure is the task's error, so it is retried")
	require.False(t, b.s3Hold(t, firstKey))
	perHold, media := b.unconfirmed(t)
	require.Equal(t, map[int64]int{id: 1}, perHold, "the held object is shown unconfirmed")
	require.Equal(t, []string{first}, media)

	require.NoError(t, b.apply(ctx, id, "added"), "the retry")
	require.True(t, b.s3Hold(t, firstKey))
	perHold, media = b.unconfirmed(t)
	require.Empty(t, perHold)
	require.Empty(t, media)

	// Archived under the hold, but the S3 call failed: the message:archive
	// task's retry finds the row archived and sets the hold.
	second, secondKey := b.archive(t, customer)
	b.store.fail.Store(1)
	require.Error(t, b.h.syncLegalHold(ctx, second, secondKey, ""), "as workOnMedia calls it, after the row")
	_, media = b.unconfirmed(t)
	require.Equal(t, []string{second}, media)
	it, err := b.catalog.GetMedia(ctx, second)
	require.NoError(t, err)
	require.NoError(t, b.catalog.FinishMessage(ctx, b.run, it.MessageSID, 1), "the try listed the message")
	task, err := NewArchiveMessageTask(Queues{Media: "m", List: "l"}, ArchiveMessagePayload{RunID: b.run, MessageSID: it.MessageSID})
	require.NoError(t, err)
	require.NoError(t, b.h.ArchiveMessage(ctx, task))
	require.True(t, b.s3Hold(t, secondKey))

	// The same, retried by a media:archive task a worker before #14 queued.
	legacy, legacyKey := b.archive(t, customer)
	b.store.fail.Store(1)
	require.Error(t, b.h.syncLegalHold(ctx, legacy, legacyKey, ""))
	it, err = b.catalog.GetMedia(ctx, legacy)
	require.NoError(t, err)
	require.NoError(t, b.catalog.FinishMessage(ctx, b.run, it.MessageSID, 1))
	task, err = NewArchiveMediaTask(b.h.queues, MediaPayload{RunID: b.run, MediaSID: legacy})
	require.NoError(t, err)
	require.NoError(t, b.h.ArchiveMedia(ctx, task))
	require.False(t, b.s3Hold(t, legacyKey), "the old task only hands over to its message's task")
	task, err = NewArchiveMessageTask(b.h.queues, ArchiveMessagePayload{RunID: b.run, MessageSID: it.MessageSID})
	require.NoError(t, err)
	require.True(t, b.messageQueued(t, it.MessageSID))
	require.NoError(t, b.h.ArchiveMessage(ctx, task))
	require.True(t, b.s3Hold(t, legacyKey))

	// Archived under the hold, and the worker died before the S3 call:
	// the reconciler's pass sets it.
	third, thirdKey := b.archive(t, customer)
	_, media = b.unconfirmed(t)
	require.Equal(t, []string{third}, media)
	require.NoError(t, b.h.SyncLegalHolds(ctx, 100))
	require.True(t, b.s3Hold(t, thirdKey))
	_, media = b.unconfirmed(t)
	require.Empty(t, media)

	// Released, its task lost: a pass queues the lift again. The lift
	// fails at its first object: the objects stay shown until its retry
	// lifts them.
	_, err = b.catalog.ReleaseHold(ctx, id, "test", "done")
	require.NoError(t, err)
	require.False(t, b.queued(t, id, "released"))
	require.NoError(t, b.h.SyncLegalHolds(ctx, 100))
	require.True(t, b.queued(t, id, "released"), "the pass queues the lost lift again")
	b.store.fail.Store(1)
	require.Error(t, b.apply(ctx, id, "released"))
	perHold, media = b.unconfirmed(t)
	require.Equal(t, 4, perHold[id], "the lift failed")
	require.Len(t, media, 4)
	require.NoError(t, b.apply(ctx, id, "released"), "the retry")
	for _, key := range []string{firstKey, secondKey, legacyKey, thirdKey} {
		require.False(t, b.s3Hold(t, key), key)
	}
	perHold, media = b.unconfirmed(t)
	require.Empty(t, perHold)
	require.Empty(t, media)
}

// On a one-connection pool, hold:apply tasks running side by side finish:
// none holds the connection (a cursor) while it asks for another or calls
// S3. Before, the first one waited forever on the pool.
func TestApplyHoldsOnOneConnection(t *testing.T) {
	t.Parallel()
	b := holdSetup(t, 1)
	var keys []string
	var holds []int64
	for i := range 4 {
		customer := fmt.Sprintf("+1555010010%d", i)
		for range 3 {
			_, key := b.archive(t, customer)
			keys = append(keys, key)
		}
		holds = append(holds, b.hold(t, customer))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(holds))
	for i, id := range holds {
		wg.Go(func() { errs[i] = b.apply(ctx, id, "added") })
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	for _, key := range keys {
		require.True(t, b.s3Hold(t, key), key)
	}
}

// Two workers that set one object's S3 legal hold at once (a hold placed
// while the media was being archived) may land their S3 calls in either
// order: the second confirmation then leaves the state unknown, and the
// held object is set again, not trusted.
func TestInterleavedLegalHoldConfirmationsAreNotTrusted(t *testing.T) {
	t.Parallel()
	b := holdSetup(t, 0)
	ctx := t.Context()
	const customer = "+15550100002"
	sid, key := b.archive(t, customer)
	before, err := b.catalog.MediaLegalHold(ctx, sid) // the archiver reads: not held
	require.NoError(t, err)
	b.hold(t, customer)
	during, err := b.catalog.MediaLegalHold(ctx, sid) // hold:apply reads: held
	require.NoError(t, err)
	require.False(t, before.Want)
	require.True(t, during.Want)

	// hold:apply's ON reaches S3 first, the archiver's OFF last, but
	// hold:apply confirms last.
	require.NoError(t, b.store.SetLegalHold(ctx, key, "", true))
	require.NoError(t, b.store.SetLegalHold(ctx, key, "", false))
	require.NoError(t, b.catalog.ConfirmLegalHold(ctx, sid, false, before.Confirmed))
	require.NoError(t, b.catalog.ConfirmLegalHold(ctx, sid, true, during.Confirmed))

	_, media := b.unconfirmed(t)
	require.Equal(t, []string{sid}, media, "an object S3 left without its hold is not taken as confirmed")
	require.NoError(t, b.h.SyncLegalHolds(ctx, 100))
	require.True(t, b.s3Hold(t, key))
}

// Two workers syncing the same object at once (both read it unconfirmed,
// both PUT ON) leave it confirmed ON: confirmations that agree keep each
// other, instead of the second wiping the first and the object being set
// again every pass.
func TestAgreeingLegalHoldConfirmationsKeepEachOther(t *testing.T) {
	t.Parallel()
	b := holdSetup(t, 0)
	ctx := t.Context()
	const customer = "+15550100003"
	sid, key := b.archive(t, customer)
	b.hold(t, customer)
	a, err := b.catalog.MediaLegalHold(ctx, sid)
	require.NoError(t, err)
	c, err := b.catalog.MediaLegalHold(ctx, sid)
	require.NoError(t, err)
	require.True(t, a.Want)
	require.Nil(t, a.Confirmed)

	require.NoError(t, b.store.SetLegalHold(ctx, key, "", true))
	require.NoError(t, b.store.SetLegalHold(ctx, key, "", true))
	require.NoError(t, b.catalog.ConfirmLegalHold(ctx, sid, true, a.Confirmed))
	require.NoError(t, b.catalog.ConfirmLegalHold(ctx, sid, true, c.Confirmed))

	st, err := b.catalog.MediaLegalHold(ctx, sid)
	require.NoError(t, err)
	require.NotNil(t, st.Confirmed, "agreeing confirmations wiped each other")
	require.True(t, *st.Confirmed)
	_, media := b.unconfirmed(t)
	require.Empty(t, media)
}

// Once hold:apply has set a hold's objects, the hold is recorded applied:
// its retries and the reconciler's passes no longer read its confirmed
// objects (a pass reads only objects whose state is unknown), and once it
// is released and lifted, hold list no longer counts it.
func TestAppliedHoldsAreNotReadAgain(t *testing.T) {
	t.Parallel()
	b := holdSetup(t, 0)
	ctx := t.Context()
	const customer = "+15550100004"
	var keys []string
	for range 3 {
		_, key := b.archive(t, customer)
		keys = append(keys, key)
	}
	other, _ := b.archive(t, "+15550100005") // covered by no hold
	id := b.hold(t, customer)
	state := func() (applied, lifted bool) {
		require.NoError(t, b.catalog.Pool().QueryRow(ctx, `SELECT applied_at IS NOT NULL, lifted_at IS NOT NULL
			FROM holds WHERE id = $1`, id).Scan(&applied, &lifted))
		return applied, lifted
	}
	heldMedia := func() int {
		n := 0
		for _, err := range b.catalog.HeldMedia(ctx, id, b.store.Location()) {
			require.NoError(t, err)
			n++
		}
		return n
	}
	require.Equal(t, 3, heldMedia())
	applied, _ := state()
	require.False(t, applied)

	require.NoError(t, b.apply(ctx, id, "added"))
	applied, _ = state()
	require.True(t, applied, "hold:apply records the hold applied")
	require.Zero(t, heldMedia(), "a retry reads no object already confirmed")
	_, media := b.unconfirmed(t)
	require.Equal(t, []string{other}, media, "only the object never confirmed is swept")
	require.NoError(t, b.h.SyncLegalHolds(ctx, 100))
	perHold, media := b.unconfirmed(t)
	require.Empty(t, perHold)
	require.Empty(t, media)

	// A confirmation lost (two that disagreed): unknown, swept and counted.
	_, err := b.catalog.Pool().Exec(ctx, `UPDATE media SET legal_hold_s3 = NULL WHERE object_key = $1`, keys[0])
	require.NoError(t, err)
	perHold, media = b.unconfirmed(t)
	require.Equal(t, map[int64]int{id: 1}, perHold)
	require.Len(t, media, 1)
	require.NoError(t, b.h.SyncLegalHolds(ctx, 100))
	perHold, _ = b.unconfirmed(t)
	require.Empty(t, perHold)

	// Released: the lift reads the objects still ON, and records the hold
	// lifted.
	_, err = b.catalog.ReleaseHold(ctx, id, "test", "done")
	require.NoError(t, err)
	require.Equal(t, 3, heldMedia(), "the lift reads the objects still ON")
	perHold, _ = b.unconfirmed(t)
	require.Equal(t, map[int64]int{id: 3}, perHold)
	require.NoError(t, b.apply(ctx, id, "released"))
	_, lifted := state()
	require.True(t, lifted, "hold:apply records the hold lifted")
	require.NoError(t, b.h.SyncLegalHolds(ctx, 100))
	require.False(t, b.queued(t, id, "released"), "a lifted hold is not queued again")
	perHold, media = b.unconfirmed(t)
	require.Empty(t, perHold, "a lifted hold is not counted")
	require.Empty(t, media)
	for _, key := range keys {
		require.False(t, b.s3Hold(t, key), key)
	}
}

// One media's S3 legal hold that cannot be set (its object is missing)
// does not hold back its message: the message's other media are still
// committed and their holds set, and the failure is that media's, recorded
// against it, for the task's retry. Before, the task returned at the first
// hold error, every try, and the run never finished.
func TestOneFailingLegalHoldDoesNotBlockItsMessage(t *testing.T) {
	t.Parallel()
	b := holdSetup(t, 0)
	ctx := t.Context()
	const customer = "+15550100002"
	missing, _ := b.archive(t, customer)
	it, err := b.catalog.GetMedia(ctx, missing)
	require.NoError(t, err)
	// Its object is gone: the row names a key the bucket never held.
	_, err = b.catalog.Pool().Exec(ctx, `UPDATE media SET object_key = object_key || '.gone', legal_hold_s3 = NULL WHERE sid = $1`, missing)
	require.NoError(t, err)

	// A sibling archived (its row) whose run outcome is still pending:
	// the commit of its outcome is what the task has left to do.
	sibling := fmt.Sprintf("ME%032x", 0xffff)
	require.NoError(t, b.catalog.RecordMedia(ctx, b.run, []catalog.MediaRecord{
		{SID: sibling, AccountSID: testAccount, MessageSID: it.MessageSID, ContentType: "image/jpeg"}}, false))
	body := []byte("media " + sibling)
	sum := sha256.Sum256(body)
	key := archive.ObjectKey("archive", archive.KeyInfo{AccountSID: testAccount, MessageSID: it.MessageSID, MediaSID: sibling,
		ContentType: "image/jpeg", DateSent: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})
	res, err := b.store.Put(ctx, archive.PutInput{Key: key, ContentType: "image/jpeg", Size: int64(len(body)), SHA256: sum},
		bytes.NewReader(body))
	require.NoError(t, err)
	loc := b.store.Location()
	_, err = b.catalog.MarkArchived(ctx, b.run, sibling, catalog.ArchivedCopy{Size: int64(len(body)), SHA256: sum,
		Store: loc.Kind, Bucket: loc.Bucket, Key: key, VersionID: res.VersionID})
	require.NoError(t, err)
	require.NoError(t, b.catalog.SetRunMedia(ctx, b.run, sibling, catalog.MediaPending, false, ""))
	require.NoError(t, b.catalog.FinishMessage(ctx, b.run, it.MessageSID, 2))
	b.hold(t, customer)

	task, err := NewArchiveMessageTask(Queues{Media: "m", List: "l"}, ArchiveMessagePayload{RunID: b.run, MessageSID: it.MessageSID})
	require.NoError(t, err)
	err = b.h.ArchiveMessage(ctx, task)
	require.ErrorIs(t, err, archive.ErrNotFound, "the missing object's hold is the task's error")
	require.ErrorContains(t, err, missing)

	var state string
	require.NoError(t, b.catalog.Pool().QueryRow(ctx, `SELECT state FROM run_media WHERE run_id = $1 AND media_sid = $2`,
		b.run, sibling).Scan(&state))
	require.Equal(t, "archived", state, "the sibling's outcome is committed all the same")
	require.True(t, b.s3Hold(t, key), "and its hold is set")
	got, err := b.catalog.GetMedia(ctx, missing)
	require.NoError(t, err)
	require.Equal(t, 1, got.Attempts, "the failure is recorded against its media")
}

// The old per-media tasks an upgrade leaves in Redis do none of their
// message's work themselves (under their short limits, each of a message's
// ten would download all of it): each queues its message's task, one for
// them all, and succeeds; a media:delete only after its scope checks.
func TestOldMediaTasksHandOverToTheirMessage(t *testing.T) {
	t.Parallel()
	b := holdSetup(t, 0)
	ctx := t.Context()
	sid, _ := b.archive(t, "+15550100003")
	it, err := b.catalog.GetMedia(ctx, sid)
	require.NoError(t, err)
	require.NoError(t, b.catalog.SetRunMedia(ctx, b.run, sid, catalog.MediaPending, false, ""))
	require.NoError(t, b.catalog.FinishMessage(ctx, b.run, it.MessageSID, 1))

	require.False(t, b.messageQueued(t, it.MessageSID))
	for range 3 { // three old tasks of the one message, or one delivered thrice
		task, err := NewArchiveMediaTask(b.h.queues, MediaPayload{RunID: b.run, MediaSID: sid})
		require.NoError(t, err)
		require.NoError(t, b.h.ArchiveMedia(ctx, task))
		task, err = newTask(TypeListMessage, ListMessagePayload{RunID: b.run, MessageSID: it.MessageSID}, "media:"+it.MessageSID, asynq.Queue(b.h.queues.List))
		require.NoError(t, err)
		require.NoError(t, b.h.ListMessage(ctx, task))
	}
	require.True(t, b.messageQueued(t, it.MessageSID), "the message's task is queued")
	var state string
	require.NoError(t, b.catalog.Pool().QueryRow(ctx, `SELECT state FROM run_media WHERE run_id = $1 AND media_sid = $2`,
		b.run, sid).Scan(&state))
	require.Equal(t, "pending", state, "the old tasks did none of the work")

	// A media:delete of a run without --delete is refused, as before.
	task, err := NewDeleteMediaTask(b.h.queues, MediaPayload{RunID: b.run, MediaSID: sid})
	require.NoError(t, err)
	require.ErrorIs(t, b.h.DeleteMedia(ctx, task), asynq.SkipRetry)
}

// A media fails for good after its own attempts in the run, not on its
// message task's last attempt (which its siblings share): a sibling's
// failures, or an earlier run's, do not use up its attempts.
func TestMediaFailsAfterItsOwnAttempts(t *testing.T) {
	t.Parallel()
	b := holdSetup(t, 0)
	ctx := t.Context()
	sid, _ := b.archive(t, "+15550100004")
	sibling, _ := b.archive(t, "+15550100004")
	for _, s := range []string{sid, sibling} {
		require.NoError(t, b.catalog.SetRunMedia(ctx, b.run, s, catalog.MediaPending, false, ""))
	}
	// An earlier run's failures are on the media row, not in this run.
	_, err := b.catalog.Pool().Exec(ctx, `UPDATE media SET attempts = 40 WHERE sid = $1`, sid)
	require.NoError(t, err)
	state := func(s string) string {
		var st string
		require.NoError(t, b.catalog.Pool().QueryRow(ctx, `SELECT state FROM run_media WHERE run_id = $1 AND media_sid = $2`,
			b.run, s).Scan(&st))
		return st
	}
	boom := errors.New("injected: s3 503")
	for i := 1; i < mediaMaxAttempts; i++ {
		require.NotErrorIs(t, b.h.mediaError(ctx, b.run, "", sid, boom), asynq.SkipRetry, "attempt %d", i)
		require.Equal(t, "pending", state(sid), "attempt %d", i)
	}
	require.Equal(t, "pending", state(sibling), "a sibling's attempts are its own")
	require.ErrorIs(t, b.h.mediaError(ctx, b.run, "", sid, boom), asynq.SkipRetry, "its last attempt")
	require.Equal(t, "failed", state(sid))
	require.Equal(t, "pending", state(sibling))
}

// A message task that finds a media of another account refuses it without
// touching its media row, and fails the run's row with the reason: left
// pending, the run would wait on it for ever.
func TestOutOfAccountMediaFailsItsRunRow(t *testing.T) {
	t.Parallel()
	b := holdSetup(t, 0)
	ctx := t.Context()
	sid, _ := b.archive(t, "+15550100005")
	it, err := b.catalog.GetMedia(ctx, sid)
	require.NoError(t, err)
	_, err = b.catalog.Pool().Exec(ctx, `UPDATE media SET account_sid = 'AC00000000000000000000000000000002' WHERE sid = $1`, sid)
	require.NoError(t, err)
	require.NoError(t, b.catalog.SetRunMedia(ctx, b.run, sid, catalog.MediaPending, false, ""))
	require.NoError(t, b.catalog.FinishMessage(ctx, b.run, it.MessageSID, 1))

	task, err := NewArchiveMessageTask(b.h.queues, ArchiveMessagePayload{RunID: b.run, MessageSID: it.MessageSID})
	require.NoError(t, err)
	require.ErrorIs(t, b.h.ArchiveMessage(ctx, task), asynq.SkipRetry)
	var state, reason string
	require.NoError(t, b.catalog.Pool().QueryRow(ctx, `SELECT state, coalesce(error, '') FROM run_media WHERE run_id = $1 AND media_sid = $2`,
		b.run, sid).Scan(&state, &reason))
	require.Equal(t, "failed", state)
	require.Contains(t, reason, "it belongs to account AC00000000000000000000000000000002")
	got, err := b.catalog.GetMedia(ctx, sid)
	require.NoError(t, err)
	require.Equal(t, catalog.MediaArchived, got.State, "its media row is not touched")
}

// On a bucket with S3 legal holds, a message task confirms off, in the
// catalog and without an S3 request, the legal hold of each object it
// created that no hold covers (a new object carries none); it sets on
// those a hold covers, and sets (not trusts) an object that was already
// there. A hold placed afterwards still reaches the objects confirmed off.
func TestCreatedUnheldObjectsAreConfirmedOffWithoutS3Requests(t *testing.T) {
	t.Parallel()
	b := holdSetup(t, 0)
	ctx := t.Context()
	srv := b.emulator(t)

	const held, free, stored = "+15550100071", "+15550100072", "+15550100073"
	sent := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	msgs := map[string]twiliotest.MessageInfo{}
	for _, from := range []string{held, free, stored} {
		m, err := srv.AddMessage(testAccount, twiliotest.MessageOptions{From: from, DateSent: sent,
			Media: []twiliotest.MediaOptions{{ContentType: "image/jpeg", Size: 4096}, {ContentType: "image/jpeg", Size: 2048}}})
		require.NoError(t, err)
		msgs[from] = m
		require.NoError(t, b.catalog.RecordMessages(ctx, b.run, []catalog.MessageRecord{{
			SID: m.SID, AccountSID: testAccount, DateSent: sent, From: from, NumMedia: 2, NumMediaKnown: true}}, false))
	}
	keyOf := func(m twiliotest.MessageInfo, media string) string {
		return archive.ObjectKey(b.h.prefix, mediaKeyInfo(catalog.MediaItem{
			MediaRecord: catalog.MediaRecord{SID: media, AccountSID: testAccount, MessageSID: m.SID}, DateSent: sent}, "image/jpeg"))
	}
	// An earlier attempt stored this object and died before its commit;
	// since then its legal hold was set by hand. Nothing proves it off.
	pre := msgs[stored]
	rc, err := srv.Content(pre.MediaSIDs[0])
	require.NoError(t, err)
	body, err := io.ReadAll(rc)
	require.NoError(t, rc.Close())
	require.NoError(t, err)
	preKey := keyOf(pre, pre.MediaSIDs[0])
	_, err = b.store.Put(ctx, archive.PutInput{Key: preKey, ContentType: "image/jpeg", Size: int64(len(body)), SHA256: sha256.Sum256(body)},
		bytes.NewReader(body))
	require.NoError(t, err)
	require.NoError(t, b.store.SetLegalHold(ctx, preKey, "", true))

	heldID := b.hold(t, held)
	require.NoError(t, b.apply(ctx, heldID, "added"), "nothing of it archived yet")
	b.store.calls.Store(0)
	task, err := NewArchiveMessageTask(b.h.queues, ArchiveMessagePayload{RunID: b.run, MessageSID: msgs[held].SID,
		More: []string{msgs[free].SID, msgs[stored].SID}})
	require.NoError(t, err)
	require.NoError(t, b.h.ArchiveMessage(ctx, task))

	confirmed := func(sid string) *bool {
		var on *bool
		require.NoError(t, b.catalog.Pool().QueryRow(ctx, `SELECT legal_hold_s3 FROM media WHERE sid = $1`, sid).Scan(&on))
		return on
	}
	for from, want := range map[string]bool{held: true, free: false, stored: false} {
		for _, media := range msgs[from].MediaSIDs {
			require.Equal(t, want, b.s3Hold(t, keyOf(msgs[from], media)), "S3 legal hold of %s (from %s)", media, from)
			on := confirmed(media)
			require.NotNil(t, on, "%s is confirmed", media)
			require.Equal(t, want, *on, media)
		}
	}
	require.EqualValues(t, 3, b.store.calls.Load(), "S3 legal hold requests: the two held objects, and the one that was there already")
	_, unsynced := b.unconfirmed(t)
	require.Empty(t, unsynced)

	// A hold placed now covers objects confirmed off: its pass sets them.
	freeID := b.hold(t, free)
	require.NoError(t, b.apply(ctx, freeID, "added"))
	for _, media := range msgs[free].MediaSIDs {
		require.True(t, b.s3Hold(t, keyOf(msgs[free], media)), media)
	}
}
