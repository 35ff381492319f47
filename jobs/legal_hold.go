package jobs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/mediasync/mediasync/archive"
)

// TypeApplyHold brings the S3 legal hold of every object a hold covers in
// line with the holds in force.
const TypeApplyHold = "hold:apply"

// ApplyHoldPayload names the hold that was placed or released.
type ApplyHoldPayload struct {
	HoldID int64  `json:"hold_id"`
	Event  string `json:"event"` // added | released: part of the task id only
}

func (p ApplyHoldPayload) validate() error {
	if p.HoldID < 1 || (p.Event != "added" && p.Event != "released") {
		return fmt.Errorf("bad hold_id %d or event %q", p.HoldID, p.Event)
	}
	return nil
}

// NewApplyHoldTask returns the task that applies a hold's placing or
// release to the archived objects it covers.
func NewApplyHoldTask(q Queues, p ApplyHoldPayload) (*asynq.Task, error) {
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("apply hold task: %w", err)
	}
	return newTask(TypeApplyHold, p, "hold:"+strconv.FormatInt(p.HoldID, 10)+":"+p.Event,
		asynq.Queue(q.List), asynq.MaxRetry(20), asynq.Timeout(30*time.Minute))
}

// ApplyHold sets each object the hold covers to held exactly when some
// active hold covers it now, whether this hold was placed or released: so
// the task is idempotent, and releasing one of two holds lifts nothing.
// Objects already confirmed in that state are skipped, so a retry redoes
// only what failed.
func (h *Handlers) ApplyHold(ctx context.Context, t *asynq.Task) error {
	p, err := decode[ApplyHoldPayload](t)
	if err != nil {
		return err
	}
	if !h.legalHolds {
		return nil // the bucket has no Object Lock: holds live in Postgres only
	}
	n := 0
	for o, err := range h.catalog.HeldMedia(ctx, p.HoldID, h.store.Location()) {
		if err != nil {
			return err
		}
		if err := h.syncLegalHold(ctx, o.MediaSID, o.Key, o.VersionID); err != nil {
			return err
		}
		n++
	}
	// Applied (or lifted) once nothing is left: from then on the
	// reconciler sweeps only objects whose state is unknown for it.
	if err := h.catalog.MarkHoldsSynced(ctx, h.store.Location(), p.HoldID); err != nil {
		return err
	}
	h.log.Info().Int64("hold", p.HoldID).Str("event", p.Event).Int("objects", n).Msg("S3 legal holds applied")
	return nil
}

// SyncLegalHolds keeps S3 legal holds in line with the holds in force
// after a failed or lost hold:apply, or a worker that died after
// archiving: it queues again hold:apply for each hold not yet applied (or,
// released, lifted), and sets the S3 legal hold of up to limit objects
// whose state is unknown, within three quarters of what is left of ctx.
// The reconciler calls it each pass; once every hold is applied it reads
// only the unknown objects, however many media are held.
func (h *Handlers) SyncLegalHolds(ctx context.Context, limit int) error {
	if !h.legalHolds {
		return nil
	}
	unsynced, err := h.catalog.UnsyncedHolds(ctx)
	if err != nil {
		return err
	}
	if h.enqueuer != nil {
		enqueue := h.enqueuer.RequeueIn(ctx)
		for id, active := range unsynced {
			event := "released"
			if active {
				event = "added"
			}
			if err := enqueue(NewApplyHoldTask(h.queues, ApplyHoldPayload{HoldID: id, Event: event})); err != nil {
				return err
			}
		}
	}
	// The sweep leaves a quarter of the pass for recording the holds done.
	sctx, cancel := context.WithCancel(ctx)
	if dl, ok := ctx.Deadline(); ok {
		cancel()
		sctx, cancel = context.WithDeadline(ctx, time.Now().Add(time.Until(dl)*3/4))
	}
	defer cancel()
	n, failed := 0, 0
	var first error
	for o, err := range h.catalog.UnknownLegalHolds(sctx, h.store.Location()) {
		if err != nil {
			if sctx.Err() != nil && ctx.Err() == nil {
				break // this pass's share is spent; the next pass goes on
			}
			return err
		}
		// One object's failure must not keep the others unprotected.
		if err := h.syncLegalHold(sctx, o.MediaSID, o.Key, o.VersionID); err != nil {
			if failed++; first == nil {
				first = err
			}
		} else {
			n++
		}
		if n+failed >= limit || sctx.Err() != nil {
			break
		}
	}
	if n > 0 {
		h.log.Info().Int("objects", n).Msg("S3 legal holds brought in line with the holds in force")
	}
	if first != nil {
		return fmt.Errorf("%d S3 legal holds not set (retried next pass), the first: %w", failed, first)
	}
	return nil
}

// syncLegalHold sets one object's S3 legal hold to whether an active hold
// covers its media, unless it is confirmed so already, and records it once
// S3 has accepted it. No connection is held during the S3 call.
func (h *Handlers) syncLegalHold(ctx context.Context, sid, key, version string) error {
	lh, ok := h.store.(archive.LegalHolder)
	if !ok || !h.legalHolds {
		return nil
	}
	st, err := h.catalog.MediaLegalHold(ctx, sid)
	if err != nil {
		return err
	}
	if st.Confirmed != nil && *st.Confirmed == st.Want {
		return nil
	}
	if err := lh.SetLegalHold(ctx, key, version, st.Want); err != nil && !(errors.Is(err, archive.ErrNotFound) && !st.Want) {
		return fmt.Errorf("legal hold of media %s: %w", sid, err)
	}
	return h.catalog.ConfirmLegalHold(ctx, sid, st.Want, st.Confirmed)
}
