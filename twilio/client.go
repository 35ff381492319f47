package twilio

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"runtime"
	"time"

	"github.com/mediasync/mediasync/internal/redact"
)

// DefaultBaseURL is the host of Twilio's REST API 2010-04-01, which serves
// the Messages and Media resources. The *_uri fields Twilio returns are
// relative to it.
const DefaultBaseURL = "https://api.twilio.com"

// DefaultConversationsURL is the host of Conversations v1. Its meta
// *_url paging fields are absolute URLs on it.
const DefaultConversationsURL = "https://conversations.twilio.com"

// DefaultMCSURL is the host of the Media Content Service, where
// Conversations media live (the MCS page's base https://mcs.us1.twilio.com/v1).
const DefaultMCSURL = "https://mcs.us1.twilio.com"

// Body limits. Every response body is read through a limit: a JSON page of
// 1000 messages is about 1.5 MB, so 32 MiB is generous but bounded; error
// bodies are short, and anything beyond 64 KiB is not a Twilio error.
const (
	maxJSONBytes  = 32 << 20
	maxErrorBytes = 64 << 10
)

var defaultUserAgent = "mediasync-twilio (" + runtime.Version() + ")"

// Limiter bounds the client's requests to the API hosts, typically through
// a limit shared by every worker on the account (Twilio's 20429 limit is on
// concurrent requests per account). Acquire blocks until a slot is free or
// ctx is done; the client calls release exactly once, when the response
// body is closed (or at once when the request fails). If Acquire fails,
// the request is not sent and the error is returned, wrapped; a limiter
// that gives up waiting may return a *RateLimitError so callers reschedule.
// Limiter is not called for redirect hops to media storage hosts, nor for
// an MCS links.content_direct_temporary: signed URLs are not Twilio's API.
//
// To make a 429 hold back every process sharing the limiter, not only the
// request that was refused, pass its RetryEvent (Cause CauseRateLimited,
// Wait) on from a WithRetryHook.
type Limiter interface {
	Acquire(ctx context.Context) (release func(), err error)
}

// Client calls Twilio's REST API for one account. It is safe for concurrent
// use. Create it with New.
type Client struct {
	// Messages lists and fetches Message resources.
	Messages *MessagesService
	// Media lists, fetches, downloads and deletes a message's Media.
	Media *MediaService
	// Conversations lists a Conversations service's conversations.
	Conversations *ConversationsService
	// ConversationMessages lists, fetches and deletes the messages of a
	// conversation.
	ConversationMessages *ConversationMessagesService
	// MCS fetches, downloads and uploads Media of the Media Content
	// Service (Conversations media).
	MCS *MCSService

	accountSID string
	creds      *credentials
	// api is the REST API 2010-04-01 host. Other Twilio APIs
	// (Conversations, Media Content Service) live on other hosts; each gets
	// its own apiHost so credentials and the limiter apply per host.
	api           apiHost
	conversations apiHost
	mcs           apiHost
	http          *http.Client
	limiter       Limiter
	retry         RetryPolicy
	onRetry       func(RetryEvent)
	observer      func(api string, status int) // WithRequestObserver
	userAgent     string
	clock         Clock
	jitter        func(n int64) int64
	lookupHost    func(ctx context.Context, host string) ([]netip.Addr, error)
	maxJSON       int64
}

type service struct{ client *Client }

// MessagesService handles the Message resource:
// /2010-04-01/Accounts/{AccountSid}/Messages.
type MessagesService service

// MediaService handles the Media subresource of a message:
// /2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media.
type MediaService service

// apiHost is one Twilio API base URL: scheme and host, no path.
type apiHost struct {
	base *url.URL
	// local is true when the base is a loopback or private address (an
	// emulator); content redirects may then go to such addresses too.
	local bool
}

// url returns the absolute URL of a root-relative path and an already
// encoded query on this host.
func (h *apiHost) url(path, rawQuery string) *url.URL {
	return &url.URL{Scheme: h.base.Scheme, Host: h.base.Host, Path: path, RawQuery: rawQuery}
}

// New returns a client for the account accountSID. Credentials are required:
// WithAuthToken or WithAPIKey. Every option is validated; New reports the
// first invalid one.
func New(accountSID string, opts ...Option) (*Client, error) {
	if !ValidAccountSID(accountSID) {
		return nil, fmt.Errorf("twilio: New: account SID is not valid (%s): want AC followed by 32 hex digits", redact.SID(accountSID))
	}
	var o options
	for i, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("twilio: New: option %d is nil", i)
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.creds == nil {
		return nil, fmt.Errorf("twilio: New: no credentials: use WithAuthToken or WithAPIKey")
	}
	if o.base == nil {
		o.base, _ = url.Parse(DefaultBaseURL)
	}
	if o.conversations == nil {
		o.conversations, _ = url.Parse(DefaultConversationsURL)
	}
	if o.mcs == nil {
		o.mcs, _ = url.Parse(DefaultMCSURL)
	}
	hc := o.httpClient
	if hc == nil {
		hc = defaultHTTPClient()
	}
	// A copy, so the caller's client is left alone: the client follows
	// redirects itself (see Media.Open) and carries no cookie jar, so
	// nothing but what this package sets is sent to any host.
	own := *hc
	own.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	own.Jar = nil
	own.Transport = holdLocation{next: own.Transport}

	retry := DefaultRetryPolicy()
	if o.retry != nil {
		retry = *o.retry
	}
	c := &Client{
		accountSID:    accountSID,
		creds:         o.creds(accountSID),
		api:           apiHost{base: o.base, local: isLocalHost(o.base.Hostname())},
		conversations: apiHost{base: o.conversations, local: isLocalHost(o.conversations.Hostname())},
		mcs:           apiHost{base: o.mcs, local: isLocalHost(o.mcs.Hostname())},
		http:          &own,
		limiter:       o.limiter,
		retry:         retry,
		onRetry:       o.onRetry,
		observer:      o.observe,
		userAgent:     defaultUserAgent,
		clock:         o.clock,
		jitter:        rand.Int64N,
		lookupHost:    lookupHost,
		maxJSON:       maxJSONBytes,
	}
	if o.userAgent != "" {
		c.userAgent = o.userAgent
	}
	if c.clock == nil {
		c.clock = realClock{}
	}
	c.Messages = &MessagesService{client: c}
	c.Media = &MediaService{client: c}
	c.Conversations = &ConversationsService{client: c}
	c.ConversationMessages = &ConversationMessagesService{client: c}
	c.MCS = &MCSService{client: c}
	return c, nil
}

// AccountSID returns the account the client works on.
func (c *Client) AccountSID() string { return c.accountSID }

// String describes the client without its credentials. String, GoString
// and Format have value receivers so that a Client value prints safely too.
func (c Client) String() string {
	return fmt.Sprintf("twilio.Client{AccountSID: %s, BaseURL: %s}", c.accountSID, c.api.base)
}

// GoString is String: %#v must not dump the credentials either.
func (c Client) GoString() string { return c.String() }

// Format prints String for every verb, so no fmt verb reaches the fields.
func (c Client) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }

// defaultHTTPClient has no overall timeout, because media bodies stream for
// as long as they take; the transport bounds connecting and waiting for
// response headers instead. Callers bound a whole call with ctx.
//
// It keeps up to 256 idle connections per host: a worker has up to
// TWILIO_MAX_CONCURRENCY API requests in flight (100 in the benchmark's
// Twilio-shaped scenario) and its downloads on the media host besides, and
// a connection past the idle bound is closed after its response, so the
// next request pays a new TCP (and TLS) handshake (issue #14's profile).
// Bigger buffers read and write a small media in a few system calls.
func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = time.Minute
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 512, 256
	t.ReadBufferSize, t.WriteBufferSize = 32<<10, 32<<10
	return &http.Client{Transport: t}
}

func lookupHost(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// locationHeader carries a redirect's Location past http.Client. The
// client parses Location before it asks CheckRedirect, and a Location it
// cannot parse becomes an error that quotes it whole, signed query and all.
// Moving the header aside makes http.Client return every 3xx untouched, and
// Open checks the target itself (see redirectTarget).
const locationHeader = "X-Mediasync-Location"

type holdLocation struct{ next http.RoundTripper }

func (h holdLocation) RoundTrip(req *http.Request) (*http.Response, error) {
	next := h.next
	if next == nil {
		next = http.DefaultTransport
	}
	resp, err := next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	resp.Header.Del(locationHeader) // only ever set here
	if loc := resp.Header.Get("Location"); loc != "" && isRedirect(resp.StatusCode) {
		resp.Header.Del("Location")
		resp.Header.Set(locationHeader, loc)
	}
	return resp, nil
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// wrapped transport.
func (h holdLocation) CloseIdleConnections() {
	if c, ok := h.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
