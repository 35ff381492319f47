package twilio

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
)

// A list page is decoded as it streams, never read whole, under four
// bounds, so that what one page can make the client hold stays in single
// MiB whatever the server sends:
//
//   - items: at most the PageSize the request asked for (a page with more
//     is an error, not a silent truncation);
//   - value bytes: no one JSON value (an item, a paging field) nor a run of
//     whitespace may pass maxPageValueBytes, so the decoder never buffers
//     more than about that;
//   - kept bytes: the fields the client keeps of one item (SIDs, numbers,
//     URIs) may not pass maxItemKeptBytes, so 1000 items hold at most a few
//     MiB even when each is as large as a value may be; a page read with
//     MessagesService.PageRecords also keeps each message's object
//     (Message.Raw, for the archive), at most one value each and the body
//     limit in all: a real page of 1000 messages is 2–3 MiB, and a worker
//     lists one page at a time;
//   - fields: the page object has at most maxPageFields;
//   - body bytes: the response as a whole may not pass the client's JSON
//     limit, which bounds the time a page takes (and a Messages page's
//     raw objects).
const (
	// maxPageValueBytes bounds one item: a Twilio message is about 1.5 KB
	// plus its body (1600 characters, at most ~10 KB JSON-escaped).
	maxPageValueBytes = 64 << 10
	// maxItemKeptBytes bounds the decoded fields kept per item: SIDs are
	// 34 bytes, numbers and URIs a few dozen to a few hundred.
	maxItemKeptBytes = 4 << 10
	// maxPageFields bounds the fields of the page object: Twilio sends
	// about ten (the items and the paging fields).
	maxPageFields = 64
	// defaultPageSize is Twilio's PageSize when a request names none.
	defaultPageSize = 50
)

// pageItem is a list item that can say how many bytes of fields it keeps.
type pageItem interface{ keptBytes() int }

// pageLimits bound the decoding of one page (see above).
type pageLimits struct {
	body  int64
	value int64
	items int
	kept  int
	raw   bool // keep each rawKeeper item's object as sent
}

// requestedPageSize is the PageSize in a page URI's query: the most items
// the page may hold. Twilio documents 50 as the default and 1..1000 as the
// range (1..100 on Conversations v1: maxSize); a value out of range (which
// Twilio refuses with a 400) or unreadable allows the maximum.
func requestedPageSize(rawQuery string, maxSize int) int {
	maxSize = cmp.Or(maxSize, maxPageSize)
	q, err := url.ParseQuery(rawQuery)
	v := q.Get("PageSize")
	if err == nil && v == "" {
		return min(defaultPageSize, maxSize)
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxSize {
		return maxSize
	}
	return n
}

var (
	errPageTooLarge  = errors.New("page is larger than the byte limit")
	errValueTooLarge = errors.New("one value of the page is larger than the byte limit")
)

// pageReader hands the decoder at most total bytes in all, and none past
// stop, an offset moved forward before each value is read: the decoder
// cannot buffer a value (or whitespace) longer than the value limit.
type pageReader struct {
	r           io.Reader
	n           int64
	total, stop int64
}

func (p *pageReader) Read(b []byte) (int, error) {
	switch {
	case p.n >= p.total:
		return 0, errPageTooLarge
	case p.n >= p.stop:
		return 0, errValueTooLarge
	}
	b = b[:min(int64(len(b)), p.total-p.n, p.stop-p.n)]
	n, err := p.r.Read(b)
	p.n += int64(n)
	return n, err
}

// decodePage decodes a list page: its paging fields into meta, the array
// under itemsKey into items, under lim.
func decodePage[T any, PT interface {
	*T
	pageItem
}](r io.Reader, lim pageLimits, itemsKey string, meta fieldDecoder) ([]T, error) {
	pr := &pageReader{r: r, total: lim.body + 1, stop: lim.value}
	dec := json.NewDecoder(pr)
	next := func() { pr.stop = dec.InputOffset() + lim.value }
	fail := func(err error) error {
		switch {
		case errors.Is(err, errPageTooLarge):
			return fmt.Errorf("response body is larger than the %d byte limit", lim.body)
		case errors.Is(err, errValueTooLarge):
			return fmt.Errorf("decode response: a value at byte %d is larger than the %d byte limit", dec.InputOffset(), lim.value)
		case errors.Is(err, io.EOF):
			return fmt.Errorf("decode response: %w", io.ErrUnexpectedEOF)
		}
		return fmt.Errorf("decode response: %w", err)
	}

	tok, err := dec.Token()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("decode response: want a JSON object, got nothing")
	}
	if err != nil {
		return nil, fail(err)
	}
	if tok != json.Delim('{') {
		return nil, fmt.Errorf("decode response: want a JSON object, got %s", tokenKind(tok))
	}
	var items []T
	seen := false
	for fields := 0; ; fields++ {
		next()
		if !dec.More() {
			break
		}
		if fields == maxPageFields {
			return nil, fmt.Errorf("decode response: the page has more than %d fields", maxPageFields)
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, fail(err)
		}
		key, _ := tok.(string)
		next()
		if key != itemsKey {
			if err := dec.Decode(meta.field(key)); err != nil {
				return nil, fail(fmt.Errorf("field %s: %w", quoteInput(key), err))
			}
			continue
		}
		if seen {
			return nil, fmt.Errorf("decode response: %q appears twice", itemsKey)
		}
		seen = true
		if items, err = decodeItems[T, PT](dec, next, lim, itemsKey); err != nil {
			return nil, fail(err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, fail(err)
	}
	next()
	switch _, err := dec.Token(); {
	case errors.Is(err, io.EOF):
		return items, nil
	case errors.Is(err, errPageTooLarge):
		return nil, fail(err)
	}
	return nil, errors.New("decode response: data after the page object")
}

// decodeItems decodes the items array, one item at a time.
func decodeItems[T any, PT interface {
	*T
	pageItem
}](dec *json.Decoder, next func(), lim pageLimits, key string) ([]T, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, nil // null: no items
	}
	if tok != json.Delim('[') {
		return nil, fmt.Errorf("%q is %s, want an array", key, tokenKind(tok))
	}
	items := make([]T, 0, min(lim.items, 64))
	for {
		next()
		if !dec.More() {
			break
		}
		if len(items) == lim.items {
			return nil, fmt.Errorf("%q holds more than the %d items the request asked for (PageSize)", key, lim.items)
		}
		items = append(items, *new(T))
		it := &items[len(items)-1]
		if err := decodeItem(dec, PT(it), lim.raw); err != nil {
			return nil, fmt.Errorf("%s item %d: %w", key, len(items)-1, err)
		}
		if n := PT(it).keptBytes(); n > lim.kept {
			return nil, fmt.Errorf("%s item %d: its fields hold %d bytes, more than the %d a Twilio item holds", key, len(items)-1, n, lim.kept)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing bracket
		return nil, err
	}
	return items, nil
}

// rawKeeper is an item that keeps its JSON object as sent.
type rawKeeper interface{ keepRaw(json.RawMessage) }

// decodeItem decodes the next value into it; with raw, an item that keeps
// its raw object gets the value's bytes as they came (the decoder's own
// copy).
func decodeItem(dec *json.Decoder, it any, raw bool) error {
	k, ok := it.(rawKeeper)
	if !ok || !raw {
		return dec.Decode(it)
	}
	var b json.RawMessage
	if err := dec.Decode(&b); err != nil {
		return err
	}
	if err := json.Unmarshal(b, it); err != nil {
		return err
	}
	if string(b) != "null" {
		k.keepRaw(b)
	}
	return nil
}

// fieldDecoder says where each top-level field of a page other than its
// items decodes to.
type fieldDecoder interface{ field(key string) any }

// field returns where the paging field key decodes to; keys the client
// does not use decode into a value that is dropped.
func (m *PageMeta) field(key string) any {
	switch key {
	case "page":
		return &m.Page
	case "page_size":
		return &m.PageSize
	case "start":
		return &m.Start
	case "end":
		return &m.End
	case "uri":
		return &m.URI
	case "first_page_uri":
		return &m.FirstPageURI
	case "next_page_uri":
		return &m.NextPageURI
	case "previous_page_uri":
		return &m.PreviousPageURI
	}
	return new(json.RawMessage)
}

// tokenKind names the JSON type of a token for decode errors.
func tokenKind(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '[' {
			return "an array"
		}
		return "an object"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "a number"
}

func (m *Message) keptBytes() int {
	return len(m.SID) + len(m.AccountSID) + len(m.MessagingServiceSID) + len(m.From) + len(m.To) +
		len(m.Direction) + len(m.Status) + len(m.URI) + len(m.SubresourceURIs.Media)
}

func (m *Media) keptBytes() int {
	return len(m.SID) + len(m.AccountSID) + len(m.ParentSID) + len(m.ContentType) + len(m.URI)
}
