package twiliotest_test

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/twilio/twiliotest"
)

var requestIDPattern = regexp.MustCompile(`^RQ[0-9a-f]{32}$`)

// requireTwilioHeaders checks the headers Twilio puts on every API answer.
func requireTwilioHeaders(t *testing.T, resp *http.Response) {
	t.Helper()
	require.Regexp(t, requestIDPattern, resp.Header.Get("Twilio-Request-Id"))
	n, err := strconv.Atoi(resp.Header.Get("Twilio-Concurrent-Requests"))
	require.NoError(t, err, "Twilio-Concurrent-Requests %q", resp.Header.Get("Twilio-Concurrent-Requests"))
	require.GreaterOrEqual(t, n, 0)
	d, err := strconv.ParseFloat(resp.Header.Get("Twilio-Request-Duration"), 64)
	require.NoError(t, err, "Twilio-Request-Duration %q", resp.Header.Get("Twilio-Request-Duration"))
	require.GreaterOrEqual(t, d, 0.0)
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{})
	other, err := b.srv.AddAccount(twiliotest.AccountOptions{})
	require.NoError(t, err)
	path := b.messagesPath()
	tests := []struct {
		desc       string
		user, pass string
		want       int
	}{
		{"account SID and auth token", b.acct.SID, b.acct.AuthToken, http.StatusOK},
		{"API key and secret", b.acct.APIKey, b.acct.APISecret, http.StatusOK},
		{"no credentials", "", "", http.StatusUnauthorized},
		{"wrong token", b.acct.SID, b.acct.AuthToken + "x", http.StatusUnauthorized},
		{"API key with the auth token", b.acct.APIKey, b.acct.AuthToken, http.StatusUnauthorized},
		{"another account's credentials", other.SID, other.AuthToken, http.StatusUnauthorized},
		{"another account's API key", other.APIKey, other.APISecret, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, b.srv.URL()+path, nil)
			require.NoError(t, err)
			if tt.user != "" {
				req.SetBasicAuth(tt.user, tt.pass)
			}
			resp, body := b.send(t, req)
			requireTwilioHeaders(t, resp)
			if tt.want == http.StatusOK {
				require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
				return
			}
			e := requireTwilioError(t, resp, body, http.StatusUnauthorized, 20003)
			require.Equal(t, "Authenticate", e.Message)
			require.Equal(t, "Your AccountSid or AuthToken was incorrect.", e.Detail)
			require.Equal(t, `Basic realm="Twilio API"`, resp.Header.Get("WWW-Authenticate"))
			if tt.pass != "" {
				require.NotContains(t, string(body), tt.pass, "an error never echoes a secret")
			}
		})
	}
	// Conversations take the account from the credentials.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, b.srv.URL()+"/v1/Conversations", nil)
	require.NoError(t, err)
	req.SetBasicAuth(b.acct.APIKey, b.acct.APISecret)
	resp, body := b.send(t, req)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	resp, body = b.request(t, http.MethodGet, "/v1/Services/"+other.ServiceSID+"/Conversations", true)
	requireTwilioError(t, resp, body, http.StatusNotFound, 20404)
}

func TestErrorAnswers(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{})
	m, err := b.srv.AddMessage(b.acct.SID, twiliotest.MessageOptions{Media: []twiliotest.MediaOptions{{Size: 100}}})
	require.NoError(t, err)
	acctPath := "/2010-04-01/Accounts/" + b.acct.SID
	unknownMM := "MM" + strings.Repeat("ab", 16)
	tests := []struct {
		desc         string
		method, path string
		status, code int
	}{
		{"unknown path", http.MethodGet, "/2010-04-01/Accounts/" + b.acct.SID + "/Calls.json", 404, 20404},
		{"unknown root", http.MethodGet, "/", 404, 20404},
		{"unknown message", http.MethodGet, acctPath + "/Messages/" + unknownMM + ".json", 404, 20404},
		{"unknown message media list", http.MethodGet, acctPath + "/Messages/" + unknownMM + "/Media.json", 404, 20404},
		{"message SID with the wrong prefix", http.MethodGet, acctPath + "/Messages/SM" + m.SID[2:] + ".json", 404, 20404},
		{"malformed message SID", http.MethodGet, acctPath + "/Messages/MMxyz.json", 400, 20001},
		{"malformed media SID", http.MethodGet, b.mediaPath(m.SID, "ME123", ".json"), 400, 20001},
		{"malformed account SID", http.MethodGet, "/2010-04-01/Accounts/ACnope/Messages.json", 400, 20001},
		{"unknown media", http.MethodGet, b.mediaPath(m.SID, "ME"+strings.Repeat("0", 32), ".json"), 404, 20404},
		{"media under another message", http.MethodGet, b.mediaPath(unknownMM, m.MediaSIDs[0], ".json"), 404, 20404},
		{"POST to a list the emulator does not create on", http.MethodPost, b.messagesPath(), 405, 20004},
		{"PUT on a media", http.MethodPut, b.mediaPath(m.SID, m.MediaSIDs[0], ".json"), 405, 20004},
		{"unknown service", http.MethodGet, "/v1/Services/IS" + strings.Repeat("1", 32) + "/Conversations", 404, 20404},
		{"malformed service", http.MethodGet, "/v1/Services/IS1/Conversations", 400, 20001},
		{"unknown conversation", http.MethodGet, "/v1/Conversations/CH" + strings.Repeat("2", 32) + "/Messages", 404, 20404},
		{"unknown MCS media", http.MethodGet, "/v1/Services/" + b.acct.ServiceSID + "/Media/ME" + strings.Repeat("3", 32), 404, 20404},
		{"MMS media through MCS", http.MethodGet, "/v1/Services/" + b.acct.ServiceSID + "/Media/" + m.MediaSIDs[0], 404, 20404},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			resp, body := b.request(t, tt.method, tt.path, true)
			requireTwilioHeaders(t, resp)
			requireTwilioError(t, resp, body, tt.status, tt.code)
		})
	}
}

func TestXMLErrorForXMLRequests(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{})
	m, err := b.srv.AddMessage(b.acct.SID, twiliotest.MessageOptions{Media: []twiliotest.MediaOptions{{Size: 1}}})
	require.NoError(t, err)
	resp, body := b.request(t, http.MethodGet, b.mediaPath(m.SID, "ME"+strings.Repeat("0", 32), ".xml"), true)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Equal(t, "application/xml", resp.Header.Get("Content-Type"))
	require.Contains(t, string(body), "<RestException><Code>20404</Code>")
}

func TestGETWithBodyIsForbidden(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{})
	for _, chunked := range []bool{false, true} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, b.srv.URL()+b.messagesPath(), strings.NewReader("PageSize=5"))
		require.NoError(t, err)
		if chunked {
			req.ContentLength = -1
			req.TransferEncoding = []string{"chunked"}
		}
		req.SetBasicAuth(b.acct.SID, b.acct.AuthToken)
		resp, body := b.send(t, req)
		requireTwilioHeaders(t, resp)
		requireTwilioError(t, resp, body, http.StatusForbidden, 20403)
	}
}

func TestRequestIDsAreUnique(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{})
	seen := map[string]bool{}
	for range 20 {
		resp, _ := b.request(t, http.MethodGet, b.messagesPath(), true)
		id := resp.Header.Get("Twilio-Request-Id")
		require.False(t, seen[id], "request id %s repeats", id)
		seen[id] = true
	}
	log := b.srv.Requests()
	require.Len(t, log, 20)
	require.Equal(t, "messages.list", log[0].Route)
	require.Equal(t, b.acct.SID, log[0].Account)
	require.True(t, seen[log[19].RequestID])
	require.Equal(t, int64(20), b.srv.Stats().ByRoute["messages.list"])
}
