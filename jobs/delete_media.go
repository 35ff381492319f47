package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/twilio"
)

// deleteArchived deletes one archived media from Twilio, and only after
// proving, at this moment, that the store holds exactly the bytes the row
// records (invariant 1), and that they were judged plausibly the media (a
// copy archived before that check existed is read back and judged here):
// verify against the store → claim in the catalog (the row must still say
// archived with that size and SHA-256, and no hold cover it) → DELETE on
// Twilio, each attempt leased against the holds (the API's own 404 / 20404
// means it is already gone) → the row says deleted. The caller has checked
// that the media is of the run's account and that the run marked it to
// delete (run_media.delete_wanted); it is the message task's last step,
// and the legacy media:delete task's.
func (h *Handlers) deleteArchived(ctx context.Context, run catalog.Run, it catalog.MediaItem) error {
	if claimed, err := h.claimArchived(ctx, run, it); !claimed {
		return err
	}
	// The claim was checked before a wait of any length (a limiter slot,
	// the fleet's back-off, retries): each attempt leases the delete again,
	// holding its slot, and is sent within the lease's send window (a
	// quarter of the lease: the rest is for the request to arrive) or not
	// at all.
	sent := false
	guard := twilio.WithGuard(func(ctx context.Context) (time.Time, error) {
		start := time.Now()
		// Per run: a cancelled run sends no DELETE (catalog.CancelRun).
		lease, err := h.catalog.LeaseRunDelete(ctx, run.ID, it.SID)
		if err != nil {
			return time.Time{}, err
		}
		sent = true
		return start.Add(lease), nil
	})
	err := h.twilio.Media.Delete(ctx, it.MessageSID, it.SID, guard)
	switch {
	case errors.Is(err, catalog.ErrRunNotLive):
		// Cancelled (or ended) since the claim: nothing is sent. The claim
		// stays; a later run's delete claims the media again, and if an
		// earlier attempt's DELETE reached Twilio, finds it gone.
		h.log.Info().Str("media_sid", it.SID).Str("run_id", run.ID.String()).Msg("run no longer running; delete not sent")
		return nil
	case errors.Is(err, catalog.ErrHeld):
		return h.heldDelete(ctx, run, it.SID, sent)
	case errors.Is(err, catalog.ErrNotDeletable):
		// The claim went away meanwhile: the same delete run twice and
		// done, or the row changed.
		if now, gerr := h.catalog.GetMedia(ctx, it.SID); gerr == nil && now.State == catalog.MediaDeleted {
			return h.recordDeleted(ctx, run, it.SID, sent)
		}
		return h.mediaError(ctx, run.ID, it.Source, it.SID, permanent(err))
	case err != nil && !h.goneFromTwilio(ctx, it, err):
		return h.mediaError(ctx, run.ID, it.Source, it.SID, fmt.Errorf("delete media %s from Twilio: %w", it.SID, err))
	}
	return h.recordDeleted(ctx, run, it.SID, true)
}

// claimArchived proves an archived media deletable and claims its delete
// (the steps of deleteArchived before the DELETE): verify the stored copy
// now, judge it if it never was, claim it in the catalog. It reports
// claimed true when the DELETE may go out; otherwise the media's outcome
// is recorded (deleted already, held, or failed, with err for the task).
func (h *Handlers) claimArchived(ctx context.Context, run catalog.Run, it catalog.MediaItem) (claimed bool, err error) {
	if !run.Delete || run.DryRun {
		return false, permanent(fmt.Errorf("run %s did not ask to delete", run.ID))
	}
	switch it.State {
	case catalog.MediaDeleted:
		return false, h.counted(it.Source, resultDeleted, h.catalog.SetRunMedia(ctx, run.ID, it.SID, catalog.MediaDeleted, false, ""))
	case catalog.MediaArchived:
	default:
		return false, h.mediaError(ctx, run.ID, it.Source, it.SID, permanent(fmt.Errorf("delete media %s: state is %s, not archived", it.SID, it.State)))
	}

	loc := h.store.Location()
	if it.Store != loc.Kind || it.Bucket != loc.Bucket {
		return false, h.mediaError(ctx, run.ID, it.Source, it.SID, permanent(fmt.Errorf(
			"delete media %s: its copy is in %s %q but this worker's archive is %s %q; not deleting what it cannot verify",
			it.SID, it.Store, it.Bucket, loc.Kind, loc.Bucket)))
	}
	if err := archive.Verify(ctx, h.store, it.Key, it.Size, it.SHA256); err != nil {
		if errors.Is(err, archive.ErrNotFound) || errors.Is(err, archive.ErrChecksumMismatch) {
			// The archived copy is missing or altered: never delete, and
			// say so loudly; retrying will not change the bytes.
			h.log.Error().Err(err).Str("media_sid", it.SID).Str("s3_key", it.Key).
				Msg("archived copy failed verification; media NOT deleted from Twilio")
			return false, h.mediaError(ctx, run.ID, it.Source, it.SID, permanent(fmt.Errorf("verify archived copy of %s: %w", it.SID, err)))
		}
		return false, h.mediaError(ctx, run.ID, it.Source, it.SID, fmt.Errorf("verify archived copy of %s: %w", it.SID, err))
	}
	if it.PlausibleAt.IsZero() {
		// Archived before copies were judged plausibly the media: its
		// bytes, though verified, may be what a proxy made of the media.
		// Read them back and judge them now; only a plausible copy is
		// recorded so and deleted (ClaimDelete requires it).
		if err := archive.CheckStored(ctx, h.store, it.Key, it.Size, it.SHA256, it.ContentType); err != nil {
			if errors.Is(err, archive.ErrImplausible) || errors.Is(err, archive.ErrNotFound) || errors.Is(err, archive.ErrChecksumMismatch) {
				h.log.Error().Str("media_sid", it.SID).Str("s3_key", it.Key).Str("reason", errText(err)).
					Msg("archived copy (archived before copies were checked) is not plausibly the media; media NOT deleted from Twilio")
				return false, h.mediaError(ctx, run.ID, it.Source, it.SID, permanent(fmt.Errorf(
					"archived copy of %s, archived before copies were checked, is not plausibly the media; not deleting it from Twilio: %w", it.SID, err)))
			}
			return false, h.mediaError(ctx, run.ID, it.Source, it.SID, fmt.Errorf("check archived copy of %s: %w", it.SID, err))
		}
		if err := h.catalog.MarkPlausible(ctx, it.SID, it.Size, it.SHA256); err != nil {
			return false, err
		}
	}
	if err := h.catalog.ClaimDelete(ctx, it.SID, it.Size, it.SHA256, catalog.CopyAt{Store: it.Store, Bucket: it.Bucket, Key: it.Key}); err != nil {
		switch {
		case errors.Is(err, catalog.ErrHeld):
			// Refused before any claim: the run's outcome is held, with
			// an audit row only if an earlier attempt's claim or lease
			// was stopped (see ReleaseHeldDelete).
			return false, h.heldDelete(ctx, run, it.SID, false)
		case errors.Is(err, catalog.ErrNotDeletable):
			// Deleted meanwhile by the same work running twice (two
			// tasks of one message: a reconciled task beside a lost one's
			// replay, or an old graph's tasks after an upgrade): only its
			// outcome is left to record. Otherwise the row changed.
			if now, gerr := h.catalog.GetMedia(ctx, it.SID); gerr == nil && now.State == catalog.MediaDeleted {
				return false, h.counted(it.Source, resultDeleted, h.catalog.SetRunMedia(ctx, run.ID, it.SID, catalog.MediaDeleted, false, ""))
			}
			return false, h.mediaError(ctx, run.ID, it.Source, it.SID, permanent(err))
		}
		return false, err
	}
	return true, nil
}

// goneFromTwilio says whether a failed DELETE still leaves the media
// deleted: only when the API itself answers 404 / 20404 for it. A 404 from
// anything else (a proxy, a gateway) says nothing of the media, so it is
// fetched again; recording a media deleted that Twilio still holds would
// leave it there for good, with nothing left to delete it.
func (h *Handlers) goneFromTwilio(ctx context.Context, it catalog.MediaItem, err error) bool {
	if twilio.IsGone(err) {
		return true
	}
	if !twilio.IsNotFound(err) {
		return false
	}
	_, gerr := h.twilio.Media.Get(ctx, it.MessageSID, it.SID)
	return twilio.IsGone(gerr)
}

// recordDeleted records a delete Twilio answered, or a claim found gone.
func (h *Handlers) recordDeleted(ctx context.Context, run catalog.Run, sid string, sent bool) error {
	if err := h.counted(run.Source, resultDeleted, h.catalog.MarkDeleted(ctx, run, sid)); err != nil {
		if errors.Is(err, catalog.ErrHeld) {
			// Any DELETE went out under its lease, before the hold was
			// placed (the hold waited for it); the catalog keeps the media
			// archived, not deleted.
			return h.heldDelete(ctx, run, sid, sent)
		}
		return err
	}
	return nil
}

// heldDelete records that a legal hold stopped a delete. Not a failure: the
// copy is safe and the media stays on Twilio until the hold is released and
// a later run asks again.
func (h *Handlers) heldDelete(ctx context.Context, run catalog.Run, sid string, inFlight bool) error {
	return h.counted(run.Source, resultHeld, h.catalog.ReleaseHeldDelete(ctx, run, sid, inFlight))
}
