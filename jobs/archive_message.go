package jobs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/twilio"
)

// TypeArchiveMessage archives one message of a run: it lists the message's
// media, copies them into the store (a few at a time), commits their rows
// in one statement and, with --delete, deletes each from Twilio once its
// own copy is proven.
const TypeArchiveMessage = "message:archive"

// ArchiveMessagePayload archives one message for a run.
type ArchiveMessagePayload struct {
	RunID      uuid.UUID `json:"run_id"`
	MessageSID string    `json:"message_sid"`
}

func (p ArchiveMessagePayload) validate() error {
	if p.RunID.Version() == 0 || !twilio.ValidMessageSID(p.MessageSID) {
		return fmt.Errorf("bad run_id or message_sid %q", p.MessageSID)
	}
	return nil
}

func (p ArchiveMessagePayload) run() uuid.UUID { return p.RunID }

// NewArchiveMessageTask returns the task that archives (and, with --delete,
// deletes) one message's media. It goes to the media queue, served before
// listing, so a run archives what it found before it finds more; its
// retries are a listing task's, and so is its backoff while it lists (a
// message is a gate its media wait on); once its media are listed it backs
// off as media work (mediaStageError), and each media fails after its own
// attempts (mediaMaxAttempts), not its siblings'.
func NewArchiveMessageTask(q Queues, p ArchiveMessagePayload) (*asynq.Task, error) {
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("archive message task: %w", err)
	}
	return newTask(TypeArchiveMessage, p, "message:"+p.RunID.String()+":"+p.MessageSID,
		asynq.Queue(q.Media), asynq.MaxRetry(listMaxRetry), asynq.Timeout(time.Hour))
}

// Bounds of one message task. A message has at most 10 media: its work is
// read from Postgres messageBatch media at a time (a hostile list cannot
// grow memory), and mediaParallel of them are downloaded, stored or deleted
// at once, so a task keeps Twilio busy while one media waits on S3 or
// Postgres, and a worker's memory is at most its tasks × mediaParallel
// spools (each at most archive.DefaultSpoolMemory in memory).
const (
	messageBatch  = 50
	mediaParallel = 3
)

// ArchiveMessage archives one message of a run:
//
//  1. list its media, if the run has not yet (run_messages pending), and
//     record them with the message listed, in one statement;
//  2. read from Postgres what the run still has to do with them (a replay
//     skips what is committed);
//  3. copy each media to archive (download → spool, SHA-256 and Sniffer →
//     create-only PUT the store verifies, or the suspect path), a few at
//     once, and commit every copy and outcome in one statement;
//  4. with --delete, delete each archived media the run marked, each only
//     after its own verification, claim and per-attempt lease.
//
// A media that fails is recorded with its attempt; the task is retried
// while any media can still succeed, and a media no retry can fix fails
// for the run without holding back the others.
func (h *Handlers) ArchiveMessage(ctx context.Context, t *asynq.Task) error {
	return runStep(h, nil, h.archiveMessage)(ctx, t)
}

func (h *Handlers) archiveMessage(ctx context.Context, run catalog.Run, p ArchiveMessagePayload) error {
	state, err := h.catalog.RunMessageState(ctx, run.ID, p.MessageSID)
	if err != nil {
		return err
	}
	var listErr error
	if state == catalog.MessagePending {
		// A listing that failed for good has recorded why; the media it
		// recorded before are still archived below.
		if listErr = h.listMedia(ctx, run, p.MessageSID); listErr != nil && !isPermanent(listErr) {
			return listErr
		}
	}
	if run.DryRun {
		return listErr
	}
	// A hold that cannot be set (its object missing, S3 refusing) is
	// that media's error: the message's other media are still archived,
	// committed and deleted, and the task is retried for it.
	errs := h.syncMessageHolds(ctx, run.ID, p.MessageSID)
	errs = append(errs, h.workOnMessage(ctx, run, p.MessageSID, h.workOnMedia), listErr)
	if err := taskError(errs); err != nil && !isPermanent(err) {
		return &mediaStageError{err}
	}
	return taskError(errs)
}

// mediaStageError marks a message task's error as one of its media work
// (downloads, stores, deletes), its media listed: RetryDelay then backs it
// off as a media task (up to 5 minutes), not as a listing (1 minute). The
// stage travels in the error because RetryDelay sees only the task's
// payload, attempt count and error, and the payload cannot say whether
// the listing is done.
type mediaStageError struct{ err error }

func (e *mediaStageError) Error() string { return e.err.Error() }
func (e *mediaStageError) Unwrap() error { return e.err }

// listMedia lists a message's media and records them, and the message as
// listed (or gone, or failed, with the reason).
func (h *Handlers) listMedia(ctx context.Context, run catalog.Run, message string) error {
	// A message has at most 10 media; records go out in batches anyway so a
	// hostile or buggy list cannot grow memory without bound.
	const batch = 100
	found := 0
	recs := make([]catalog.MediaRecord, 0, 10)
	flush := func() error {
		if err := h.catalog.RecordMedia(ctx, run.ID, recs, run.DryRun); err != nil {
			return err
		}
		found += len(recs)
		recs = recs[:0]
		return nil
	}
	for m, err := range h.twilio.Media.All(ctx, message, twilio.MediaListParams{}) {
		if twilio.IsGone(err) {
			// The message was deleted since its page was listed (Twilio
			// deletes its media with it): nothing more of it can be
			// archived and no retry changes that. Recorded as gone, so
			// the run says so rather than counting a message without media.
			if err := flush(); err != nil {
				return err
			}
			return h.catalog.GoneMessage(ctx, run.ID, message, found, "gone from Twilio before its media were listed: "+errText(err))
		}
		if err != nil {
			return h.listingError(ctx, err, func(reason string) error {
				return h.catalog.FailMessage(ctx, run.ID, message, reason)
			})
		}
		if err := twilio.CheckMediaSID(m.SID); err != nil {
			// Recorded, it would be queued and re-queued forever: the
			// message fails with the reason; the media before it stay.
			if err := flush(); err != nil {
				return err
			}
			return h.badSID(fmt.Errorf("media list of message %s, media %d: %w", message, found, err), func(reason string) error {
				return h.catalog.FailMessage(ctx, run.ID, message, reason)
			})
		}
		recs = append(recs, catalog.MediaRecord{
			SID: m.SID, AccountSID: run.AccountSID, MessageSID: message,
			ContentType: m.ContentType, DateCreated: m.DateCreated.Time,
		})
		if len(recs) == batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return h.catalog.RecordLastMedia(ctx, run.ID, message, recs, found+len(recs), run.DryRun)
}

// mediaWork does a run's work on one batch of a message's media: a
// Messaging message's archives and deletes each (workOnMedia); a
// Conversations message's archives them, its delete being the message's.
type mediaWork func(ctx context.Context, run catalog.Run, items []catalog.RunMediaItem) error

// workOnMessage does what the run still has to do with a message's media,
// messageBatch media at a time, as Postgres says.
func (h *Handlers) workOnMessage(ctx context.Context, run catalog.Run, message string, work mediaWork) error {
	var failed []error // media that failed for good (recorded)
	after := ""
	for {
		items, err := h.catalog.MessageWork(ctx, run.ID, message, after, messageBatch)
		if err != nil {
			return err
		}
		if len(items) == 0 {
			break
		}
		after = items[len(items)-1].SID
		if err := work(ctx, run, items); err != nil {
			if !isPermanent(err) {
				return err
			}
			failed = append(failed, err)
		}
		if len(items) < messageBatch {
			break
		}
	}
	return errors.Join(failed...)
}

// workOnMedia archives, commits and deletes one batch of a message's media.
// It returns the error a retry may fix, if any; else the failures no retry
// can fix joined (each recorded for its media), or nil.
func (h *Handlers) workOnMedia(ctx context.Context, run catalog.Run, items []catalog.RunMediaItem) error {
	toDelete, errs := h.archiveBatch(ctx, run, items)
	// Delete, a few at once, each after its own proof.
	errs = append(errs, parallel(len(toDelete), func(i int) error {
		return h.deleteArchived(ctx, run, toDelete[i])
	})...)
	return taskError(errs)
}

// archiveBatch archives and commits one batch of a message's media (copies
// a few at once, one commit for all), and returns the media the run
// deletes next, each with the copy its row records, and the media's
// errors (each recorded for its media).
func (h *Handlers) archiveBatch(ctx context.Context, run catalog.Run, items []catalog.RunMediaItem) (toDelete []catalog.MediaItem, errs []error) {
	var (
		toCopy   []catalog.MediaItem
		outcomes []catalog.RunOutcome
	)
	for _, it := range items {
		// In scope: only a media of the run's account is touched; any
		// other is refused without touching its media row. The run's own
		// row fails with the reason: left pending, the run would wait on
		// it (and revive the task) for ever.
		if it.AccountSID != run.AccountSID {
			h.log.Error().Str("media_sid", it.SID).Str("run_id", run.ID.String()).
				Msg("message task names a media of another account; media NOT archived or deleted")
			err := permanent(fmt.Errorf("media %s: it belongs to account %s, not to run %s's account %s",
				it.SID, it.AccountSID, run.ID, run.AccountSID))
			if ferr := h.catalog.SetRunMedia(ctx, run.ID, it.SID, catalog.MediaFailed, false, errText(err)); ferr != nil {
				return nil, []error{ferr}
			}
			errs = append(errs, err)
			continue
		}
		if it.RunState == catalog.MediaArchived { // archived, the run deletes it
			toDelete = append(toDelete, it.MediaItem)
			continue
		}
		// A backfill with --delete deletes all it archives; a policy only
		// what is older than its delete_after. The row decides.
		switch it.State {
		case catalog.MediaArchived:
			// An attempt that committed the row may have failed, or died,
			// before the S3 legal hold was set: syncMessageHolds, before
			// this, has set it.
			reused := !it.ArchivedAt.IsZero() && it.ArchivedAt.Before(run.CreatedAt)
			outcomes = append(outcomes, catalog.RunOutcome{SID: it.SID, State: catalog.MediaArchived, Reused: reused})
		case catalog.MediaDeleted:
			outcomes = append(outcomes, catalog.RunOutcome{SID: it.SID, State: catalog.MediaDeleted, Reused: true})
		case catalog.MediaGone:
			outcomes = append(outcomes, catalog.RunOutcome{SID: it.SID, State: catalog.MediaGone})
		default: // pending, or failed or suspect in an earlier run: try (again)
			toCopy = append(toCopy, it.MediaItem)
		}
	}

	// Copy, a few at once; each result is kept for the one commit.
	copies := make([]*catalog.ArchivedCopy, len(toCopy))
	copyErrs := parallel(len(toCopy), func(i int) (err error) {
		copies[i], err = h.copyMedia(ctx, run.ID, toCopy[i])
		return err
	})
	var archived []catalog.ArchivedMedia
	for i, cp := range copies {
		if cp != nil {
			archived = append(archived, catalog.ArchivedMedia{SID: toCopy[i].SID, Copy: *cp})
		}
	}
	committed, wanted, err := h.catalog.CommitMessage(ctx, run.ID, archived, outcomes)
	if err != nil {
		return nil, []error{err} // the copies are create-only: a retry stores nothing twice
	}
	// What is deleted is the copy the catalog recorded: this call's own
	// copy only where its commit became the row; otherwise another task
	// committed first (another worker, perhaps another bucket), and its
	// row is read back, so the delete's location guard and verification
	// apply to the catalogued copy, never to an uncatalogued one of ours.
	mine := make(map[string]catalog.ArchivedCopy, len(committed))
	byCopy := make(map[string]catalog.ArchivedCopy, len(archived))
	for _, a := range archived {
		byCopy[a.SID] = a.Copy
	}
	for _, sid := range committed {
		mine[sid] = byCopy[sid]
	}
	for _, a := range archived {
		if _, ok := mine[a.SID]; !ok {
			continue // not our object's row: its own commit sets its hold
		}
		// Checked after the row commits: a hold placed meanwhile either
		// sees this object in its own pass (hold:apply) or is seen here.
		if err := h.syncLegalHold(ctx, a.SID, a.Copy.Key, a.Copy.VersionID); err != nil {
			errs = append(errs, err)
		}
	}
	byItem := make(map[string]catalog.MediaItem, len(toCopy))
	for _, it := range toCopy {
		byItem[it.SID] = it
	}
	for _, sid := range wanted {
		if cp, ok := mine[sid]; ok {
			it := byItem[sid]
			it.State, it.Size, it.SHA256, it.Filename = catalog.MediaArchived, cp.Size, cp.SHA256, cp.Filename
			it.Store, it.Bucket, it.Key, it.VersionID = cp.Store, cp.Bucket, cp.Key, cp.VersionID
			it.PlausibleAt = time.Now() // judged by the Sniffer before it was stored; the row records it
			toDelete = append(toDelete, it)
			continue
		}
		it, err := h.catalog.GetMedia(ctx, sid)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		toDelete = append(toDelete, it)
	}
	for i, err := range copyErrs {
		if err != nil {
			errs = append(errs, h.mediaError(ctx, run.ID, toCopy[i].SID, err))
		}
	}
	return toDelete, errs
}

// taskError is what a task returns for its media's errors: one a retry may
// fix, if any (a rate-limit pause only if nothing else failed, so that
// failures use up retries); else those no retry can fix, joined.
func taskError(errs []error) error {
	var pause, permanents []error
	for _, err := range errs {
		var rl *RetryLaterError
		switch {
		case err == nil:
		case isPermanent(err):
			permanents = append(permanents, err)
		case errors.As(err, &rl):
			pause = append(pause, err)
		default:
			return err
		}
	}
	if len(pause) > 0 {
		return pause[0]
	}
	return errors.Join(permanents...)
}

// parallel runs f(0), …, f(n-1), mediaParallel at a time, waits, and
// returns their errors by index. A panic in one (asynq recovers a
// handler's own, not those of goroutines it starts) is its error.
func parallel(n int, f func(i int) error) []error {
	errs := make([]error, n)
	run := func(i int) {
		defer func() {
			if r := recover(); r != nil {
				errs[i] = fmt.Errorf("panic: %v", r)
			}
		}()
		errs[i] = f(i)
	}
	if n == 1 {
		run(0)
		return errs
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, mediaParallel)
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			// A new goroutine's stack starts at a few KiB and the S3 SDK's
			// and pgx's call chains grow it step by step (runtime.newstack
			// was 8 % of the worker's CPU on small media): grow it once.
			_ = growStack()
			run(i)
		}()
	}
	wg.Wait()
	return errs
}

// syncMessageHolds sets the S3 legal hold of a message's archived media
// whose hold is not confirmed: a try that committed its rows may have
// failed, or died, before it set them, and its retry does it here. It
// returns each failure recorded against its media (mediaError), and goes
// on past it: one object's hold never keeps its siblings from being
// archived.
func (h *Handlers) syncMessageHolds(ctx context.Context, run uuid.UUID, message string) []error {
	if !h.legalHolds {
		return nil
	}
	objs, err := h.catalog.UnconfirmedHoldsOfMessage(ctx, message, h.store.Location())
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, o := range objs {
		if err := h.syncLegalHold(ctx, o.MediaSID, o.Key, o.VersionID); err != nil {
			errs = append(errs, h.mediaError(ctx, run, o.MediaSID, err))
		}
	}
	return errs
}
