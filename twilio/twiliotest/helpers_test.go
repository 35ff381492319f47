package twiliotest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// testBundle is what most tests start from: an emulator, one account, and a
// plain HTTP client that does not follow redirects.
type testBundle struct {
	srv  *twiliotest.Server
	acct twiliotest.Account
	http *http.Client
}

// fixedNow is the clock of tests that need stable dates.
var fixedNow = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

func setup(t *testing.T, cfg twiliotest.Config) *testBundle {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return fixedNow }
	}
	srv := twiliotest.NewTestServer(t, cfg)
	acct, err := srv.AddAccount(twiliotest.AccountOptions{})
	require.NoError(t, err)
	return &testBundle{
		srv:  srv,
		acct: acct,
		http: &http.Client{
			Timeout:       30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// request sends a request to the API with the account's credentials (when
// auth is true) and returns the answer with its body read.
func (b *testBundle) request(t *testing.T, method, path string, auth bool) (*http.Response, []byte) {
	t.Helper()
	url := path
	if !strings.HasPrefix(path, "http") {
		url = b.srv.URL() + path
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	require.NoError(t, err)
	if auth {
		req.SetBasicAuth(b.acct.SID, b.acct.AuthToken)
	}
	return b.send(t, req)
}

func (b *testBundle) send(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := b.http.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

// getJSON GETs an API path with credentials, requires 200 and decodes.
func (b *testBundle) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	resp, body := b.request(t, http.MethodGet, path, true)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", path, body)
	require.NoError(t, json.Unmarshal(body, v), "GET %s", path)
}

func (b *testBundle) messagesPath() string {
	return "/2010-04-01/Accounts/" + b.acct.SID + "/Messages.json"
}

func (b *testBundle) mediaPath(msg, media, ext string) string {
	return "/2010-04-01/Accounts/" + b.acct.SID + "/Messages/" + msg + "/Media/" + media + ext
}

// twilioErrorBody is Twilio's error body as a client decodes it.
type twilioErrorBody struct {
	Code     int             `json:"code"`
	Message  string          `json:"message"`
	MoreInfo string          `json:"more_info"`
	Status   int             `json:"status"`
	Detail   string          `json:"detail"`
	Details  json.RawMessage `json:"details"`
}

// requireTwilioError checks an error answer against twilio-facts.md.
func requireTwilioError(t *testing.T, resp *http.Response, body []byte, status, code int) twilioErrorBody {
	t.Helper()
	require.Equal(t, status, resp.StatusCode, "body: %s", body)
	require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json"), "Content-Type %q", resp.Header.Get("Content-Type"))
	var e twilioErrorBody
	require.NoError(t, json.Unmarshal(body, &e), "body: %s", body)
	require.Equal(t, code, e.Code)
	require.Equal(t, status, e.Status)
	require.NotEmpty(t, e.Message)
	require.Equal(t, "https://www.twilio.com/docs/errors/"+itoa(code), e.MoreInfo)
	if len(e.Details) > 0 {
		require.Equal(t, byte('{'), e.Details[0], "details must be an object (twilio-go decodes a map)")
	}
	return e
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// sniff is the MIME type Go's content sniffer sees in b.
func sniff(b []byte) string { return http.DetectContentType(b) }
