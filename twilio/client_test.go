package twilio

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNewValidatesOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		account string
		opts    []Option
		want    string
	}{
		{"bad account SID", "AC123", []Option{WithAuthToken(testToken)}, "account SID is not valid (got 5 characters starting \"AC\")"},
		{"token as account SID", testToken, []Option{WithAuthToken(testToken)}, "account SID is not valid (got 33 characters)"},
		{"no credentials", testAccount, nil, "no credentials"},
		{"both credentials", testAccount, []Option{WithAuthToken(testToken), WithAPIKey(testKeySID, testSecret)}, "credentials are already set"},
		{"empty token", testAccount, []Option{WithAuthToken("")}, "WithAuthToken: auth token is empty"},
		{"token with newline", testAccount, []Option{WithAuthToken(testToken + "\n")}, "whitespace or control characters (value not shown)"},
		{"bad key SID", testAccount, []Option{WithAPIKey("AKIA", testSecret)}, "WithAPIKey: key SID is not valid"},
		{"secret as key SID", testAccount, []Option{WithAPIKey(testSecret, testKeySID)}, "WithAPIKey: key SID is not valid (got 33 characters)"},
		{"empty secret", testAccount, []Option{WithAPIKey(testKeySID, "")}, "WithAPIKey: secret is empty"},
		{"nil option", testAccount, []Option{WithAuthToken(testToken), nil}, "option 1 is nil"},
		{"base URL scheme", testAccount, []Option{WithAuthToken(testToken), WithBaseURL("ftp://api.twilio.com")}, "scheme must be http or https"},
		{"base URL path", testAccount, []Option{WithAuthToken(testToken), WithBaseURL("https://proxy.example.com/twilio")}, "scheme and host only"},
		{"base URL query", testAccount, []Option{WithAuthToken(testToken), WithBaseURL("https://api.twilio.com?x=1")}, "scheme and host only"},
		{"base URL no host", testAccount, []Option{WithAuthToken(testToken), WithBaseURL("https://")}, "has no host"},
		{"base URL relative", testAccount, []Option{WithAuthToken(testToken), WithBaseURL("api.twilio.com")}, "scheme must be http or https"},
		{"base URL user info", testAccount, []Option{WithAuthToken(testToken), WithBaseURL("https://" + testAccount + ":" + testToken + "@api.twilio.com")}, "must not contain user information (value not shown)"},
		{"plain http to a public host", testAccount, []Option{WithAuthToken(testToken), WithBaseURL("http://api.twilio.com")}, "plain http is only allowed"},
		{"nil HTTP client", testAccount, []Option{WithAuthToken(testToken), WithHTTPClient(nil)}, "WithHTTPClient: client is nil"},
		{"TLS verification off", testAccount, []Option{WithAuthToken(testToken), WithHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}})}, "InsecureSkipVerify"},
		{"nil limiter", testAccount, []Option{WithAuthToken(testToken), WithLimiter(nil)}, "WithLimiter: limiter is nil"},
		{"nil hook", testAccount, []Option{WithAuthToken(testToken), WithRetryHook(nil)}, "WithRetryHook: hook is nil"},
		{"nil clock", testAccount, []Option{WithAuthToken(testToken), WithClock(nil)}, "WithClock: clock is nil"},
		{"empty user agent", testAccount, []Option{WithAuthToken(testToken), WithUserAgent(" ")}, "user agent is empty"},
		{"user agent header injection", testAccount, []Option{WithAuthToken(testToken), WithUserAgent("ua\r\nX-Evil: 1")}, "control characters"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			c, err := New(tt.account, tt.opts...)
			require.Nil(t, c)
			require.ErrorContains(t, err, tt.want)
			for _, secret := range []string{testToken, testSecret} {
				require.NotContains(t, err.Error(), secret, "an option error echoed a secret")
			}
		})
	}
}

func TestNewAcceptsLocalAndContainerBaseURLs(t *testing.T) {
	t.Parallel()
	for _, base := range []string{"http://127.0.0.1:8080", "http://localhost:8080/", "http://[::1]:9", "http://10.0.0.7", "http://twilio-emulator:8080", "https://api.twilio.com", "HTTPS://API.Twilio.com"} {
		c, err := New(testAccount, WithAuthToken(testToken), WithBaseURL(base))
		require.NoError(t, err, base)
		require.Contains(t, c.String(), strings.ToLower(strings.TrimSuffix(base, "/")))
	}
}

func TestCredentialsNeverPrint(t *testing.T) {
	t.Parallel()
	encoded := base64.StdEncoding.EncodeToString([]byte(testKeySID + ":" + testSecret))
	c, err := New(testAccount, WithAPIKey(testKeySID, testSecret))
	require.NoError(t, err)

	values := []any{c, *c, c.Messages, c.Media, c.creds, *c.creds, c.api}
	for _, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X"} {
			out := fmt.Sprintf(verb, v)
			for _, secret := range []string{testSecret, encoded, hexOf(testSecret)} {
				require.NotContains(t, strings.ToLower(out), strings.ToLower(secret), "fmt %s of %T", verb, v)
			}
		}
	}
	require.Equal(t, "twilio.Client{AccountSID: "+testAccount+", BaseURL: https://api.twilio.com}", c.String())
	require.Equal(t, testAccount, c.AccountSID())
}

func hexOf(s string) string { return fmt.Sprintf("%x", s) }

func TestAPIKeyAuthKeepsAccountInPath(t *testing.T) {
	t.Parallel()
	s := newScript(t, step{uri: msgPath(testMessage), body: messageJSON(testMessage, `"0"`)})
	s.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(testKeySID+":"+testSecret))
	srv := newServer(t, s)
	c, err := New(testAccount, WithAPIKey(testKeySID, testSecret), WithBaseURL(srv.URL), WithHTTPClient(srv.Client()))
	require.NoError(t, err)

	m, err := c.Messages.Get(t.Context(), testMessage)
	require.NoError(t, err)
	require.Equal(t, testMessage, m.SID)
}

func TestUserAgent(t *testing.T) {
	t.Parallel()
	got := make(chan string, 2)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("User-Agent")
		_, _ = w.Write([]byte(messageJSON(testMessage, `"0"`)))
	}))
	for _, ua := range []string{"", "mediasync/1.2.3"} {
		opts := []Option{WithAuthToken(testToken), WithBaseURL(srv.URL)}
		if ua != "" {
			opts = append(opts, WithUserAgent(ua))
		}
		c, err := New(testAccount, opts...)
		require.NoError(t, err)
		_, err = c.Messages.Get(t.Context(), testMessage)
		require.NoError(t, err)
		want := ua
		if want == "" {
			want = defaultUserAgent
		}
		require.Equal(t, want, <-got)
	}
}
