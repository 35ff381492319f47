package twiliotest_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// Date filters accept every form twilio-facts.md lists; "<" and ">" are
// inclusive and a bare date is that whole GMT day.
func TestDateFilters(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{})
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		return tm
	}
	times := []string{
		"2019-06-10T23:59:59Z", "2019-06-11T00:00:00Z", "2019-06-11T22:05:25Z",
		"2019-06-12T05:05:25Z", "2019-06-12T05:05:26Z", "2019-06-19T22:04:00Z", "2019-06-20T00:00:00Z",
	}
	sidAt := map[string]string{}
	for _, s := range times {
		m, err := b.srv.AddMessage(b.acct.SID, twiliotest.MessageOptions{DateSent: at(s)})
		require.NoError(t, err)
		sidAt[m.SID] = s
	}
	tests := []struct {
		desc  string
		query string // raw, as a client may send it
		want  []string
	}{
		{"bare date is the GMT day", "DateSent=2019-06-11", times[1:3]},
		{"on or after a day", "DateSent%3E=2019-06-11", times[1:]},
		{"on or before a day, inclusive", "DateSent%3C=2019-06-11", times[:3]},
		{"unescaped >", "DateSent>=2019-06-12", times[3:]},
		{"RFC 3339 instant, inclusive after", "DateSent%3E=2019-06-11T22%3A05%3A25Z", times[2:]},
		{"RFC 3339 instant, inclusive before", "DateSent%3C=2019-06-11T22%3A05%3A25Z", times[:3]},
		{"RFC 3339 with offset", "DateSent%3E=2019-06-12T07%3A05%3A25%2B02%3A00", times[3:]},
		{"US zone abbreviation", "DateSent%3E=" + url.QueryEscape("06/11/2019 22:05:25 MST"), times[3:]},
		{"space-separated GMT with millis", "DateSent%3E=" + url.QueryEscape("2019-06-11 22:05:25.000"), times[2:]},
		{"RFC 2822", "DateSent%3E=" + url.QueryEscape("Wed, 19 Jun 2019 22:04:00 -0000"), times[5:]},
		{"range", "DateSent%3E=2019-06-11&DateSent%3C=2019-06-12T05%3A05%3A25Z", times[1:4]},
		{"empty range", "DateSent%3E=2019-06-13&DateSent%3C=2019-06-12", nil},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			var p messagePage
			b.getJSON(t, b.messagesPath()+"?"+tt.query, &p)
			var got []string
			for _, m := range p.Messages {
				got = append([]string{sidAt[m.SID]}, got...) // newest first on the wire
			}
			require.Equal(t, tt.want, got)
		})
	}
}

func TestMediaDateCreatedFilters(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{})
	day := time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC)
	m, err := b.srv.AddMessage(b.acct.SID, twiliotest.MessageOptions{DateSent: day, Media: []twiliotest.MediaOptions{
		{Size: 10, DateCreated: day.Add(-24 * time.Hour)}, {Size: 10, DateCreated: day}, {Size: 10, DateCreated: day.Add(24 * time.Hour)},
	}})
	require.NoError(t, err)
	base := "/2010-04-01/Accounts/" + b.acct.SID + "/Messages/" + m.SID + "/Media.json?"
	for q, want := range map[string][]string{
		"DateCreated=2024-02-29":               {m.MediaSIDs[1]},
		"DateCreated%3E=2024-02-29":            {m.MediaSIDs[2], m.MediaSIDs[1]},
		"DateCreated%3C=2024-02-29T11:59:59Z":  {m.MediaSIDs[0]},
		"DateCreated%3C=2024-03-01":            {m.MediaSIDs[2], m.MediaSIDs[1], m.MediaSIDs[0]},
		"DateCreated%3E=2024-03-01T12:00:01Z":  nil,
		"PageSize=1&DateCreated%3E=2024-02-28": {m.MediaSIDs[2]},
	} {
		var page struct {
			MediaList []struct {
				SID string `json:"sid"`
			} `json:"media_list"`
		}
		b.getJSON(t, base+q, &page)
		var got []string
		for _, md := range page.MediaList {
			got = append(got, md.SID)
		}
		require.Equal(t, want, got, q)
	}
}
