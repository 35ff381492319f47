package twilio

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// untrustedTLSServer is an https Twilio stand-in whose certificate no
// default trust store holds. It counts the connections made to it and the
// requests that got past the handshake.
func untrustedTLSServer(t *testing.T, h http.Handler) (srv *httptest.Server, conns, requests *atomic.Int64) {
	t.Helper()
	conns, requests = &atomic.Int64{}, &atomic.Int64{}
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		h.ServeHTTP(w, r)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, conns, requests
}

// A client built with defaults (the worker adds no HTTP client of its own)
// refuses a server whose certificate it cannot verify: every call fails
// with a certificate error before any request, so no credential is sent;
// the error does not carry the secret; and it is not retried. Trusting
// the server's certificate (RootCAs through WithHTTPClient, as the option
// asks instead of InsecureSkipVerify) makes the same calls work.
func TestDefaultClientVerifiesTLS(t *testing.T) {
	t.Parallel()
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case msgPath(testMessage):
			_, _ = io.WriteString(w, messageJSON(testMessage, `"1"`))
		case mediaListPath(testMessage):
			_, _ = io.WriteString(w, pageJSON("media_list", []string{mediaJSON(testMessage, testMedia)}, 0, 50, mediaListPath(testMessage), ""))
		default:
			http.NotFound(w, r)
		}
	})
	creds := []struct {
		name   string
		opt    Option
		secret string
	}{
		{"auth token", WithAuthToken(testToken), testToken},
		{"API key", WithAPIKey(testKeySID, testSecret), testSecret},
	}
	calls := []struct {
		name string
		call func(context.Context, *Client) error
	}{
		{"Messages.Get", func(ctx context.Context, c *Client) error {
			_, err := c.Messages.Get(ctx, testMessage)
			return err
		}},
		{"Media.All", func(ctx context.Context, c *Client) error {
			for _, err := range c.Media.All(ctx, testMessage, MediaListParams{}) {
				if err != nil {
					return err
				}
			}
			return nil
		}},
	}
	for _, cr := range creds {
		for _, tc := range calls {
			t.Run(cr.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				srv, conns, requests := untrustedTLSServer(t, handler)

				c, err := New(testAccount, cr.opt, WithBaseURL(srv.URL))
				require.NoError(t, err)
				err = tc.call(t.Context(), c)
				require.Error(t, err, "a server with an untrusted certificate was accepted")
				var verr *tls.CertificateVerificationError
				require.ErrorAs(t, err, &verr, "want a certificate verification error, got %v", err)
				var unknown x509.UnknownAuthorityError
				require.ErrorAs(t, err, &unknown)
				// It says what is wrong, and carries no credential.
				require.Contains(t, err.Error(), "failed to verify certificate")
				for _, secret := range []string{cr.secret, strings.TrimPrefix(basicAuth(cr.name), "Basic ")} {
					require.NotContains(t, err.Error(), secret, "the error carries a credential")
				}
				require.False(t, IsRetryable(err), "a certificate error is not worth retrying")
				require.Zero(t, requests.Load(), "a request (with its credentials) got past a refused handshake")
				require.EqualValues(t, 1, conns.Load(), "connections to the untrusted server: the client retried a certificate error")

				// The same server, its certificate trusted.
				roots := x509.NewCertPool()
				roots.AddCert(srv.Certificate())
				tr := http.DefaultTransport.(*http.Transport).Clone()
				tr.TLSClientConfig = &tls.Config{RootCAs: roots}
				t.Cleanup(tr.CloseIdleConnections)
				trusted, err := New(testAccount, cr.opt, WithBaseURL(srv.URL), WithHTTPClient(&http.Client{Transport: tr}))
				require.NoError(t, err)
				require.NoError(t, tc.call(t.Context(), trusted))
				require.Positive(t, requests.Load())
			})
		}
	}
}

// basicAuth is the Authorization header a credential kind sends.
func basicAuth(kind string) string {
	if kind == "API key" {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(testKeySID+":"+testSecret))
	}
	return testAuthHeader
}
