package twiliotest

import (
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Paging follows twilio-facts.md: PageSize (default 50; 1..1000 on REST
// 2010-04-01, 1..100 on Conversations v1), Page (the client's own counter,
// echoed back) and PageToken (opaque to clients). The emulator's tokens name
// an item: "PA"+SID means "the items after this one" and "PB"+SID "the items
// before it" (the form of Twilio's own 2010 tokens; Conversations uses
// "PT"/"PV", and clients must treat both as opaque). Because a token names
// an item's position rather than an offset, paging stays exact while items
// are added or deleted between pages.

type pageParams struct {
	size      int
	page      int
	token     string // as received, echoed in uri
	anchor    sortKey
	hasAnchor bool
	before    bool // the anchor is the first item of the page after this one
}

// tokenPrefixes are the two prefixes of a list family: after, before.
type tokenPrefixes struct{ after, before string }

var (
	tokens2010 = tokenPrefixes{"PA", "PB"}
	tokensV1   = tokenPrefixes{"PT", "PV"}
)

// parsePaging reads PageSize, Page and PageToken. anchorOf decodes the SID
// in a token into its sort key; false means the token names nothing this
// list could have issued.
func parsePaging(q url.Values, maxSize int, prefixes tokenPrefixes, anchorOf func(sid string) (sortKey, bool)) (pageParams, *twilioError) {
	p := pageParams{size: 50}
	if v, ok := lastValue(q, "PageSize"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxSize {
			e := errInvalidParam("PageSize", v, "must be an integer from 1 to "+strconv.Itoa(maxSize))
			return p, &e
		}
		p.size = n
	}
	if v, ok := lastValue(q, "Page"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			e := errInvalidParam("Page", v, "must be an integer >= 0")
			return p, &e
		}
		p.page = n
	}
	v, hasToken := lastValue(q, "PageToken")
	if p.page > 0 && (!hasToken || v == "") {
		// Twilio refuses to page by number ("Paged requests must include a
		// PageToken", twilio/twilio-php#507): clients follow the links.
		e := errInvalidParam("Page", strconv.Itoa(p.page), "Paged requests must include a PageToken")
		return p, &e
	}
	if hasToken && v != "" {
		before, sid, ok := parsePageToken(v, prefixes)
		var key sortKey
		if ok {
			key, ok = anchorOf(sid)
		}
		if !ok {
			// Twilio's answer to a token it never issued is not documented;
			// a 400 makes a client that builds tokens fail loudly.
			e := errInvalidParam("PageToken", v, "not a token this list issued")
			return p, &e
		}
		p.token, p.anchor, p.hasAnchor, p.before = v, key, true, before
	}
	return p, nil
}

// parsePageToken splits a token into its direction and SID.
func parsePageToken(v string, prefixes tokenPrefixes) (before bool, sid string, ok bool) {
	switch {
	case strings.HasPrefix(v, prefixes.after):
		sid = v[len(prefixes.after):]
	case strings.HasPrefix(v, prefixes.before):
		before, sid = true, v[len(prefixes.before):]
	default:
		return false, "", false
	}
	if _, shaped := checkSIDShape(sid, sid[:min(2, len(sid))]); !shaped || len(sid) != 34 {
		return false, "", false
	}
	return before, sid, true
}

func lastValue(q url.Values, name string) (string, bool) {
	vs, ok := q[name]
	if !ok || len(vs) == 0 {
		return "", false
	}
	return vs[len(vs)-1], true
}

// view is a list in its API order over ids sorted ascending by key.
type view struct {
	ids  []uint32
	key  func(uint32) sortKey
	desc bool
}

func (v view) at(pos int) uint32 {
	if v.desc {
		return v.ids[len(v.ids)-1-pos]
	}
	return v.ids[pos]
}

// firstAfter is the position of the first item after anchor in list order.
func (v view) firstAfter(a sortKey) int {
	if !v.desc {
		return sort.Search(len(v.ids), func(j int) bool { return v.key(v.ids[j]).compare(a) > 0 })
	}
	j := sort.Search(len(v.ids), func(j int) bool { return v.key(v.ids[j]).compare(a) >= 0 })
	return len(v.ids) - j
}

// lastBefore is the position of the last item before anchor in list order,
// -1 if none.
func (v view) lastBefore(a sortKey) int {
	if !v.desc {
		return sort.Search(len(v.ids), func(j int) bool { return v.key(v.ids[j]).compare(a) >= 0 }) - 1
	}
	j := sort.Search(len(v.ids), func(j int) bool { return v.key(v.ids[j]).compare(a) > 0 })
	return len(v.ids) - 1 - j
}

// page collects one page of matching items in list order and reports
// whether more follow it.
func (v view) page(p pageParams, match func(uint32) bool) (items []uint32, more bool) {
	n := len(v.ids)
	if p.hasAnchor && p.before {
		last := v.lastBefore(p.anchor)
		for pos := last; pos >= 0 && len(items) < p.size; pos-- {
			if id := v.at(pos); match(id) {
				items = append(items, id)
			}
		}
		slices.Reverse(items)
		for pos := last + 1; pos < n; pos++ {
			if match(v.at(pos)) {
				return items, true
			}
		}
		return items, false
	}
	pos := 0
	if p.hasAnchor {
		pos = v.firstAfter(p.anchor)
	}
	for ; pos < n; pos++ {
		id := v.at(pos)
		if !match(id) {
			continue
		}
		if len(items) == p.size {
			return items, true
		}
		items = append(items, id)
	}
	return items, false
}

// query builds a query string in a fixed order, escaping names and values
// as Twilio does ("DateSent%3E=2008-01-02").
type query []string

func (q *query) add(name, value string) {
	*q = append(*q, url.QueryEscape(name)+"="+url.QueryEscape(value))
}

func (q query) with(extra ...string) string {
	return strings.Join(append(slices.Clone(q), extra...), "&")
}

// pageLinks are the four links of a list page, as query strings to append
// to the list's path.
type pageLinks struct {
	first, self, next, previous string
	hasNext, hasPrevious        bool
}

// links builds the links of a page from the request's filters: each keeps
// every filter, then PageSize, Page and the token.
func links(filters query, p pageParams, items []uint32, more bool, sidOf func(uint32) string, prefixes tokenPrefixes) pageLinks {
	size := "PageSize=" + strconv.Itoa(p.size)
	l := pageLinks{first: filters.with(size, "Page=0")}
	self := []string{size, "Page=" + strconv.Itoa(p.page)}
	if p.token != "" {
		self = append(self, "PageToken="+url.QueryEscape(p.token))
	}
	l.self = filters.with(self...)
	if more && len(items) > 0 {
		l.hasNext = true
		l.next = filters.with(size, "Page="+strconv.Itoa(p.page+1), "PageToken="+prefixes.after+sidOf(items[len(items)-1]))
	}
	if p.page > 0 {
		l.hasPrevious = true
		if len(items) > 0 {
			l.previous = filters.with(size, "Page="+strconv.Itoa(p.page-1), "PageToken="+prefixes.before+sidOf(items[0]))
		} else {
			l.previous = l.first
		}
	}
	return l
}

func optional(ok bool, s string) *string {
	if !ok {
		return nil
	}
	return &s
}
