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
func (h *Handlers) ApplyHold(ctx context.Context, t *asynq.Task) error {
	p, err := decode[ApplyHoldPayload](t)
	if err != nil {
		return err
	}
	if !h.legalHolds {
		return nil // the bucket has no Object Lock: holds live in Postgres only
	}
	n := 0
	err = h.catalog.HeldMedia(ctx, p.HoldID, func(sid, key, version string) error {
		if err := h.syncLegalHold(ctx, sid, key, version); err != nil {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		return err
	}
	h.log.Info().Int64("hold", p.HoldID).Str("event", p.Event).Int("objects", n).Msg("S3 legal holds applied")
	return nil
}

// syncLegalHold sets one object's S3 legal hold to whether an active hold
// covers its media.
func (h *Handlers) syncLegalHold(ctx context.Context, sid, key, version string) error {
	lh, ok := h.store.(archive.LegalHolder)
	if !ok || !h.legalHolds {
		return nil
	}
	held, err := h.catalog.MediaHeld(ctx, sid)
	if err != nil {
		return err
	}
	if err := lh.SetLegalHold(ctx, key, version, held); err != nil && !(errors.Is(err, archive.ErrNotFound) && !held) {
		return fmt.Errorf("legal hold of media %s: %w", sid, err)
	}
	return nil
}
