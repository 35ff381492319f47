package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/twilio"
)

// maxMediaSize bounds a download so a hostile or broken server cannot fill
// the disk: Twilio's largest media (Conversations) are 150 MB.
const maxMediaSize = 1 << 30

// ArchiveMedia copies one media into the store and records the proof:
// download (streamed through a spool that hashes it) → create-only PUT that
// the store verifies against the SHA-256 → the row says archived, in one
// transaction with the run's outcome. Only then, with --delete, is a delete
// task queued. A media already archived is not downloaded again.
func (h *Handlers) ArchiveMedia(ctx context.Context, t *asynq.Task) error {
	p, err := decode[MediaPayload](t)
	if err != nil {
		return err
	}
	run, live, err := h.liveRun(ctx, p.RunID)
	if !live {
		return err
	}
	it, err := h.catalog.GetMedia(ctx, p.MediaSID)
	if errors.Is(err, catalog.ErrMediaNotFound) {
		return permanent(err)
	}
	if err != nil {
		return err
	}
	reused := !it.ArchivedAt.IsZero() && it.ArchivedAt.Before(run.CreatedAt)

	// A backfill with --delete deletes all it archives; a policy only what
	// is older than its delete_after. The row decides, not the payload.
	var wanted bool
	switch it.State {
	case catalog.MediaArchived:
		// An attempt that committed the row may have failed, or died,
		// before the S3 legal hold was set: this one sets it.
		if loc := h.store.Location(); it.Store == loc.Kind && it.Bucket == loc.Bucket {
			if err := h.syncLegalHold(ctx, it.SID, it.Key, it.VersionID); err != nil {
				return err
			}
		}
		if err := h.catalog.SetRunMedia(ctx, run.ID, it.SID, catalog.MediaArchived, reused, ""); err != nil {
			return err
		}
		if wanted, err = h.catalog.DeleteWanted(ctx, run.ID, it.SID); err != nil {
			return err
		}
	case catalog.MediaDeleted:
		if err := h.catalog.SetRunMedia(ctx, run.ID, it.SID, catalog.MediaDeleted, true, ""); err != nil {
			return err
		}
		return h.finish(ctx, run.ID)
	case catalog.MediaGone:
		if err := h.catalog.SetRunMedia(ctx, run.ID, it.SID, catalog.MediaGone, false, ""); err != nil {
			return err
		}
		return h.finish(ctx, run.ID)
	default: // pending, or failed or suspect in an earlier run: try (again)
		var gone bool
		gone, wanted, err = h.copyMedia(ctx, run.ID, it)
		if err != nil {
			return h.mediaError(ctx, run.ID, it.SID, err)
		}
		if gone {
			return h.finish(ctx, run.ID)
		}
	}
	if wanted {
		if err := h.enqueuer.In(ctx)(NewDeleteMediaTask(h.queues, MediaPayload{RunID: run.ID, MediaSID: it.SID})); err != nil {
			return err
		}
	}
	return h.finish(ctx, run.ID)
}

// copyMedia downloads, stores and records one media. It reports gone when
// Twilio no longer has it (recorded as such: nothing to archive), and
// whether the run deletes it next.
func (h *Handlers) copyMedia(ctx context.Context, runID uuid.UUID, it catalog.MediaItem) (gone, deleteWanted bool, err error) {
	content, err := h.twilio.Media.Open(ctx, it.MessageSID, it.SID)
	if twilio.IsNotFound(err) {
		gone, err := h.contentNotFound(ctx, runID, it, err)
		return gone, false, err
	}
	if err != nil {
		return false, false, fmt.Errorf("download media %s: %w", it.SID, err)
	}
	defer content.Body.Close()
	if st, ok := h.store.(archive.Streamer); ok && content.Size > archive.DefaultSpoolMemory && content.Size <= maxMediaSize && st.Streams(content.Size) {
		gone, wanted, err := h.streamMedia(ctx, runID, it, content, st)
		if !errors.Is(err, archive.ErrImplausible) {
			return gone, wanted, err
		}
		// Nothing was stored (the verdict came at the end of the body,
		// before the upload could finish), and keepSuspect needs the
		// bytes: download them again through the spool, judged again.
		// Rare, so the second download is cheaper than spooling every one.
		content.Body.Close()
		if content, err = h.twilio.Media.Open(ctx, it.MessageSID, it.SID); err != nil {
			return false, false, fmt.Errorf("download media %s again, to keep it aside: %w", it.SID, err)
		}
		defer content.Body.Close()
	}

	spool := archive.NewSpool(archive.SpoolConfig{Dir: h.spoolDir, MaxSize: maxMediaSize})
	defer spool.Close()
	sniff := archive.NewSniffer() // judges the bytes as they stream: a few KiB whatever the size
	if _, err := io.Copy(io.MultiWriter(spool, sniff), content.Body); err != nil {
		if twilio.IsNotFound(err) {
			gone, err := h.contentNotFound(ctx, runID, it, err)
			return gone, false, err
		}
		return false, false, fmt.Errorf("download media %s: %w", it.SID, err)
	}
	// The client already fails a body shorter or longer than its
	// Content-Length; this guards a server that sent none.
	if content.Size >= 0 && spool.Size() != content.Size {
		return false, false, fmt.Errorf("download media %s: got %d bytes, Content-Length said %d: %w",
			it.SID, spool.Size(), content.Size, io.ErrUnexpectedEOF)
	}

	contentType := it.ContentType
	if contentType == "" {
		contentType = content.ContentType
	}
	// Every Twilio field may be null: the catalog already falls back from
	// the message's date_sent to its date_created; the media's own
	// date_created is the last resort, so no key lands under 0001/01/01.
	day := it.DateSent
	if day.IsZero() {
		day = it.DateCreated
	}
	k := archive.KeyInfo{
		AccountSID: it.AccountSID, MessageSID: it.MessageSID, MediaSID: it.SID,
		ContentType: contentType, DateSent: day,
	}
	body, err := spool.Reader()
	if err != nil {
		return false, false, err
	}
	// Size and SHA-256 prove the store keeps what was downloaded, not that
	// the download was the media (a proxy may re-encode it as text).
	if err := sniff.Check(it.ContentType, content.ContentType); err != nil {
		return false, false, h.keepSuspect(ctx, runID, it, k, spool, body, err)
	}
	key := archive.ObjectKey(h.prefix, k)
	in := archive.PutInput{
		Key: key, ContentType: contentType, Size: spool.Size(), SHA256: spool.SHA256(),
		Metadata: archive.MediaMetadata(k, it.DateCreated),
	}
	if h.objectLock != "" {
		in.LockMode, in.RetainUntil = h.objectLock, time.Now().UTC().Add(h.retention).Truncate(time.Second)
	}
	res, err := h.store.Put(ctx, in, body)
	if err != nil {
		if errors.Is(err, archive.ErrConflict) || errors.Is(err, archive.ErrInvalidInput) || errors.Is(err, archive.ErrLockNotApplied) {
			return false, false, permanent(fmt.Errorf("store media %s at %s: %w", it.SID, key, err))
		}
		return false, false, fmt.Errorf("store media %s at %s: %w", it.SID, key, err)
	}
	loc := h.store.Location()
	wanted, err := h.catalog.MarkArchived(ctx, runID, it.SID, catalog.ArchivedCopy{
		Filename: content.Filename, Size: spool.Size(), SHA256: spool.SHA256(),
		Store: loc.Kind, Bucket: loc.Bucket, Key: key, VersionID: res.VersionID,
		LockMode: res.LockMode, RetainUntil: res.RetainUntil, // as S3 applied it
	})
	if err != nil {
		return false, false, err
	}
	// Checked after the row commits: a hold placed meanwhile either sees
	// this object in its own pass (hold:apply) or is seen here.
	return false, wanted, h.syncLegalHold(ctx, it.SID, key, res.VersionID)
}

// keepSuspect stores a download that is not plausibly the media under its
// own SuspectKey (the media's key stays free for the verified copy a later
// run archives) and records the media suspect, with the reason: it is not
// archived, so it is never deleted from Twilio, and the run counts and names
// it. Storing it is for inspection; nothing depends on it.
func (h *Handlers) keepSuspect(ctx context.Context, runID uuid.UUID, it catalog.MediaItem, k archive.KeyInfo,
	spool *archive.Spool, body io.ReadSeeker, why error) error {
	key := archive.SuspectKey(h.prefix, k, spool.SHA256())
	in := archive.PutInput{
		Key: key, ContentType: k.ContentType, Size: spool.Size(), SHA256: spool.SHA256(),
		Metadata: archive.MediaMetadata(k, it.DateCreated),
	}
	if _, err := h.store.Put(ctx, in, body); err != nil {
		return fmt.Errorf("store suspect download of media %s at %s: %w", it.SID, key, err)
	}
	h.log.Warn().Str("media_sid", it.SID).Str("s3_key", key).Str("reason", errText(why)).
		Msg("download is not plausibly the media; kept aside, NOT archived, NOT deleted from Twilio")
	return h.catalog.MarkSuspect(ctx, runID, it.SID, catalog.SuspectCopy{
		Size: spool.Size(), SHA256: spool.SHA256(), Key: key, Reason: errText(why),
	})
}

// contentNotFound decides what a 404 on a download means. Only the API's
// own 404 / 20404 says Twilio no longer has the media. A 404 from the
// signed-URL host, or one without Twilio's code, says nothing of it: the
// media resource is fetched again, and the media is recorded gone only if
// the API answers 404 / 20404 for it; otherwise the download is retried,
// so nothing Twilio still holds is recorded gone and never archived.
func (h *Handlers) contentNotFound(ctx context.Context, runID uuid.UUID, it catalog.MediaItem, err error) (gone bool, _ error) {
	if !twilio.IsGone(err) {
		_, gerr := h.twilio.Media.Get(ctx, it.MessageSID, it.SID)
		switch {
		case twilio.IsGone(gerr):
		case gerr != nil:
			return false, fmt.Errorf("download media %s: %v; fetching the media again: %w", it.SID, err, gerr)
		default:
			return false, fmt.Errorf("download media %s: %w; Twilio still has the media, so the download is retried", it.SID, err)
		}
	}
	return true, h.catalog.MarkGone(ctx, runID, it.SID)
}

// mediaError records a failed attempt at a media; when no retry is left, or
// none can help, the media fails for this run (its row keeps any earlier
// archived copy) and the run counts it.
func (h *Handlers) mediaError(ctx context.Context, runID uuid.UUID, sid string, err error) error {
	if rl := retryLater(err); rl != err {
		return rl
	}
	if ctx.Err() != nil {
		return err // shutting down: the task goes back to the queue as it is
	}
	if rerr := h.catalog.RecordAttempt(ctx, sid, errText(err)); rerr != nil {
		return errors.Join(err, rerr)
	}
	if isPermanent(err) || twilioPermanent(err) || lastAttempt(ctx) {
		if ferr := h.catalog.MarkFailed(ctx, runID, sid, errText(err)); ferr != nil {
			return errors.Join(err, ferr)
		}
		if ferr := h.finish(ctx, runID); ferr != nil {
			return errors.Join(err, ferr)
		}
		if !isPermanent(err) {
			err = permanent(err)
		}
	}
	return err
}

// DeleteMedia deletes one archived media from Twilio, and only after
// proving, at this moment, that the store holds exactly the bytes the row
// records (invariant 1), and that they were judged plausibly the media (a
// copy archived before that check existed is read back and judged here):
// verify against the store → claim in the catalog
// (the row must still say archived with that size and SHA-256) → DELETE on
// Twilio (the API's own 404 / 20404 means it is already gone) → the row
// says deleted.
func (h *Handlers) DeleteMedia(ctx context.Context, t *asynq.Task) error {
	p, err := decode[MediaPayload](t)
	if err != nil {
		return err
	}
	run, live, err := h.liveRun(ctx, p.RunID)
	if !live {
		return err
	}
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
	switch it.State {
	case catalog.MediaDeleted:
		if err := h.catalog.SetRunMedia(ctx, run.ID, it.SID, catalog.MediaDeleted, false, ""); err != nil {
			return err
		}
		return h.finish(ctx, run.ID)
	case catalog.MediaArchived:
	default:
		return h.mediaError(ctx, run.ID, it.SID, permanent(fmt.Errorf("delete media %s: state is %s, not archived", it.SID, it.State)))
	}

	loc := h.store.Location()
	if it.Store != loc.Kind || it.Bucket != loc.Bucket {
		return h.mediaError(ctx, run.ID, it.SID, permanent(fmt.Errorf(
			"delete media %s: its copy is in %s %q but this worker's archive is %s %q; not deleting what it cannot verify",
			it.SID, it.Store, it.Bucket, loc.Kind, loc.Bucket)))
	}
	if err := archive.Verify(ctx, h.store, it.Key, it.Size, it.SHA256); err != nil {
		if errors.Is(err, archive.ErrNotFound) || errors.Is(err, archive.ErrChecksumMismatch) {
			// The archived copy is missing or altered: never delete, and
			// say so loudly; retrying will not change the bytes.
			h.log.Error().Err(err).Str("media_sid", it.SID).Str("s3_key", it.Key).
				Msg("archived copy failed verification; media NOT deleted from Twilio")
			return h.mediaError(ctx, run.ID, it.SID, permanent(fmt.Errorf("verify archived copy of %s: %w", it.SID, err)))
		}
		return h.mediaError(ctx, run.ID, it.SID, fmt.Errorf("verify archived copy of %s: %w", it.SID, err))
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
				return h.mediaError(ctx, run.ID, it.SID, permanent(fmt.Errorf(
					"archived copy of %s, archived before copies were checked, is not plausibly the media; not deleting it from Twilio: %w", it.SID, err)))
			}
			return h.mediaError(ctx, run.ID, it.SID, fmt.Errorf("check archived copy of %s: %w", it.SID, err))
		}
		if err := h.catalog.MarkPlausible(ctx, it.SID, it.Size, it.SHA256); err != nil {
			return err
		}
	}
	if err := h.catalog.ClaimDelete(ctx, it.SID, it.Size, it.SHA256); err != nil {
		switch {
		case errors.Is(err, catalog.ErrHeld):
			// Refused before any claim: the run's outcome is held, with
			// an audit row only if an earlier attempt's claim or lease
			// was stopped (see ReleaseHeldDelete).
			return h.heldDelete(ctx, run, it.SID, false)
		case errors.Is(err, catalog.ErrNotDeletable):
			return h.mediaError(ctx, run.ID, it.SID, permanent(err))
		}
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
		lease, err := h.catalog.LeaseDelete(ctx, it.SID)
		if err != nil {
			return time.Time{}, err
		}
		sent = true
		return start.Add(lease), nil
	})
	err = h.twilio.Media.Delete(ctx, it.MessageSID, it.SID, guard)
	switch {
	case errors.Is(err, catalog.ErrHeld):
		return h.heldDelete(ctx, run, it.SID, sent)
	case errors.Is(err, catalog.ErrNotDeletable):
		// The claim went away meanwhile: the same delete run twice and
		// done, or the row changed.
		if now, gerr := h.catalog.GetMedia(ctx, it.SID); gerr == nil && now.State == catalog.MediaDeleted {
			return h.recordDeleted(ctx, run, it.SID, sent)
		}
		return h.mediaError(ctx, run.ID, it.SID, permanent(err))
	case err != nil && !h.goneFromTwilio(ctx, it, err):
		return h.mediaError(ctx, run.ID, it.SID, fmt.Errorf("delete media %s from Twilio: %w", it.SID, err))
	}
	return h.recordDeleted(ctx, run, it.SID, true)
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
	if err := h.catalog.MarkDeleted(ctx, run, sid); err != nil {
		if errors.Is(err, catalog.ErrHeld) {
			// Any DELETE went out under its lease, before the hold was
			// placed (the hold waited for it); the catalog keeps the media
			// archived, not deleted.
			return h.heldDelete(ctx, run, sid, sent)
		}
		return err
	}
	return h.finish(ctx, run.ID)
}

// heldDelete records that a legal hold stopped a delete. Not a failure: the
// copy is safe and the media stays on Twilio until the hold is released and
// a later run asks again.
func (h *Handlers) heldDelete(ctx context.Context, run catalog.Run, sid string, inFlight bool) error {
	if err := h.catalog.ReleaseHeldDelete(ctx, run, sid, inFlight); err != nil {
		return err
	}
	return h.finish(ctx, run.ID)
}
