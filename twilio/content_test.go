package twilio

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const signedQuery = "?Expires=1716572686&Signature=c2lnbmF0dXJl~SECRETSIG&Key-Pair-Id=APKAEXAMPLE"

func contentPath() string {
	return "/2010-04-01/Accounts/" + testAccount + "/Messages/" + testMessage + "/Media/" + testMedia
}

// redirectXML is the short body Twilio sends with its 3xx.
const redirectXML = `<?xml version='1.0' encoding='UTF-8'?><TwilioResponse><RestException><Message>Redirect</Message></RestException></TwilioResponse>`

func redirectTo(status int, location string) step {
	return step{uri: contentPath(), status: status, body: redirectXML,
		header: map[string]string{"Location": location, "Content-Type": "application/xml"}}
}

// storageHost serves h as a signed-URL storage host under the host NAME
// localhost, while the API is served as 127.0.0.1: a different host name,
// as Twilio's CDN is. It fails the test if a request carries any
// credential.
func storageHost(t *testing.T, h http.HandlerFunc) (srv *httptest.Server, base string) {
	t.Helper()
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.Header.Get("Authorization"); v != "" {
			t.Errorf("storage host got Authorization %q: credentials crossed the redirect", v)
		}
		if v := r.Header.Get("Cookie"); v != "" {
			t.Errorf("storage host got Cookie %q", v)
		}
		if r.ContentLength != 0 {
			t.Errorf("storage host got a request body")
		}
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
}

func serveFile(data, contentType, filename string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		if filename != "" {
			w.Header().Set("Content-Disposition", `attachment; filename="`+filename+`"`)
		}
		_, _ = io.WriteString(w, data)
	}
}

func readAll(t *testing.T, c *Content) string {
	t.Helper()
	data, err := io.ReadAll(c.Body)
	require.NoError(t, err)
	require.NoError(t, c.Body.Close())
	return string(data)
}

func TestOpenFollowsRedirectWithoutCredentials(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			file := strings.Repeat("\xff\xd8jpeg", 1000)
			_, cdn := storageHost(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.RawQuery != signedQuery[1:] {
					t.Errorf("signed query changed: %q", r.URL.RawQuery)
				}
				serveFile(file, "image/jpeg", "cat.jpg")(w, r)
			})
			// A cookie jar on the caller's client must not leak cookies to
			// the storage host either.
			jar, err := cookiejar.New(nil)
			require.NoError(t, err)
			b := setup(t, newScript(t, redirectTo(status, cdn+"/"+testAccount+"/0123456789abcdef"+signedQuery)))
			cdnURL, _ := url.Parse(cdn)
			jar.SetCookies(cdnURL, []*http.Cookie{{Name: "session", Value: "abc"}})
			hc := b.srv.Client()
			hc.Jar = jar
			c, err := New(testAccount, WithAuthToken(testToken), WithBaseURL(b.srv.URL), WithHTTPClient(hc), WithLimiter(b.limiter))
			require.NoError(t, err)

			content, err := c.Media.Open(t.Context(), testMessage, testMedia)
			require.NoError(t, err)
			_, inFlight := b.limiter.held()
			require.Zero(t, inFlight, "the API slot is released once the redirect is read")
			require.Equal(t, "image/jpeg", content.ContentType)
			require.Equal(t, int64(len(file)), content.Size)
			require.Equal(t, "cat.jpg", content.Filename)
			require.Equal(t, file, readAll(t, content))
			acquired, _ := b.limiter.held()
			require.Equal(t, 1, acquired, "only the API request takes a limiter slot")
			require.Nil(t, hc.CheckRedirect, "the caller's http.Client is not modified")
		})
	}
}

func TestOpenFollowsTwoHops(t *testing.T) {
	t.Parallel()
	var cdn string
	_, cdn = storageHost(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/first":
			w.Header().Set("Location", "/second"+signedQuery) // relative, resolved against the storage host
			w.WriteHeader(http.StatusTemporaryRedirect)
			_, _ = io.WriteString(w, redirectXML)
		case "/second":
			serveFile("png bytes", "image/png", "")(w, r)
		default:
			t.Errorf("unexpected storage request %s", r.URL)
		}
	})
	b := setup(t, newScript(t, redirectTo(http.StatusFound, cdn+"/first")))

	content, err := b.client.Media.Open(t.Context(), testMessage, testMedia)
	require.NoError(t, err)
	require.Equal(t, "image/png", content.ContentType)
	require.Empty(t, content.Filename)
	require.Equal(t, "png bytes", readAll(t, content))
}

func TestOpenDirectContentHoldsSlotUntilClose(t *testing.T) {
	t.Parallel()
	b := setup(t, newScript(t, step{uri: contentPath(), serve: serveFile("gif", "image/gif", "a.gif")}))

	content, err := b.client.Media.Open(t.Context(), testMessage, testMedia)
	require.NoError(t, err)
	_, inFlight := b.limiter.held()
	require.Equal(t, 1, inFlight, "a body from the API host holds its slot while it streams")
	require.Equal(t, "gif", readAll(t, content))
	_, inFlight = b.limiter.held()
	require.Zero(t, inFlight)
}

func TestOpenRefusesDowngradeToHTTP(t *testing.T) {
	t.Parallel()
	_, plain := storageHost(t, func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the http host was contacted after an https redirect to it")
	})
	s := newScript(t, redirectTo(http.StatusFound, plain+"/x"+signedQuery))
	api := httptest.NewTLSServer(s)
	t.Cleanup(api.Close)
	c, err := New(testAccount, WithAuthToken(testToken), WithBaseURL(api.URL), WithHTTPClient(api.Client()))
	require.NoError(t, err)

	_, err = c.Media.Open(t.Context(), testMessage, testMedia)
	require.ErrorIs(t, err, ErrRedirectRefused)
	require.ErrorContains(t, err, "redirect from https to http")
	require.NotContains(t, err.Error(), "Signature")
}

func TestOpenRefusesBadLocations(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		location string
		want     string
	}{
		{"", "without a Location"},
		{"ftp://localhost/x", "scheme"},
		{"file:///etc/passwd", "scheme"},
		{"javascript:alert(1)", "scheme"},
		{"https://localhost/x" + signedQuery, "redirect from http to https"},
		{"http://user:pass@localhost:1/x", "user information"},
		{"http://[::1", "not a URL"},
		{"http:///nohost", "no host"},
	} {
		t.Run(tt.location, func(t *testing.T) {
			t.Parallel()
			b := setup(t, newScript(t, redirectTo(http.StatusFound, tt.location)))

			_, err := b.client.Media.Open(t.Context(), testMessage, testMedia)
			require.ErrorIs(t, err, ErrRedirectRefused)
			require.ErrorContains(t, err, tt.want)
			require.False(t, IsRetryable(err))
			require.NotContains(t, err.Error(), "pass")
			require.NotContains(t, err.Error(), "Signature")
		})
	}
}

func TestOpenRefusesLoopsAndTooManyHops(t *testing.T) {
	t.Parallel()
	t.Run("loop", func(t *testing.T) {
		t.Parallel()
		_, cdn := storageHost(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/a"+signedQuery, http.StatusFound)
		})
		b := setup(t, newScript(t, redirectTo(http.StatusFound, cdn+"/a"+signedQuery)))

		_, err := b.client.Media.Open(t.Context(), testMessage, testMedia)
		require.ErrorIs(t, err, ErrRedirectRefused)
		require.ErrorContains(t, err, "redirect loop")
		require.NotContains(t, err.Error(), "Signature")
	})
	chain := func(t *testing.T, hops int) (*Client, error) {
		_, cdn := storageHost(t, func(w http.ResponseWriter, r *http.Request) {
			n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
			if n == hops {
				serveFile("end", "text/plain", "")(w, r)
				return
			}
			http.Redirect(w, r, "/"+strconv.Itoa(n+1), http.StatusTemporaryRedirect)
		})
		b := setup(t, newScript(t, redirectTo(http.StatusFound, cdn+"/1")))
		content, err := b.client.Media.Open(t.Context(), testMessage, testMedia)
		if err == nil {
			require.Equal(t, "end", readAll(t, content))
		}
		return b.client, err
	}
	t.Run("five hops are followed", func(t *testing.T) {
		t.Parallel()
		_, err := chain(t, 5)
		require.NoError(t, err)
	})
	t.Run("six are not", func(t *testing.T) {
		t.Parallel()
		_, err := chain(t, 6)
		require.ErrorIs(t, err, ErrRedirectRefused)
		require.ErrorContains(t, err, "more than 5 redirects")
	})
}

// publicBase serves the API as https://api.example.com (the test
// certificate covers *.example.com) by dialing every host name to one TLS
// test server, so the client treats its base as a public host.
func publicBase(t *testing.T, h http.Handler, lookup map[string]string) *Client {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
	}
	c, err := New(testAccount, WithAuthToken(testToken), WithBaseURL("https://api.example.com"),
		WithHTTPClient(&http.Client{Transport: tr}))
	require.NoError(t, err)
	c.lookupHost = func(_ context.Context, host string) ([]netip.Addr, error) {
		if a, ok := lookup[host]; ok {
			return []netip.Addr{netip.MustParseAddr(a)}, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return c
}

func TestOpenRefusesPrivateAddressesFromPublicBase(t *testing.T) {
	t.Parallel()
	lookup := map[string]string{"internal.example.com": "10.1.2.3", "mms.example.com": "203.0.113.7", "v6.example.com": "fd00::1"}
	for _, tt := range []struct {
		location string
		refused  bool
	}{
		{"https://127.0.0.1/x", true},
		{"https://10.0.0.1/x", true},
		{"https://192.168.1.1/x", true},
		{"https://100.64.0.1/x", true},
		{"https://169.254.169.254/latest/meta-data/", true},
		{"https://0.0.0.0/x", true},
		{"https://[::1]/x", true},
		{"https://[::ffff:127.0.0.1]/x", true},
		{"https://[fe80::1]/x", true},
		{"https://localhost/x", true},
		{"https://db.localhost/x", true},
		{"https://intranet/x", true},
		{"https://0x7f.0.0.1/x", true},
		{"https://127.1/x", true},
		{"https://internal.example.com/x", true},
		{"https://v6.example.com/x", true},
		{"https://mms.example.com/AC/abc" + signedQuery, false},
		{"https://unresolvable.example.com/AC/abc" + signedQuery, false}, // left to the dialer or proxy
	} {
		t.Run(tt.location, func(t *testing.T) {
			t.Parallel()
			api := newScript(t, redirectTo(http.StatusFound, tt.location))
			c := publicBase(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Host == "api.example.com" {
					api.ServeHTTP(w, r)
					return
				}
				if r.Header.Get("Authorization") != "" {
					t.Errorf("storage host %s got Authorization", r.Host)
				}
				if tt.refused {
					t.Errorf("refused host %s was contacted", r.Host)
				}
				serveFile("ok", "text/plain", "")(w, r)
			}), lookup)

			content, err := c.Media.Open(t.Context(), testMessage, testMedia)
			if tt.refused {
				require.ErrorIs(t, err, ErrRedirectRefused)
				return
			}
			require.NoError(t, err)
			require.Equal(t, "ok", readAll(t, content))
		})
	}
}

func TestOpenTruncatedBodyIsUnexpectedEOF(t *testing.T) {
	t.Parallel()
	_, cdn := storageHost(t, cutShort(t, "image/jpeg", 100, strings.Repeat("x", 50)))
	b := setup(t, newScript(t, redirectTo(http.StatusFound, cdn+"/f"+signedQuery)))

	content, err := b.client.Media.Open(t.Context(), testMessage, testMedia)
	require.NoError(t, err)
	require.Equal(t, int64(100), content.Size)
	data, err := io.ReadAll(content.Body)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.True(t, IsRetryable(err))
	require.ErrorContains(t, err, "after 50 of 100 bytes")
	require.NotContains(t, err.Error(), "Signature")
	require.Len(t, data, 50)
	require.NoError(t, content.Body.Close())
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestOpenBodyLongerThanContentLengthFails(t *testing.T) {
	t.Parallel()
	// net/http itself never delivers more than Content-Length; a custom
	// transport can, and the client must not pass the excess on.
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"image/jpeg"}},
			ContentLength: 5, Body: io.NopCloser(strings.NewReader("0123456789")), Request: r}, nil
	})}
	c, err := New(testAccount, WithAuthToken(testToken), WithBaseURL("http://127.0.0.1:1"), WithHTTPClient(hc))
	require.NoError(t, err)

	content, err := c.Media.Open(t.Context(), testMessage, testMedia)
	require.NoError(t, err)
	data, err := io.ReadAll(content.Body)
	require.ErrorContains(t, err, "longer than its Content-Length of 5 bytes")
	require.Equal(t, "01234", string(data))
	_, err = content.Body.Read(make([]byte, 10))
	require.Error(t, err, "the error is sticky")
}

func TestOpenNotFound(t *testing.T) {
	t.Parallel()
	t.Run("api", func(t *testing.T) {
		t.Parallel()
		b := setup(t, newScript(t, step{uri: contentPath(), status: 404,
			body: `{"code": 20404, "message": "The requested resource was not found", "status": 404}`}))
		_, err := b.client.Media.Open(t.Context(), testMessage, testMedia)
		require.True(t, IsNotFound(err), "%v", err)
		require.True(t, IsGone(err), "the API's own 404 / 20404: Twilio says the media is gone")
	})
	t.Run("api without Twilio's code", func(t *testing.T) {
		t.Parallel()
		b := setup(t, newScript(t, step{uri: contentPath(), status: 404, header: map[string]string{"Content-Type": "text/html"},
			body: `<html><body>Not Found</body></html>`}))
		_, err := b.client.Media.Open(t.Context(), testMessage, testMedia)
		require.True(t, IsNotFound(err), "%v", err)
		require.False(t, IsGone(err), "a 404 without 20404 (a proxy, an edge) does not say the media is gone")
	})
	t.Run("storage", func(t *testing.T) {
		t.Parallel()
		_, cdn := storageHost(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, "<Error><Code>NoSuchKey</Code></Error>")
		})
		b := setup(t, newScript(t, redirectTo(http.StatusFound, cdn+"/gone"+signedQuery)))
		_, err := b.client.Media.Open(t.Context(), testMessage, testMedia)
		require.True(t, IsNotFound(err), "%v", err)
		require.False(t, IsGone(err), "the signed-URL host's 404 does not say the media is gone")
		var apiErr *Error
		require.ErrorAs(t, err, &apiErr)
		require.True(t, apiErr.Storage)
		require.Equal(t, cdn+"/gone", apiErr.Path, "a storage host error names scheme, host and path, no query")
	})
}

func TestOpenStorageErrorDoesNotEchoSignature(t *testing.T) {
	t.Parallel()
	// S3 answers SignatureDoesNotMatch with the signature and string to
	// sign in its XML body; none of it may reach the error.
	_, cdn := storageHost(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = fmt.Fprintf(w, "<Error><Code>SignatureDoesNotMatch</Code><SignatureProvided>%s</SignatureProvided></Error>", r.URL.Query().Get("Signature"))
	})
	b := setup(t, newScript(t, redirectTo(http.StatusFound, cdn+"/f"+signedQuery)))

	_, err := b.client.Media.Open(t.Context(), testMessage, testMedia)
	var apiErr *Error
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, http.StatusForbidden, apiErr.Status)
	require.NotContains(t, err.Error(), "SECRETSIG")
	require.NotContains(t, err.Error(), "Expires")
}

func TestOpenRetriesStorageHop(t *testing.T) {
	t.Parallel()
	var calls int
	_, cdn := storageHost(t, func(w http.ResponseWriter, r *http.Request) {
		calls++ // handlers of one client call run one at a time
		if calls == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		serveFile("ok", "image/jpeg", "")(w, r)
	})
	b := setup(t, newScript(t, redirectTo(http.StatusFound, cdn+"/f"+signedQuery)))

	content, err := b.client.Media.Open(t.Context(), testMessage, testMedia)
	require.NoError(t, err)
	require.Equal(t, "ok", readAll(t, content))
	ev := b.events.all()
	require.Len(t, ev, 1)
	require.Equal(t, cdn+"/f", ev[0].Path, "retry events carry no signed query")
	acquired, _ := b.limiter.held()
	require.Equal(t, 1, acquired, "storage retries take no API slot")
}

func TestOpenValidatesSIDs(t *testing.T) {
	t.Parallel()
	s := newScript(t)
	b := setup(t, s)
	_, err := b.client.Media.Open(t.Context(), "MM123", testMedia)
	require.ErrorContains(t, err, `message SID "MM123" is not valid`)
	_, err = b.client.Media.Open(t.Context(), testMessage, "../../x")
	require.ErrorContains(t, err, `media SID "../../x" is not valid`)
	require.Zero(t, s.requests())
}

func TestFilenameFrom(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		``:                               "",
		`attachment; filename="cat.jpg"`: "cat.jpg",
		`inline; filename=IMG_0001.HEIC`: "IMG_0001.HEIC",
		`attachment; filename*=UTF-8''%E2%82%AC%20rates.png`: "€ rates.png",
		`attachment; filename="../../etc/passwd"`:            "passwd",
		`attachment; filename="C:\\evil\\a.exe"`:             "a.exe",
		`attachment; filename=".."`:                          "",
		`attachment; filename="a` + "\x01" + `b"`:            "",
		`attachment; filename="unterminated`:                 "",
		`attachment`:                                         "",
	} {
		require.Equal(t, want, filenameFrom(in), "%q", in)
	}
}

// Go's own redirect handling keeps Authorization when only the port
// changes; the client must not rely on it. This pins the assumption the
// emulator tests rest on: serving the storage host under another NAME.
func TestStorageHostNameDiffersFromAPI(t *testing.T) {
	t.Parallel()
	_, cdn := storageHost(t, serveFile("x", "text/plain", ""))
	b := setup(t, newScript(t))
	api, _ := url.Parse(b.srv.URL)
	store, _ := url.Parse(cdn)
	require.NotEqual(t, api.Hostname(), store.Hostname())
}
