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

// ArchiveMessagePayload archives one message for a run, or a few (issue
// #14: a message, or a small batch of messages, is one task): MessageSID
// and, queued by a listed page, up to maxMessagesPerTask-1 More of the
// same run. A task's ID is its first message's, so a message queued on its
// own later (reconcile, an old task's hand-over) while its batch waits
// either joins as the same task or runs as its own: each message's work is
// what Postgres says is left, so running it twice does nothing twice.
type ArchiveMessagePayload struct {
	RunID      uuid.UUID `json:"run_id"`
	MessageSID string    `json:"message_sid"`
	More       []string  `json:"more_message_sids,omitempty"`

	states map[string]catalog.MessageState // read with the run (loadRun), not sent
}

// maxMessagesPerTask bounds a message task's messages: a listed page's
// messages go into tasks of up to this many, so that the run, its "done?"
// check, the media's record, the work read and the commit are each one
// round trip for all of them, and asynq's dequeue and ack one per task.
// A message has at most 10 media, so a task has at most 80.
const maxMessagesPerTask = 8

// messages is every message of the task.
func (p ArchiveMessagePayload) messages() []string {
	return append([]string{p.MessageSID}, p.More...)
}

// loadRun reads the run and its messages' states in one round trip
// (runLoader).
func (p *ArchiveMessagePayload) loadRun(ctx context.Context, c *catalog.Catalog) (catalog.Run, error) {
	run, states, err := c.GetRunMessages(ctx, p.RunID, p.messages())
	p.states = states
	return run, err
}

func (p ArchiveMessagePayload) validate() error {
	if p.RunID.Version() == 0 || !twilio.ValidMessageSID(p.MessageSID) {
		return fmt.Errorf("bad run_id or message_sid %q", p.MessageSID)
	}
	if len(p.More) >= maxMessagesPerTask {
		return fmt.Errorf("%d more messages, at most %d", len(p.More), maxMessagesPerTask-1)
	}
	for _, sid := range p.More {
		if !twilio.ValidMessageSID(sid) {
			return fmt.Errorf("bad message_sid %q", sid)
		}
	}
	return nil
}

func (p ArchiveMessagePayload) run() uuid.UUID { return p.RunID }

// NewArchiveMessageTask returns the task that archives (and, with --delete,
// deletes) one message's media, or those of a few messages (p.More). It goes to the media queue, served before
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

// ArchiveMessage archives one message of a run, or a few (p.More):
//
//  1. list their media, if the run has not yet (run_messages pending), all
//     at once, and record them with the messages listed;
//  2. read from Postgres what the run still has to do with them (a replay
//     skips what is committed), in the same round trip as the record;
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
	msgs := p.messages()
	// List the messages whose media the run has not listed yet, all at
	// once: a listing holds no body, only media records (10 for a real
	// message, at most listMedia's batch of 100 for a hostile list), so it
	// needs none of mediaParallel's memory bound, and a task's lists take
	// one Twilio round trip instead of three (the run's last tasks drained
	// Twilio's slots that much sooner). A listing that failed for good has
	// recorded why; the media it recorded before are still archived below,
	// and so are the other messages' media whatever their listing's error.
	var pending []string
	for _, sid := range msgs {
		if p.states[sid] == catalog.MessagePending {
			pending = append(pending, sid)
		}
	}
	listed := make([]*catalog.ListedMessage, len(pending))
	listErrs := parallelN(len(pending), maxMessagesPerTask, func(i int) (err error) {
		listed[i], err = h.listMedia(ctx, run, pending[i])
		return err
	})
	var (
		toRecord []catalog.ListedMessage
		listErr  error   // the first a retry may fix, if any
		failed   []error // those no retry can fix (recorded)
	)
	for i, l := range listed {
		if l != nil {
			toRecord = append(toRecord, *l)
		}
		switch err := listErrs[i]; {
		case err == nil:
		case isPermanent(err):
			failed = append(failed, err)
		case listErr == nil:
			listErr = err
		}
	}
	if listErr == nil {
		listErr = errors.Join(failed...)
	}
	if run.DryRun {
		for _, l := range toRecord {
			if err := h.catalog.RecordLastMedia(ctx, run.ID, l.SID, l.Media, l.MediaFound, true); err != nil {
				return err
			}
		}
		return listErr
	}
	if listErr != nil && !isPermanent(listErr) && len(toRecord) == 0 {
		return listErr
	}
	// The media listed are recorded, and the first work read, in one
	// round trip.
	var (
		work []catalog.RunMediaItem
		read bool
	)
	if len(toRecord) > 0 {
		var err error
		if work, err = h.catalog.RecordListedWork(ctx, run.ID, toRecord, msgs, messageBatch); err != nil {
			return err
		}
		read = true
	}
	// A hold that cannot be set (its object missing, S3 refusing) is
	// that media's error: the messages' other media are still archived,
	// committed and deleted, and the task is retried for it.
	errs := h.syncMessageHolds(ctx, run, msgs)
	if len(errs) > 0 {
		read = false // a hold's failure may have failed its media: read again
	}
	errs = append(errs, h.workOnMessages(ctx, run, msgs, work, read, h.workOnMedia))
	if listErr != nil && !isPermanent(listErr) {
		// Still listing: backed off as a listing, after the work of
		// what was listed is done.
		return listErr
	}
	errs = append(errs, listErr)
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

// listMedia lists a message's media. It returns the last of them (all of
// them, unless more than a batch) for the caller to record with the
// message as listed (catalog.RecordListedWork, RecordLastMedia), with
// those of its task's other messages; it records the message gone, or
// failed, with the reason itself.
func (h *Handlers) listMedia(ctx context.Context, run catalog.Run, message string) (*catalog.ListedMessage, error) {
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
				return nil, err
			}
			return nil, h.catalog.GoneMessage(ctx, run.ID, message, found, "gone from Twilio before its media were listed: "+errText(err))
		}
		if err != nil {
			return nil, h.listingError(ctx, err, func(reason string) error {
				return h.catalog.FailMessage(ctx, run.ID, message, reason)
			})
		}
		if err := twilio.CheckMediaSID(m.SID); err != nil {
			// Recorded, it would be queued and re-queued forever: the
			// message fails with the reason; the media before it stay.
			if err := flush(); err != nil {
				return nil, err
			}
			return nil, h.badSID(fmt.Errorf("media list of message %s, media %d: %w", message, found, err), func(reason string) error {
				return h.catalog.FailMessage(ctx, run.ID, message, reason)
			})
		}
		recs = append(recs, catalog.MediaRecord{
			SID: m.SID, AccountSID: run.AccountSID, MessageSID: message,
			ContentType: m.ContentType, DateCreated: m.DateCreated.Time,
		})
		if len(recs) == batch {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	return &catalog.ListedMessage{SID: message, Media: recs, MediaFound: found + len(recs)}, nil
}

// mediaWork does a run's work on one batch of its messages' media: a
// Messaging message's archives and deletes each (workOnMedia); a
// Conversations message's archives them, its delete being the message's.
type mediaWork func(ctx context.Context, run catalog.Run, items []catalog.RunMediaItem) error

// workOnMessages does what the run still has to do with its messages'
// media, messageBatch media at a time, as Postgres says; the first batch
// is first if read (read with the listing's record), else it is read here.
func (h *Handlers) workOnMessages(ctx context.Context, run catalog.Run, messages []string, first []catalog.RunMediaItem, read bool, work mediaWork) error {
	var failed []error // media that failed for good (recorded)
	afterMessage, after := "", ""
	for {
		items := first
		if !read {
			var err error
			if items, err = h.catalog.MessagesWork(ctx, run.ID, messages, afterMessage, after, messageBatch); err != nil {
				return err
			}
		}
		read = false
		if len(items) == 0 {
			break
		}
		afterMessage, after = items[len(items)-1].MessageSID, items[len(items)-1].SID
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
			if ferr := h.counted(it.Source, resultFailed, h.catalog.SetRunMedia(ctx, run.ID, it.SID, catalog.MediaFailed, false, errText(err))); ferr != nil {
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
	committed, wanted, holdUnknown, err := h.catalog.CommitMessage(ctx, run.ID, archived, outcomes)
	if err != nil {
		return nil, []error{err} // the copies are create-only: a retry stores nothing twice
	}
	h.countCommit(run.Source, archived, committed, outcomes)
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
	// Only the rows whose S3 legal hold the commit left unknown (a hold
	// covers the media, or the object was there already); the rest it
	// confirmed off. Checked after the row commits: a hold placed
	// meanwhile either sees this object in its own pass (hold:apply) or
	// is seen here.
	for _, sid := range holdUnknown {
		cp := mine[sid]
		if err := h.syncLegalHold(ctx, sid, cp.Key, cp.VersionID); err != nil {
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
			errs = append(errs, h.mediaError(ctx, run.ID, toCopy[i].Source, toCopy[i].SID, err))
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
func parallel(n int, f func(i int) error) []error { return parallelN(n, mediaParallel, f) }

// parallelN is parallel, limit at a time.
func parallelN(n, limit int, f func(i int) error) []error {
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
	sem := make(chan struct{}, limit)
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

// syncMessageHolds sets the S3 legal hold of the messages' archived media
// whose hold is not confirmed: a try that committed its rows may have
// failed, or died, before it set them, and its retry does it here. It
// returns each failure recorded against its media (mediaError), and goes
// on past it: one object's hold never keeps its siblings from being
// archived.
func (h *Handlers) syncMessageHolds(ctx context.Context, run catalog.Run, messages []string) []error {
	if !h.legalHolds {
		return nil
	}
	objs, err := h.catalog.UnconfirmedHoldsOfMessages(ctx, messages, h.store.Location())
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, o := range objs {
		if err := h.syncLegalHold(ctx, o.MediaSID, o.Key, o.VersionID); err != nil {
			errs = append(errs, h.mediaError(ctx, run.ID, run.Source, o.MediaSID, err))
		}
	}
	return errs
}
