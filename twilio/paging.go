package twilio

import (
	"context"
	"crypto/sha256"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strings"
)

// PageMeta is the paging part of a Twilio list response. The *URI fields
// are relative to the API host and keep the list's filters; follow
// NextPageURI as given (Client methods do), never build page URIs.
type PageMeta struct {
	Page            int    `json:"page"`
	PageSize        int    `json:"page_size"`
	Start           int    `json:"start"`
	End             int    `json:"end"`
	URI             string `json:"uri"`
	FirstPageURI    string `json:"first_page_uri"`
	NextPageURI     string `json:"next_page_uri"` // "" on the last page
	PreviousPageURI string `json:"previous_page_uri"`

	// selfRel and nextRel are the requested URI and NextPageURI as
	// validated and normalised by fetchPage, for loop detection.
	selfRel, nextRel string
}

func (m *PageMeta) meta() *PageMeta { return m }

type page interface{ meta() *PageMeta }

// maxPageURILen bounds a page URI; Twilio's are a few hundred bytes.
const maxPageURILen = 8 << 10

// pageURI validates raw, a page URI given by a caller or by Twilio, and
// returns the URL to request and its normalised relative form (path and
// query). A relative URI is resolved against the API host; an absolute one
// must be on that host already. The path must satisfy wantPath; the query is
// kept byte for byte, as Twilio gave it.
func (c *Client) pageURI(raw string, wantPath func(path string) bool) (*url.URL, string, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %s: %s", ErrInvalidPageURI, describeURI(raw), fmt.Sprintf(format, args...))
	}
	if raw == "" {
		return nil, "", bad("empty")
	}
	if len(raw) > maxPageURILen {
		return nil, "", bad("longer than %d bytes", maxPageURILen)
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] <= ' ' || raw[i] >= 0x7f {
			return nil, "", bad("contains a space, control or non-ASCII byte")
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, "", bad("not a URL")
	}
	if u.Scheme != "" || u.Host != "" {
		if !strings.EqualFold(u.Scheme, c.api.base.Scheme) || !strings.EqualFold(u.Host, c.api.base.Host) {
			return nil, "", bad("points outside the API host %s", c.api.base.Host)
		}
	}
	switch {
	case u.User != nil:
		return nil, "", bad("carries user information")
	case u.Opaque != "" || !strings.HasPrefix(u.Path, "/"):
		return nil, "", bad("not a path from the host root")
	case u.RawPath != "" || strings.Contains(u.Path, "%"):
		return nil, "", bad("path has escaped characters")
	case !wantPath(u.Path):
		return nil, "", bad("not a page of the expected list")
	}
	rel := u.Path
	if u.RawQuery != "" {
		rel += "?" + u.RawQuery
	}
	return c.api.url(u.Path, u.RawQuery), rel, nil
}

// fetchPage fetches one list page at raw, decoding the items under
// itemsKey within the page bounds (page_decode.go), and validates its
// next_page_uri: it must stay on the same list path and must not point at
// this page again.
func fetchPage[T any, PT interface {
	*T
	pageItem
}](ctx context.Context, c *Client, raw string, wantPath func(string) bool, itemsKey string) (PageMeta, []T, error) {
	u, rel, err := c.pageURI(raw, wantPath)
	if err != nil {
		return PageMeta{}, nil, err
	}
	lim := pageLimits{body: c.maxJSON, value: maxPageValueBytes, items: requestedPageSize(u.RawQuery), kept: maxItemKeptBytes}
	var m PageMeta
	var items []T
	_, err = c.do(ctx, &request{
		method: http.MethodGet,
		url:    u,
		host:   &c.api,
		accept: "application/json",
		read: func(resp *http.Response) error {
			m = PageMeta{}
			var err error
			items, err = decodePage[T, PT](resp.Body, lim, itemsKey, &m)
			return err
		},
	})
	if err != nil {
		return PageMeta{}, nil, err
	}
	m.selfRel = rel
	if m.NextPageURI != "" {
		_, next, err := c.pageURI(m.NextPageURI, func(path string) bool { return path == u.Path })
		if err != nil {
			return PageMeta{}, nil, fmt.Errorf("twilio: GET %s: next_page_uri: %w", u.Path, err)
		}
		if next == rel {
			return PageMeta{}, nil, fmt.Errorf("twilio: GET %s: next_page_uri: %w %s: points at the same page", u.Path, ErrInvalidPageURI, describeURI(m.NextPageURI))
		}
		m.nextRel = next
	}
	return m, items, nil
}

// recentPages remembers the pages of one iteration, to refuse a
// next_page_uri cycle longer than one page. It keeps digests of the last
// recentPagesWindow pages only, so memory does not grow with the length of
// a listing.
type recentPages struct {
	seen  map[[32]byte]struct{}
	order [][32]byte
}

const recentPagesWindow = 1024

func (r *recentPages) add(rel string) {
	if r.seen == nil {
		r.seen = make(map[[32]byte]struct{})
	}
	h := sha256.Sum256([]byte(rel))
	if _, ok := r.seen[h]; ok {
		return
	}
	if len(r.order) == recentPagesWindow {
		delete(r.seen, r.order[0])
		r.order = r.order[1:]
	}
	r.seen[h] = struct{}{}
	r.order = append(r.order, h)
}

func (r *recentPages) has(rel string) bool {
	_, ok := r.seen[sha256.Sum256([]byte(rel))]
	return ok
}

// pageSeq lazily fetches the page at first, then follows next_page_uri
// until there is none, the consumer stops, or an error (yielded once, as
// the last value). setupErr, if set, is yielded instead of any request.
func pageSeq[P any, PP interface {
	*P
	page
}](ctx context.Context, setupErr error, first string, fetch func(ctx context.Context, uri string) (*P, error)) iter.Seq2[*P, error] {
	return func(yield func(*P, error) bool) {
		if setupErr != nil {
			yield(nil, setupErr)
			return
		}
		var recent recentPages
		uri := first
		for uri != "" {
			p, err := fetch(ctx, uri)
			if err != nil {
				yield(nil, err)
				return
			}
			m := PP(p).meta()
			recent.add(m.selfRel)
			if m.nextRel != "" && recent.has(m.nextRel) {
				yield(nil, fmt.Errorf("twilio: GET %s: next_page_uri: %w %s: returns to a page already listed",
					pathOf(m.selfRel), ErrInvalidPageURI, describeURI(m.NextPageURI)))
				return
			}
			if !yield(p, nil) {
				return
			}
			uri = m.NextPageURI
		}
	}
}

// itemSeq flattens a page sequence into its items.
func itemSeq[P any, T any](pages iter.Seq2[*P, error], items func(*P) []T) iter.Seq2[*T, error] {
	return func(yield func(*T, error) bool) {
		for p, err := range pages {
			if err != nil {
				yield(nil, err)
				return
			}
			list := items(p)
			for i := range list {
				if !yield(&list[i], nil) {
					return
				}
			}
		}
	}
}

func pathOf(rel string) string {
	path, _, _ := strings.Cut(rel, "?")
	return path
}

// describeURI names a page URI in an error without its query, which holds
// the list's filters (phone numbers are customer data).
func describeURI(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Sprintf("(%d bytes, not a URL)", len(raw))
	}
	shown := (&url.URL{Scheme: u.Scheme, Host: u.Host, Opaque: u.Opaque, Path: u.Path, RawPath: u.RawPath}).String()
	if u.RawQuery != "" {
		shown += "?…"
	}
	return quoteLimit(shown, 256)
}
