package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/twilio"
)

// maxMediaSize bounds a download so a hostile or broken server cannot fill
// the disk: Twilio's largest media (Conversations) are 150 MB.
const maxMediaSize = 1 << 30

// copyBuffers are the downloads' copy buffers: io.Copy allocated 32 KiB
// per media, which with the spool's growth was most of the worker's
// garbage on small media (issue #14's profile).
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyMedia downloads and stores one media (download, streamed through a
// spool that hashes it, and the Sniffer → create-only PUT that the store
// verifies against the SHA-256) and returns the proof of its copy, for the
// caller to commit with the rest of its message (catalog.CommitMessage).
// A media Twilio no longer has (recorded gone), or whose download is not
// plausibly the media (recorded suspect), returns no copy and no error.
func (h *Handlers) copyMedia(ctx context.Context, runID uuid.UUID, it catalog.MediaItem) (*catalog.ArchivedCopy, error) {
	content, err := h.openMedia(ctx, it)
	if twilio.IsNotFound(err) {
		return nil, h.contentNotFound(ctx, runID, it, err)
	}
	if err != nil {
		return nil, fmt.Errorf("download media %s: %w", it.SID, err)
	}
	defer content.Body.Close()
	if st, ok := h.store.(archive.Streamer); ok && content.Size > archive.DefaultSpoolMemory && content.Size <= maxMediaSize && st.Streams(content.Size) {
		cp, err := h.streamMedia(ctx, runID, it, content, st)
		if !errors.Is(err, archive.ErrImplausible) {
			return cp, err
		}
		// Nothing was stored (the verdict came at the end of the body,
		// before the upload could finish), and keepSuspect needs the
		// bytes: download them again through the spool, judged again.
		// Rare, so the second download is cheaper than spooling every one.
		content.Body.Close()
		if content, err = h.openMedia(ctx, it); err != nil {
			return nil, fmt.Errorf("download media %s again, to keep it aside: %w", it.SID, err)
		}
		defer content.Body.Close()
	}

	spool := archive.NewSpool(archive.SpoolConfig{Dir: h.spoolDir, MaxSize: maxMediaSize, SizeHint: content.Size})
	defer spool.Close()
	sniff := archive.NewSniffer() // judges the bytes as they stream: a few KiB whatever the size
	buf := copyBuffers.Get().(*[]byte)
	_, err = io.CopyBuffer(io.MultiWriter(spool, sniff), content.Body, *buf)
	copyBuffers.Put(buf)
	if err != nil {
		if twilio.IsNotFound(err) {
			return nil, h.contentNotFound(ctx, runID, it, err)
		}
		return nil, fmt.Errorf("download media %s: %w", it.SID, err)
	}
	// The client already fails a body shorter or longer than its
	// Content-Length; this guards a server that sent none.
	if content.Size >= 0 && spool.Size() != content.Size {
		return nil, fmt.Errorf("download media %s: got %d bytes, Content-Length said %d: %w",
			it.SID, spool.Size(), content.Size, io.ErrUnexpectedEOF)
	}

	contentType := it.ContentType
	if contentType == "" {
		contentType = content.ContentType
	}
	k := mediaKeyInfo(it, contentType)
	body, err := spool.Reader()
	if err != nil {
		return nil, err
	}
	// Size and SHA-256 prove the store keeps what was downloaded, not that
	// the download was the media (a proxy may re-encode it as text).
	if err := sniff.Check(it.ContentType, content.ContentType); err != nil {
		return nil, h.keepSuspect(ctx, runID, it, k, spool, body, err)
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
			return nil, permanent(fmt.Errorf("store media %s at %s: %w", it.SID, key, err))
		}
		return nil, fmt.Errorf("store media %s at %s: %w", it.SID, key, err)
	}
	loc := h.store.Location()
	return &catalog.ArchivedCopy{
		Filename: content.Filename, Size: spool.Size(), SHA256: spool.SHA256(),
		Store: loc.Kind, Bucket: loc.Bucket, Key: key, VersionID: res.VersionID,
		LockMode: res.LockMode, RetainUntil: res.RetainUntil, // as S3 applied it
		Created: !res.Existed,
	}, nil
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
	return h.counted(it.Source, resultSuspect, h.catalog.MarkSuspect(ctx, runID, it.SID, catalog.SuspectCopy{
		Size: spool.Size(), SHA256: spool.SHA256(), Key: key, Reason: errText(why),
	}))
}

// contentNotFound decides what a 404 on a download means. Only the API's
// own 404 / 20404 says Twilio no longer has the media. A 404 from the
// signed-URL host, or one without Twilio's code, says nothing of it: the
// media resource is fetched again, and the media is recorded gone only if
// the API answers 404 / 20404 for it; otherwise the download is retried,
// so nothing Twilio still holds is recorded gone and never archived.
func (h *Handlers) contentNotFound(ctx context.Context, runID uuid.UUID, it catalog.MediaItem, err error) error {
	if !twilio.IsGone(err) {
		gerr := h.fetchMediaAgain(ctx, it)
		switch {
		case twilio.IsGone(gerr):
		case gerr != nil:
			return fmt.Errorf("download media %s: %v; fetching the media again: %w", it.SID, err, gerr)
		default:
			return fmt.Errorf("download media %s: %w; Twilio still has the media, so the download is retried", it.SID, err)
		}
	}
	return h.counted(it.Source, resultGone, h.catalog.MarkGone(ctx, runID, it.SID))
}

// mediaMaxAttempts is how many failed attempts a media gets in a run before
// it fails for it: the old media task's 12 retries' worth (13 tries), now
// counted per media (run_media.attempts), not per message task.
const mediaMaxAttempts = 13

// mediaError records a failed attempt at a media; when its attempts in the
// run are spent, the task's are, or no retry can help, the media fails for
// this run (its row keeps any earlier archived copy) and the run counts it,
// under the media's source.
func (h *Handlers) mediaError(ctx context.Context, runID uuid.UUID, source, sid string, err error) error {
	if rl := retryLater(err); rl != err {
		return rl
	}
	if ctx.Err() != nil {
		return err // shutting down: the task goes back to the queue as it is
	}
	n, rerr := h.catalog.RecordAttempt(ctx, runID, sid, errText(err))
	if rerr != nil {
		return errors.Join(err, rerr)
	}
	// The media's own attempts decide (its siblings share the task's
	// retries); the task's last attempt still ends what is left.
	if isPermanent(err) || twilioPermanent(err) || n >= mediaMaxAttempts || lastAttempt(ctx) {
		if ferr := h.counted(source, resultFailed, h.catalog.MarkFailed(ctx, runID, sid, errText(err))); ferr != nil {
			return errors.Join(err, ferr)
		}
		if !isPermanent(err) {
			err = permanent(err)
		}
	}
	return err
}
