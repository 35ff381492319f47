package twilio

import (
	"cmp"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// repeatReader streams prefix, unit n times, then suffix, without building
// the body in memory.
func repeatReader(prefix, unit string, n int, suffix string) io.Reader {
	return io.MultiReader(strings.NewReader(prefix), &repeater{unit: unit, left: n}, strings.NewReader(suffix))
}

type repeater struct {
	unit string
	left int
	off  int
}

func (r *repeater) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && r.left > 0 {
		c := copy(p[n:], r.unit[r.off:])
		n += c
		r.off += c
		if r.off == len(r.unit) {
			r.off, r.left = 0, r.left-1
		}
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// A hostile page, however large, costs the client a bounded amount of
// memory and gives a clear error. Not parallel: it measures the process's
// allocations, which other tests running at once would add to.
func TestHostilePageStaysUnderHeapBound(t *testing.T) {
	const heapBound = 8 << 20
	cases := []struct {
		desc    string
		uri     string // page0URI (PageSize=2) unless set
		body    func() io.Reader
		wantErr string
	}{
		{"three million empty items", "", func() io.Reader {
			return repeatReader(`{"messages": [`, `{},`, 3_000_000, `{}], "next_page_uri": null}`)
		}, "more than the 2 items the request asked for"},
		{"one item of 40 MiB", "", func() io.Reader {
			return repeatReader(`{"messages": [{"sid": "`, "x", 40<<20, `"}]}`)
		}, "larger than the 65536 byte limit"},
		{"40 MiB of whitespace between items", "", func() io.Reader {
			return repeatReader(`{"messages": [{}, `, " ", 40<<20, `{}]}`)
		}, "larger than the 65536 byte limit"},
		{"a paging field of 40 MiB", "", func() io.Reader {
			return repeatReader(`{"uri": "`, "u", 40<<20, `", "messages": []}`)
		}, "larger than the 65536 byte limit"},
		{"4 million unknown fields", "", func() io.Reader {
			return repeatReader(`{`, `"x": 1, `, 4<<20, `"messages": []}`)
		}, "more than 64 fields"},
		{"40 MiB of empty items", "", func() io.Reader {
			return repeatReader(`{"messages": [`, `{},`, 14<<20, `{}]}`)
		}, "more than the 2 items the request asked for"},
		{"1000 items of 60 KiB, past the body limit", messagesPath() + "?PageSize=1000", func() io.Reader {
			return repeatReader(`{"messages": [`, `{"body": "`+strings.Repeat("b", 60<<10)+`"},`, 1000, `{}]}`)
		}, "larger than the 33554432 byte limit"},
		{"two items each keeping 60 KiB", "", func() io.Reader {
			return repeatReader(`{"messages": [`, `{"from": "`+strings.Repeat("1", 60<<10)+`"},`, 2, `{}]}`)
		}, "more than the 4096 a Twilio item holds"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			uri := cmp.Or(tc.uri, page0URI)
			b := setup(t, newScript(t, step{uri: uri, serve: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.Copy(w, tc.body())
			}}))
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			p, err := b.client.Messages.Page(t.Context(), uri)
			runtime.ReadMemStats(&after)

			require.True(t, p == nil, "a hostile page was accepted")
			require.ErrorContains(t, err, tc.wantErr)
			require.Less(t, len(err.Error()), 512, "the error stays short")
			grew := after.TotalAlloc - before.TotalAlloc
			require.Less(t, grew, uint64(heapBound), "decoding the page allocated %d MiB", grew>>20)
		})
	}
}

func TestPageDecodeBounds(t *testing.T) {
	t.Parallel()
	items := func(n int, item string) string {
		return `{"messages": [` + strings.TrimSuffix(strings.Repeat(item+",", n), ",") + `], "page_size": 2}`
	}
	msg := messageJSON(testMessage, `"1"`)
	longBody := strings.Replace(msg, `"customer text that must not be kept"`, `"`+strings.Repeat(`\ud83d\ude00`, 800)+`"`, 1)
	lim := pageLimits{body: 1 << 20, value: maxPageValueBytes, items: 2, kept: maxItemKeptBytes}
	cases := []struct {
		desc    string
		body    string
		lim     pageLimits
		wantN   int
		wantErr string
	}{
		{desc: "as many items as asked", body: items(2, msg), lim: lim, wantN: 2},
		{desc: "one more item than asked", body: items(3, msg), lim: lim, wantErr: "more than the 2 items"},
		{desc: "1000 items of PageSize=1000", body: items(1000, msg), lim: pageLimits{body: 32 << 20, value: maxPageValueBytes, items: 1000, kept: maxItemKeptBytes}, wantN: 1000},
		{desc: "a message with the longest body Twilio sends", body: items(1, longBody), lim: lim, wantN: 1},
		{desc: "no items", body: `{"messages": [], "next_page_uri": null}`, lim: lim},
		{desc: "null items", body: `{"messages": null}`, lim: lim},
		{desc: "items twice", body: `{"messages": [], "messages": []}`, lim: lim, wantErr: "appears twice"},
		{desc: "items not an array", body: `{"messages": {"sid": 1}}`, lim: lim, wantErr: "is an object, want an array"},
		{desc: "not an object", body: `[]`, lim: lim, wantErr: "want a JSON object, got an array"},
		{desc: "empty", body: ``, lim: lim, wantErr: "got nothing"},
		{desc: "cut short", body: `{"messages": [{}`, lim: lim, wantErr: "unexpected EOF"},
		{desc: "data after the object", body: `{"messages": []} {}`, lim: lim, wantErr: "data after the page object"},
		{desc: "body over the limit", body: items(2, msg), lim: pageLimits{body: 100, value: 1 << 20, items: 2, kept: 1 << 20}, wantErr: "larger than the 100 byte limit"},
		{desc: "paging field of the wrong type", body: `{"page": "0", "messages": []}`, lim: lim, wantErr: `field "page"`},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			var m PageMeta
			got, err := decodePage[Message](strings.NewReader(tc.body), tc.lim, "messages", &m)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				require.Nil(t, got)
				return
			}
			require.NoError(t, err)
			require.Len(t, got, tc.wantN)
		})
	}
}

func TestRequestedPageSize(t *testing.T) {
	t.Parallel()
	for q, want := range map[string]int{
		"":                       defaultPageSize,
		"DateSent%3E=2008-01-02": defaultPageSize,
		"PageSize=2":             2,
		"DateSent=2024-01-02&PageSize=1000&Page=1&PageToken=PAMM0": 1000,
		"PageSize=0":    maxPageSize,
		"PageSize=1001": maxPageSize,
		"PageSize=x":    maxPageSize,
		"PageSize=%zz":  maxPageSize,
	} {
		require.Equal(t, want, requestedPageSize(q, 0), "query %q", q)
	}
}

// A page holding more items than its PageSize is refused, not truncated:
// the items past it would be skipped without a trace.
func TestPageWithMoreItemsThanAskedIsAnError(t *testing.T) {
	t.Parallel()
	three := []string{mediaJSON(testMessage, sid("ME", 1)), mediaJSON(testMessage, sid("ME", 2)), mediaJSON(testMessage, sid("ME", 3))}
	uri := mediaListPath(testMessage) + "?PageSize=2"
	b := setup(t, newScript(t, step{uri: uri, body: pageJSON("media_list", three, 0, 2, uri, "")}))
	_, err := b.client.Media.Page(t.Context(), uri)
	require.ErrorContains(t, err, fmt.Sprintf("more than the %d items the request asked for", 2))
}
