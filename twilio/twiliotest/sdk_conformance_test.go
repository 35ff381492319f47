package twiliotest_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twilio/twilio-go"
	"github.com/twilio/twilio-go/client"
	api "github.com/twilio/twilio-go/rest/api/v2010"
	conversations "github.com/twilio/twilio-go/rest/conversations/v1"

	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// These tests hold the emulator to Twilio's official Go SDK: twilio-go
// v1.31.0 talks to it as to api.twilio.com and conversations.twilio.com, and
// every field must decode to what the emulator holds.

// rewriteTransport sends twilio-go's requests for Twilio's hosts to the
// emulator and refuses any other host, so nothing can reach Twilio.
type rewriteTransport struct {
	target string // host:port of the emulator

	mu    sync.Mutex
	hosts map[string]int // original hosts seen
}

func (t *rewriteTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.mu.Lock()
	t.hosts[req.URL.Host]++
	t.mu.Unlock()
	switch req.URL.Host {
	case "api.twilio.com", "conversations.twilio.com", "mcs.us1.twilio.com":
		r := req.Clone(req.Context())
		r.URL.Scheme, r.URL.Host, r.Host = "http", t.target, t.target
		return http.DefaultTransport.RoundTrip(r)
	case t.target:
		return http.DefaultTransport.RoundTrip(req)
	}
	return nil, fmt.Errorf("test transport: refusing request to %s", req.URL.Host)
}

func sdkClient(t *testing.T, srv *twiliotest.Server, user, pass, accountSID string) (*twilio.RestClient, *rewriteTransport) {
	t.Helper()
	u, err := url.Parse(srv.URL())
	require.NoError(t, err)
	rt := &rewriteTransport{target: u.Host, hosts: map[string]int{}}
	c := &client.Client{
		Credentials: client.NewCredentials(user, pass),
		HTTPClient: &http.Client{
			Transport:     rt,
			Timeout:       30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	c.SetAccountSid(accountSID)
	return twilio.NewRestClientWithParams(twilio.ClientParams{Client: c}), rt
}

func sdkSetup(t *testing.T) (*testBundle, *twilio.RestClient, *rewriteTransport) {
	b := setup(t, twiliotest.Config{Seed: 42})
	_, err := b.srv.Generate(b.acct.SID, twiliotest.Dataset{
		Messages: 90, Start: fixedNow.Add(-10 * 24 * time.Hour), End: fixedNow,
		MaxMediaSize: 64 << 10, Conversations: 7, ConversationMessages: 6,
	})
	require.NoError(t, err)
	c, rt := sdkClient(t, b.srv, b.acct.SID, b.acct.AuthToken, b.acct.SID)
	return b, c, rt
}

func deref[T any](t *testing.T, p *T, field string) T {
	t.Helper()
	require.NotNil(t, p, "field %s is missing", field)
	return *p
}

func rfc2822(tm time.Time) string { return tm.UTC().Format(time.RFC1123Z) }

func requireMessage(t *testing.T, want twiliotest.MessageInfo, got api.ApiV2010Message) {
	t.Helper()
	require.Equal(t, want.SID, deref(t, got.Sid, "sid"))
	require.Equal(t, want.AccountSID, deref(t, got.AccountSid, "account_sid"))
	require.Equal(t, want.From, deref(t, got.From, "from"))
	require.Equal(t, want.To, deref(t, got.To, "to"))
	require.Equal(t, want.Body, deref(t, got.Body, "body"))
	require.Equal(t, strconv.Itoa(want.NumMedia), deref(t, got.NumMedia, "num_media"))
	require.Equal(t, rfc2822(want.DateSent), deref(t, got.DateSent, "date_sent"))
	require.Equal(t, rfc2822(want.DateCreated), deref(t, got.DateCreated, "date_created"))
	require.Equal(t, "/2010-04-01/Accounts/"+want.AccountSID+"/Messages/"+want.SID+".json", deref(t, got.Uri, "uri"))
	subs := deref(t, got.SubresourceUris, "subresource_uris")
	require.Equal(t, "/2010-04-01/Accounts/"+want.AccountSID+"/Messages/"+want.SID+"/Media.json", subs["media"])
	require.Contains(t, []string{"inbound", "outbound-api"}, deref(t, got.Direction, "direction"))
	require.Contains(t, []string{"received", "delivered"}, deref(t, got.Status, "status"))
	require.Nil(t, got.ErrorCode)
	_, err := strconv.Atoi(deref(t, got.NumSegments, "num_segments"))
	require.NoError(t, err)
}

func TestSDKListMessagesWithDateFiltersAcrossPages(t *testing.T) {
	t.Parallel()
	b, c, rt := sdkSetup(t)
	after, before := fixedNow.Add(-7*24*time.Hour), fixedNow.Add(-2*24*time.Hour)

	var want []twiliotest.MessageInfo
	for m := range b.srv.Messages(b.acct.SID) {
		if !m.DateSent.Before(after) && !m.DateSent.After(before) {
			want = append(want, m)
		}
	}
	require.Greater(t, len(want), 21, "the dataset must span several pages")

	got, err := c.Api.ListMessage(&api.ListMessageParams{DateSentAfter: &after, DateSentBefore: &before, PageSize: ptr(7)})
	require.NoError(t, err)
	require.Len(t, got, len(want))
	for i := range want {
		requireMessage(t, want[i], got[i])
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	require.Equal(t, (len(want)+6)/7, rt.hosts["api.twilio.com"], "one request per page, next pages followed through next_page_uri")
}

func TestSDKListMessagesByToFromAndDay(t *testing.T) {
	t.Parallel()
	b, c, _ := sdkSetup(t)
	var first twiliotest.MessageInfo
	for m := range b.srv.Messages(b.acct.SID) {
		first = m
		break
	}
	day := time.Date(first.DateSent.Year(), first.DateSent.Month(), first.DateSent.Day(), 0, 0, 0, 0, time.UTC)
	var want []twiliotest.MessageInfo
	for m := range b.srv.Messages(b.acct.SID) {
		if m.From == first.From && m.To == first.To && !m.DateSent.Before(day) && m.DateSent.Before(day.Add(24*time.Hour)) {
			want = append(want, m)
		}
	}
	got, err := c.Api.ListMessage(&api.ListMessageParams{From: &first.From, To: &first.To, DateSent: &day, PageSize: ptr(2)})
	require.NoError(t, err)
	require.Len(t, got, len(want))
	for i := range want {
		requireMessage(t, want[i], got[i])
	}
}

func TestSDKFetchMessageAndMedia(t *testing.T) {
	t.Parallel()
	b, c, _ := sdkSetup(t)
	n := 0
	for m := range b.srv.Messages(b.acct.SID) {
		if len(m.MediaSIDs) < 4 || n == 3 {
			continue
		}
		n++
		got, err := c.Api.FetchMessage(m.SID, nil)
		require.NoError(t, err)
		requireMessage(t, m, *got)

		list, err := c.Api.ListMedia(m.SID, &api.ListMediaParams{PageSize: ptr(3)})
		require.NoError(t, err)
		require.Len(t, list, len(m.MediaSIDs))
		seen := map[string]bool{}
		for _, md := range list {
			sid := deref(t, md.Sid, "sid")
			require.False(t, seen[sid], "media %s listed twice", sid)
			seen[sid] = true
			info, ok := b.srv.Media(sid)
			require.True(t, ok)
			require.Equal(t, m.SID, deref(t, md.ParentSid, "parent_sid"))
			require.Equal(t, b.acct.SID, deref(t, md.AccountSid, "account_sid"))
			require.Equal(t, info.ContentType, deref(t, md.ContentType, "content_type"))
			require.Equal(t, rfc2822(info.DateCreated), deref(t, md.DateCreated, "date_created"))
			require.Equal(t, "/2010-04-01/Accounts/"+b.acct.SID+"/Messages/"+m.SID+"/Media/"+sid+".json", deref(t, md.Uri, "uri"))

			one, err := c.Api.FetchMedia(m.SID, sid, nil)
			require.NoError(t, err)
			require.Equal(t, md, *one)
		}
		after := m.DateCreated
		filtered, err := c.Api.ListMedia(m.SID, &api.ListMediaParams{DateCreatedAfter: &after})
		require.NoError(t, err)
		require.Len(t, filtered, len(m.MediaSIDs))
		future := m.DateCreated.Add(time.Second)
		filtered, err = c.Api.ListMedia(m.SID, &api.ListMediaParams{DateCreatedAfter: &future})
		require.NoError(t, err)
		require.Empty(t, filtered)
	}
	require.Equal(t, 3, n)
}

func TestSDKDeleteMedia(t *testing.T) {
	t.Parallel()
	b, c, _ := sdkSetup(t)
	var msg twiliotest.MessageInfo
	for m := range b.srv.Messages(b.acct.SID) {
		if len(m.MediaSIDs) >= 2 {
			msg = m
			break
		}
	}
	victim := msg.MediaSIDs[0]
	require.NoError(t, c.Api.DeleteMedia(msg.SID, victim, nil))

	_, err := c.Api.FetchMedia(msg.SID, victim, nil)
	var rerr *client.TwilioRestError
	require.True(t, errors.As(err, &rerr), "got %v", err)
	require.Equal(t, 404, rerr.Status)
	require.Equal(t, 20404, rerr.Code)

	err = c.Api.DeleteMedia(msg.SID, victim, nil)
	require.True(t, errors.As(err, &rerr), "a second DELETE must fail: %v", err)
	require.Equal(t, 20404, rerr.Code)

	got, err := c.Api.FetchMessage(msg.SID, nil)
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(len(msg.MediaSIDs)-1), *got.NumMedia)
	list, err := c.Api.ListMedia(msg.SID, nil)
	require.NoError(t, err)
	require.Len(t, list, len(msg.MediaSIDs)-1)
	for _, md := range list {
		require.NotEqual(t, victim, *md.Sid)
	}
}

func TestSDKWithAPIKeyAndWrongCredentials(t *testing.T) {
	t.Parallel()
	b, _, _ := sdkSetup(t)
	c, _ := sdkClient(t, b.srv, b.acct.APIKey, b.acct.APISecret, b.acct.SID)
	got, err := c.Api.ListMessage(&api.ListMessageParams{Limit: ptr(3)})
	require.NoError(t, err)
	require.Len(t, got, 3)

	bad, _ := sdkClient(t, b.srv, b.acct.SID, "wrong0token0wrong0token0wrong0to", b.acct.SID)
	_, err = bad.Api.FetchMessage(*got[0].Sid, nil)
	var rerr *client.TwilioRestError
	require.True(t, errors.As(err, &rerr), "got %v", err)
	require.Equal(t, 401, rerr.Status)
	require.Equal(t, 20003, rerr.Code)
	require.Equal(t, "Authenticate", rerr.Message)
}

func TestSDKConversationsAndTheirMessages(t *testing.T) {
	t.Parallel()
	b, c, _ := sdkSetup(t)
	convs, err := c.ConversationsV1.ListConversation(&conversations.ListConversationParams{PageSize: ptr(3)})
	require.NoError(t, err)
	require.Len(t, convs, 7)
	scoped, err := c.ConversationsV1.ListServiceConversation(b.acct.ServiceSID, &conversations.ListServiceConversationParams{PageSize: ptr(2)})
	require.NoError(t, err)
	require.Len(t, scoped, 7)

	mediaSeen := 0
	for i, cv := range convs {
		require.Equal(t, *cv.Sid, *scoped[i].Sid, "both lists hold the same conversations in the same order")
		require.Equal(t, b.acct.SID, deref(t, cv.AccountSid, "account_sid"))
		require.Equal(t, b.acct.ServiceSID, deref(t, cv.ChatServiceSid, "chat_service_sid"))
		require.NotNil(t, cv.DateCreated)
		if i > 0 {
			require.False(t, cv.DateCreated.Before(*convs[i-1].DateCreated), "without a date filter, oldest first")
		}

		for _, order := range []string{"asc", "desc"} {
			msgs, err := c.ConversationsV1.ListConversationMessage(*cv.Sid, &conversations.ListConversationMessageParams{Order: ptr(order), PageSize: ptr(4)})
			require.NoError(t, err)
			require.Len(t, msgs, 6)
			for j, m := range msgs {
				wantIndex := j
				if order == "desc" {
					wantIndex = len(msgs) - 1 - j
				}
				require.Equal(t, wantIndex, m.Index)
				require.Equal(t, *cv.Sid, deref(t, m.ConversationSid, "conversation_sid"))
				require.NotNil(t, m.DateCreated)
				if m.Media == nil || order == "desc" {
					continue
				}
				for _, raw := range *m.Media {
					md := raw.(map[string]any)
					info, ok := b.srv.Media(md["sid"].(string))
					require.True(t, ok)
					require.True(t, info.Conversation)
					require.Equal(t, info.ContentType, md["content_type"])
					require.Equal(t, info.Filename, md["filename"])
					require.Equal(t, float64(info.Size), md["size"])
					require.Equal(t, *m.Sid, info.MessageSID)
					mediaSeen++
				}
			}
		}
		scopedMsgs, err := c.ConversationsV1.ListServiceConversationMessage(b.acct.ServiceSID, *cv.Sid, nil)
		require.NoError(t, err)
		require.Len(t, scopedMsgs, 6)
	}
	require.Positive(t, mediaSeen)

	start := fixedNow.Add(-5 * 24 * time.Hour).Format(time.RFC3339)
	recent, err := c.ConversationsV1.ListConversation(&conversations.ListConversationParams{StartDate: &start, PageSize: ptr(2)})
	require.NoError(t, err)
	for i, cv := range recent {
		require.False(t, cv.DateCreated.Before(fixedNow.Add(-5*24*time.Hour)))
		if i > 0 {
			require.False(t, cv.DateCreated.After(*recent[i-1].DateCreated), "with a date filter, newest first")
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestSDKFetchAndDeleteConversationMessages(t *testing.T) {
	t.Parallel()
	b, c, _ := sdkSetup(t)
	convs, err := c.ConversationsV1.ListServiceConversation(b.acct.ServiceSID, nil)
	require.NoError(t, err)
	require.NotEmpty(t, convs)
	ch := *convs[0].Sid
	msgs, err := c.ConversationsV1.ListServiceConversationMessage(b.acct.ServiceSID, ch, nil)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(msgs), 3)

	for _, m := range msgs[:2] {
		info, ok := b.srv.ConversationMessage(*m.Sid)
		require.True(t, ok)
		got, err := c.ConversationsV1.FetchServiceConversationMessage(b.acct.ServiceSID, ch, *m.Sid)
		require.NoError(t, err)
		require.Equal(t, info.SID, deref(t, got.Sid, "sid"))
		require.Equal(t, info.Index, got.Index)
		require.Equal(t, info.Author, deref(t, got.Author, "author"))
		require.Equal(t, b.acct.ServiceSID, deref(t, got.ChatServiceSid, "chat_service_sid"))
		require.Equal(t, info.DateCreated, deref(t, got.DateCreated, "date_created").UTC())
		plain, err := c.ConversationsV1.FetchConversationMessage(ch, *m.Sid)
		require.NoError(t, err)
		require.Equal(t, info.SID, deref(t, plain.Sid, "sid"))
	}

	require.NoError(t, c.ConversationsV1.DeleteServiceConversationMessage(b.acct.ServiceSID, ch, *msgs[0].Sid, nil))
	require.NoError(t, c.ConversationsV1.DeleteConversationMessage(ch, *msgs[1].Sid, nil))
	var rerr *client.TwilioRestError
	_, err = c.ConversationsV1.FetchServiceConversationMessage(b.acct.ServiceSID, ch, *msgs[0].Sid)
	require.True(t, errors.As(err, &rerr), "got %v", err)
	require.Equal(t, 404, rerr.Status)
	require.Equal(t, 20404, rerr.Code)
	err = c.ConversationsV1.DeleteConversationMessage(ch, *msgs[1].Sid, nil)
	require.True(t, errors.As(err, &rerr), "a second DELETE must fail: %v", err)
	require.Equal(t, 20404, rerr.Code)

	left, err := c.ConversationsV1.ListServiceConversationMessage(b.acct.ServiceSID, ch, nil)
	require.NoError(t, err)
	require.Len(t, left, len(msgs)-2)
	for _, sid := range append(b.mustConvMedia(t, *msgs[0].Sid), b.mustConvMedia(t, *msgs[1].Sid)...) {
		m, ok := b.srv.Media(sid)
		require.True(t, ok)
		require.True(t, m.Deleted, "a deleted message's media are deleted")
	}
}

func (b *testBundle) mustConvMedia(t *testing.T, sid string) []string {
	t.Helper()
	info, ok := b.srv.ConversationMessage(sid)
	require.True(t, ok)
	return info.MediaSIDs
}
