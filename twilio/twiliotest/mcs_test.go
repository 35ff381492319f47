package twiliotest_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// MCS has no SDK and no OpenAPI document: these tests follow the founding
// page (000_…txt) and twilio-facts.md field by field.

type mcsMedia struct {
	SID                 string  `json:"sid"`
	AccountSID          string  `json:"account_sid"`
	ServiceSID          string  `json:"service_sid"`
	ChannelSID          *string `json:"channel_sid"`
	MessageSID          *string `json:"message_sid"`
	DateCreated         string  `json:"date_created"`
	DateUploadUpdated   string  `json:"date_upload_updated"`
	DateUpdated         string  `json:"date_updated"`
	Size                int64   `json:"size"`
	ContentType         string  `json:"content_type"`
	Filename            *string `json:"filename"`
	Author              string  `json:"author"`
	Category            string  `json:"category"`
	IsMultipartUpstream *bool   `json:"is_multipart_upstream"`
	URL                 string  `json:"url"`
	Links               struct {
		Content                string  `json:"content"`
		ContentDirectTemporary *string `json:"content_direct_temporary"`
	} `json:"links"`
}

var mcsFields = []string{"sid", "account_sid", "service_sid", "channel_sid", "message_sid", "date_created", "date_upload_updated",
	"date_updated", "size", "content_type", "filename", "author", "category", "is_multipart_upstream", "url", "links"}

func decodeMCS(t *testing.T, body []byte) mcsMedia {
	t.Helper()
	var raw map[string]any
	require.NoError(t, json.Unmarshal(body, &raw))
	for _, f := range mcsFields {
		require.Contains(t, raw, f, "MCS media has %s", f)
	}
	require.NotContains(t, raw, "file_name", "Twilio's client reads filename")
	var m mcsMedia
	require.NoError(t, json.Unmarshal(body, &m))
	for _, d := range []string{m.DateCreated, m.DateUpdated, m.DateUploadUpdated} {
		_, err := time.Parse(time.RFC3339Nano, d)
		require.NoError(t, err, "ISO 8601 date %q", d)
	}
	require.Equal(t, "media", m.Category)
	require.NotNil(t, m.IsMultipartUpstream)
	return m
}

func (b *testBundle) post(t *testing.T, path, contentType string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, b.srv.URL()+path, body)
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.SetBasicAuth(b.acct.APIKey, b.acct.APISecret)
	return b.send(t, req)
}

// fetchContent follows links.content with credentials on the first hop only.
func (b *testBundle) fetchContent(t *testing.T, m mcsMedia) []byte {
	t.Helper()
	require.True(t, strings.HasPrefix(m.Links.Content, "/v1/Services/"+m.ServiceSID+"/Media/"+m.SID+"/Content"), "links.content is relative: %s", m.Links.Content)
	resp, body := b.request(t, http.MethodGet, m.Links.Content, false)
	requireTwilioError(t, resp, body, http.StatusUnauthorized, 20003)
	resp, _ = b.request(t, http.MethodGet, m.Links.Content, true)
	require.Equal(t, http.StatusFound, resp.StatusCode)
	resp, body = b.request(t, http.MethodGet, resp.Header.Get("Location"), false)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, m.ContentType, resp.Header.Get("Content-Type"))
	return body
}

func TestMCSUploadRawAndFetch(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{})
	data := bytes.Repeat([]byte{0xFF, 0xD8, 0xFF, 1, 2, 3}, 5000)
	resp, body := b.post(t, "/v1/Services/"+b.acct.ServiceSID+"/Media?Category=media&Filename="+url.QueryEscape("car.jpg"), "image/jpeg", bytes.NewReader(data))
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
	requireTwilioHeaders(t, resp)
	up := decodeMCS(t, body)
	require.Regexp(t, `^ME[0-9a-f]{32}$`, up.SID)
	require.Equal(t, b.acct.SID, up.AccountSID)
	require.Equal(t, b.acct.ServiceSID, up.ServiceSID)
	require.Equal(t, int64(len(data)), up.Size)
	require.Equal(t, "image/jpeg", up.ContentType)
	require.Equal(t, "car.jpg", *up.Filename)
	require.Nil(t, up.ChannelSID)
	require.Nil(t, up.MessageSID)
	require.Equal(t, b.srv.URL()+"/v1/Services/"+b.acct.ServiceSID+"/Media/"+up.SID, up.URL, "url is absolute")

	var again map[string]any
	b.getJSON(t, "/v1/Services/"+b.acct.ServiceSID+"/Media/"+up.SID, &again)
	require.Equal(t, up.SID, again["sid"])
	require.Equal(t, data, b.fetchContent(t, up))

	info, ok := b.srv.Media(up.SID)
	require.True(t, ok)
	require.True(t, info.Conversation)
	sum := sha256.Sum256(data)
	got, err := b.srv.SHA256(up.SID)
	require.NoError(t, err)
	require.Equal(t, hex.EncodeToString(sum[:]), got)
}

func TestMCSUploadMultipart(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{})
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	require.NoError(t, mw.WriteField("Category", "media"))
	h := make(map[string][]string)
	h["Content-Disposition"] = []string{`form-data; name="Media"; filename="scan.pdf"`}
	h["Content-Type"] = []string{"application/pdf"}
	part, err := mw.CreatePart(h)
	require.NoError(t, err)
	_, err = part.Write([]byte("%PDF-1.7 hello"))
	require.NoError(t, err)
	require.NoError(t, mw.Close())

	resp, body := b.post(t, "/v1/Services/"+b.acct.ServiceSID+"/Media", mw.FormDataContentType(), &buf)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
	up := decodeMCS(t, body)
	require.Equal(t, "application/pdf", up.ContentType)
	require.Equal(t, "scan.pdf", *up.Filename)
	require.Equal(t, int64(14), up.Size)
	require.Equal(t, []byte("%PDF-1.7 hello"), b.fetchContent(t, up))
}

func TestMCSUploadErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{MaxUploadSize: 10})
	resp, body := b.post(t, "/v1/Services/"+b.acct.ServiceSID+"/Media", "", strings.NewReader("x"))
	requireTwilioError(t, resp, body, http.StatusBadRequest, 20001)
	resp, body = b.post(t, "/v1/Services/"+b.acct.ServiceSID+"/Media", "image/png", strings.NewReader("01234567890"))
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "%s", body)
	resp, body = b.post(t, "/v1/Services/"+b.acct.ServiceSID+"/Media", "multipart/form-data; boundary=zz", strings.NewReader("--zz--\r\n"))
	requireTwilioError(t, resp, body, http.StatusBadRequest, 20001)
	other, err := b.srv.AddService(b.acct.SID)
	require.NoError(t, err)
	resp, body = b.post(t, "/v1/Services/"+other+"/Media", "text/plain", strings.NewReader("ok"))
	require.Equal(t, http.StatusCreated, resp.StatusCode, "any service of the account: %s", body)
	up := decodeMCS(t, body)
	resp, body = b.request(t, http.MethodGet, "/v1/Services/"+b.acct.ServiceSID+"/Media/"+up.SID, true)
	requireTwilioError(t, resp, body, http.StatusNotFound, 20404)
}

func TestMCSConversationMediaAndDirectLink(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{})
	ch, err := b.srv.AddConversation(b.acct.SID, twiliotest.ConversationOptions{})
	require.NoError(t, err)
	msg, err := b.srv.AddConversationMessage(b.acct.SID, ch, twiliotest.ConversationMessageOptions{
		Author: "agent_ana", Media: []twiliotest.MediaOptions{{ContentType: "video/mp4", Size: 200_000, Filename: "clip.mp4"}},
	})
	require.NoError(t, err)

	var convMsgs struct {
		Messages []struct {
			Media []struct {
				SID         string `json:"sid"`
				ContentType string `json:"content_type"`
				Filename    string `json:"filename"`
				Size        int64  `json:"size"`
			} `json:"media"`
		} `json:"messages"`
	}
	b.getJSON(t, "/v1/Conversations/"+ch+"/Messages", &convMsgs)
	require.Len(t, convMsgs.Messages, 1)
	listed := convMsgs.Messages[0].Media[0]
	require.Equal(t, msg.MediaSIDs[0], listed.SID)
	require.Equal(t, "clip.mp4", listed.Filename)
	require.Equal(t, int64(200_000), listed.Size)

	resp, body := b.request(t, http.MethodGet, "/v1/Services/"+b.acct.ServiceSID+"/Media/"+listed.SID, true)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	m := decodeMCS(t, body)
	require.Equal(t, ch, *m.ChannelSID)
	require.Equal(t, msg.SID, *m.MessageSID)
	require.Equal(t, "agent_ana", m.Author)
	require.Equal(t, "clip.mp4", *m.Filename)
	want := expected(t, b.srv, m.SID)
	require.Equal(t, want, b.fetchContent(t, m))

	direct := *m.Links.ContentDirectTemporary
	u, err := url.Parse(direct)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(direct, b.srv.SignedURLBase()+"/"+m.SID+"?"), "absolute, on the signed host: %s", direct)
	require.NotEmpty(t, u.Query().Get("Expires"))
	resp, body = b.request(t, http.MethodGet, direct, false)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, want, body)
	_, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition"))
	require.NoError(t, err)
	require.Equal(t, "clip.mp4", params["filename"])

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, direct, nil)
	require.NoError(t, err)
	req.SetBasicAuth(b.acct.APIKey, b.acct.APISecret)
	resp, body = b.send(t, req)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, string(body), "Only one auth mechanism allowed")
	require.Equal(t, int64(1), b.srv.Stats().SignedWithAuthorization)
}

// TestLargeConversationMediaStreams downloads a 150 MB media (Twilio's
// Conversations limit) through the direct link and checks its SHA-256: the
// emulator streams generated content rather than holding it.
func TestLargeConversationMediaStreams(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{})
	_, err := b.srv.Generate(b.acct.SID, twiliotest.Dataset{Messages: 1, Conversations: 2, ConversationMessages: 5,
		MaxConversationMedia: 1, LargeMediaSize: 150 * 1000 * 1000, LargeMediaShare: 1})
	require.NoError(t, err)
	var large twiliotest.MediaInfo
	n := 0
	for m := range b.srv.AllMedia(b.acct.SID) {
		if m.Conversation {
			require.Equal(t, int64(150*1000*1000), m.Size, "LargeMediaShare 1: every Conversations media is large")
			large, n = m, n+1
		}
	}
	require.Positive(t, n)
	require.Equal(t, int64(150*1000*1000), large.Size)
	var m mcsMedia
	b.getJSON(t, "/v1/Services/"+b.acct.ServiceSID+"/Media/"+large.SID, &m)
	resp, err := http.Get(*m.Links.ContentDirectTemporary)
	require.NoError(t, err)
	defer resp.Body.Close()
	h := sha256.New()
	copied, err := io.Copy(h, resp.Body)
	require.NoError(t, err)
	require.Equal(t, large.Size, copied)
	want, err := b.srv.SHA256(large.SID)
	require.NoError(t, err)
	require.Equal(t, want, hex.EncodeToString(h.Sum(nil)))
}
