package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/twilio"
)

// The per-media graph workers before issue #14 queued: a message:media task
// per message, which listed its media and queued a media:archive task per
// media, which queued a media:delete task per media. A deployment upgraded
// mid-run may still hold such tasks in Redis; this worker handles each by
// queueing its message's message:archive task (handOver), so nothing they
// stand for is lost, and a media:delete keeps its scope checks first. The
// old task does none of the work itself: under its own limits (a 5-minute
// timeout, 12 retries) a whole message's downloads would not fit, and the
// ten old tasks of one message would each download all of it; the message
// task's ID makes them one. Nothing queues them any more: remove them once
// no worker older than #14 runs.
const (
	TypeListMessage  = "message:media"
	TypeArchiveMedia = "media:archive"
	TypeDeleteMedia  = "media:delete"
)

// ListMessagePayload is the old message:media task's, ArchiveMessagePayload
// under its old name: a message of a run.
type ListMessagePayload = ArchiveMessagePayload

// MediaPayload is the old media:archive and media:delete tasks': one media
// of a run.
type MediaPayload struct {
	RunID    uuid.UUID `json:"run_id"`
	MediaSID string    `json:"media_sid"`
}

func (p MediaPayload) validate() error {
	if p.RunID.Version() == 0 || !twilio.ValidMediaSID(p.MediaSID) {
		return fmt.Errorf("bad run_id or media_sid %q", p.MediaSID)
	}
	return nil
}

func (p MediaPayload) run() uuid.UUID { return p.RunID }

// NewArchiveMediaTask returns an old media:archive task, as workers before
// #14 queued it (for tests of the upgrade path).
func NewArchiveMediaTask(q Queues, p MediaPayload) (*asynq.Task, error) {
	if p.MediaSID == "" {
		return nil, fmt.Errorf("archive media task: empty media SID")
	}
	return newTask(TypeArchiveMedia, p, "archive:"+p.RunID.String()+":"+p.MediaSID,
		asynq.Queue(q.Media), asynq.MaxRetry(12), asynq.Timeout(30*time.Minute))
}

// NewDeleteMediaTask returns an old media:delete task, as workers before
// #14 queued it (for tests of the upgrade path and of its scope checks).
func NewDeleteMediaTask(q Queues, p MediaPayload) (*asynq.Task, error) {
	if p.MediaSID == "" {
		return nil, fmt.Errorf("delete media task: empty media SID")
	}
	return newTask(TypeDeleteMedia, p, "delete:"+p.RunID.String()+":"+p.MediaSID,
		asynq.Queue(q.Media), asynq.MaxRetry(12), asynq.Timeout(5*time.Minute))
}

// ListMessage handles an old message:media task: it queues its message's
// task.
func (h *Handlers) ListMessage(ctx context.Context, t *asynq.Task) error {
	return runStep(h, nil, func(ctx context.Context, run catalog.Run, p ListMessagePayload) error {
		return h.handOver(ctx, run, p.MessageSID)
	})(ctx, t)
}

// handOver queues the message:archive task of a run's message, for an old
// task: that task does the message's work, under its own limits, once for
// all the old tasks of the message (its task ID: one already queued, or
// being handled, is success).
func (h *Handlers) handOver(ctx context.Context, run catalog.Run, message string) error {
	err := h.enqueuer.In(ctx)(NewArchiveMessageTask(h.queues, ArchiveMessagePayload{RunID: run.ID, MessageSID: message}))
	if errors.Is(err, asynq.ErrDuplicateTask) || errors.Is(err, asynq.ErrTaskIDConflict) {
		return nil
	}
	return err
}

// ArchiveMedia handles an old media:archive task: it queues its media's
// message's task, which archives it (and, with --delete, deletes it) with
// the rest of the message, as Postgres says is left.
func (h *Handlers) ArchiveMedia(ctx context.Context, t *asynq.Task) error {
	return runStep(h, nil, func(ctx context.Context, run catalog.Run, p MediaPayload) error {
		it, err := h.catalog.GetMedia(ctx, p.MediaSID)
		if errors.Is(err, catalog.ErrMediaNotFound) {
			return permanent(err)
		}
		if err != nil {
			return err
		}
		return h.handOver(ctx, run, it.MessageSID)
	})(ctx, t)
}

// DeleteMedia handles an old media:delete task: the scope checks it always
// made, then it queues its media's message's task (which deletes what the
// run marked, each after its own proof).
func (h *Handlers) DeleteMedia(ctx context.Context, t *asynq.Task) error {
	return runStep(h, nil, func(ctx context.Context, run catalog.Run, p MediaPayload) error {
		if !run.Delete || run.DryRun {
			return permanent(fmt.Errorf("run %s did not ask to delete", run.ID))
		}
		it, err := h.catalog.GetMedia(ctx, p.MediaSID)
		if err != nil {
			if errors.Is(err, catalog.ErrMediaNotFound) {
				return permanent(err)
			}
			return err
		}
		// In scope: a task names a run and a media, and only a media of the
		// run's account that the run itself marked to delete is deleted; any
		// other is refused without touching its rows, which are not this run's.
		if it.AccountSID != run.AccountSID {
			h.log.Error().Str("media_sid", it.SID).Str("run_id", run.ID.String()).
				Msg("delete task names a media of another account; media NOT deleted from Twilio")
			return permanent(fmt.Errorf("delete media %s: it belongs to account %s, not to run %s's account %s",
				it.SID, it.AccountSID, run.ID, run.AccountSID))
		}
		if wanted, err := h.catalog.DeleteWanted(ctx, run.ID, it.SID); err != nil {
			return err
		} else if !wanted {
			h.log.Error().Str("media_sid", it.SID).Str("run_id", run.ID.String()).
				Msg("delete task names a media its run does not delete; media NOT deleted from Twilio")
			return permanent(fmt.Errorf("delete media %s: run %s did not mark it to delete", it.SID, run.ID))
		}
		return h.handOver(ctx, run, it.MessageSID)
	})(ctx, t)
}
