package twilio

import (
	"cmp"
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

// page is a fetched page as pageSeq follows it: its own normalised URI,
// its next page's, and the next page URI as Twilio gave it ("" at the end).
type page interface {
	cursor() (self, next, nextRaw string)
}

// maxPageURILen bounds a page URI; Twilio's are a few hundred bytes.
const maxPageURILen = 8 << 10

// pageURI validates raw, a page URI given by a caller or by Twilio, and
// returns the URL to request and its normalised relative form (path and
// query). A relative URI is resolved against host; an absolute one (as
// Conversations v1 gives its meta.next_page_url) must be on that host
// already. The path must satisfy wantPath; the query is kept byte for
// byte, as Twilio gave it.
func (c *Client) pageURI(host *apiHost, raw string, wantPath func(path string) bool) (*url.URL, string, error) {
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
		if !strings.EqualFold(u.Scheme, host.base.Scheme) || !strings.EqualFold(u.Host, host.base.Host) {
			return nil, "", bad("points outside the API host %s", host.base.Host)
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
	return host.url(u.Path, u.RawQuery), rel, nil
}

// listSpec says where a list lives and how its pages are bounded.
type listSpec struct {
	host     *apiHost
	wantPath func(path string) bool
	itemsKey string
	// maxPageSize is the largest PageSize the list takes: 1000 on REST
	// 2010-04-01, 100 on Conversations v1.
	maxPageSize int
	// value and kept bound one item (see page_decode.go); zero takes the
	// Messaging bounds.
	value int64
	kept  int
	// raw keeps each item's object as sent (rawKeeper items only).
	raw bool
}

// pageMeta is the paging part of a page as it decodes: PageMeta for
// REST 2010-04-01, Meta for Conversations v1.
type pageMeta interface {
	fieldDecoder
	nextURI() string
	setCursor(self, next string)
}

// fetchPage fetches one list page at raw, decoding the items under
// spec.itemsKey within the page bounds (page_decode.go), and validates its
// next page URI: it must stay on the same list path and must not point at
// this page again.
func fetchPage[T any, PT interface {
	*T
	pageItem
}, M any, PM interface {
	*M
	pageMeta
}](ctx context.Context, c *Client, spec listSpec, raw string) (M, []T, error) {
	var zero M
	u, rel, err := c.pageURI(spec.host, raw, spec.wantPath)
	if err != nil {
		return zero, nil, err
	}
	lim := pageLimits{body: c.maxJSON, value: cmp.Or(spec.value, maxPageValueBytes),
		items: requestedPageSize(u.RawQuery, spec.maxPageSize), kept: cmp.Or(spec.kept, maxItemKeptBytes), raw: spec.raw}
	var m M
	var items []T
	_, err = c.do(ctx, &request{
		method: http.MethodGet,
		url:    u,
		host:   spec.host,
		accept: "application/json",
		read: func(resp *http.Response) error {
			m = zero
			var err error
			items, err = decodePage[T, PT](resp.Body, lim, spec.itemsKey, PM(&m))
			return err
		},
	})
	if err != nil {
		return zero, nil, err
	}
	var nextRel string
	if raw := PM(&m).nextURI(); raw != "" {
		_, next, err := c.pageURI(spec.host, raw, func(path string) bool { return path == u.Path })
		if err != nil {
			return zero, nil, fmt.Errorf("twilio: GET %s: next page: %w", u.Path, err)
		}
		if next == rel {
			return zero, nil, fmt.Errorf("twilio: GET %s: next page: %w %s: points at the same page", u.Path, ErrInvalidPageURI, describeURI(raw))
		}
		nextRel = next
	}
	PM(&m).setCursor(rel, nextRel)
	return m, items, nil
}

func (m *PageMeta) nextURI() string { return m.NextPageURI }

func (m *PageMeta) setCursor(self, next string) { m.selfRel, m.nextRel = self, next }

func (m *PageMeta) cursor() (self, next, nextRaw string) { return m.selfRel, m.nextRel, m.NextPageURI }

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
			self, next, nextRaw := PP(p).cursor()
			recent.add(self)
			if next != "" && recent.has(next) {
				yield(nil, fmt.Errorf("twilio: GET %s: next page: %w %s: returns to a page already listed",
					pathOf(self), ErrInvalidPageURI, describeURI(nextRaw)))
				return
			}
			if !yield(p, nil) {
				return
			}
			uri = nextRaw
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
