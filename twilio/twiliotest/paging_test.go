package twiliotest_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/twilio/twiliotest"
)

type messagePage struct {
	Messages []struct {
		SID      string `json:"sid"`
		DateSent string `json:"date_sent"`
		From     string `json:"from"`
	} `json:"messages"`
	Start           int     `json:"start"`
	End             int     `json:"end"`
	Page            int     `json:"page"`
	PageSize        int     `json:"page_size"`
	URI             string  `json:"uri"`
	FirstPageURI    string  `json:"first_page_uri"`
	NextPageURI     *string `json:"next_page_uri"`
	PreviousPageURI *string `json:"previous_page_uri"`
}

// walk follows next_page_uri from first to the end and returns every SID
// in order, checking the paging fields of each page on the way.
func walk(t *testing.T, b *testBundle, first string, size, page int) []string {
	t.Helper()
	var sids []string
	uri := first
	for n := 0; ; n++ {
		require.Less(t, n, 10000, "paging does not end")
		var p messagePage
		b.getJSON(t, uri, &p)
		require.Equal(t, page, p.Page)
		require.Equal(t, size, p.PageSize)
		require.Equal(t, page*size, p.Start)
		if len(p.Messages) > 0 {
			require.Equal(t, p.Start+len(p.Messages)-1, p.End)
		} else {
			require.Equal(t, p.Start, p.End)
		}
		if page > 0 {
			require.Equal(t, uri, p.URI, "uri is the page's own URI")
		}
		if page == 0 {
			require.Nil(t, p.PreviousPageURI)
			require.Equal(t, p.URI, p.FirstPageURI)
		} else {
			require.NotNil(t, p.PreviousPageURI)
		}
		for _, m := range p.Messages {
			sids = append(sids, m.SID)
		}
		if p.NextPageURI == nil {
			return sids
		}
		require.Len(t, p.Messages, size, "only the last page is short")
		last := p.Messages[len(p.Messages)-1].SID
		require.True(t, strings.HasSuffix(*p.NextPageURI, fmt.Sprintf("PageSize=%d&Page=%d&PageToken=PA%s", size, page+1, last)),
			"next_page_uri %s ends with PageSize, Page and PageToken=PA<last sid>", *p.NextPageURI)
		uri, page = *p.NextPageURI, page+1
	}
}

func TestPagingReturnsEveryItemOnceInOrder(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{})
	_, err := b.srv.Generate(b.acct.SID, twiliotest.Dataset{Messages: 137, Start: fixedNow.Add(-20 * 24 * time.Hour), End: fixedNow, MaxMediaSize: 2048, Customers: 3})
	require.NoError(t, err)
	var all []twiliotest.MessageInfo
	for m := range b.srv.Messages(b.acct.SID) {
		all = append(all, m)
	}

	cut := fixedNow.Add(-9 * 24 * time.Hour)
	tests := []struct {
		desc   string
		query  url.Values
		filter func(twiliotest.MessageInfo) bool
	}{
		{"all", url.Values{}, func(twiliotest.MessageInfo) bool { return true }},
		{"after", url.Values{"DateSent>": {cut.Format(time.RFC3339)}}, func(m twiliotest.MessageInfo) bool { return !m.DateSent.Before(cut) }},
		{"before", url.Values{"DateSent<": {cut.Format(time.RFC3339)}}, func(m twiliotest.MessageInfo) bool { return !m.DateSent.After(cut) }},
		{"from", url.Values{"From": {all[0].From}}, func(m twiliotest.MessageInfo) bool { return m.From == all[0].From }},
		{"from and range", url.Values{"From": {all[0].From}, "DateSent>": {cut.Add(-5 * 24 * time.Hour).Format(time.RFC3339)}, "DateSent<": {cut.Format(time.RFC3339)}},
			func(m twiliotest.MessageInfo) bool {
				return m.From == all[0].From && !m.DateSent.Before(cut.Add(-5*24*time.Hour)) && !m.DateSent.After(cut)
			}},
	}
	for _, tt := range tests {
		for _, size := range []int{1, 7, 50, 1000} {
			t.Run(fmt.Sprintf("%s/PageSize=%d", tt.desc, size), func(t *testing.T) {
				t.Parallel()
				var want []string
				for _, m := range all {
					if tt.filter(m) {
						want = append(want, m.SID)
					}
				}
				q := tt.query.Encode()
				if q != "" {
					q += "&"
				}
				got := walk(t, b, b.messagesPath()+"?"+q+fmt.Sprintf("PageSize=%d", size), size, 0)
				require.Equal(t, want, got, "every matching message exactly once, newest first")
			})
		}
	}
}

func TestPageURIsKeepFiltersInTwilioOrder(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{})
	_, err := b.srv.Generate(b.acct.SID, twiliotest.Dataset{Messages: 20, Customers: 1, MaxMediaSize: 1024})
	require.NoError(t, err)
	var one twiliotest.MessageInfo
	for m := range b.srv.Messages(b.acct.SID) {
		one = m
		break
	}
	// The request gives the filters in another order and escapes "+" and ">".
	q := "DateSent%3E=2008-01-02&From=" + url.QueryEscape(one.From) + "&To=" + url.QueryEscape(one.To) + "&PageSize=2"
	var p messagePage
	b.getJSON(t, b.messagesPath()+"?"+q, &p)
	base := b.messagesPath() + "?To=" + url.QueryEscape(one.To) + "&From=" + url.QueryEscape(one.From) + "&DateSent%3E=2008-01-02&PageSize=2"
	require.Equal(t, base+"&Page=0", p.FirstPageURI)
	require.Equal(t, base+"&Page=0", p.URI)
	require.NotNil(t, p.NextPageURI)
	require.Equal(t, base+"&Page=1&PageToken=PA"+p.Messages[1].SID, *p.NextPageURI)

	var p1 messagePage
	b.getJSON(t, *p.NextPageURI, &p1)
	require.Equal(t, *p.NextPageURI, p1.URI)
	require.Equal(t, base+"&Page=0&PageToken=PB"+p1.Messages[0].SID, *p1.PreviousPageURI)
	var back messagePage
	b.getJSON(t, *p1.PreviousPageURI, &back)
	require.Equal(t, p.Messages, back.Messages, "previous_page_uri leads back to the same items")
}

func TestPagingIsStableWhileItemsChange(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{})
	_, err := b.srv.Generate(b.acct.SID, twiliotest.Dataset{Messages: 30, Start: fixedNow.Add(-48 * time.Hour), End: fixedNow.Add(-time.Hour), MaxMediaSize: 1024})
	require.NoError(t, err)
	var before []string
	for m := range b.srv.Messages(b.acct.SID) {
		before = append(before, m.SID)
	}
	var p0 messagePage
	b.getJSON(t, b.messagesPath()+"?PageSize=10", &p0)

	// A new message arrives and the first item of the next page is deleted
	// between two page requests: the token names a position, not an offset.
	_, err = b.srv.AddMessage(b.acct.SID, twiliotest.MessageOptions{DateSent: fixedNow})
	require.NoError(t, err)
	resp, body := b.request(t, http.MethodDelete, "/2010-04-01/Accounts/"+b.acct.SID+"/Messages/"+before[10]+".json", true)
	require.Equal(t, http.StatusNoContent, resp.StatusCode, "%s", body)

	rest := walk(t, b, *p0.NextPageURI, 10, 1)
	require.Equal(t, before[11:], rest)
}

func TestPagingParameterErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{})
	_, err := b.srv.Generate(b.acct.SID, twiliotest.Dataset{Messages: 3, Conversations: 1, ConversationMessages: 1})
	require.NoError(t, err)
	var aConv struct {
		Conversations []struct {
			SID string `json:"sid"`
		} `json:"conversations"`
	}
	b.getJSON(t, "/v1/Conversations", &aConv)
	otherAcct, err := b.srv.AddAccount(twiliotest.AccountOptions{})
	require.NoError(t, err)
	msg, err := b.srv.AddMessage(otherAcct.SID, twiliotest.MessageOptions{})
	require.NoError(t, err)

	for _, tt := range []struct{ path, param string }{
		{b.messagesPath() + "?PageSize=0", "PageSize"},
		{b.messagesPath() + "?PageSize=1001", "PageSize"},
		{b.messagesPath() + "?PageSize=ten", "PageSize"},
		{b.messagesPath() + "?Page=-1", "Page"},
		{b.messagesPath() + "?Page=1", "PageToken"}, // a client must not build page URLs
		{"/v1/Conversations?Page=2&PageSize=1", "PageToken"},
		{b.messagesPath() + "?PageToken=PAnotasid", "PageToken"},
		{b.messagesPath() + "?PageToken=PA" + msg.SID, "PageToken"}, // another account's message
		{b.messagesPath() + "?PageToken=PT" + msg.SID, "PageToken"}, // a v1 token on a 2010 list
		{b.messagesPath() + "?DateSent=yesterday", "DateSent"},
		{"/v1/Conversations?PageSize=101", "PageSize"},
		{"/v1/Conversations?State=open", "State"},
		{"/v1/Conversations?StartDate=soon", "StartDate"},
		{"/v1/Conversations/" + aConv.Conversations[0].SID + "/Messages?Order=newest", "Order"},
	} {
		resp, body := b.request(t, http.MethodGet, tt.path, true)
		e := requireTwilioError(t, resp, body, http.StatusBadRequest, 20001)
		require.Contains(t, e.Message, tt.param, tt.path)
	}
	var ok messagePage
	b.getJSON(t, b.messagesPath()+"?PageSize=1000", &ok)
	require.Equal(t, 1000, ok.PageSize)
	b.getJSON(t, b.messagesPath(), &ok)
	require.Equal(t, 50, ok.PageSize, "default PageSize")
}

func TestConversationPagingCoversEveryItem(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{})
	_, err := b.srv.Generate(b.acct.SID, twiliotest.Dataset{Messages: 1, Conversations: 23, ConversationMessages: 11, MaxMediaSize: 1024})
	require.NoError(t, err)
	type v1Page struct {
		Conversations []struct {
			SID string `json:"sid"`
		} `json:"conversations"`
		Messages []struct {
			SID   string `json:"sid"`
			Index int    `json:"index"`
		} `json:"messages"`
		Meta struct {
			NextPageURL *string `json:"next_page_url"`
			PageSize    int     `json:"page_size"`
		} `json:"meta"`
	}
	var convs []string
	for uri := "/v1/Conversations?PageSize=4"; uri != ""; {
		var p v1Page
		b.getJSON(t, uri, &p)
		for _, c := range p.Conversations {
			convs = append(convs, c.SID)
		}
		uri = ""
		if p.Meta.NextPageURL != nil {
			uri = *p.Meta.NextPageURL
		}
	}
	require.Len(t, convs, 23)
	seen := map[string]bool{}
	for _, c := range convs {
		require.False(t, seen[c])
		seen[c] = true
	}
	var idx []int
	for uri := "/v1/Conversations/" + convs[3] + "/Messages?Order=desc&PageSize=3"; uri != ""; {
		var p v1Page
		b.getJSON(t, uri, &p)
		for _, m := range p.Messages {
			idx = append(idx, m.Index)
		}
		uri = ""
		if p.Meta.NextPageURL != nil {
			uri = *p.Meta.NextPageURL
		}
	}
	require.Equal(t, []int{10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0}, idx)
}
