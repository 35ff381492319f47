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
	h.log.Info().Int64("hold", p.HoldID).Str("event", p.Event).Int("objects", n).Msg("S3 legal holds applied")
	return nil
}

// SyncLegalHolds sets the S3 legal hold of up to limit objects whose hold
// is not confirmed to be what the holds in force require: those a failed
// or lost hold:apply, or a worker that died after archiving, left behind.
// The reconciler calls it each pass.
func (h *Handlers) SyncLegalHolds(ctx context.Context, limit int) error {
	if !h.legalHolds {
		return nil
	}
	n, failed := 0, 0
	var first error
	for o, err := range h.catalog.LegalHoldsToSync(ctx, h.store.Location()) {
		if err != nil {
			return err
		}
		// One object's failure must not keep the others unprotected.
		if err := h.syncLegalHold(ctx, o.MediaSID, o.Key, o.VersionID); err != nil {
			if failed++; first == nil {
				first = err
			}
		} else {
			n++
		}
		if n+failed >= limit || ctx.Err() != nil {
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
