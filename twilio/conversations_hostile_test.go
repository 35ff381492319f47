package twilio

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Hostile and odd answers to the Conversations and MCS clients, played by
// a scripted stand-in (helpers_test.go) on one host for all three APIs.

const (
	testService = "ISaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	testConv    = "CHaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	testConvMsg = "IMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
)

// setupV1 serves s and returns a client whose three hosts are its URL.
func setupV1(t *testing.T, h http.Handler, opts ...Option) (*testBundle, string) {
	t.Helper()
	b := setup(t, h, opts...)
	c, err := New(testAccount, append([]Option{WithAuthToken(testToken), WithBaseURL(b.srv.URL), WithConversationsURL(b.srv.URL),
		WithMCSURL(b.srv.URL), WithHTTPClient(b.srv.Client()), WithClock(b.clock), WithLimiter(b.limiter),
		WithRetryHook(b.events.record)}, opts...)...)
	require.NoError(t, err)
	b.client = c
	return b, b.srv.URL
}

func messagesListPath() string {
	return "/v1/Services/" + testService + "/Conversations/" + testConv + "/Messages"
}

func convMessageJSON(sid string, index int, extra string) string {
	return fmt.Sprintf(`{"sid": %q, "account_sid": %q, "chat_service_sid": %q, "conversation_sid": %q, "index": %d,
 "author": "cake_lover", "body": null, "attributes": "{ \"importance\": \"high\" }", "participant_sid": null,
 "date_created": "2016-03-24T20:38:21Z", "date_updated": "2016-03-24T20:38:21Z", "delivery": null, "content_sid": null,
 "url": "https://conversations.twilio.com/v1/x", "links": {}%s}`, sid, testAccount, testService, testConv, index, extra)
}

func v1PageJSON(key string, items []string, self, next string) string {
	nextJSON := "null"
	if next != "" {
		nextJSON = strconv.Quote(next)
	}
	return fmt.Sprintf(`{%q: [%s], "meta": {"page": 0, "page_size": 50, "first_page_url": %q, "previous_page_url": null,
 "url": %q, "next_page_url": %s, "key": %q}}`, key, strings.Join(items, ","), self, self, nextJSON, key)
}

func TestConversationMessagePagesRefuseHostileAnswers(t *testing.T) {
	t.Parallel()
	media := `, "media": [{"sid": "MEaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "size": 42056, "content_type": "image/jpeg", "filename": "car.jpg"}]`
	for _, tc := range []struct {
		desc string
		body func(base string) string
		want string
	}{
		{"next page on another host", func(base string) string {
			return v1PageJSON("messages", []string{convMessageJSON(testConvMsg, 0, media)}, base+messagesListPath(),
				"https://evil.example"+messagesListPath()+"?PageToken=PT1")
		}, "points outside the API host"},
		{"next page of another list", func(base string) string {
			return v1PageJSON("messages", nil, base+messagesListPath(), base+"/v1/Services/"+testService+"/Conversations?PageToken=PT1")
		}, "not a page of the expected list"},
		{"next page is this page", func(base string) string {
			return v1PageJSON("messages", nil, base+messagesListPath(), base+messagesListPath()+"?PageSize=2")
		}, "points at the same page"},
		{"more items than PageSize", func(base string) string {
			return v1PageJSON("messages", []string{convMessageJSON(testConvMsg, 0, ""), convMessageJSON(testConvMsg, 1, ""), convMessageJSON(testConvMsg, 2, "")}, base, "")
		}, "more than the 2 items"},
		{"meta.key of another list", func(base string) string {
			return strings.Replace(v1PageJSON("messages", nil, base, ""), `"key": "messages"`, `"key": "conversations"`, 1)
		}, `meta.key is "conversations"`},
		{"message of another conversation", func(base string) string {
			return v1PageJSON("messages", []string{strings.Replace(convMessageJSON(testConvMsg, 0, ""), testConv, "CHbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 1)}, base, "")
		}, "conversation_sid is"},
		{"message of another service", func(base string) string {
			return v1PageJSON("messages", []string{strings.Replace(convMessageJSON(testConvMsg, 0, ""), testService, "ISbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 1)}, base, "")
		}, "chat_service_sid is"},
		{"message SID malformed", func(base string) string {
			return v1PageJSON("messages", []string{convMessageJSON("IM/../../x", 0, "")}, base, "")
		}, "conversation message SID"},
		{"media SID malformed", func(base string) string {
			return v1PageJSON("messages", []string{convMessageJSON(testConvMsg, 0, `, "media": [{"sid": "ME1"}]`)}, base, "")
		}, "media SID"},
		{"a body past the value bound", func(base string) string {
			return v1PageJSON("messages", []string{strings.Replace(convMessageJSON(testConvMsg, 0, ""), `"body": null`, `"body": "`+strings.Repeat("x", 300<<10)+`"`, 1)}, base, "")
		}, "larger than the"},
		{"items are not an array", func(base string) string { return `{"messages": {"sid": 1}, "meta": {}}` }, "want an array"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			s := newScript(t)
			b, base := setupV1(t, s)
			s.steps = append(s.steps, step{uri: messagesListPath() + "?PageSize=2", body: tc.body(base)})
			var err error
			n := 0
			for _, e := range b.client.ConversationMessages.Pages(t.Context(), testService, testConv, ConversationMessageListParams{PageSize: 2}) {
				err = e
				n++
			}
			require.Equal(t, 1, n, "the error is yielded once")
			require.ErrorContains(t, err, tc.want)
			if strings.Contains(tc.desc, "next page") {
				require.ErrorIs(t, err, ErrInvalidPageURI)
				require.NotContains(t, err.Error(), "PageToken", "queries stay out of errors")
			}
		})
	}
}

func TestConversationMessageDecodesTwilioExample(t *testing.T) {
	t.Parallel()
	s := newScript(t)
	b, base := setupV1(t, s)
	media := `, "media": [{"sid": "MEaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "Size": "42056", "content_type": "image/jpeg", "file_name": "car.jpg"}]`
	s.steps = append(s.steps,
		step{uri: messagesListPath() + "?Order=desc", body: v1PageJSON("messages", []string{convMessageJSON(testConvMsg, 7, media)},
			base+messagesListPath()+"?Order=desc&PageSize=50&Page=0", base+messagesListPath()+"?Order=desc&PageSize=50&Page=1&PageToken=PT7")},
		step{uri: messagesListPath() + "?Order=desc&PageSize=50&Page=1&PageToken=PT7", body: v1PageJSON("messages", nil, base, "")},
		step{uri: messagesListPath() + "/" + testConvMsg, body: strings.Replace(convMessageJSON(testConvMsg, 7, ""), `"chat_service_sid": "`+testService+`", `, "", 1)},
	)
	got := collect(t, b.client.ConversationMessages.All(t.Context(), testService, testConv, ConversationMessageListParams{Order: OrderDesc}))
	require.Len(t, got, 1)
	m := got[0]
	require.Equal(t, int64(7), m.Index)
	require.Empty(t, m.Body, "null body")
	require.Empty(t, m.ParticipantSID)
	require.Equal(t, `{ "importance": "high" }`, m.Attributes)
	require.Equal(t, time.Date(2016, 3, 24, 20, 38, 21, 0, time.UTC), m.DateCreated.Time)
	require.Equal(t, []ConversationMedia{{SID: "MEaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", ContentType: "image/jpeg", Filename: "car.jpg", Size: 42056}}, m.Media,
		"the older spellings file_name and Size, a size as a string")

	one, err := b.client.ConversationMessages.Get(t.Context(), testService, testConv, testConvMsg)
	require.NoError(t, err)
	require.Equal(t, testService, one.ChatServiceSID, "filled in from the request when Twilio leaves it out")
}

func TestConversationMessageDeleteRetriesAndAsksTheGuardEachTime(t *testing.T) {
	t.Parallel()
	path := messagesListPath() + "/" + testConvMsg
	s := newScript(t,
		step{method: http.MethodDelete, uri: path, status: http.StatusServiceUnavailable, body: `{"code": 20503, "message": "Service Unavailable", "status": 503}`},
		step{method: http.MethodDelete, uri: path, status: http.StatusNoContent},
		step{method: http.MethodDelete, uri: path, status: http.StatusNotFound, body: `{"code": 20404, "message": "not found", "status": 404}`},
	)
	b, _ := setupV1(t, s)
	var asked atomic.Int32
	guard := WithGuard(func(context.Context) (time.Time, error) { asked.Add(1); return time.Time{}, nil })
	require.NoError(t, b.client.ConversationMessages.Delete(t.Context(), testService, testConv, testConvMsg, guard))
	require.Equal(t, int32(2), asked.Load(), "the guard is asked before every attempt")
	err := b.client.ConversationMessages.Delete(t.Context(), testService, testConv, testConvMsg)
	require.True(t, IsGone(err), "%v", err)
	acquired, inFlight := b.limiter.held()
	require.Equal(t, 3, acquired, "every attempt holds the shared limiter")
	require.Zero(t, inFlight)
}

func TestConversationsAndMCSURLOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opt  Option
		want string
	}{
		{WithConversationsURL("http://conversations.twilio.com"), "WithConversationsURL: \"http://conversations.twilio.com\": plain http"},
		{WithConversationsURL("https://conversations.twilio.com/v1"), "must be scheme and host only"},
		{WithMCSURL("https://AC1:" + testToken + "@mcs.us1.twilio.com"), "WithMCSURL: the URL must not contain user information"},
		{WithMCSURL("ftp://mcs.us1.twilio.com"), "scheme must be http or https"},
	} {
		_, err := New(testAccount, WithAuthToken(testToken), tc.opt)
		require.ErrorContains(t, err, tc.want)
		require.NotContains(t, err.Error(), testToken)
	}
	c, err := New(testAccount, WithAuthToken(testToken), WithConversationsURL("http://twilio-emulator:4010"), WithMCSURL("https://mcs.us1.twilio.com/"))
	require.NoError(t, err)
	u, err := c.Conversations.ListURL("", ConversationListParams{})
	require.NoError(t, err)
	require.Equal(t, "http://twilio-emulator:4010/v1/Conversations", u)
	d, err := New(testAccount, WithAuthToken(testToken))
	require.NoError(t, err)
	u, err = d.ConversationMessages.ListURL(testService, testConv, ConversationMessageListParams{})
	require.NoError(t, err)
	require.Equal(t, DefaultConversationsURL+messagesListPath(), u)
	require.Equal(t, "https://mcs.us1.twilio.com", d.mcs.base.String())
}
