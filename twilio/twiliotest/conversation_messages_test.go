package twiliotest_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// convWithMedia adds a conversation with three messages, the middle one
// carrying two media.
func convWithMedia(t *testing.T, b *testBundle) (ch string, msgs []twiliotest.ConversationMessageInfo) {
	t.Helper()
	ch, err := b.srv.AddConversation(b.acct.SID, twiliotest.ConversationOptions{DateCreated: fixedNow.Add(-time.Hour)})
	require.NoError(t, err)
	for i, media := range [][]twiliotest.MediaOptions{nil, {{Size: 100, Filename: "a.jpg"}, {Size: 50, ContentType: "image/png"}}, nil} {
		m, err := b.srv.AddConversationMessage(b.acct.SID, ch, twiliotest.ConversationMessageOptions{
			Author: "agent", Body: "hello", DateCreated: fixedNow.Add(time.Duration(i-3) * time.Minute), Media: media,
		})
		require.NoError(t, err)
		msgs = append(msgs, m)
	}
	return ch, msgs
}

func TestConversationMessageFetchAndDelete(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{})
	ch, msgs := convWithMedia(t, b)
	victim := msgs[1]
	scoped := "/v1/Services/" + b.acct.ServiceSID + "/Conversations/" + ch + "/Messages/" + victim.SID
	unscoped := "/v1/Conversations/" + ch + "/Messages/" + victim.SID

	var got struct {
		SID            string `json:"sid"`
		ChatServiceSID string `json:"chat_service_sid"`
		Index          int    `json:"index"`
		Media          []struct {
			SID string `json:"sid"`
		} `json:"media"`
	}
	b.getJSON(t, scoped, &got)
	require.Equal(t, victim.SID, got.SID)
	require.Equal(t, b.acct.ServiceSID, got.ChatServiceSID)
	require.Equal(t, 1, got.Index)
	require.Len(t, got.Media, 2)
	b.getJSON(t, unscoped, &got)
	require.Equal(t, victim.SID, got.SID)

	var mcs mcsMedia
	b.getJSON(t, "/v1/Services/"+b.acct.ServiceSID+"/Media/"+victim.MediaSIDs[0], &mcs)
	direct := *mcs.Links.ContentDirectTemporary

	resp, body := b.request(t, http.MethodDelete, scoped, true)
	require.Equal(t, http.StatusNoContent, resp.StatusCode, "%s", body)
	require.Empty(t, body)

	for _, path := range []string{scoped, unscoped, "/v1/Services/" + b.acct.ServiceSID + "/Media/" + victim.MediaSIDs[0],
		"/v1/Services/" + b.acct.ServiceSID + "/Media/" + victim.MediaSIDs[1] + "/Content"} {
		resp, body := b.request(t, http.MethodGet, path, true)
		requireTwilioError(t, resp, body, http.StatusNotFound, 20404)
	}
	resp, body = b.request(t, http.MethodDelete, unscoped, true)
	requireTwilioError(t, resp, body, http.StatusNotFound, 20404)
	resp, _ = b.request(t, http.MethodGet, direct, false)
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "a deleted message's media are gone from the CDN too")

	var list struct {
		Messages []struct {
			SID string `json:"sid"`
		} `json:"messages"`
	}
	b.getJSON(t, "/v1/Conversations/"+ch+"/Messages", &list)
	require.Len(t, list.Messages, 2)
	require.Equal(t, msgs[0].SID, list.Messages[0].SID)
	require.Equal(t, msgs[2].SID, list.Messages[1].SID)

	info, ok := b.srv.ConversationMessage(victim.SID)
	require.True(t, ok)
	require.True(t, info.Deleted)
	for _, sid := range victim.MediaSIDs {
		m, ok := b.srv.Media(sid)
		require.True(t, ok)
		require.True(t, m.Deleted)
	}
	deletes := b.srv.Deletes(0)
	require.Len(t, deletes, 2)
	require.Equal(t, victim.SID, deletes[0].MessageSID)
	require.Equal(t, int64(2), b.srv.Stats().Deletes)
}

func TestConversationMessageErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{})
	ch, msgs := convWithMedia(t, b)
	other, err := b.srv.AddConversation(b.acct.SID, twiliotest.ConversationOptions{})
	require.NoError(t, err)
	svc := "/v1/Services/" + b.acct.ServiceSID
	for _, tc := range []struct {
		desc, method, path string
		status, code       int
	}{
		{"malformed message sid", http.MethodGet, svc + "/Conversations/" + ch + "/Messages/IMnothex", 400, 20001},
		{"message of another conversation", http.MethodGet, svc + "/Conversations/" + other + "/Messages/" + msgs[0].SID, 404, 20404},
		{"unknown conversation", http.MethodDelete, svc + "/Conversations/CH00000000000000000000000000000000/Messages/" + msgs[0].SID, 404, 20404},
		{"malformed service", http.MethodGet, "/v1/Services/IS1/Conversations/" + ch + "/Messages/" + msgs[0].SID, 400, 20001},
	} {
		resp, body := b.request(t, tc.method, tc.path, true)
		requireTwilioError(t, resp, body, tc.status, tc.code)
	}
	resp, body := b.request(t, http.MethodGet, svc+"/Conversations/"+ch+"/Messages/"+msgs[0].SID, false)
	requireTwilioError(t, resp, body, http.StatusUnauthorized, 20003)
}

func TestConversationMessageOrderIgnoresCase(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{})
	ch, msgs := convWithMedia(t, b)
	var list struct {
		Messages []struct {
			Index int `json:"index"`
		} `json:"messages"`
		Meta struct {
			URL string `json:"url"`
		} `json:"meta"`
	}
	// The OpenAPI examples readFullOrderDescMixedDesc and …AscMixedAsc.
	b.getJSON(t, "/v1/Conversations/"+ch+"/Messages?Order=DesC&PageSize=2", &list)
	require.Equal(t, len(msgs)-1, list.Messages[0].Index)
	require.Contains(t, list.Meta.URL, "Order=desc&PageSize=2")
	b.getJSON(t, "/v1/Conversations/"+ch+"/Messages?Order=AsC", &list)
	require.Equal(t, 0, list.Messages[0].Index)
	resp, body := b.request(t, http.MethodGet, "/v1/Conversations/"+ch+"/Messages?Order=up", true)
	requireTwilioError(t, resp, body, http.StatusBadRequest, 20001)
}

func TestDirectURLExpiresAfterDirectURLTTL(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{DirectURLTTL: time.Second})
	b.srv.SetNow(fixedNow)
	_, msgs := convWithMedia(t, b)
	var m mcsMedia
	b.getJSON(t, "/v1/Services/"+b.acct.ServiceSID+"/Media/"+msgs[1].MediaSIDs[0], &m)
	direct := *m.Links.ContentDirectTemporary
	resp, _ := b.request(t, http.MethodGet, direct, false)
	require.Equal(t, http.StatusOK, resp.StatusCode)

	b.srv.AdvanceClock(2 * time.Second)
	resp, body := b.request(t, http.MethodGet, direct, false)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Contains(t, string(body), "Request has expired")

	// links.content keeps SignedURLTTL, and a fresh resource a fresh link.
	resp, _ = b.request(t, http.MethodGet, m.Links.Content, true)
	require.Equal(t, http.StatusFound, resp.StatusCode)
	resp, _ = b.request(t, http.MethodGet, resp.Header.Get("Location"), false)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b.getJSON(t, "/v1/Services/"+b.acct.ServiceSID+"/Media/"+msgs[1].MediaSIDs[0], &m)
	resp, _ = b.request(t, http.MethodGet, *m.Links.ContentDirectTemporary, false)
	require.Equal(t, http.StatusOK, resp.StatusCode)
}
