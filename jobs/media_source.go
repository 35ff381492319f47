package jobs

import (
	"context"
	"fmt"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/twilio"
)

// A media's source decides where its bytes come from; everything after the
// download (spool, SHA-256, Sniffer, create-only PUT, commit, verification)
// is the same for both.

// openMedia starts the download of a media from its source: Messaging's
// media content, or the Media Content Service for a Conversations media
// (through links.content_direct_temporary without credentials, the
// resource fetched again when that URL has expired or answers 4xx:
// twilio.MCSService.Open).
func (h *Handlers) openMedia(ctx context.Context, it catalog.MediaItem) (*twilio.Content, error) {
	if it.Source != catalog.SourceConversations {
		return h.twilio.Media.Open(ctx, it.MessageSID, it.SID)
	}
	mc, err := h.twilio.MCS.Open(ctx, it.ServiceSID, it.SID)
	if err != nil {
		return nil, err
	}
	c := mc.Content
	// The message's media entry said how large the file is; the resource
	// and the download must agree with it (MCS.Open already holds the
	// download to the resource's size). Twilio disagreeing with itself is
	// not something a retry fixes: the media fails, and its message stays.
	if it.ListedSize >= 0 {
		if mc.Media.Size >= 0 && mc.Media.Size != it.ListedSize {
			c.Body.Close()
			return nil, permanent(fmt.Errorf("media %s: MCS says %d bytes, its message said %d: %w", it.SID, mc.Media.Size, it.ListedSize, twilio.ErrSizeMismatch))
		}
		if c.Size >= 0 && c.Size != it.ListedSize {
			c.Body.Close()
			return nil, permanent(fmt.Errorf("media %s: the download has %d bytes, its message said %d: %w", it.SID, c.Size, it.ListedSize, twilio.ErrSizeMismatch))
		}
		if c.Size < 0 {
			c.Size = it.ListedSize // copyMedia checks the spooled bytes against it
		}
	}
	if it.MediaRecord.Filename != "" {
		c.Filename = it.MediaRecord.Filename // the name the message gave, kept as listed
	} else if mc.Media.Filename != "" {
		c.Filename = mc.Media.Filename
	}
	return &c, nil
}

// fetchMediaAgain asks the media's source whether it still has the media
// (nil), no longer has it (twilio.IsGone), or cannot say (another error).
func (h *Handlers) fetchMediaAgain(ctx context.Context, it catalog.MediaItem) error {
	if it.Source != catalog.SourceConversations {
		_, err := h.twilio.Media.Get(ctx, it.MessageSID, it.SID)
		return err
	}
	_, err := h.twilio.MCS.Get(ctx, it.ServiceSID, it.SID)
	return err
}

// mediaKeyInfo is what names a media's object and fills its metadata.
// Every Twilio field may be null: the catalog already falls back from the
// message's date_sent to its date_created (a Conversations message has
// only the latter); the media's own date_created is the last resort, so no
// key lands under 0001/01/01.
func mediaKeyInfo(it catalog.MediaItem, contentType string) archive.KeyInfo {
	day := it.DateSent
	if day.IsZero() {
		day = it.DateCreated
	}
	k := archive.KeyInfo{
		AccountSID: it.AccountSID, MessageSID: it.MessageSID, MediaSID: it.SID,
		ContentType: contentType, DateSent: day,
	}
	if it.Source == catalog.SourceConversations {
		k.Source, k.ConversationSID, k.Author, k.Filename = archive.SourceConversations, it.ConversationSID, it.Author, it.MediaRecord.Filename
	}
	return k
}
