// Package manifest writes what an export package says about itself, in
// forms a reviewer can check without mediasync: manifest.jsonl and
// manifest.csv (one line per media), SHA256SUMS (for `sha256sum -c`) and
// export.json (the query, the counts and the SHA-256 of the other three).
//
// Everything here is deterministic: the same rows give the same bytes, so
// an export written twice (a retried task) writes identical files.
package manifest

import (
	"cmp"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/version"
)

// Line is one media of the manifest, in both its forms.
type Line struct {
	MessageSID     string     `json:"message_sid"`
	DateSent       time.Time  `json:"date_sent"`
	From           string     `json:"from"`
	To             string     `json:"to"`
	MediaSID       string     `json:"media_sid"`
	ContentType    string     `json:"content_type"`
	Size           int64      `json:"size"`
	SHA256         string     `json:"sha256"`
	Path           string     `json:"path"`
	ArchiveStore   string     `json:"archive_store"`
	ArchiveBucket  string     `json:"archive_bucket"`
	ArchiveKey     string     `json:"archive_key"`
	ArchiveVersion string     `json:"archive_version_id"`
	ArchivedAt     time.Time  `json:"archived_at"`
	DeletedAt      *time.Time `json:"deleted_from_twilio_at"`
	RetentionMode  string     `json:"retention_mode"`
	RetainUntil    *time.Time `json:"retain_until"`
	LegalHolds     []int64    `json:"legal_holds"`
	// The source (messaging or conversations) and, for a Conversations
	// media, its conversation, its message's author and its filename
	// (columns after the others, so readers of the older columns keep
	// reading them where they were).
	Source          string `json:"source"`
	ConversationSID string `json:"conversation_sid"`
	Author          string `json:"author"`
	Filename        string `json:"filename"`
	// The message's record as archived beside its media (issue #17): its
	// key and SHA-256, and whether its body is in it ("kept") or was left
	// out (--no-bodies: "dropped"); all empty for a message without one.
	RecordKey    string `json:"message_record_key"`
	RecordSHA256 string `json:"message_record_sha256"`
	RecordBody   string `json:"message_record_body"`
}

// csvHeader names manifest.csv's columns, in Line's order.
var csvHeader = []string{
	"message_sid", "date_sent", "from", "to", "media_sid", "content_type", "size", "sha256", "path",
	"archive_store", "archive_bucket", "archive_key", "archive_version_id", "archived_at",
	"deleted_from_twilio_at", "retention_mode", "retain_until", "legal_holds",
	"source", "conversation_sid", "author", "filename",
	"message_record_key", "message_record_sha256", "message_record_body",
}

// LineFor is the manifest line of an exported media.
func LineFor(it catalog.ExportItem) Line {
	l := Line{
		MessageSID: it.MessageSID, DateSent: it.DateSent.UTC(), From: it.From, To: it.To,
		MediaSID: it.MediaSID, ContentType: it.ContentType, Size: it.Size,
		SHA256: hex.EncodeToString(it.SHA256[:]), Path: it.Path,
		ArchiveStore: it.Store, ArchiveBucket: it.Bucket, ArchiveKey: it.Key, ArchiveVersion: it.VersionID,
		ArchivedAt: it.ArchivedAt.UTC(), RetentionMode: it.LockMode, LegalHolds: it.Holds,
		Source: cmp.Or(it.Source, catalog.SourceMessaging), ConversationSID: it.ConversationSID,
		Author: it.Author, Filename: it.Filename,
		RecordKey: it.RecordKey, RecordSHA256: it.RecordSHA256,
	}
	switch {
	case it.RecordKey == "":
	case it.RecordNoBody:
		l.RecordBody = "dropped"
	default:
		l.RecordBody = "kept"
	}
	if l.LegalHolds == nil {
		l.LegalHolds = []int64{}
	}
	if !it.DeletedAt.IsZero() {
		t := it.DeletedAt.UTC()
		l.DeletedAt = &t
	}
	if !it.RetainUntil.IsZero() {
		t := it.RetainUntil.UTC()
		l.RetainUntil = &t
	}
	return l
}

// Writer writes manifest.jsonl, manifest.csv and SHA256SUMS in one pass
// over the exported media, hashing and counting each as it goes.
type Writer struct {
	jsonl, csvFile, sums *archive.HashWriter
	csv                  *csv.Writer
	err                  error
}

// sum is the FileSum of what went through w.
func sum(w *archive.HashWriter) FileSum {
	s := w.SHA256()
	return FileSum{hex.EncodeToString(s[:]), w.Size()}
}

// NewWriter returns a Writer onto the three files' destinations.
func NewWriter(jsonl, csvFile, sums io.Writer) *Writer {
	w := &Writer{
		jsonl: archive.NewHashWriter(jsonl), csvFile: archive.NewHashWriter(csvFile), sums: archive.NewHashWriter(sums),
	}
	w.csv = csv.NewWriter(w.csvFile)
	w.err = w.csv.Write(csvHeader)
	return w
}

// Add writes one exported media's lines.
func (w *Writer) Add(it catalog.ExportItem) error {
	if w.err != nil {
		return w.err
	}
	l := LineFor(it)
	b, err := json.Marshal(l)
	if err != nil {
		w.err = err
		return err
	}
	if _, w.err = w.jsonl.Write(append(b, '\n')); w.err != nil {
		return w.err
	}
	holds := make([]string, len(l.LegalHolds))
	for i, h := range l.LegalHolds {
		holds[i] = strconv.FormatInt(h, 10)
	}
	if w.err = w.csv.Write([]string{
		l.MessageSID, rfc3339(l.DateSent), l.From, l.To, l.MediaSID, l.ContentType, strconv.FormatInt(l.Size, 10),
		l.SHA256, l.Path, l.ArchiveStore, l.ArchiveBucket, l.ArchiveKey, l.ArchiveVersion, rfc3339(l.ArchivedAt),
		rfc3339p(l.DeletedAt), l.RetentionMode, rfc3339p(l.RetainUntil), strings.Join(holds, ";"),
		l.Source, l.ConversationSID, l.Author, l.Filename,
		l.RecordKey, l.RecordSHA256, l.RecordBody,
	}); w.err != nil {
		return w.err
	}
	_, w.err = fmt.Fprintf(w.sums, "%s  %s\n", l.SHA256, l.Path)
	return w.err
}

// Sums is what Close returns: the SHA-256 and size of the three files.
type Sums struct {
	JSONL, CSV, SHA256SUMS FileSum
}

// FileSum is one file's SHA-256 and size.
type FileSum struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Close ends the files: SHA256SUMS also lists the two manifests, so that
// `sha256sum -c SHA256SUMS` checks them too.
func (w *Writer) Close() (Sums, error) {
	if w.err != nil {
		return Sums{}, w.err
	}
	w.csv.Flush()
	if err := w.csv.Error(); err != nil {
		return Sums{}, err
	}
	s := Sums{JSONL: sum(w.jsonl), CSV: sum(w.csvFile)}
	if _, err := fmt.Fprintf(w.sums, "%s  %s\n%s  %s\n", s.JSONL.SHA256, archive.ExportJSONLName, s.CSV.SHA256, archive.ExportCSVName); err != nil {
		return Sums{}, err
	}
	s.SHA256SUMS = sum(w.sums)
	return s, nil
}

// Summary states: how an export ended.
const (
	SummaryComplete = "complete"
	SummaryFailed   = "failed"
)

// Summary is export.json.
type Summary struct {
	FormatVersion    int                `json:"format_version"`
	ExportID         string             `json:"export_id"`
	State            string             `json:"state"` // SummaryComplete or SummaryFailed
	MediasyncVersion string             `json:"mediasync_version"`
	Actor            string             `json:"actor"`
	Query            Query              `json:"query"`
	Format           string             `json:"format"`
	Media            int                `json:"media"`
	TotalBytes       int64              `json:"total_bytes"`
	NotArchived      int                `json:"not_archived"`
	Failed           int                `json:"failed"`
	Failures         []Failure          `json:"failures,omitempty"`
	StartedAt        time.Time          `json:"started_at"`
	EndedAt          time.Time          `json:"ended_at"`
	Files            map[string]FileSum `json:"files,omitempty"`
	ManifestSHA256   string             `json:"manifest_sha256,omitempty"`
	SHA256SUMSSHA256 string             `json:"sha256sums_sha256,omitempty"`
	Verification     string             `json:"verification"`
}

// Query is the export's request.
type Query struct {
	AccountSID  string     `json:"account_sid"`
	Since       *time.Time `json:"since,omitempty"`
	Until       *time.Time `json:"until,omitempty"`
	From        string     `json:"from,omitempty"`
	To          string     `json:"to,omitempty"`
	Number      string     `json:"number,omitempty"`
	MessageSIDs []string   `json:"message_sids,omitempty"`
}

// Failure is a media that could not be exported.
type Failure struct {
	MediaSID string `json:"media_sid"`
	Reason   string `json:"reason"`
}

// NewSummary starts export.json from the export's record.
func NewSummary(e catalog.Export) Summary {
	q := Query{AccountSID: e.AccountSID, From: e.From, To: e.To, Number: e.Number, MessageSIDs: e.MessageSIDs}
	if !e.Since.IsZero() {
		t := e.Since.UTC()
		q.Since = &t
	}
	if !e.Until.IsZero() {
		t := e.Until.UTC()
		q.Until = &t
	}
	return Summary{
		FormatVersion: 1, ExportID: e.ID.String(), MediasyncVersion: Version(), Actor: e.Actor,
		Query: q, Format: e.Format, NotArchived: e.NotArchived,
		StartedAt: e.StartedAt.UTC().Truncate(time.Second), EndedAt: e.EndedAt.UTC(),
		Verification: "every file was read back from the archive and its size and SHA-256 compared with those recorded when it was archived; " +
			"check the files with: sha256sum -c " + archive.ExportSumsName,
	}
}

// Complete fills in a successful export's files and their checksums.
func (s *Summary) Complete(media int, bytes int64, sums Sums) {
	s.State, s.Media, s.TotalBytes = SummaryComplete, media, bytes
	s.Files = map[string]FileSum{archive.ExportJSONLName: sums.JSONL, archive.ExportCSVName: sums.CSV, archive.ExportSumsName: sums.SHA256SUMS}
	s.ManifestSHA256, s.SHA256SUMSSHA256 = sums.JSONL.SHA256, sums.SHA256SUMS.SHA256
}

// Encode returns export.json's bytes.
func (s Summary) Encode() ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	return append(b, '\n'), err
}

// Version is mediasync's version (internal/version): what the build
// stamped, else the checkout's revision.
func Version() string { return version.String() }

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func rfc3339p(t *time.Time) string {
	if t == nil {
		return ""
	}
	return rfc3339(*t)
}
