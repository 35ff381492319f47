package jobs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/twilio"
)

// The Conversations source lists in two steps, because Conversations
// cannot filter messages by date:
//
//  1. a run's window i (one per service, the whole range) pages the
//     service's conversations, newest first, created before the run's
//     until (EndDate): a conversation created earlier may still hold
//     messages of the window, so none is left out by its age (no
//     StartDate). Each page is one messages:page task, with the listing
//     slot and backlog of the Messaging source.
//  2. each conversation is scanned by conversation:page tasks, one page
//     each, newest message first (Order=desc), its cursor in
//     run_conversations: messages created at or after until are skipped,
//     and the scan stops at the first message created before since, or at
//     the index an earlier run read it up to (conversation_progress), so a
//     later run reads only what is new. Each message with media is queued
//     as one conversation message task (ArchiveConversationMessage).
//
// Stopping at the first message older than since takes a conversation's
// date_created order to follow its index order. Twilio says an index only
// grows; a message created through the API with an explicit DateCreated
// (an import) may break the order, and such messages older than since
// below a newer one are then not read: the README says so.
//
// Scan tasks are listing work in the list queue, which the workers serve
// only while the media queue is empty (StrictPriority): a scan's page
// (at most 100 message tasks) waits until the messages queued before it
// are handled, so the queue stays bounded without a fleet-wide slot.

// TypeScanConversation scans one page of one conversation of a run.
const TypeScanConversation = "conversation:page"

// ScanConversationPayload scans page Page of a conversation of a run; the
// cursor is in Postgres (run_conversations.next_page_url).
type ScanConversationPayload struct {
	RunID           uuid.UUID `json:"run_id"`
	ConversationSID string    `json:"conversation_sid"`
	Page            int       `json:"page"`
}

func (p ScanConversationPayload) validate() error {
	if p.RunID.Version() == 0 || !twilio.ValidConversationSID(p.ConversationSID) || p.Page < 0 {
		return fmt.Errorf("bad run_id, conversation_sid %q or page %d", p.ConversationSID, p.Page)
	}
	return nil
}

func (p ScanConversationPayload) run() uuid.UUID { return p.RunID }

// NewScanConversationTask returns the task that scans one page of a
// conversation.
func NewScanConversationTask(q Queues, p ScanConversationPayload) (*asynq.Task, error) {
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("scan conversation task: %w", err)
	}
	id := "conv:" + p.RunID.String() + ":" + p.ConversationSID + ":" + strconv.Itoa(p.Page)
	return newTask(TypeScanConversation, p, id, asynq.Queue(q.List), asynq.MaxRetry(listMaxRetry), asynq.Timeout(10*time.Minute))
}

// convPageSize is Conversations v1's largest page.
const convPageSize = 100

// listConversations lists one page of a service's conversations (window
// w of a conversations run), records them for the run and queues a scan
// of each; ListPage has taken the listing slot and checked the backlog.
func (h *Handlers) listConversations(ctx context.Context, run catalog.Run, w catalog.Window) error {
	if w.Seq >= len(run.Services) {
		return h.failWindow(ctx, run, w, fmt.Sprintf("window %d names no service (the run lists %d)", w.Seq, len(run.Services)))
	}
	service := run.Services[w.Seq]
	uri := w.NextPageURI
	if w.Page == 0 && uri == "" {
		var err error
		// EndDate is a whole day for Twilio (its docs give
		// YYYY-MM-DDT23:59:59Z): ask for the last day before until and
		// trim by date_created below.
		params := twilio.ConversationListParams{EndDate: run.Until.Add(-time.Nanosecond), PageSize: convPageSize}
		if uri, err = h.twilio.Conversations.ListURL(service, params); err != nil {
			return h.failWindow(ctx, run, w, errText(err))
		}
	}
	if w.Page >= maxWindowPages {
		return h.failWindow(ctx, run, w, fmt.Sprintf("listed %d pages of conversations without reaching the last: stopped (next_page_url never ends)", w.Page))
	}
	first, err := h.catalog.FollowCursor(ctx, run.ID, w.Seq, w.Page, uri)
	if err != nil {
		return err
	}
	if first != w.Page {
		return h.failWindow(ctx, run, w, fmt.Sprintf("Twilio's next_page_url went round in a cycle: page %d is page %d again", w.Page, first))
	}
	page, err := h.twilio.Conversations.Page(ctx, uri)
	if err != nil {
		return h.listingError(ctx, err, func(reason string) error {
			return h.failWindow(ctx, run, w, reason)
		})
	}
	refs := make([]catalog.ConversationRef, 0, len(page.Conversations))
	for _, cv := range page.Conversations {
		// Created after the range: it holds no message of it.
		if !cv.DateCreated.IsZero() && !cv.DateCreated.Before(run.Until) {
			continue
		}
		refs = append(refs, catalog.ConversationRef{SID: cv.SID, ServiceSID: cv.ChatServiceSID})
	}
	added, err := h.catalog.AddConversations(ctx, run.ID, refs)
	if err != nil {
		return err
	}
	for _, v := range added {
		if err := h.enqueuer.In(ctx)(NewScanConversationTask(h.queues, ScanConversationPayload{RunID: run.ID, ConversationSID: v.ConversationSID})); err != nil {
			return err
		}
	}
	if page.NextPageURL != "" {
		if err := h.enqueuer.In(ctx)(NewListPageTask(h.queues, ListPagePayload{RunID: run.ID, Window: w.Seq, Page: w.Page + 1})); err != nil {
			return err
		}
	}
	if _, err := h.catalog.AdvanceWindow(ctx, run.ID, w.Seq, w.Page, page.NextPageURL); err != nil {
		return err
	}
	if page.NextPageURL == "" {
		return h.releaseNext(ctx, run)
	}
	return nil
}

// ScanConversation scans one page of a conversation's messages, newest
// first: records the messages of the run's range, queues a task for each
// with media, queues the next page unless the scan ends here, and only
// then advances the cursor, so a crash repeats work rather than skipping
// it.
func (h *Handlers) ScanConversation(ctx context.Context, t *asynq.Task) error {
	return runStep(h, nil, h.scanConversation)(ctx, t)
}

func (h *Handlers) scanConversation(ctx context.Context, run catalog.Run, p ScanConversationPayload) error {
	v, err := h.catalog.GetRunConversation(ctx, run.ID, p.ConversationSID)
	if err != nil {
		if errors.Is(err, catalog.ErrConversationNotInRun) {
			return permanent(err)
		}
		return err
	}
	if v.State != catalog.WindowPending || v.Page != p.Page {
		return nil // handled already: a duplicate delivery
	}
	fail := func(reason string) error { return h.catalog.FailConversation(ctx, run.ID, v.ConversationSID, reason) }
	uri := v.NextPageURL
	if v.Page == 0 && uri == "" {
		if v.StopIndex >= 0 && !run.DryRun {
			// What an earlier run read is not read again; what the
			// catalog still has to do of it (a media that failed, a
			// delete asked for now) joins this run from Postgres.
			if err := h.queueKnownWork(ctx, run, v); err != nil {
				return err
			}
		}
		if uri, err = h.twilio.ConversationMessages.ListURL(v.ServiceSID, v.ConversationSID,
			twilio.ConversationMessageListParams{Order: twilio.OrderDesc, PageSize: convPageSize}); err != nil {
			return h.badSID(err, fail)
		}
	}
	// No endless scan: one that never reaches its last page, or whose
	// cursors go round (A→B→A), fails with the reason.
	if v.Page >= maxWindowPages {
		reason := fmt.Sprintf("read %d pages of conversation %s without reaching the last: stopped (next_page_url never ends)", v.Page, v.ConversationSID)
		return permanent(errors.Join(errors.New(reason), fail(reason)))
	}
	first, err := h.catalog.FollowConversationCursor(ctx, run.ID, v.ConversationSID, v.Page, uri)
	if err != nil {
		return err
	}
	if first != v.Page {
		reason := fmt.Sprintf("Twilio's next_page_url of conversation %s went round in a cycle: page %d is page %d again", v.ConversationSID, v.Page, first)
		return permanent(errors.Join(errors.New(reason), fail(reason)))
	}
	page, err := h.twilio.ConversationMessages.Page(ctx, uri)
	if twilio.IsGone(err) {
		// Deleted since it was listed: nothing of it is left to read.
		_, aerr := h.catalog.AdvanceConversation(ctx, run, v.ConversationSID, v.Page, "", -1, false)
		return aerr
	}
	if err != nil {
		return h.listingError(ctx, err, fail)
	}

	var (
		recs  []catalog.MessageRecord
		media []catalog.MediaRecord
		top   int64 = -1
		stop  bool
	)
	for i := range page.Messages {
		m := &page.Messages[i]
		if v.StopIndex >= 0 && m.Index <= v.StopIndex {
			stop = true // an earlier run read from here down
			break
		}
		created := m.DateCreated.Time
		if !created.IsZero() && !created.Before(run.Until) {
			continue // newer than the range
		}
		top = max(top, m.Index)
		if !created.IsZero() && created.Before(run.Since) {
			stop = true // older than the range, and so is every message below it
			break
		}
		if len(m.Media) == 0 {
			continue // nothing to archive; the message stays as it is
		}
		rec := catalog.MessageRecord{
			SID: m.SID, AccountSID: run.AccountSID, DateCreated: created, From: m.Author,
			NumMedia: len(m.Media), NumMediaKnown: true,
			Source: catalog.SourceConversations, ServiceSID: m.ChatServiceSID, ConversationSID: m.ConversationSID,
			Index: m.Index, Author: m.Author,
		}
		if run.DryRun {
			// A dry run writes no message row, so its tasks could not find
			// the message: it records the listed media here instead.
			rec.NumMedia, rec.NumMediaKnown = 0, true
			for _, md := range m.Media {
				media = append(media, conversationMediaRecord(run, m, md))
			}
		}
		recs = append(recs, rec)
	}
	if err := h.catalog.RecordMessages(ctx, run.ID, recs, run.DryRun); err != nil {
		return err
	}
	if run.DryRun {
		if err := h.catalog.RecordMedia(ctx, run.ID, media, true); err != nil {
			return err
		}
	} else {
		for _, rec := range recs {
			if err := h.enqueuer.In(ctx)(NewArchiveConversationMessageTask(h.queues, ArchiveMessagePayload{RunID: run.ID, MessageSID: rec.SID})); err != nil {
				return err
			}
		}
	}
	next := page.NextPageURL
	if stop {
		next = ""
	}
	if next != "" {
		if err := h.enqueuer.In(ctx)(NewScanConversationTask(h.queues, ScanConversationPayload{RunID: run.ID, ConversationSID: v.ConversationSID, Page: v.Page + 1})); err != nil {
			return err
		}
	}
	_, err = h.catalog.AdvanceConversation(ctx, run, v.ConversationSID, v.Page, next, top, next == "" && !stop)
	return err
}

// queueKnownWork queues the catalogued messages of a conversation, below
// where this scan stops, that still have work for the run. A few are
// queued now; the rest are joined to the run as pending messages, which
// the reconciler queues in bounded batches once they are stale, so the
// queue stays bounded however many there are.
func (h *Handlers) queueKnownWork(ctx context.Context, run catalog.Run, v catalog.RunConversation) error {
	sids, err := h.catalog.KnownWork(ctx, run, v.ConversationSID, v.StopIndex)
	if err != nil {
		return err
	}
	const queuedNow = convPageSize
	for i, sid := range sids {
		if i == queuedNow {
			break
		}
		if err := h.enqueuer.In(ctx)(NewArchiveConversationMessageTask(h.queues, ArchiveMessagePayload{RunID: run.ID, MessageSID: sid})); err != nil {
			return err
		}
	}
	return nil
}

// conversationMediaRecord is what the catalog keeps of one media entry of
// a Conversations message.
func conversationMediaRecord(run catalog.Run, m *twilio.ConversationMessage, md twilio.ConversationMedia) catalog.MediaRecord {
	return catalog.MediaRecord{
		SID: md.SID, AccountSID: run.AccountSID, MessageSID: m.SID, ContentType: md.ContentType,
		DateCreated: m.DateCreated.Time, Source: catalog.SourceConversations,
		ConversationSID: m.ConversationSID, Author: m.Author, Filename: md.Filename, ListedSize: md.Size,
	}
}

// requeueConversations queues again the scans of a run's conversations
// that have not moved since cutoff (their task may be lost).
func (h *Handlers) requeueConversations(ctx context.Context, run catalog.Run, cutoff time.Time) error {
	vs, err := h.catalog.PendingConversations(ctx, run.ID, cutoff, h.requeueBatch)
	if err != nil {
		return err
	}
	enqueue := h.enqueuer.RequeueIn(ctx)
	for _, v := range vs {
		if err := enqueue(NewScanConversationTask(h.queues, ScanConversationPayload{RunID: run.ID, ConversationSID: v.ConversationSID, Page: v.Page})); err != nil {
			return err
		}
	}
	return nil
}

// newMessageTask is the task of a run's messages, by the run's source. A
// Conversations message is always its own task (its delete is the whole
// message's), so its payload names no more messages.
func newMessageTask(q Queues, run catalog.Run, p ArchiveMessagePayload) (*asynq.Task, error) {
	if run.Source == catalog.SourceConversations {
		return NewArchiveConversationMessageTask(q, p)
	}
	return NewArchiveMessageTask(q, p)
}
