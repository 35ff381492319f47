package jobs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"path"
	"strings"
	"time"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/manifest"
	"github.com/mediasync/mediasync/internal/zipstream"
)

// Relativity's guidance for an .rsmf file (../shared/reference/rsmf): RSMF
// 2.0.0, at most 10 000 events and 200 MB, a conversation sliced by day.
const (
	rsmfVersion   = "2.0.0"
	rsmfMaxEvents = 10000
	rsmfMaxBytes  = 200 << 20
	// rsmfEventBytes bounds what one event adds besides its media and its
	// body: its manifest entry and zip headers.
	rsmfEventBytes = 8 << 10
	// rsmfMaxRecord bounds a message record read for its body (Twilio's
	// bodies are at most 1 600 characters; Conversations' 32 KiB).
	rsmfMaxRecord = 4 << 20
)

// rsmfFile is the messages of one .rsmf file, with their media: metadata
// only, at most the event limit of them, so memory is bounded whatever the
// export's size.
type rsmfFile struct {
	conv, day string
	part      int
	msgs      []catalog.RSMFMessage
	bytes     int64 // estimated size, base64 included
}

func (f rsmfFile) name() string {
	return fmt.Sprintf("%s/%s.%d.rsmf", f.day, f.conv, f.part)
}

// rsmfSplitter cuts the messages of an export, in RSMFMessages' order,
// into .rsmf files: one per conversation per UTC day, and a further part
// each time the next message would pass maxEvents or maxBytes.
type rsmfSplitter struct {
	maxEvents int
	maxBytes  int64
	cur       rsmfFile
}

// add takes the next message and returns the file it closed, if any.
func (s *rsmfSplitter) add(m catalog.RSMFMessage) (rsmfFile, bool) {
	conv, day := fileSafe(m.Conversation()), m.Sent.UTC().Format(time.DateOnly)
	size := rsmfEventBytes + m.MediaBytes*4/3 // base64
	if m.Record != nil {
		// The body, at most its record's size (Conversations allow 32 KiB).
		size += m.Record.Size * 4 / 3
	}
	var done rsmfFile
	closed := false
	same := conv == s.cur.conv && day == s.cur.day
	if len(s.cur.msgs) > 0 && (!same || len(s.cur.msgs) >= s.maxEvents || s.cur.bytes+size > s.maxBytes) {
		done, closed = s.cur, true
		part := 1
		if same {
			part = s.cur.part + 1
		}
		s.cur = rsmfFile{part: part}
	}
	if len(s.cur.msgs) == 0 {
		s.cur.conv, s.cur.day = conv, day
		s.cur.part = max(s.cur.part, 1)
	}
	s.cur.msgs = append(s.cur.msgs, m)
	s.cur.bytes += size
	return done, closed
}

// end returns the last file, if any message is left.
func (s *rsmfSplitter) end() (rsmfFile, bool) {
	f := s.cur
	s.cur = rsmfFile{}
	return f, len(f.msgs) > 0
}

// rsmfLine is manifest.jsonl's line for an .rsmf file.
type rsmfLine struct {
	Path         string    `json:"path"`
	Size         int64     `json:"size"`
	SHA256       string    `json:"sha256"`
	Conversation string    `json:"conversation"`
	Day          string    `json:"day"`
	Part         int       `json:"part"`
	Events       int       `json:"events"`
	Attachments  int       `json:"attachments"`
	Begin        time.Time `json:"begin"`
	End          time.Time `json:"end"`
	failed       int       // media that failed their check
}

// exportRSMF writes an export as .rsmf files, one per conversation per UTC
// day (split further past Relativity's limits), then manifest.jsonl,
// SHA256SUMS and export.json. Each file is built in a spool (a store needs
// its size and SHA-256 before it takes it) and stored create-only, its
// bytes a function of the archive alone, so a retried pass finds its own
// files.
func (h *Handlers) exportRSMF(ctx context.Context, e catalog.Export, dest exportDest, p StartRunPayload) error {
	if err := h.catalog.RestartExport(ctx, p.RunID); err != nil {
		return err
	}
	var err error
	if e.EndedAt, err = h.catalog.ExportEnd(ctx, p.RunID); err != nil {
		return err
	}
	limit := rsmfMaxEvents
	if e.RSMFMaxEvents > 0 {
		limit = e.RSMFMaxEvents
	}
	jsonl := archive.NewSpool(archive.SpoolConfig{Dir: h.spoolDir})
	defer jsonl.Close()
	sums := archive.NewSpool(archive.SpoolConfig{Dir: h.spoolDir})
	defer sums.Close()
	enc := json.NewEncoder(jsonl)
	sp := rsmfSplitter{maxEvents: limit, maxBytes: rsmfMaxBytes}
	flush := func(f rsmfFile) error {
		line, err := h.putRSMF(ctx, e, dest, f)
		if err != nil || line.failed > 0 {
			return err
		}
		if err := enc.Encode(line); err != nil {
			return err
		}
		_, err = fmt.Fprintf(sums, "%s  %s\n", line.SHA256, line.Path)
		return err
	}
	for m, err := range h.catalog.RSMFMessages(ctx, p.RunID) {
		if err != nil {
			return h.exportError(ctx, p.RunID, err)
		}
		if full, ok := sp.add(m); ok {
			if err := flush(full); err != nil {
				return h.exportError(ctx, p.RunID, err)
			}
		}
	}
	if last, ok := sp.end(); ok {
		if err := flush(last); err != nil {
			return h.exportError(ctx, p.RunID, err)
		}
	}
	n, err := h.catalog.ExportCounts(ctx, p.RunID)
	if err != nil {
		return h.exportError(ctx, p.RunID, err)
	}
	sum := manifest.NewSummary(e)
	if n.Failed > 0 {
		if err := h.summarizeFailures(ctx, &sum, e.ID, n); err != nil {
			return err
		}
		if err := h.putBytes(ctx, dest, archive.ExportSummaryName, "application/json", sum); err != nil {
			return h.exportError(ctx, p.RunID, err)
		}
		_, err := h.catalog.FinishExport(ctx, e.ID, false, fmt.Sprintf("%d media failed verification", n.Failed))
		return err
	}
	jsonlSum := manifest.FileSum{SHA256: hex.EncodeToString(sha(jsonl)), Size: jsonl.Size()}
	if _, err := fmt.Fprintf(sums, "%s  %s\n", jsonlSum.SHA256, archive.ExportJSONLName); err != nil {
		return err
	}
	for _, f := range []struct {
		name, typ string
		s         *archive.Spool
	}{{archive.ExportJSONLName, "application/jsonl", jsonl}, {archive.ExportSumsName, "text/plain", sums}} {
		body, err := f.s.Reader()
		if err != nil {
			return err
		}
		if err := h.putFile(ctx, dest, f.name, f.typ, f.s.Size(), f.s.SHA256(), body); err != nil {
			return h.exportError(ctx, p.RunID, err)
		}
	}
	sumsSum := manifest.FileSum{SHA256: hex.EncodeToString(sha(sums)), Size: sums.Size()}
	sum.State, sum.Media, sum.TotalBytes = manifest.SummaryComplete, n.Exported, n.Bytes
	sum.Files = map[string]manifest.FileSum{archive.ExportJSONLName: jsonlSum, archive.ExportSumsName: sumsSum}
	sum.ManifestSHA256, sum.SHA256SUMSSHA256 = jsonlSum.SHA256, sumsSum.SHA256
	out := catalog.ExportOutput{Key: dest.key(archive.ExportSummaryName), ManifestSHA256: jsonl.SHA256(), SumsSHA256: sums.SHA256()}
	if err := h.catalog.RecordExportOutput(ctx, e.ID, out); err != nil {
		return h.exportError(ctx, p.RunID, err)
	}
	if err := h.putBytes(ctx, dest, archive.ExportSummaryName, "application/json", sum); err != nil {
		return h.exportError(ctx, p.RunID, err)
	}
	_, err = h.catalog.FinishExport(ctx, e.ID, true, "")
	return err
}

func sha(s *archive.Spool) []byte {
	b := s.SHA256()
	return b[:]
}

// fileSafe keeps a conversation key usable as a file name.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r < ' ' {
			return '-'
		}
		return r
	}, s)
}

// putRSMF builds one .rsmf file in a spool and stores it.
func (h *Handlers) putRSMF(ctx context.Context, e catalog.Export, dest exportDest, f rsmfFile) (rsmfLine, error) {
	spool := archive.NewSpool(archive.SpoolConfig{Dir: h.spoolDir})
	defer spool.Close()
	line, err := h.writeRSMF(ctx, e, f, spool)
	if err != nil || line.failed > 0 {
		// A file with a media that failed its check is not stored: the
		// export fails naming the media, and no reviewer loads bad bytes.
		return line, err
	}
	body, err := spool.Reader()
	if err != nil {
		return line, err
	}
	line.Size, line.SHA256 = spool.Size(), hex.EncodeToString(sha(spool))
	return line, h.putFile(ctx, dest, line.Path, "message/rfc822", spool.Size(), spool.SHA256(), body)
}

// RSMF manifest entries (rsmf_schema_2_0_0.json).
type (
	rsmfParticipant struct {
		ID        string `json:"id"`
		Display   string `json:"display"`
		AccountID string `json:"account_id"`
	}
	rsmfConversation struct {
		ID           string       `json:"id"`
		Display      string       `json:"display"`
		Platform     string       `json:"platform"`
		Type         string       `json:"type"`
		Participants []string     `json:"participants"`
		Custom       []rsmfCustom `json:"custom,omitempty"`
	}
	rsmfCustom struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}
	rsmfAttachment struct {
		ID      string `json:"id"`
		Display string `json:"display"`
		Size    int64  `json:"size"`
	}
	rsmfEvent struct {
		ID           string           `json:"id"`
		Type         string           `json:"type"`
		Participant  string           `json:"participant,omitempty"`
		Conversation string           `json:"conversation"`
		Timestamp    string           `json:"timestamp"`
		Body         *string          `json:"body,omitempty"`
		Direction    string           `json:"direction,omitempty"`
		Attachments  []rsmfAttachment `json:"attachments,omitempty"`
	}
)

// writeRSMF writes f as an .rsmf file into w: the RFC 5322 envelope, its
// X-RSMF-* headers (counts known up front, from Postgres), a text part, and
// rsmf.zip in base64, streamed: the media, each read back and checked,
// then rsmf_manifest.json with the events' bodies from their records.
func (h *Handlers) writeRSMF(ctx context.Context, e catalog.Export, f rsmfFile, w io.Writer) (rsmfLine, error) {
	line := rsmfLine{Path: f.name(), Conversation: f.conv, Day: f.day, Part: f.part, Events: len(f.msgs)}
	line.Begin, line.End = f.msgs[0].Sent.UTC(), f.msgs[len(f.msgs)-1].Sent.UTC()
	// Participants, by first appearance, and each media's row.
	var parts []rsmfParticipant
	ids := map[string]string{}
	participant := func(who string) string {
		if who == "" {
			return ""
		}
		if id, ok := ids[who]; ok {
			return id
		}
		id := fmt.Sprintf("P%d", len(parts)+1)
		ids[who] = id
		parts = append(parts, rsmfParticipant{ID: id, Display: who, AccountID: who})
		return id
	}
	var seqs []int
	conversations := f.msgs[0].ConversationSID != ""
	for _, m := range f.msgs {
		if conversations {
			participant(m.Author)
		} else {
			participant(m.From)
			participant(m.To)
		}
		seqs = append(seqs, m.MediaSeq...)
	}
	line.Attachments = len(seqs)
	byseq, err := h.catalog.ExportItemsAt(ctx, e.ID, seqs)
	if err != nil {
		return line, err
	}
	app, platform, typ := "Twilio Messaging", "sms", "direct"
	if conversations {
		app, platform, typ = "Twilio Conversations", "twilio-conversations", "channel"
	}
	displays := make([]string, len(parts))
	pids := make([]string, len(parts))
	for i, p := range parts {
		displays[i], pids[i] = p.Display, p.ID
	}
	collection := f.conv + "_" + f.day
	subject := fmt.Sprintf("%s conversation %s, %s", platform, strings.Join(displays, ", "), f.day)
	if conversations {
		subject = fmt.Sprintf("Conversation %s, %s", f.conv, f.day)
	}
	if f.part > 1 {
		subject += fmt.Sprintf(" (part %d)", f.part)
	}
	nameSum := sha256.Sum256([]byte(e.ID.String() + "/" + line.Path))
	boundary := "rsmf-" + hex.EncodeToString(nameSum[:12])
	q := func(s string) string { return mime.QEncoding.Encode("utf-8", s) }
	var hdr strings.Builder
	for _, kv := range [][2]string{
		{"From", "mediasync <export-" + e.ID.String() + "@mediasync.invalid>"},
		{"To", "undisclosed-recipients:;"},
		{"Subject", q(subject)},
		{"Date", line.Begin.Format(time.RFC1123Z)},
		{"Message-ID", "<" + hex.EncodeToString(nameSum[:16]) + "@mediasync.invalid>"},
		{"MIME-Version", "1.0"},
		{"X-RSMF-Version", rsmfVersion},
		{"X-RSMF-Generator", "mediasync " + manifest.Version()},
		{"X-RSMF-Application", app},
		{"X-RSMF-EventCount", fmt.Sprint(line.Events)},
		{"X-RSMF-AttachmentCount", fmt.Sprint(line.Attachments)},
		{"X-RSMF-BeginDate", line.Begin.Format(time.RFC3339)},
		{"X-RSMF-EndDate", line.End.Format(time.RFC3339)},
		{"X-RSMF-EventCollectionID", q(collection)},
	} {
		fmt.Fprintf(&hdr, "%s: %s\r\n", kv[0], kv[1])
	}
	// One participant a line, folded, so the header stays within RFC
	// 5322's line length however many take part.
	quoted := make([]string, len(displays))
	for i, d := range displays {
		quoted[i] = q(d)
	}
	fmt.Fprintf(&hdr, "X-RSMF-Participants: %s\r\n", strings.Join(quoted, ",\r\n "))
	fmt.Fprintf(&hdr, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n", boundary)
	if _, err := io.WriteString(w, hdr.String()); err != nil {
		return line, err
	}
	mw := multipart.NewWriter(w)
	if err := mw.SetBoundary(boundary); err != nil {
		return line, err
	}
	tw, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {`text/plain; charset="utf-8"`}})
	if err != nil {
		return line, err
	}
	if _, err := fmt.Fprintf(tw, "%s\r\n\r\n%d events, %d attachments, %s to %s.\r\nExported by mediasync (export %s): load this file as RSMF.\r\n",
		subject, line.Events, line.Attachments, line.Begin.Format(time.RFC3339), line.End.Format(time.RFC3339), e.ID); err != nil {
		return line, err
	}
	zp, err := mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":              {"application/zip; name=rsmf.zip"},
		"Content-Disposition":       {"attachment; filename=rsmf.zip"},
		"Content-Transfer-Encoding": {"base64"},
	})
	if err != nil {
		return line, err
	}
	lw := &lineWrapper{w: zp}
	b64 := base64.NewEncoder(base64.StdEncoding, lw)
	zw := zipstream.NewWriter(b64, h.spoolDir)
	defer zw.Abort()
	events := make([]rsmfEvent, len(f.msgs))
	for i, m := range f.msgs {
		ev := rsmfEvent{ID: m.SID, Type: "message", Conversation: "C1", Timestamp: m.Sent.UTC().Format(time.RFC3339)}
		if conversations {
			ev.Participant = ids[m.Author]
		} else {
			ev.Participant = ids[m.From]
			switch {
			case m.Direction == "inbound":
				ev.Direction = "incoming"
			case strings.HasPrefix(m.Direction, "outbound"):
				ev.Direction = "outgoing"
			}
		}
		for _, seq := range m.MediaSeq {
			it := byseq[seq]
			name := path.Base(archive.ExportMediaPath(exportKeyInfo(it)))
			fw, err := zw.Create(name, zipstream.Store, it.DateSent.UTC())
			if err != nil {
				return line, err
			}
			bad, err := h.readArchived(ctx, it, fw)
			switch {
			case err != nil:
				return line, err
			case bad != "":
				line.failed++
				err = h.catalog.FailExportMedia(ctx, e.ID, it.Seq, bad)
			default:
				err = h.catalog.MarkExported(ctx, e.ID, it.Seq, line.Path)
			}
			if err != nil {
				return line, err
			}
			display := it.Filename
			if display == "" {
				display = name
			}
			ev.Attachments = append(ev.Attachments, rsmfAttachment{ID: name, Display: display, Size: it.Size})
		}
		events[i] = ev
	}
	mf, err := zw.Create("rsmf_manifest.json", zipstream.Deflate, line.End)
	if err != nil {
		return line, err
	}
	conv := rsmfConversation{ID: "C1", Display: subject, Platform: platform, Type: typ, Participants: pids,
		Custom: []rsmfCustom{{Name: "Conversation", Value: f.conv}, {Name: "Day (UTC)", Value: f.day}}}
	head, err := json.Marshal(struct {
		Version         string             `json:"version"`
		EventCollection string             `json:"eventcollectionid"`
		Participants    []rsmfParticipant  `json:"participants"`
		Conversations   []rsmfConversation `json:"conversations"`
	}{rsmfVersion, collection, parts, []rsmfConversation{conv}})
	if err != nil {
		return line, err
	}
	// The events go last, one at a time, each with its body read from its
	// record as it is written.
	if _, err := mf.Write(append(head[:len(head)-1], []byte(`,"events":[`)...)); err != nil {
		return line, err
	}
	for i, ev := range events {
		if ev.Body, err = h.recordBody(ctx, f.msgs[i]); err != nil {
			return line, err
		}
		b, err := json.Marshal(ev)
		if err != nil {
			return line, err
		}
		if i > 0 {
			b = append([]byte{','}, b...)
		}
		if _, err := mf.Write(b); err != nil {
			return line, err
		}
	}
	if _, err := io.WriteString(mf, "]}"); err != nil {
		return line, err
	}
	if err := zw.Close(); err != nil {
		return line, err
	}
	if err := b64.Close(); err != nil {
		return line, err
	}
	if err := lw.end(); err != nil {
		return line, err
	}
	return line, mw.Close()
}

// recordBody returns a message's body from its archived record, checked
// against the SHA-256 recorded for it: nil when there is no record or it
// has no body (kept out with --no-bodies). A record that is missing or
// altered fails the export, naming it.
func (h *Handlers) recordBody(ctx context.Context, m catalog.RSMFMessage) (*string, error) {
	if m.Record == nil {
		return nil, nil
	}
	if m.Record.Size > rsmfMaxRecord {
		return nil, permanent(fmt.Errorf("record of message %s: %d bytes, more than a message record holds", m.SID, m.Record.Size))
	}
	loc := h.store.Location()
	var buf bytes.Buffer
	at := catalog.CopyAt{Store: loc.Kind, Bucket: loc.Bucket, Key: m.Record.Key}
	result, reason, err := h.readStored(ctx, m.SID, at, m.Record.Size, m.Record.SHA256, &buf)
	if err != nil {
		return nil, err
	}
	if result != catalog.VerifyOK {
		return nil, permanent(fmt.Errorf("record of message %s: %s", m.SID, reason))
	}
	var rec struct {
		Body *string `json:"body"`
	}
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		return nil, permanent(fmt.Errorf("record of message %s: %w", m.SID, err))
	}
	return rec.Body, nil
}

// lineWrapper breaks base64 into 76-character lines (RFC 2045).
type lineWrapper struct {
	w   io.Writer
	col int
}

func (l *lineWrapper) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(76-l.col, len(p))
		if _, err := l.w.Write(p[:k]); err != nil {
			return n, err
		}
		n, l.col, p = n+k, l.col+k, p[k:]
		if l.col == 76 {
			if _, err := io.WriteString(l.w, "\r\n"); err != nil {
				return n, err
			}
			l.col = 0
		}
	}
	return n, nil
}

func (l *lineWrapper) end() error {
	if l.col == 0 {
		return nil
	}
	_, err := io.WriteString(l.w, "\r\n")
	return err
}
