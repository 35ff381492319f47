package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/twilio"
)

// TypeListPage lists one page of one window (a UTC day) of a run.
const TypeListPage = "messages:page"

// ListPagePayload lists one page of one window of a run. The page's cursor
// is in Postgres (run_windows.next_page_uri), not here, so the payload stays
// small and a replayed task cannot fetch a stale page.
type ListPagePayload struct {
	RunID  uuid.UUID `json:"run_id"`
	Window int       `json:"window"`
	Page   int       `json:"page"`
}

func (p ListPagePayload) validate() error {
	if p.RunID.Version() == 0 || p.Window < 0 || p.Page < 0 {
		return errors.New("no run_id, or a negative window or page")
	}
	return nil
}

func (p ListPagePayload) run() uuid.UUID { return p.RunID }

// NewListPageTask returns the task that lists page `page` of a window.
func NewListPageTask(q Queues, p ListPagePayload) (*asynq.Task, error) {
	id := "page:" + p.RunID.String() + ":" + strconv.Itoa(p.Window) + ":" + strconv.Itoa(p.Page)
	return newTask(TypeListPage, p, id, asynq.Queue(q.List), asynq.MaxRetry(listMaxRetry), asynq.Timeout(10*time.Minute))
}

// Listing backpressure: a page waits up to slotWait for the listing slot,
// then goes back to the queue; with the slot, it goes back to the queue
// for about backlogWait while more than MaxBacklog tasks wait (asynq
// moves it back every DelayedTaskCheckInterval: see NewServer).
const (
	slotWait    = 3 * time.Second
	backlogWait = 400 * time.Millisecond
)

// ListPage lists one page of messages of one window. In order: record the
// messages, queue a message task for each that has media, queue the next
// page, and only then advance the window's cursor, so a crash at any point
// repeats work rather than skipping it.
func (h *Handlers) ListPage(ctx context.Context, t *asynq.Task) error {
	return runStep(h, nil, h.listPage)(ctx, t)
}

func (h *Handlers) listPage(ctx context.Context, run catalog.Run, p ListPagePayload) error {
	// Backpressure: one page at a time across the fleet, and only while
	// the queues hold little, so that Redis holds about one page of work
	// however large the run and however many workers list it.
	release, ok, err := h.enqueuer.ListingSlot(ctx, slotWait)
	if err != nil {
		return err
	}
	if !ok {
		return &RetryLaterError{After: jitter(backlogWait), Reason: "another page held the listing slot for " + slotWait.String()}
	}
	defer release()
	w, err := h.catalog.GetWindow(ctx, run.ID, p.Window)
	if err != nil {
		return err
	}
	if w.State != catalog.WindowPending {
		// Handled already (a duplicate delivery), or listed to the end by a
		// try that then failed before it released the next window.
		return h.releaseNext(ctx, run)
	}
	if w.Page != p.Page {
		return nil // handled already: a duplicate delivery
	}
	// The page tasks of released windows (one each) drain only by listing:
	// counted as backlog, they would keep listing waiting on itself.
	backlog, err := h.enqueuer.Backlog()
	if err != nil {
		return err
	}
	listing, err := h.catalog.WindowsListing(ctx, run.AccountSID)
	if err != nil {
		return err
	}
	if work := backlog - listing; work > h.maxBacklog {
		if err := h.catalog.SetWaiting(ctx, run.ID, fmt.Sprintf("queue backlog over %d tasks: listing resumes as queued media and messages are handled", h.maxBacklog)); err != nil {
			return err
		}
		return &RetryLaterError{After: jitter(backlogWait), Reason: fmt.Sprintf("queue backlog %d > %d", work, h.maxBacklog)}
	}
	if err := h.catalog.SetWaiting(ctx, run.ID, ""); err != nil {
		return err
	}

	if run.Source == catalog.SourceConversations {
		return h.listConversations(ctx, run, w)
	}
	uri := w.NextPageURI
	if p.Page == 0 && uri == "" {
		if uri, err = h.twilio.Messages.ListURI(windowParams(run, w, h.pageSize)); err != nil {
			return permanent(err)
		}
	}
	// No endless listing: a window that never reaches its last page, or
	// whose cursors go round (A→B→A), fails with the reason; no retry
	// would end it.
	if w.Page >= maxWindowPages {
		return h.failWindow(ctx, run, w, fmt.Sprintf("listed %d pages without reaching the last: stopped (next_page_uri never ends)", w.Page))
	}
	first, err := h.catalog.FollowCursor(ctx, run.ID, w.Seq, w.Page, uri)
	if err != nil {
		return err
	}
	if first != w.Page {
		return h.failWindow(ctx, run, w, fmt.Sprintf("Twilio's next_page_uri went round in a cycle: page %d is page %d again", w.Page, first))
	}
	// With each message's object as Twilio sent it: its archived record.
	page, err := h.twilio.Messages.PageRecords(ctx, uri)
	if err != nil {
		return h.listingError(ctx, err, func(reason string) error {
			return h.failWindow(ctx, run, w, reason)
		})
	}

	recs := make([]catalog.MessageRecord, 0, len(page.Messages))
	raw := make([]json.RawMessage, 0, len(page.Messages))
	for i := range page.Messages {
		if err := twilio.CheckMessageSID(page.Messages[i].SID); err != nil {
			// A message that cannot be named can be neither recorded nor
			// listed (a row for it would be re-queued forever): the
			// window fails, loudly, with the reason.
			return h.badSID(fmt.Errorf("page %d of window %d, message %d: %w", w.Page, w.Seq, i, err), func(reason string) error {
				return h.catalog.FailWindow(ctx, run.ID, w.Seq, reason)
			})
		}
		rec := messageRecord(run.AccountSID, &page.Messages[i])
		// Twilio's date filter works on whole days; the window is exact.
		if !rec.DateSent.IsZero() && (rec.DateSent.Before(w.StartsAt) || !rec.DateSent.Before(w.EndsAt)) {
			continue
		}
		recs = append(recs, rec)
		raw = append(raw, page.Messages[i].Raw)
	}
	// The messages with media go per to a task; each records its task's
	// first message, for the reconciler.
	var withMedia []string
	for i := range recs {
		if recs[i].HasMedia() {
			withMedia = append(withMedia, recs[i].SID)
		}
	}
	per, n := messagesPerTask(len(withMedia)), 0
	for i := range recs {
		if !recs[i].HasMedia() {
			continue
		}
		if n%per != 0 {
			recs[i].TaskSID = withMedia[n-n%per]
		}
		n++
	}
	// A part of the page at a time, its records archived, then its
	// messages recorded, then its tasks queued: each message's record is
	// archived before its row and task (see message_records.go), and the
	// first tasks start while the rest of the page's records are stored
	// (a page of 1000 records took about 2 s to store: a run's start, and
	// each page after, left Twilio's slots idle that long; issue #14).
	// A replay of a page that died half way skips what its parts did.
	queued := 0
	for _, part := range pageParts(recs, pagePartTasks*per) {
		recs, raw := recs[part[0]:part[1]], raw[part[0]:part[1]]
		if err := h.archiveRecords(ctx, run, w.StartsAt, recs, raw); err != nil {
			if isPermanent(err) { // a key holding other bytes: no retry stores it
				if ferr := h.failWindow(ctx, run, w, errText(err)); ferr != nil {
					return ferr
				}
			}
			return err
		}
		if err := h.catalog.RecordMessages(ctx, run.ID, recs, run.DryRun); err != nil {
			return err
		}
		n := 0
		for i := range recs {
			if recs[i].HasMedia() {
				n++
			}
		}
		for batch := range slices.Chunk(withMedia[queued:queued+n], per) {
			p := ArchiveMessagePayload{RunID: run.ID, MessageSID: batch[0], More: batch[1:]}
			if err := h.enqueuer.In(ctx)(NewArchiveMessageTask(h.queues, p)); err != nil {
				return err
			}
		}
		queued += n
	}
	if page.NextPageURI != "" {
		if err := h.enqueuer.In(ctx)(NewListPageTask(h.queues, ListPagePayload{RunID: run.ID, Window: w.Seq, Page: w.Page + 1})); err != nil {
			return err
		}
	}
	if _, err := h.catalog.AdvanceWindow(ctx, run.ID, w.Seq, w.Page, page.NextPageURI); err != nil {
		return err
	}
	if page.NextPageURI == "" {
		return h.releaseNext(ctx, run)
	}
	return nil
}

// pagePartTasks is how many message tasks a part of a listed page
// queues (pageParts): 64 messages, whose records take a few
// milliseconds to store.
const pagePartTasks = 8

// minPageTasks is how many tasks a page's messages with media are spread
// over, while they are few: a short page (a day of few messages, the
// last of a day) holds them one or a few to a task rather than 8, so that
// they are archived side by side, not mediaParallel at a time in a few
// tasks while the worker's other task slots, and Twilio's, sit idle (the
// benchmark's 32 large files were 4 tasks: 12 downloads at once, not 32).
const minPageTasks = 32

// messagesPerTask is how many of a page's n messages with media go to one
// task: maxMessagesPerTask for a full page, fewer for a short one.
func messagesPerTask(n int) int {
	return min(maxMessagesPerTask, max(1, n/minPageTasks))
}

// pageParts splits a page's messages into [lo, hi) ranges in order, each
// but the last holding perPart messages with media (a multiple of the
// page's messages per task, so that no task's messages span two parts)
// and ending with the last of them.
func pageParts(recs []catalog.MessageRecord, perPart int) [][2]int {
	var parts [][2]int
	lo, n := 0, 0
	for i := range recs {
		if !recs[i].HasMedia() {
			continue
		}
		if n++; n == perPart {
			parts = append(parts, [2]int{lo, i + 1})
			lo, n = i+1, 0
		}
	}
	if lo < len(recs) {
		parts = append(parts, [2]int{lo, len(recs)})
	}
	return parts
}

// maxWindowPages bounds the pages of one window (a UTC day): at Twilio's
// 1000 messages a page, a hundred million messages in a day.
const maxWindowPages = 100_000

// failWindow ends a window that cannot be listed, and releases the next.
func (h *Handlers) failWindow(ctx context.Context, run catalog.Run, w catalog.Window, reason string) error {
	if err := h.catalog.FailWindow(ctx, run.ID, w.Seq, reason); err != nil {
		return err
	}
	return h.releaseNext(ctx, run)
}

// releaseNext releases a run's next windows, as many as ended, and queues
// the first page of each.
func (h *Handlers) releaseNext(ctx context.Context, run catalog.Run) error {
	ws, err := h.catalog.ReleaseWindows(ctx, run.ID, h.windowsReleased)
	if err != nil {
		return err
	}
	return h.queuePages(ctx, run, ws, h.enqueuer.In(ctx))
}

// queueWindows releases a run's first windows, if not yet, and queues the
// page each released window is at: at a run's start, and when the
// reconciler rebuilds what Redis lost.
func (h *Handlers) queueWindows(ctx context.Context, run catalog.Run, enqueue func(*asynq.Task, error) error) error {
	if _, err := h.catalog.ReleaseWindows(ctx, run.ID, h.windowsReleased); err != nil {
		return err
	}
	ws, err := h.catalog.ReleasedWindows(ctx, run.ID)
	if err != nil {
		return err
	}
	return h.queuePages(ctx, run, ws, enqueue)
}

func (h *Handlers) queuePages(ctx context.Context, run catalog.Run, ws []catalog.Window, enqueue func(*asynq.Task, error) error) error {
	for _, w := range ws {
		if err := enqueue(NewListPageTask(h.queues, ListPagePayload{RunID: run.ID, Window: w.Seq, Page: w.Page})); err != nil {
			return err
		}
	}
	return nil
}

// windowParams asks Twilio for a window's messages. A whole UTC day is one
// exact `DateSent=YYYY-MM-DD` listing; any other window asks for the days
// it touches (Twilio's bounds are inclusive dates) and is trimmed here.
func windowParams(run catalog.Run, w catalog.Window, pageSize int) twilio.MessageListParams {
	p := twilio.MessageListParams{From: run.From, To: run.To, PageSize: pageSize}
	day := w.StartsAt.Truncate(24 * time.Hour)
	if day.Equal(w.StartsAt) && w.EndsAt.Equal(day.Add(24*time.Hour)) {
		p.DateSent = day
		return p
	}
	p.DateSentAfter = day
	p.DateSentBefore = w.EndsAt.Add(-time.Nanosecond).Truncate(24 * time.Hour)
	return p
}

// listingError decides what a failed Twilio listing call means for the task:
// a rate limit waits without using a retry; an error no retry can fix, or
// the last retry, records the failure (fail) and stops; anything else is
// retried with backoff.
func (h *Handlers) listingError(ctx context.Context, err error, fail func(reason string) error) error {
	if rl := retryLater(err); rl != err {
		return rl
	}
	if twilioPermanent(err) || lastAttempt(ctx) {
		if ferr := fail(errText(err)); ferr != nil {
			return ferr
		}
		return permanent(err)
	}
	return err
}

// badSID records (fail) that Twilio sent a SID that is not valid, where it
// entered, and ends the task: no retry brings a different answer. err
// quotes the SID cut short (twilio.CheckMessageSID), so the reason stays
// bounded.
func (h *Handlers) badSID(err error, fail func(reason string) error) error {
	err = fmt.Errorf("Twilio sent a SID mediasync cannot use: %w", err)
	if ferr := fail(errText(err)); ferr != nil {
		return ferr
	}
	return permanent(err)
}

// messageRecord keeps what the catalog needs of a message. Every field of a
// Twilio message may be null; the account is the run's.
func messageRecord(account string, m *twilio.Message) catalog.MessageRecord {
	return catalog.MessageRecord{
		SID: m.SID, AccountSID: account,
		DateSent: m.DateSent.Time, DateCreated: m.DateCreated.Time,
		From: m.From, To: m.To, Direction: m.Direction,
		NumMedia: m.NumMedia.N, NumMediaKnown: m.NumMedia.Known,
	}
}
