package twilio

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The three pages a listing with PageSize=2 walks through. The next_page_uri
// values are in Twilio's shape (filters, PageSize, Page, PageToken) with
// an escaping no client would produce itself, so only a client that follows
// them verbatim requests exactly these URIs.
var (
	page0URI = messagesPath() + "?DateSent%3E=2008-01-02&PageSize=2"
	page1URI = messagesPath() + "?DateSent%3E=2008-01-02&PageSize=2&Page=1&PageToken=PAMM" + strings.Repeat("1", 32)
	page2URI = messagesPath() + "?DateSent%3e=2008-01-02&PageSize=2&Page=2&PageToken=PASM%30" + strings.Repeat("2", 31)
)

func threePages() []step {
	return []step{
		{uri: page0URI, body: pageJSON("messages", []string{messageJSON(sid("MM", 1), `"1"`), messageJSON(sid("SM", 2), `"0"`)}, 0, 2, page0URI, page1URI)},
		{uri: page1URI, body: pageJSON("messages", []string{messageJSON(sid("MM", 3), `"2"`), messageJSON(sid("MM", 4), `null`)}, 1, 2, page1URI, page2URI)},
		{uri: page2URI, body: pageJSON("messages", []string{messageJSON(sid("SM", 5), `0`)}, 2, 2, page2URI, "")},
	}
}

func listParams() MessageListParams {
	return MessageListParams{DateSentAfter: time.Date(2008, 1, 2, 0, 0, 0, 0, time.UTC), PageSize: 2}
}

func TestMessagesAllFollowsNextPageURIVerbatim(t *testing.T) {
	t.Parallel()
	b := setup(t, newScript(t, threePages()...))

	var sids []string
	var numMedia []Count
	for m, err := range b.client.Messages.All(t.Context(), listParams()) {
		require.NoError(t, err)
		sids = append(sids, m.SID)
		numMedia = append(numMedia, m.NumMedia)
	}
	require.Equal(t, []string{sid("MM", 1), sid("SM", 2), sid("MM", 3), sid("MM", 4), sid("SM", 5)}, sids)
	require.Equal(t, []Count{{1, true}, {0, true}, {2, true}, {}, {0, true}}, numMedia)
	acquired, inFlight := b.limiter.held()
	require.Equal(t, 3, acquired)
	require.Zero(t, inFlight)
}

func TestMessagesPagesExposePaging(t *testing.T) {
	t.Parallel()
	b := setup(t, newScript(t, threePages()...))

	var next []string
	var pages []int
	for p, err := range b.client.Messages.Pages(t.Context(), listParams()) {
		require.NoError(t, err)
		next = append(next, p.NextPageURI)
		pages = append(pages, p.Page)
		require.Equal(t, 2, p.PageSize)
	}
	require.Equal(t, []string{page1URI, page2URI, ""}, next)
	require.Equal(t, []int{0, 1, 2}, pages)
}

func TestPagesAreLazy(t *testing.T) {
	t.Parallel()
	s := newScript(t) // any request fails the test
	b := setup(t, s)

	_ = b.client.Messages.Pages(t.Context(), listParams())
	_ = b.client.Messages.All(t.Context(), listParams())
	_ = b.client.Media.All(t.Context(), testMessage, MediaListParams{})
	_ = b.client.Media.PagesFrom(t.Context(), mediaListPath(testMessage))
	require.Zero(t, s.requests())
}

func TestPagesErrorOnLaterPage(t *testing.T) {
	t.Parallel()
	steps := threePages()[:2]
	steps[1] = step{uri: page1URI, status: http.StatusNotFound,
		body: `{"code": 20404, "message": "The requested resource was not found", "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404}`}
	b := setup(t, newScript(t, steps...))

	var got []string
	var errs []error
	for m, err := range b.client.Messages.All(t.Context(), listParams()) {
		if err != nil {
			errs = append(errs, err)
			continue // the sequence must end after its error anyway
		}
		got = append(got, m.SID)
	}
	require.Equal(t, []string{sid("MM", 1), sid("SM", 2)}, got)
	require.Len(t, errs, 1)
	require.True(t, IsNotFound(errs[0]), "%v", errs[0])
	require.Equal(t, CodeNotFound, ErrorCode(errs[0]))
}

func TestPagesEarlyBreak(t *testing.T) {
	t.Parallel()
	s := newScript(t, threePages()[0])
	b := setup(t, s)

	for m, err := range b.client.Messages.All(t.Context(), listParams()) {
		require.NoError(t, err)
		require.Equal(t, sid("MM", 1), m.SID)
		break
	}
	// Only page 0 is scripted: fetching page 1 would fail the test.
	require.Equal(t, 1, s.requests())
	acquired, inFlight := b.limiter.held()
	require.Equal(t, 1, acquired)
	require.Zero(t, inFlight, "the slot must be free once the page is read")
}

func TestPageFetchesOneCursor(t *testing.T) {
	t.Parallel()
	b := setup(t, newScript(t, threePages()[1]))

	p, err := b.client.Messages.Page(t.Context(), page1URI)
	require.NoError(t, err)
	require.Equal(t, page2URI, p.NextPageURI)
	require.Len(t, p.Messages, 2)
}

func TestPageAcceptsAbsoluteURIOnTheAPIHost(t *testing.T) {
	t.Parallel()
	s := newScript(t, threePages()[2])
	b := setup(t, s)

	p, err := b.client.Messages.Page(t.Context(), b.srv.URL+page2URI)
	require.NoError(t, err)
	require.Empty(t, p.NextPageURI)
}

func TestListURI(t *testing.T) {
	t.Parallel()
	c, err := New(testAccount, WithAuthToken(testToken))
	require.NoError(t, err)
	day := time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)
	instant := time.Date(2024, 1, 2, 3, 4, 5, 600, time.FixedZone("x", 3600))

	tests := []struct {
		desc   string
		params MessageListParams
		want   string
	}{
		{"no filters", MessageListParams{}, messagesPath()},
		{"midnight UTC is a date", MessageListParams{DateSentAfter: day, PageSize: 1000}, messagesPath() + "?DateSent%3E=2024-01-02&PageSize=1000"},
		{"other instants are RFC 3339 UTC", MessageListParams{DateSentBefore: instant}, messagesPath() + "?DateSent%3C=2024-01-02T02%3A04%3A05Z"},
		{"all filters in Twilio's order", MessageListParams{To: "+123456789", From: "whatsapp:+987654321", DateSent: day, DateSentBefore: day.Add(48 * time.Hour), DateSentAfter: day, PageSize: 1},
			messagesPath() + "?To=%2B123456789&From=whatsapp%3A%2B987654321&DateSent=2024-01-02&DateSent%3C=2024-01-04&DateSent%3E=2024-01-02&PageSize=1"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			got, err := c.Messages.ListURI(tt.params)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}

	got, err := c.Media.ListURI(testMessage, MediaListParams{DateCreatedAfter: day, PageSize: 50})
	require.NoError(t, err)
	require.Equal(t, mediaListPath(testMessage)+"?DateCreated%3E=2024-01-02&PageSize=50", got)
}

func TestListURIRejectsBadParams(t *testing.T) {
	t.Parallel()
	c, err := New(testAccount, WithAuthToken(testToken))
	require.NoError(t, err)
	day := time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)

	for _, tt := range []struct {
		params MessageListParams
		want   string
	}{
		{MessageListParams{PageSize: 1001}, "MessageListParams.PageSize is 1001"},
		{MessageListParams{PageSize: -1}, "MessageListParams.PageSize is -1"},
		{MessageListParams{DateSentAfter: day.Add(time.Hour), DateSentBefore: day}, "DateSentAfter (2024-01-02T01:00:00Z) is later than DateSentBefore"},
	} {
		_, err := c.Messages.ListURI(tt.params)
		require.ErrorContains(t, err, tt.want)
		// The same error comes out of the iterator, before any request.
		for _, err := range c.Messages.Pages(t.Context(), tt.params) {
			require.ErrorContains(t, err, tt.want)
		}
	}
	_, err = c.Media.ListURI("SMshort", MediaListParams{})
	require.ErrorContains(t, err, `message SID "SMshort" is not valid`)
	_, err = c.Media.ListURI(testMessage, MediaListParams{PageSize: 5000})
	require.ErrorContains(t, err, "MediaListParams.PageSize is 5000")
}

// A hostile or broken next_page_uri is refused before it is requested: only
// the page that carried it is fetched.
func TestPagesRefuseHostileNextPageURI(t *testing.T) {
	t.Parallel()
	other := "ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	tests := []struct {
		desc string
		next string
	}{
		{"another host", "https://evil.example" + messagesPath() + "?Page=1"},
		{"scheme-relative other host", "//evil.example" + messagesPath() + "?Page=1"},
		{"another account", "/2010-04-01/Accounts/" + other + "/Messages.json?Page=1"},
		{"another list", mediaListPath(testMessage) + "?Page=1"},
		{"path traversal", messagesPath() + "/../../x.json?Page=1"},
		{"escaped path", "/2010-04-01/Accounts/" + testAccount + "/Messages%2Ejson?Page=1"},
		{"user info", "http://user:pass@" + "127.0.0.1" + messagesPath()},
		{"not from the root", "Messages.json?Page=1"},
		{"same page again", page0URI},
		{"space", messagesPath() + "?Page=1 HTTP/1.1"},
		{"javascript", "javascript:alert(1)"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			b := setup(t, newScript(t, step{uri: page0URI, body: pageJSON("messages", []string{messageJSON(sid("MM", 1), `"1"`)}, 0, 2, page0URI, tt.next)}))

			var n int
			var last error
			for p, err := range b.client.Messages.Pages(t.Context(), listParams()) {
				n++
				if err != nil {
					last = err
					require.Nil(t, p)
				}
			}
			require.Equal(t, 1, n, "the page carrying a bad next_page_uri must not be yielded")
			require.ErrorIs(t, last, ErrInvalidPageURI)
			require.False(t, IsRetryable(last))
		})
	}
}

func TestPagesRefuseCycle(t *testing.T) {
	t.Parallel()
	a := messagesPath() + "?PageSize=1&Page=1&PageToken=PAa"
	bURI := messagesPath() + "?PageSize=1&Page=2&PageToken=PAb"
	s := newScript(t,
		step{uri: page0URI, body: pageJSON("messages", []string{messageJSON(sid("MM", 1), `"1"`)}, 0, 1, page0URI, a)},
		step{uri: a, body: pageJSON("messages", []string{messageJSON(sid("MM", 2), `"1"`)}, 1, 1, a, bURI)},
		step{uri: bURI, body: pageJSON("messages", []string{messageJSON(sid("MM", 3), `"1"`)}, 2, 1, bURI, a)},
	)
	b := setup(t, s)

	var sids []string
	var last error
	for m, err := range b.client.Messages.All(t.Context(), listParams()) {
		if err != nil {
			last = err
			continue
		}
		sids = append(sids, m.SID)
	}
	require.ErrorIs(t, last, ErrInvalidPageURI)
	require.ErrorContains(t, last, "already listed")
	require.Equal(t, []string{sid("MM", 1), sid("MM", 2)}, sids)
}

func TestPageRefusesBadCursorWithoutRequest(t *testing.T) {
	t.Parallel()
	s := newScript(t)
	b := setup(t, s)

	for _, uri := range []string{"", "https://api.twilio.com" + messagesPath(), mediaListPath(testMessage), "%zz"} {
		_, err := b.client.Messages.Page(t.Context(), uri)
		require.ErrorIs(t, err, ErrInvalidPageURI, "uri %q", uri)
		for _, err := range b.client.Messages.PagesFrom(t.Context(), uri) {
			require.ErrorIs(t, err, ErrInvalidPageURI)
		}
	}
	_, err := b.client.Media.Page(t.Context(), messagesPath())
	require.ErrorIs(t, err, ErrInvalidPageURI)
	_, err = b.client.Media.Page(t.Context(), "/2010-04-01/Accounts/"+testAccount+"/Messages/XX123/Media.json")
	require.ErrorIs(t, err, ErrInvalidPageURI)
	require.Zero(t, s.requests())
}

func TestMediaPagesStayOnOneMessage(t *testing.T) {
	t.Parallel()
	first := mediaListPath(testMessage) + "?PageSize=1"
	otherMessage := mediaListPath(sid("MM", 9)) + "?PageSize=1&Page=1&PageToken=PAME1"
	b := setup(t, newScript(t, step{uri: first, body: pageJSON("media_list", []string{mediaJSON(testMessage, testMedia)}, 0, 1, first, otherMessage)}))

	var last error
	for _, err := range b.client.Media.Pages(t.Context(), testMessage, MediaListParams{PageSize: 1}) {
		last = err
	}
	require.ErrorIs(t, last, ErrInvalidPageURI)
}

func TestPagesStopAtFetchErrorOfWrongShape(t *testing.T) {
	t.Parallel()
	b := setup(t, newScript(t, step{uri: page0URI, body: `{"messages": {"sid": "MM"}}`}))

	var errs []error
	for _, err := range b.client.Messages.Pages(t.Context(), listParams()) {
		errs = append(errs, err)
	}
	require.Len(t, errs, 1)
	require.ErrorContains(t, errs[0], "decode response")
	require.ErrorContains(t, errs[0], "messages")
}

func TestPageURIErrorsOmitTheQuery(t *testing.T) {
	t.Parallel()
	c, err := New(testAccount, WithAuthToken(testToken))
	require.NoError(t, err)
	_, err = c.Messages.Page(t.Context(), "https://evil.example"+messagesPath()+"?To=%2B15551234567")
	require.ErrorIs(t, err, ErrInvalidPageURI)
	require.ErrorContains(t, err, `"https://evil.example`+messagesPath()+`?…"`)
	require.NotContains(t, err.Error(), "15551234567")
	_, err = c.Messages.Page(t.Context(), "%zz?To=%2B15551234567")
	require.ErrorContains(t, err, "not a URL")
	require.NotContains(t, err.Error(), "15551234567")
}
