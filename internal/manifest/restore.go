package manifest

import (
	"encoding/hex"
	"encoding/json"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/mediasync/mediasync/catalog"
)

// RestoreLine is one line of a restore manifest (restore-{id}.jsonl in the
// archive, archive.RestoreManifestKey): one (media, target service), the
// archived media's SID and the new Media SID Twilio gave its upload.
type RestoreLine struct {
	RestoreID   string     `json:"restore_id"`
	EndedAt     time.Time  `json:"restore_ended_at"`
	MediaSID    string     `json:"media_sid"`
	MessageSID  string     `json:"message_sid"`
	Source      string     `json:"source"`
	ContentType string     `json:"content_type"`
	Size        int64      `json:"size"`
	SHA256      string     `json:"sha256"`
	Filename    string     `json:"filename"`
	ArchiveKey  string     `json:"archive_key"`
	ServiceSID  string     `json:"service_sid"`
	State       string     `json:"state"` // restored, unconfirmed or failed
	NewMediaSID string     `json:"new_media_sid,omitempty"`
	NewSize     *int64     `json:"new_size,omitempty"`
	RestoredAt  *time.Time `json:"restored_at,omitempty"`
	Error       string     `json:"error,omitempty"`
}

// RestoreLineFor is the manifest line of a settled restore item.
func RestoreLineFor(id uuid.UUID, ended time.Time, it catalog.RestoreItem) RestoreLine {
	l := RestoreLine{
		RestoreID: id.String(), EndedAt: ended.UTC(), MediaSID: it.MediaSID, MessageSID: it.MessageSID,
		Source: it.Source, ContentType: it.ContentType, Size: it.Size, SHA256: hex.EncodeToString(it.SHA256[:]),
		Filename: it.Filename, ArchiveKey: it.Key, ServiceSID: it.ServiceSID, State: string(it.State),
		NewMediaSID: it.NewMediaSID, Error: it.Error,
	}
	if it.NewSize >= 0 && it.NewMediaSID != "" {
		n := it.NewSize
		l.NewSize = &n
	}
	if !it.RestoredAt.IsZero() {
		t := it.RestoredAt.UTC()
		l.RestoredAt = &t
	}
	return l
}

// RestoreWriter writes a restore manifest, one line per item; the same
// rows give the same bytes, so a retried finish writes the same object.
type RestoreWriter struct {
	w     io.Writer
	id    uuid.UUID
	ended time.Time
}

// NewRestoreWriter returns a RestoreWriter onto w.
func NewRestoreWriter(w io.Writer, id uuid.UUID, ended time.Time) *RestoreWriter {
	return &RestoreWriter{w: w, id: id, ended: ended}
}

// Add writes one item's line.
func (w *RestoreWriter) Add(it catalog.RestoreItem) error {
	b, err := json.Marshal(RestoreLineFor(w.id, w.ended, it))
	if err != nil {
		return err
	}
	_, err = w.w.Write(append(b, '\n'))
	return err
}
