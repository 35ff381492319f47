package twilio

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMessagesGet(t *testing.T) {
	t.Parallel()
	b := setup(t, newScript(t, step{uri: msgPath(testMessage), body: messageJSON(testMessage, `"3"`)}))

	m, err := b.client.Messages.Get(t.Context(), testMessage)
	require.NoError(t, err)
	require.Equal(t, messageJSON(testMessage, `"3"`), string(m.Raw), "the object as sent, for the archive")
	m.Raw = nil
	require.Equal(t, Message{
		SID:                 testMessage,
		AccountSID:          testAccount,
		MessagingServiceSID: "MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		From:                "+12019235161",
		To:                  "+18182008801",
		Direction:           "inbound",
		Status:              "received",
		NumMedia:            Count{N: 3, Known: true},
		DateSent:            Time{time.Date(2019, 5, 24, 17, 44, 50, 0, time.UTC)},
		DateCreated:         Time{time.Date(2019, 5, 24, 17, 44, 46, 0, time.UTC)},
		DateUpdated:         Time{time.Date(2019, 5, 24, 17, 44, 50, 0, time.UTC)},
		URI:                 msgPath(testMessage),
		SubresourceURIs:     SubresourceURIs{Media: mediaListPath(testMessage)},
	}, *m)

	// The body is customer content: no decoded field holds it (only Raw,
	// the archive's record, which never encodes).
	out, err := json.Marshal(m)
	require.NoError(t, err)
	require.NotContains(t, string(out), "customer text")
}

func TestMessagesGetAllNull(t *testing.T) {
	t.Parallel()
	nulls := `{"sid": null, "account_sid": null, "from": null, "to": null, "direction": null, "status": null,
 "num_media": null, "date_sent": null, "date_created": null, "date_updated": null, "uri": null, "subresource_uris": null,
 "messaging_service_sid": null, "body": null, "error_code": null, "price": null}`
	b := setup(t, newScript(t, step{uri: msgPath(testMessage), body: nulls}))

	m, err := b.client.Messages.Get(t.Context(), testMessage)
	require.NoError(t, err)
	m.Raw = nil
	require.Equal(t, Message{}, *m)
	require.False(t, m.NumMedia.Known, "null num_media is unknown, not zero")
}

func TestMessagesGetWrongTypes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body string
		want string
	}{
		{`{"sid": 12}`, "Message.sid of type string"},
		{`{"num_media": {"n": 1}}`, "count must be a string, a number or null, got an object"},
		{`{"num_media": "many"}`, `count "many" is not a whole number`},
		{`{"date_sent": 1558719890}`, "time must be a JSON string or null, got a number"},
		{`{"date_sent": "2019/05/24"}`, "not an RFC 2822 date"},
		{`{"subresource_uris": "x"}`, "subresource_uris"},
		{`null`, "want a JSON object, got null"},
		{`[]`, "want a JSON object, got an array"},
		{`"x"`, "want a JSON object, got a string"},
		{``, "want a JSON object, got nothing"},
		{`{"sid": "MM`, "unexpected end of JSON input"},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			t.Parallel()
			b := setup(t, newScript(t, step{uri: msgPath(testMessage), body: tt.body}))
			m, err := b.client.Messages.Get(t.Context(), testMessage)
			require.Nil(t, m)
			require.ErrorContains(t, err, "decode response")
			require.ErrorContains(t, err, tt.want)
			require.ErrorContains(t, err, msgPath(testMessage), "the error names the request")
			require.False(t, IsRetryable(err))
		})
	}
}

func TestMessagesGetValidatesSID(t *testing.T) {
	t.Parallel()
	s := newScript(t)
	b := setup(t, s)
	for _, bad := range []string{"", "MM123", "ME" + testMessage[2:], testMessage + "/../x", strings.Repeat("M", 200)} {
		_, err := b.client.Messages.Get(t.Context(), bad)
		require.ErrorContains(t, err, "Messages.Get: message SID", bad)
	}
	require.Zero(t, s.requests())
}

func TestMessagePageDecodesNullPaging(t *testing.T) {
	t.Parallel()
	body := `{"messages": null, "next_page_uri": null, "page": null, "page_size": null, "uri": null, "start": null, "end": null,
 "first_page_uri": null, "previous_page_uri": null}`
	b := setup(t, newScript(t, step{uri: messagesPath(), body: body}))

	var pages int
	for p, err := range b.client.Messages.Pages(t.Context(), MessageListParams{}) {
		require.NoError(t, err)
		require.Empty(t, p.Messages)
		pages++
	}
	require.Equal(t, 1, pages)
}

// A page read with PageRecords keeps each message's object byte for byte
// (the archive's record of it, issue #17), body included; whitespace
// between items is not part of it.
func TestMessagePageKeepsRawObjects(t *testing.T) {
	t.Parallel()
	const other = "SMbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	items := []string{messageJSON(testMessage, `"1"`), "{\"sid\": \"" + other + "\",\n \"body\": \"caf\\u00e9 \\\"x\\\"\",  \"price\": null}"}
	body := pageJSON("messages", []string{"\n  " + items[0] + " ", "\t" + items[1]}, 0, 50, messagesPath(), "")
	b := setup(t, newScript(t, step{uri: messagesPath(), body: body}))

	p, err := b.client.Messages.PageRecords(t.Context(), messagesPath())
	require.NoError(t, err)
	require.Len(t, p.Messages, 2)
	for i, m := range p.Messages {
		require.Equal(t, items[i], string(m.Raw), "message %d", i)
	}
	require.Equal(t, other, p.Messages[1].SID)

	// Page keeps none (a few KiB a message, whatever the bodies).
	b = setup(t, newScript(t, step{uri: messagesPath(), body: body}))
	p, err = b.client.Messages.Page(t.Context(), messagesPath())
	require.NoError(t, err)
	require.Nil(t, p.Messages[0].Raw)
}
