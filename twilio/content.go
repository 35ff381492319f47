package twilio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"unicode"
)

// maxRedirects bounds the redirects Open follows. Twilio redirects once or
// twice (302, 307) to a signed storage URL.
const maxRedirects = 5

// Content is a media file's bytes as they stream from Twilio's storage.
// The caller must close Body.
type Content struct {
	// Body streams the file; it is never buffered whole. Reading it
	// returns an error wrapping io.ErrUnexpectedEOF if the connection ends
	// before Size bytes, and an error if more than Size bytes arrive.
	Body io.ReadCloser
	// ContentType is the stored MIME type, from the final response.
	ContentType string
	// Size is the Content-Length, or -1 when the server did not send one.
	Size int64
	// Filename is the original file name from Content-Disposition,
	// reduced to its last path element; "" if there is none.
	Filename string
}

// Open downloads a media file: it requests the media URI without an
// extension, which Twilio answers with the file itself or, with HTTP auth
// on media (now always on), with a redirect to a signed URL on a storage
// host valid for 4 hours.
//
// Open follows redirects itself, at most 5, and sends no credentials and
// no Authorization header to any of them: a presigned storage URL rejects
// a request that also carries Authorization, and Basic credentials sent to
// a CDN are a leaked secret. It refuses (ErrRedirectRefused) a redirect that
// changes the scheme (https to http), uses another scheme than http(s),
// carries user information, loops, or, unless the client's base URL is
// itself local, leads to a loopback, private or link-local address. The
// limiter is held only for the request to the API host.
//
// A missing media gives an *Error for which IsNotFound is true; IsGone is
// true only when the API itself answered 404 / 20404, not the signed-URL
// host (Error.Storage), whose 404 may pass with a fresh URL.
//
// Twilio API docs: https://www.twilio.com/docs/messaging/api/media-resource#retrieve-media
//
//twilio:operation GET /2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{Sid} not-in-openapi
func (s *MediaService) Open(ctx context.Context, messageSID, sid string) (*Content, error) {
	if err := checkMediaSIDs("Open", messageSID, sid); err != nil {
		return nil, err
	}
	c := s.client
	u := c.api.url(s.messagePath(messageSID)+"/Media/"+sid, "")
	resp, path, err := c.openContent(ctx, &c.api, &c.api, u)
	if err != nil {
		return nil, err
	}
	return newContent(resp, path, -1), nil
}

// openContent GETs u, with credentials and a limiter slot when host is set
// (an API host) and with neither when it is nil (a signed URL), then
// follows redirects itself, at most maxRedirects, sending no credentials
// to any of them. policy is the API host whose scheme and locality bound
// where redirects may lead. It returns the final 200 response, its body
// open, and the sanitised URL it came from. An *Error answered by any
// host but an API host has Storage set.
func (c *Client) openContent(ctx context.Context, host, policy *apiHost, u *url.URL) (*http.Response, string, error) {
	current := u
	resp, err := c.do(ctx, &request{method: http.MethodGet, url: current, host: host, accept: "*/*", redirects: true})
	if err != nil {
		var e *Error
		if host == nil && errors.As(err, &e) {
			e.Storage = true
		}
		return nil, "", err
	}
	onAPI := host != nil
	visited := map[string]bool{current.String(): true}
	for hop := 1; isRedirect(resp.StatusCode); hop++ {
		location := resp.Header.Get(locationHeader)
		drainAndClose(resp.Body)
		from := sanitizeURL(current, onAPI)
		if hop > maxRedirects {
			return nil, "", fmt.Errorf("twilio: GET %s: %w: more than %d redirects", from, ErrRedirectRefused, maxRedirects)
		}
		next, err := c.redirectTarget(ctx, policy, current, location)
		if err != nil {
			return nil, "", fmt.Errorf("twilio: GET %s: %w", from, err)
		}
		if visited[next.String()] {
			return nil, "", fmt.Errorf("twilio: GET %s: %w: redirect loop back to %s", from, ErrRedirectRefused, sanitizeURL(next, false))
		}
		visited[next.String()] = true
		resp, err = c.do(ctx, &request{method: http.MethodGet, url: next, accept: "*/*", redirects: true})
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				e.Storage = true // a signed URL's answer, not the API's
			}
			return nil, "", err
		}
		current, onAPI = next, false
	}
	path := sanitizeURL(current, onAPI)
	if resp.StatusCode != http.StatusOK {
		drainAndClose(resp.Body)
		return nil, "", fmt.Errorf("twilio: GET %s: unexpected status %d for media content", path, resp.StatusCode)
	}
	return resp, path, nil
}

// newContent wraps a 200 content response. want is the size the file is
// known to have from elsewhere (the MCS resource's size), -1 if unknown:
// it stands in for a missing Content-Length.
func newContent(resp *http.Response, path string, want int64) *Content {
	size := resp.ContentLength
	if size < 0 {
		size = want
	}
	return &Content{
		Body:        &contentBody{rc: resp.Body, size: size, op: "GET " + path},
		ContentType: resp.Header.Get("Content-Type"),
		Size:        size,
		Filename:    filenameFrom(resp.Header.Get("Content-Disposition")),
	}
}

// redirectTarget resolves and checks a redirect's Location (or an MCS
// links.content_direct_temporary) against the API host policy it was
// reached from. Errors name the target by scheme and host at most: a signed
// URL's query is a credential.
func (c *Client) redirectTarget(ctx context.Context, policy *apiHost, from *url.URL, location string) (*url.URL, error) {
	if location == "" {
		return nil, fmt.Errorf("%w: redirect without a Location", ErrRedirectRefused)
	}
	next, err := from.Parse(location)
	if err != nil {
		return nil, fmt.Errorf("%w: Location is not a URL", ErrRedirectRefused)
	}
	next.Fragment, next.RawFragment = "", ""
	scheme := strings.ToLower(next.Scheme)
	switch {
	case scheme != "http" && scheme != "https":
		return nil, fmt.Errorf("%w: redirect to scheme %s", ErrRedirectRefused, quoteInput(next.Scheme))
	case scheme != policy.base.Scheme:
		return nil, fmt.Errorf("%w: redirect from %s to %s", ErrRedirectRefused, policy.base.Scheme, scheme)
	case next.User != nil:
		return nil, fmt.Errorf("%w: redirect URL carries user information", ErrRedirectRefused)
	case next.Hostname() == "":
		return nil, fmt.Errorf("%w: redirect URL has no host", ErrRedirectRefused)
	}
	if policy.local {
		return next, nil
	}
	host := next.Hostname()
	if isLocalHost(host) {
		return nil, fmt.Errorf("%w: redirect to local address %s", ErrRedirectRefused, quoteInput(host))
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return next, nil // a public IP literal
	}
	// A name that resolves to a private address is refused as well. When
	// the lookup fails (a proxy-only network resolves nothing locally) the
	// request goes ahead; the transport dials, or the proxy resolves, on
	// its own, so this check narrows but cannot close a DNS-rebinding
	// window.
	addrs, err := c.lookupHost(ctx, host)
	if err == nil {
		for _, a := range addrs {
			if !publicAddr(a) {
				return nil, fmt.Errorf("%w: redirect host %s resolves to non-public address %s", ErrRedirectRefused, quoteInput(host), a)
			}
		}
	}
	return next, nil
}

// contentBody checks the byte count of a media body against its
// Content-Length while it streams.
type contentBody struct {
	rc   io.ReadCloser
	size int64 // -1: unknown
	n    int64
	op   string
	err  error // sticky
}

func (b *contentBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if b.size >= 0 && b.n > b.size {
		// Hand over only the bytes the server declared, then fail: the
		// caller must not keep a file whose length is in dispute.
		n -= int(b.n - b.size)
		b.n = b.size
		b.err = fmt.Errorf("twilio: %s: body is longer than its Content-Length of %d bytes", b.op, b.size)
		return n, b.err
	}
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, io.EOF) && b.size >= 0 && b.n < b.size,
		errors.Is(err, io.ErrUnexpectedEOF) && b.size >= 0:
		b.err = fmt.Errorf("twilio: %s: body ended after %d of %d bytes: %w", b.op, b.n, b.size, io.ErrUnexpectedEOF)
	case err == io.EOF:
		return n, io.EOF
	default:
		b.err = fmt.Errorf("twilio: %s: reading body after %d bytes: %w", b.op, b.n, err)
	}
	return n, b.err
}

func (b *contentBody) Close() error { return b.rc.Close() }

// filenameFrom reads the filename parameter of a Content-Disposition and
// keeps its last path element only: it comes from whoever uploaded the
// media and must not steer a caller that writes files.
func filenameFrom(disposition string) string {
	if disposition == "" {
		return ""
	}
	_, params, err := mime.ParseMediaType(disposition)
	if err != nil {
		return ""
	}
	name := params["filename"]
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	if name == "." || name == ".." || len(name) > 255 || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return ""
	}
	return name
}
