package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/twilio"
)

// streamMedia is copyMedia for a download past the spool's memory when
// the store streams (S3 over https): the bytes go from Twilio straight into
// one create-only PUT, never to disk, judged on the way (size, and the
// Sniffer's verdict at the end of the body, before S3 may commit the
// object: a download that is not plausibly the media is never stored at
// its key; copyMedia then downloads it again to keep it aside). S3
// verifies the SHA-256 (a trailing checksum) that the row records, once
// the caller commits the copy it returns with the rest of its message.
func (h *Handlers) streamMedia(ctx context.Context, runID uuid.UUID, it catalog.MediaItem, content *twilio.Content, st archive.Streamer) (*catalog.ArchivedCopy, error) {
	k := mediaKeyInfo(it, cmp.Or(it.ContentType, content.ContentType))
	key := archive.ObjectKey(h.prefix, k)
	in := archive.PutInput{Key: key, ContentType: k.ContentType, Size: content.Size, Metadata: archive.MediaMetadata(k, it.DateCreated)}
	if h.objectLock != "" {
		in.LockMode, in.RetainUntil = h.objectLock, time.Now().UTC().Add(h.retention).Truncate(time.Second)
	}
	sniff := archive.NewSniffer()
	res, err := st.PutStream(ctx, in, io.TeeReader(content.Body, sniff), func() error {
		return sniff.Check(it.ContentType, content.ContentType)
	})
	switch {
	case errors.Is(err, archive.ErrImplausible):
		return nil, err
	case twilio.IsNotFound(err):
		return nil, h.contentNotFound(ctx, runID, it, err)
	case errors.Is(err, archive.ErrConflict) || errors.Is(err, archive.ErrInvalidInput) || errors.Is(err, archive.ErrLockNotApplied):
		return nil, permanent(fmt.Errorf("store media %s at %s: %w", it.SID, key, err))
	case err != nil:
		return nil, fmt.Errorf("store media %s at %s: %w", it.SID, key, err)
	}
	loc := h.store.Location()
	return &catalog.ArchivedCopy{
		Filename: content.Filename, Size: res.Size, SHA256: res.SHA256,
		Store: loc.Kind, Bucket: loc.Bucket, Key: key, VersionID: res.VersionID,
		LockMode: res.LockMode, RetainUntil: res.RetainUntil, // as S3 applied it
		Created: !res.Existed,
	}, nil
}
