package jobs

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"path"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/sleep"
	"github.com/mediasync/mediasync/twilio"
)

// Why a restore never uploads a media twice into a service.
//
// MCS upload (POST /v1/Services/{IS}/Media) is not idempotent: each POST
// that Twilio processes creates a new Media, and Twilio documents neither
// an idempotency key for it, nor a list of a service's Media, nor a
// lookup by anything but the new SID it answers with. So once a POST has
// sent a whole file, only its answer tells whether a Media was created:
// an answer lost (the connection drops, a 5xx, a timeout, the worker
// killed) leaves it unknowable.
//
// The gap is closed in Postgres, around the one request:
//
//  1. Before the POST, the item is claimed (restore_media: pending →
//     uploading, with a claim token and a lease). Only the claimer
//     uploads; a second delivery of the task, or another worker, skips it.
//  2. The body is the archived copy, checked against its row on the way
//     out, the bytes that complete it withheld until it is proven
//     (verifiedBody), and sent once: the client retries it only when
//     Twilio refused it before reading any of it (a 429).
//  3. Twilio's answer is committed under the claim: restored, with the new
//     Media SID. An upload that provably never reached Twilio whole (the
//     body was not all handed over, or Twilio answered 429 or another
//     4xx, which create nothing — inferred: a refused request is not
//     processed) goes back to pending, to be tried again.
//  4. Anything else (the whole file was sent and no answer says what
//     happened; the claim's lease ran out because its worker died between
//     the POST and the commit) ends the item unconfirmed: the restore
//     never uploads it again, and says so. A Media may then exist,
//     unattached, in the service; restoring that media again is a new
//     restore's decision (`enqueue restore --message …`), made knowing
//     that it may leave a second copy.
//
// So a restore uploads each (media, service) at most once, and the risk of
// a duplicate is confined to what an operator chooses after an
// unconfirmed item; a successful upload whose commit fails is logged with
// its new SID.

// uploadBudget bounds one upload: 30 seconds plus the file at 256 KiB/s
// (150 MB in about ten minutes). The claim's lease outlasts it, so a live
// claimer is never taken for a dead one.
func uploadBudget(size int64) time.Duration {
	return 30*time.Second + time.Duration(size/(256<<10))*time.Second
}

// recordBudget bounds the recording of an upload's outcome, within the
// lease.
const recordBudget = 20 * time.Second

// restoreLease is how long a claim holds: the upload's budget and time to
// record its answer. A claim whose worker died is settled (unconfirmed)
// once it has run out.
func restoreLease(size int64) time.Duration {
	return uploadBudget(size) + recordBudget + 10*time.Second
}

// restoreUpload uploads one pending item into its service and records the
// outcome. It returns an error only for what a retry may fix.
func (h *Handlers) restoreUpload(ctx context.Context, run catalog.Run, it catalog.RestoreItem) error {
	loc := h.store.Location()
	if it.Store != loc.Kind || it.Bucket != loc.Bucket {
		return h.catalog.FailRestore(ctx, run.ID, it.Seq, uuid.Nil, "",
			fmt.Sprintf("archived in %s %q, not in this worker's archive (%s %q)", it.Store, it.Bucket, loc.Kind, loc.Bucket))
	}
	if it.AccountSID != run.AccountSID {
		return h.catalog.FailRestore(ctx, run.ID, it.Seq, uuid.Nil, "", "media of account "+it.AccountSID+", not the restore's")
	}
	rc, err := h.store.Open(ctx, it.Key)
	if errors.Is(err, archive.ErrNotFound) {
		return h.catalog.FailRestore(ctx, run.ID, it.Seq, uuid.Nil, "", fmt.Sprintf("archived object %s is missing", it.Key))
	}
	if err != nil {
		return fmt.Errorf("read archived media %s: %w", it.MediaSID, err)
	}
	defer rc.Close()

	claim, ok, err := h.catalog.ClaimRestore(ctx, run.ID, it.Seq, restoreLease(it.Size))
	if err != nil || !ok {
		return err // not ok: another attempt holds it, or it is settled
	}
	body := newVerifiedBody(rc, it.Size, it.SHA256)
	params := twilio.MCSUploadParams{
		ContentType: uploadType(it.ContentType), Filename: uploadName(it), Body: body, Size: it.Size,
		// No GetBody: an attempt that sent part of the file is never
		// repeated by the client (see the comment above).
	}
	uctx, cancel := context.WithTimeout(ctx, uploadBudget(it.Size))
	m, err := h.twilio.MCS.Upload(uctx, it.ServiceSID, params)
	cancel()
	if err == nil {
		err = checkUploaded(m, params)
	}
	// What follows must be recorded even when ctx ended (shutdown): the
	// claim is this attempt's alone.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), recordBudget)
	defer rcancel()
	whole, bad := body.state()
	switch {
	case err == nil:
		return h.commitRestore(rctx, run.ID, it, claim, m)
	case m != nil:
		// Twilio created a Media, but not the file sent: it is named so
		// that it can be found.
		return h.catalog.FailRestore(rctx, run.ID, it.Seq, claim, m.SID, errText(err))
	case bad != nil:
		return h.catalog.FailRestore(rctx, run.ID, it.Seq, claim, "", errText(fmt.Errorf("not uploaded: archived object %s: %w", it.Key, bad)))
	case twilio.IsRateLimited(err):
		if rerr := h.catalog.ReleaseRestore(rctx, run.ID, it.Seq, claim, errText(err)); rerr != nil {
			return errors.Join(err, rerr)
		}
		return retryLater(err)
	case refused(err):
		return h.catalog.FailRestore(rctx, run.ID, it.Seq, claim, "", errText(fmt.Errorf("Twilio refused the upload: %w", err)))
	case !whole:
		if lastAttempt(ctx) {
			return h.catalog.FailRestore(rctx, run.ID, it.Seq, claim, "", errText(fmt.Errorf("upload failed, out of retries (nothing was sent whole): %w", err)))
		}
		if rerr := h.catalog.ReleaseRestore(rctx, run.ID, it.Seq, claim, errText(err)); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	default:
		reason := errText(fmt.Errorf("the whole file was sent and Twilio's answer does not say whether it created a Media: not uploaded again by this restore: %w", err))
		h.log.Warn().Str("run_id", run.ID.String()).Str("media_sid", it.MediaSID).Str("service_sid", it.ServiceSID).
			Str("reason", reason).Msg("restore upload unconfirmed")
		return h.catalog.UnconfirmRestore(rctx, run.ID, it.Seq, claim, reason)
	}
}

// commitRestore records a Media Twilio created. Should Postgres fail here,
// the new SID is only in this log line: the claim then expires into
// unconfirmed, and the line is how an operator finds the Media.
func (h *Handlers) commitRestore(ctx context.Context, id uuid.UUID, it catalog.RestoreItem, claim uuid.UUID, m *twilio.MCSMedia) error {
	var err error
	for attempt := range 3 {
		if err = h.catalog.CompleteRestore(ctx, id, it.Seq, claim, m.SID, m.Size); err == nil {
			return nil
		}
		if sleep.For(ctx, time.Duration(attempt+1)*time.Second) != nil {
			break
		}
	}
	h.log.Error().Err(err).Str("run_id", id.String()).Str("media_sid", it.MediaSID).Str("service_sid", it.ServiceSID).
		Str("new_media_sid", m.SID).Msg("restore: uploaded but not recorded")
	return err
}

// checkUploaded checks what Twilio says it stored against what was sent,
// beyond what MCS.Upload checks (the service, the SID, a size that
// differs): that a size is given at all, the MIME type and, when one was
// sent and one is answered, the filename (inferred: MCS keeps both as
// given), and that the new Media is attached to no message.
func checkUploaded(m *twilio.MCSMedia, p twilio.MCSUploadParams) error {
	if m.Size < 0 {
		return fmt.Errorf("media %s: Twilio's answer gives no size: the upload cannot be checked", m.SID)
	}
	sent, _, _ := mime.ParseMediaType(p.ContentType)
	got, _, err := mime.ParseMediaType(m.ContentType)
	if m.ContentType != "" && (err != nil || !strings.EqualFold(sent, got)) {
		return fmt.Errorf("media %s: Twilio stored content_type %q, sent %q", m.SID, m.ContentType, p.ContentType)
	}
	if p.Filename != "" && m.Filename != "" && m.Filename != p.Filename {
		return fmt.Errorf("media %s: Twilio stored filename %q, sent %q", m.SID, m.Filename, p.Filename)
	}
	if m.MessageSID != "" || m.ChannelSID != "" {
		return fmt.Errorf("media %s: a new upload is attached to message %s already", m.SID, m.MessageSID)
	}
	return nil
}

// refused reports whether err is Twilio's API refusing the request (a 4xx
// answer, 408 and 429 aside): nothing was created.
func refused(err error) bool {
	var te *twilio.Error
	return errors.As(err, &te) && !te.Storage && te.Status >= 400 && te.Status < 500 &&
		te.Status != 408 && te.Status != 429
}

// uploadType is the MIME type an item is uploaded with: its row's, when
// MCS would take it.
func uploadType(ct string) string {
	t, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || strings.HasPrefix(t, "multipart/") {
		return "application/octet-stream"
	}
	return ct
}

// uploadName is the filename an item is uploaded with: its row's (a
// Conversations media's), else its archived object's ({MediaSid}{.ext}),
// when MCS.Upload would take it.
func uploadName(it catalog.RestoreItem) string {
	for _, name := range []string{it.Filename, path.Base(it.Key)} {
		if name != "" && name != "." && len(name) <= 255 && strings.IndexFunc(name, unicode.IsControl) < 0 {
			return name
		}
	}
	return ""
}
