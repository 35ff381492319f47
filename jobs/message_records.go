package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/catalog"
)

// Messaging message records (issue #17). Each message a page lists has its
// record (the JSON object Twilio's list returned for it, byte for byte, or
// that object without "body" for a --no-bodies run) stored, create-only,
// beside its media, under a key named by its SHA-256
// (archive.MessageRecordKey), and recorded with the message's row
// (messages.record_*), as a Conversations message's record is.
//
// Where: in the page task, at listing time. It alone sees the records
// (a message task lists media, not messages, and a message without media
// has no task at all), and storing them here keeps them out of Redis
// (payloads stay identifiers) and out of Postgres (no second copy of
// customer bodies, in a database without object lock, to be wiped later).
// The records are stored before the page's messages are recorded and
// their tasks queued, so a media is never deleted before its message's
// record is archived.
//
// Once: a message whose record the catalog holds is not stored again, by a
// replay (a page is listed again until its cursor advances, last) or by a
// later run, even if Twilio's object changed since (its status, its price,
// its num_media once its media are deleted): the first record, taken
// before any delete, is the message as it was. A try that died between
// its PUT and its commit left an object the replay's PUT finds (the same
// key: create-only, verified), or, had Twilio's object changed meanwhile,
// one beside it that the catalog does not name.

// recordParallel is how many records a page stores at once.
const recordParallel = 16

// archiveRecords stores the records of a listed page's messages (raw[i] is
// recs[i]'s object) that the catalog has none of, and sets recs[i].Record
// for those stored now. A dry run stores nothing.
func (h *Handlers) archiveRecords(ctx context.Context, run catalog.Run, day time.Time, recs []catalog.MessageRecord, raw []json.RawMessage) error {
	if run.DryRun || len(recs) == 0 {
		return nil
	}
	sids := make([]string, len(recs))
	for i := range recs {
		sids[i] = recs[i].SID
	}
	have, err := h.catalog.MessageRecords(ctx, sids)
	if err != nil {
		return err
	}
	type todo struct {
		i int
		b []byte
	}
	var work []todo
	for i := range recs {
		if _, ok := have[recs[i].SID]; ok {
			continue // archived once already
		}
		b := []byte(raw[i])
		if len(b) == 0 { // a lister that kept no object: a bug, not Twilio's
			return permanent(fmt.Errorf("message %s: no JSON object to archive as its record", recs[i].SID))
		}
		if run.NoBodies {
			if b, err = withoutMember(b, "body"); err != nil {
				return permanent(fmt.Errorf("record of message %s: %w", recs[i].SID, err))
			}
		}
		work = append(work, todo{i, b})
	}
	// Records are small (a few KiB): many at once, so a page of 1000
	// holds the listing slot for about a second, not several.
	errs := parallelN(len(work), recordParallel, func(j int) error {
		m := &recs[work[j].i]
		d := m.DateSent
		// As a media's key (mediaKeyInfo): date_sent, else date_created;
		// a message with neither (Twilio's schema allows it, never seen)
		// goes under its window's day.
		for _, t := range []time.Time{m.DateCreated, day} {
			if d.IsZero() {
				d = t
			}
		}
		k := archive.KeyInfo{AccountSID: run.AccountSID, MessageSID: m.SID, DateSent: d}
		rc, err := h.storeRecord(ctx, k, m.DateCreated, work[j].b)
		if err != nil {
			return err
		}
		m.Record, m.RecordNoBody = &rc, run.NoBodies
		return nil
	})
	return taskError(errs)
}

// withoutMember returns the JSON object obj without its top-level member
// name (every one, if Twilio sent it twice), every other byte as it was.
// An object without it is returned as is.
func withoutMember(obj []byte, name string) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	type span struct{ from, to int64 }
	var cut []span
	first := true             // the next member is the object's first kept one
	prev := dec.InputOffset() // the end of the last value (or of "{")
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		end := dec.InputOffset()
		if key, _ := tok.(string); key != name {
			first, prev = false, end
			continue
		}
		if first {
			// The first member: its comma is the one after it, if any.
			end = afterComma(obj, end)
		}
		cut = append(cut, span{prev, end})
		prev = end
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, err
	}
	if len(cut) == 0 {
		return obj, nil
	}
	out := make([]byte, 0, len(obj))
	at := int64(0)
	for _, c := range cut {
		out = append(out, obj[at:c.from]...)
		at = c.to
	}
	return append(out, obj[at:]...), nil
}

// afterComma returns the offset past the comma that follows offset at
// (after whitespace), or at if the next byte is not a comma.
func afterComma(b []byte, at int64) int64 {
	for i := at; i < int64(len(b)); i++ {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			continue
		case ',':
			return i + 1
		}
		return at
	}
	return at
}
