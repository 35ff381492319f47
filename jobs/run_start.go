package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/twilio"
)

// TypeStartRun starts a run the CLI recorded.
const TypeStartRun = "run:start"

// StartRunPayload starts a run recorded by the CLI.
type StartRunPayload struct {
	RunID uuid.UUID `json:"run_id"`
}

func (p StartRunPayload) validate() error {
	if p.RunID.Version() == 0 {
		return errors.New("no run_id")
	}
	return nil
}

func (p StartRunPayload) run() uuid.UUID { return p.RunID }

// NewStartRunTask returns the task that starts run id.
func NewStartRunTask(q Queues, id uuid.UUID) (*asynq.Task, error) {
	return newTask(TypeStartRun, StartRunPayload{RunID: id}, "start:"+id.String(),
		asynq.Queue(q.List), asynq.MaxRetry(listMaxRetry), asynq.Timeout(10*time.Minute))
}

// StartRun begins a run the CLI recorded: a backfill or a policy queues the
// first page of each of its first windows (a policy that deletes also
// queues the messages whose media earlier runs archived and it now
// deletes); a single-message run fetches that message; an export fixes its
// media.
func (h *Handlers) StartRun(ctx context.Context, t *asynq.Task) error {
	return runStep(h, h.markStarted, h.startRun)(ctx, t)
}

// markStarted moves the run to running (once), before the live-run check.
func (h *Handlers) markStarted(ctx context.Context, p StartRunPayload) error {
	if _, err := h.catalog.StartRun(ctx, p.RunID); err != nil {
		if errors.Is(err, catalog.ErrRunNotFound) {
			return permanent(err)
		}
		return err
	}
	return nil
}

func (h *Handlers) startRun(ctx context.Context, run catalog.Run, _ StartRunPayload) error {
	switch run.Kind {
	case catalog.KindExport:
		return h.startExport(ctx, run)
	case catalog.KindRestore:
		return h.startRestore(ctx, run)
	case catalog.KindVerify:
		return h.startVerify(ctx, run)
	case catalog.KindBackfill, catalog.KindPolicy, catalog.KindRetry:
		if err := h.queueWindows(ctx, run, h.enqueuer.In(ctx)); err != nil {
			return err
		}
		if run.Kind == catalog.KindRetry {
			// Its work is the failures of the run it retries, copied when
			// it was created: their conversations' scans, and their
			// messages, a batch at a time.
			if run.Source == catalog.SourceConversations {
				if err := h.requeueConversations(ctx, run, time.Now()); err != nil {
					return err
				}
			}
			return h.requeue(ctx, run, time.Now())
		}
		if run.Kind == catalog.KindPolicy && run.Delete {
			// What earlier runs archived and is now old enough to delete:
			// each of their messages is queued as a message task, which
			// deletes what its run marked (and archives nothing again).
			if _, err := h.catalog.SeedDeletes(ctx, run); err != nil {
				return err
			}
			if err := h.requeue(ctx, run, time.Now()); err != nil {
				return err
			}
		}
	case catalog.KindMessage:
		msg, err := h.twilio.Messages.Get(ctx, run.MessageSID)
		switch {
		case twilio.IsNotFound(err):
			if err := h.catalog.FailMessage(ctx, run.ID, run.MessageSID, "message not found on Twilio"); err != nil {
				return err
			}
		case err != nil:
			return h.listingError(ctx, err, func(reason string) error {
				return h.catalog.FailMessage(ctx, run.ID, run.MessageSID, reason)
			})
		case !twilio.ValidMessageSID(msg.SID) || !strings.EqualFold(msg.SID, run.MessageSID):
			err := twilio.CheckMessageSID(msg.SID)
			if err == nil {
				err = fmt.Errorf("asked for message %s, Twilio answered with message %s", run.MessageSID, msg.SID)
			}
			return h.badSID(err, func(reason string) error {
				return h.catalog.FailMessage(ctx, run.ID, run.MessageSID, reason)
			})
		default:
			rec := messageRecord(run.AccountSID, msg)
			recs := []catalog.MessageRecord{rec}
			// Its record first, as a listed page's (message_records.go).
			if err := h.archiveRecords(ctx, run, time.Now(), recs, []json.RawMessage{msg.Raw}); err != nil {
				if isPermanent(err) {
					return errors.Join(err, h.catalog.FailMessage(ctx, run.ID, run.MessageSID, errText(err)))
				}
				return err
			}
			rec = recs[0]
			if err := h.catalog.RecordMessages(ctx, run.ID, []catalog.MessageRecord{rec}, run.DryRun); err != nil {
				return err
			}
			if rec.HasMedia() {
				if err := h.enqueuer.In(ctx)(NewArchiveMessageTask(h.queues, ArchiveMessagePayload{RunID: run.ID, MessageSID: rec.SID})); err != nil {
					return err
				}
			}
		}
	default:
		reason := fmt.Sprintf("unknown run kind %q", run.Kind)
		if err := h.catalog.FailRun(ctx, run.ID, reason); err != nil {
			return err
		}
		return permanent(errors.New(reason))
	}
	return nil
}
