package jobs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/twilio"
)

// TypeArchiveConversationMessage archives one Conversations message of a
// run: its record (JSON) and its media, and, with --delete, deletes the
// message (and with it its media: MCS has no delete) once every media of
// it is archived and verified and no hold covers it.
const TypeArchiveConversationMessage = "conversation:message"

// NewArchiveConversationMessageTask returns the task that archives (and,
// with --delete, deletes) one Conversations message. Its queue, retries and
// timeout are a Messaging message task's (NewArchiveMessageTask).
func NewArchiveConversationMessageTask(q Queues, p ArchiveMessagePayload) (*asynq.Task, error) {
	if p.RunID.Version() == 0 || !twilio.ValidConversationMessageSID(p.MessageSID) {
		return nil, fmt.Errorf("archive conversation message task: bad run_id or message_sid %q", p.MessageSID)
	}
	return newTask(TypeArchiveConversationMessage, conversationMessagePayload(p), "conv-message:"+p.RunID.String()+":"+p.MessageSID,
		asynq.Queue(q.Media), asynq.MaxRetry(listMaxRetry), asynq.Timeout(time.Hour))
}

// conversationMessagePayload is ArchiveMessagePayload for an IM… SID.
type conversationMessagePayload ArchiveMessagePayload

func (p conversationMessagePayload) validate() error {
	if p.RunID.Version() == 0 || !twilio.ValidConversationMessageSID(p.MessageSID) {
		return fmt.Errorf("bad run_id or message_sid %q", p.MessageSID)
	}
	return nil
}

func (p conversationMessagePayload) run() uuid.UUID { return p.RunID }

// ArchiveConversationMessage archives one Conversations message of a run:
//
//  1. fetch the message, if the run has not listed its media yet (or its
//     record is not archived), and record its media with the message
//     listed, in one statement;
//  2. archive its record (author, body, attributes, dates, media) as a
//     create-only JSON object beside its media, its SHA-256 recorded;
//  3. archive its media as a Messaging message's are (archiveBatch: the
//     same copy, commit and per-media proof);
//  4. with --delete, delete the message once every media of it is
//     archived and proven now, and its record too (deleteConversationMessage).
func (h *Handlers) ArchiveConversationMessage(ctx context.Context, t *asynq.Task) error {
	return runStep(h, nil, h.archiveConversationMessage)(ctx, t)
}

func (h *Handlers) archiveConversationMessage(ctx context.Context, run catalog.Run, p conversationMessagePayload) error {
	if run.DryRun {
		return nil // a dry run lists its media while it scans
	}
	msg, err := h.catalog.GetConversationMessage(ctx, p.MessageSID)
	if err != nil {
		if errors.Is(err, catalog.ErrNotConversation) {
			return permanent(errors.Join(err, h.catalog.FailMessage(ctx, run.ID, p.MessageSID, errText(err))))
		}
		return err
	}
	if msg.AccountSID != run.AccountSID {
		err := permanent(fmt.Errorf("message %s belongs to account %s, not to run %s's", msg.SID, msg.AccountSID, run.ID))
		return errors.Join(err, h.catalog.FailMessage(ctx, run.ID, msg.SID, errText(err)))
	}
	state, err := h.catalog.RunMessageState(ctx, run.ID, msg.SID)
	if err != nil {
		return err
	}
	var listErr error
	if state == catalog.MessagePending || msg.Record == nil {
		if listErr = h.listConversationMessage(ctx, run, &msg, state == catalog.MessagePending); listErr != nil && !isPermanent(listErr) {
			return listErr
		}
	}
	errs := h.syncMessageHolds(ctx, run, []string{msg.SID})
	errs = append(errs, h.workOnMessages(ctx, run, []string{msg.SID}, nil, false, h.archiveConversationMedia), listErr)
	if err := taskError(errs); err != nil {
		if !isPermanent(err) {
			return &mediaStageError{err}
		}
		// A media failed for good: the message is not deleted, so its
		// archived media are no longer work for the run.
		if run.Delete {
			if kerr := h.catalog.KeepMessage(ctx, run.ID, msg.SID, "not deleted: another media of its message could not be archived"); kerr != nil {
				return kerr
			}
		}
		return err
	}
	if !run.Delete {
		return nil
	}
	if err := h.deleteConversationMessage(ctx, run, msg); err != nil && !isPermanent(err) {
		return &mediaStageError{err}
	} else if err != nil {
		return err
	}
	return nil
}

// archiveConversationMedia archives one batch of a Conversations message's
// media; the delete is the message's, once all are archived.
func (h *Handlers) archiveConversationMedia(ctx context.Context, run catalog.Run, items []catalog.RunMediaItem) error {
	_, errs := h.archiveBatch(ctx, run, items)
	return taskError(errs)
}

// listConversationMessage fetches a message, records its media (when
// record is set: the run had not listed them) and archives its record.
func (h *Handlers) listConversationMessage(ctx context.Context, run catalog.Run, msg *catalog.ConversationMessage, record bool) error {
	m, err := h.twilio.ConversationMessages.Get(ctx, msg.ServiceSID, msg.ConversationSID, msg.SID)
	if twilio.IsGone(err) {
		if !record {
			return nil // listed before: its media, gone with it, are found so when copied
		}
		return h.catalog.GoneMessage(ctx, run.ID, msg.SID, 0, "gone from Twilio before its media were listed: "+errText(err))
	}
	if err != nil {
		return h.listingError(ctx, err, func(reason string) error {
			return h.catalog.FailMessage(ctx, run.ID, msg.SID, reason)
		})
	}
	// The record first: once a media is archived, the message may be
	// deleted, and its record must be there before.
	rc, err := h.archiveMessageRecord(ctx, run, msg, m)
	if err != nil {
		return err
	}
	msg.Record = rc
	if !record {
		return nil
	}
	recs := make([]catalog.MediaRecord, 0, len(m.Media))
	for _, md := range m.Media {
		recs = append(recs, conversationMediaRecord(run, m, md))
	}
	return h.catalog.RecordLastMedia(ctx, run.ID, msg.SID, recs, len(recs), false)
}

// conversationRecord is a Conversations message as archived beside its
// media: what deleting it from Twilio would otherwise lose. Its fields are
// in a fixed order, so the same message is the same bytes.
type conversationRecord struct {
	Source          string                    `json:"source"`
	AccountSID      string                    `json:"account_sid"`
	ServiceSID      string                    `json:"chat_service_sid"`
	ConversationSID string                    `json:"conversation_sid"`
	SID             string                    `json:"sid"`
	Index           int64                     `json:"index"`
	Author          string                    `json:"author"`
	ParticipantSID  string                    `json:"participant_sid"`
	Body            string                    `json:"body"`
	Attributes      string                    `json:"attributes"`
	DateCreated     string                    `json:"date_created"`
	DateUpdated     string                    `json:"date_updated,omitempty"`
	Media           []conversationRecordMedia `json:"media"`
}

type conversationRecordMedia struct {
	SID         string `json:"sid"`
	ContentType string `json:"content_type"`
	Filename    string `json:"filename"`
	Size        int64  `json:"size"`
}

// archiveMessageRecord stores a message's record, create-only, under a key
// named by its SHA-256 (the same record stored twice is one object), and
// records it in the catalog.
func (h *Handlers) archiveMessageRecord(ctx context.Context, run catalog.Run, msg *catalog.ConversationMessage, m *twilio.ConversationMessage) (*catalog.MessageRecordCopy, error) {
	r := conversationRecord{
		Source: catalog.SourceConversations, AccountSID: run.AccountSID, ServiceSID: m.ChatServiceSID,
		ConversationSID: m.ConversationSID, SID: m.SID, Index: m.Index, Author: m.Author,
		ParticipantSID: m.ParticipantSID, Body: m.Body, Attributes: m.Attributes,
		DateCreated: isoOrEmpty(m.DateCreated.Time), DateUpdated: isoOrEmpty(m.DateUpdated.Time),
		Media: make([]conversationRecordMedia, 0, len(m.Media)),
	}
	for _, md := range m.Media {
		r.Media = append(r.Media, conversationRecordMedia{SID: md.SID, ContentType: md.ContentType, Filename: md.Filename, Size: md.Size})
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("record of message %s: %w", m.SID, err)
	}
	b = append(b, '\n')
	sha := sha256.Sum256(b)
	rc := &catalog.MessageRecordCopy{Size: int64(len(b)), SHA256: sha}
	if msg.Record != nil && msg.Record.SHA256 == sha && msg.Record.Size == rc.Size {
		return msg.Record, nil // archived already, unchanged
	}
	day := m.DateCreated.Time
	if day.IsZero() {
		day = msg.DateCreated
	}
	k := archive.KeyInfo{
		AccountSID: run.AccountSID, MessageSID: m.SID, DateSent: day,
		Source: archive.SourceConversations, ConversationSID: m.ConversationSID, Author: m.Author,
	}
	stored, err := h.storeRecord(ctx, k, m.DateCreated.Time, b)
	if err != nil {
		return nil, err
	}
	if err := h.catalog.RecordMessageCopy(ctx, m.SID, stored); err != nil {
		return nil, err
	}
	return &stored, nil
}

// storeRecord stores a message's record b, create-only, beside its media
// under a key named by its SHA-256 (archive.MessageRecordKey), so the same
// record stored twice is one object; it returns the proof to catalog.
func (h *Handlers) storeRecord(ctx context.Context, k archive.KeyInfo, created time.Time, b []byte) (catalog.MessageRecordCopy, error) {
	sha := sha256.Sum256(b)
	rc := catalog.MessageRecordCopy{Key: archive.MessageRecordKey(h.prefix, k, sha), Size: int64(len(b)), SHA256: sha}
	meta := archive.MediaMetadata(k, created)
	delete(meta, archive.MetaMediaSID)
	in := archive.PutInput{Key: rc.Key, ContentType: "application/json", Size: rc.Size, SHA256: sha, Metadata: meta}
	if h.objectLock != "" {
		in.LockMode, in.RetainUntil = h.objectLock, time.Now().UTC().Add(h.retention).Truncate(time.Second)
	}
	if _, err := h.store.Put(ctx, in, bytes.NewReader(b)); err != nil {
		if errors.Is(err, archive.ErrInvalidInput) || errors.Is(err, archive.ErrLockNotApplied) {
			// As for a media (copyMedia): no retry makes the store keep it
			// as asked.
			return rc, permanent(fmt.Errorf("store the record of message %s at %s: %w", k.MessageSID, rc.Key, err))
		}
		if !errors.Is(err, archive.ErrConflict) {
			return rc, fmt.Errorf("store the record of message %s at %s: %w", k.MessageSID, rc.Key, err)
		}
		// The key names the bytes: an object there is this record unless
		// the store was tampered with, which Verify tells.
		if verr := archive.Verify(ctx, h.store, rc.Key, rc.Size, sha); verr != nil {
			return rc, permanent(fmt.Errorf("store the record of message %s at %s: %w (%v)", k.MessageSID, rc.Key, err, verr))
		}
	}
	return rc, nil
}

func isoOrEmpty(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// deleteConversationMessage deletes a Conversations message, and so every
// media of it, once (all at this moment): the run marked it to delete; the
// message as Twilio has it now holds no media the catalog has not
// archived; its record is archived as it is now and verified; every media
// of it is archived, verified against the store, judged plausible and
// claimed (claimArchived, as a Messaging media's delete), no hold covering
// it. Each DELETE attempt is leased against the holds for every media of
// the message. A message with any media not archived stays.
func (h *Handlers) deleteConversationMessage(ctx context.Context, run catalog.Run, msg catalog.ConversationMessage) error {
	wanted, err := h.catalog.MessageDeleteWanted(ctx, run.ID, msg.SID)
	if err != nil || !wanted {
		return err
	}
	items, err := h.catalog.MessageMedia(ctx, msg.SID)
	if err != nil {
		return err
	}
	keep := func(reason string) error {
		h.log.Warn().Str("message_sid", msg.SID).Str("run_id", run.ID.String()).Str("reason", reason).
			Msg("conversation message NOT deleted from Twilio")
		return h.catalog.KeepMessage(ctx, run.ID, msg.SID, "not deleted: "+reason)
	}
	archived := make(map[string]bool, len(items))
	for _, it := range items {
		if it.AccountSID != run.AccountSID {
			return keep(fmt.Sprintf("media %s is of another account", it.SID))
		}
		if it.State != catalog.MediaArchived && it.State != catalog.MediaDeleted {
			return keep(fmt.Sprintf("media %s is %s, not archived", it.SID, it.State))
		}
		archived[it.SID] = true
	}
	// Twilio's message now: a media the catalog does not hold archived
	// would go with it. Its record is archived as it is now.
	m, err := h.twilio.ConversationMessages.Get(ctx, msg.ServiceSID, msg.ConversationSID, msg.SID)
	gone := twilio.IsGone(err)
	switch {
	case gone:
	case err != nil:
		return fmt.Errorf("fetch message %s before deleting it: %w", msg.SID, err)
	default:
		for _, md := range m.Media {
			if !archived[md.SID] {
				return keep(fmt.Sprintf("it now has media %s, which this run did not archive", md.SID))
			}
		}
		rc, err := h.archiveMessageRecord(ctx, run, &msg, m)
		if err != nil {
			return err
		}
		if err := archive.Verify(ctx, h.store, rc.Key, rc.Size, rc.SHA256); err != nil {
			if errors.Is(err, archive.ErrNotFound) || errors.Is(err, archive.ErrChecksumMismatch) {
				return keep("its archived record failed verification: " + errText(err))
			}
			return fmt.Errorf("verify the record of message %s: %w", msg.SID, err)
		}
	}

	// Each media proven and claimed, a few at once.
	claimed := make([]bool, len(items))
	errs := parallel(len(items), func(i int) (err error) {
		claimed[i], err = h.claimArchived(ctx, run, items[i])
		return err
	})
	if err := taskError(errs); err != nil {
		return err // a media not proven now: the message stays; a retry proves again
	}
	var sids []string
	deletedBefore := false
	for i, ok := range claimed {
		if ok {
			sids = append(sids, items[i].SID)
		} else if items[i].State == catalog.MediaDeleted {
			deletedBefore = true
		}
	}
	if len(sids) == 0 {
		return nil // each recorded: deleted before, or held
	}
	// A media recorded deleted says the message's DELETE went through (a
	// try that died before it recorded every media): the rest are only
	// recorded.
	gone = gone || deletedBefore
	if !gone && len(sids) != len(items) {
		// A hold covers the message (it came between two claims): those
		// claimed are held back too.
		for _, sid := range sids {
			if err := h.heldDelete(ctx, run, sid, false); err != nil {
				return err
			}
		}
		return nil
	}

	sent := false
	if !gone {
		guard := twilio.WithGuard(func(ctx context.Context) (time.Time, error) {
			start := time.Now()
			var lease time.Duration
			for _, sid := range sids {
				// Per run: a cancelled run sends no DELETE (catalog.CancelRun).
				l, err := h.catalog.LeaseRunDelete(ctx, run.ID, sid)
				if err != nil {
					return time.Time{}, err
				}
				lease = l
			}
			sent = true
			return start.Add(lease), nil
		})
		err = h.twilio.ConversationMessages.Delete(ctx, msg.ServiceSID, msg.ConversationSID, msg.SID, guard)
		switch {
		case errors.Is(err, catalog.ErrRunNotLive):
			// Cancelled (or ended) since the claims: nothing is sent (as
			// deleteArchived).
			h.log.Info().Str("message_sid", msg.SID).Str("run_id", run.ID.String()).Msg("run no longer running; message delete not sent")
			return nil
		case errors.Is(err, catalog.ErrHeld):
			for _, sid := range sids {
				if herr := h.heldDelete(ctx, run, sid, sent); herr != nil {
					return herr
				}
			}
			return nil
		case errors.Is(err, catalog.ErrNotDeletable):
			return fmt.Errorf("delete message %s: a claim went away meanwhile; retried: %w", msg.SID, err)
		case err != nil && !h.conversationMessageGone(ctx, msg, err):
			return fmt.Errorf("delete message %s from Twilio: %w", msg.SID, err)
		}
	}
	var derrs []error
	for _, sid := range sids {
		derrs = append(derrs, h.recordDeleted(ctx, run, sid, true))
	}
	return errors.Join(derrs...)
}

// conversationMessageGone says whether a failed DELETE still leaves the
// message deleted: only the API's own 404 / 20404 for it says so.
func (h *Handlers) conversationMessageGone(ctx context.Context, msg catalog.ConversationMessage, err error) bool {
	if twilio.IsGone(err) {
		return true
	}
	if !twilio.IsNotFound(err) {
		return false
	}
	_, gerr := h.twilio.ConversationMessages.Get(ctx, msg.ServiceSID, msg.ConversationSID, msg.SID)
	return twilio.IsGone(gerr)
}
