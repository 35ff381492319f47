package twilio

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/mediasync/mediasync/internal/redact"
)

// Option configures a Client in New. Each option validates its input and
// New returns the first error.
type Option func(*options) error

type options struct {
	// creds builds the credentials once New knows the account SID.
	creds func(accountSID string) *credentials
	base  *url.URL
	// conversations and mcs are the Conversations v1 and MCS hosts.
	conversations, mcs *url.URL
	httpClient         *http.Client
	limiter            Limiter
	retry              *RetryPolicy
	onRetry            func(RetryEvent)
	observe            func(api string, status int)
	userAgent          string
	clock              Clock
}

// WithAuthToken authenticates as the account itself: HTTP Basic with the
// Account SID and its Auth Token.
func WithAuthToken(token string) Option {
	return func(o *options) error {
		if err := checkSecret("WithAuthToken", "auth token", token); err != nil {
			return err
		}
		return o.setCredentials("WithAuthToken", func(accountSID string) *credentials {
			return newCredentials(accountSID, token)
		})
	}
}

// WithAPIKey authenticates with an API key (the SK… SID and its secret),
// which Twilio recommends in production. The account SID still names the
// account in every path.
func WithAPIKey(keySID, secret string) Option {
	return func(o *options) error {
		if !ValidAPIKeySID(keySID) {
			// Not echoed: a secret passed in the wrong argument must not
			// end up in an error message.
			return fmt.Errorf("twilio: WithAPIKey: key SID is not valid (%s): want SK followed by 32 hex digits", redact.SID(keySID))
		}
		if err := checkSecret("WithAPIKey", "secret", secret); err != nil {
			return err
		}
		return o.setCredentials("WithAPIKey", func(string) *credentials {
			return newCredentials(keySID, secret)
		})
	}
}

// setCredentials is called by both credential options, which are mutually
// exclusive.
func (o *options) setCredentials(option string, build func(accountSID string) *credentials) error {
	if o.creds != nil {
		return fmt.Errorf("twilio: %s: credentials are already set; use exactly one of WithAuthToken and WithAPIKey", option)
	}
	o.creds = build
	return nil
}

// WithBaseURL points the client at another host for the REST API 2010-04-01,
// such as an emulator ("http://127.0.0.1:8080"). The URL is scheme and host
// only: Twilio's *_uri fields are relative to the host root, so a path
// would not round-trip. Plain http is accepted only for loopback, private
// and single-label (container) hosts, since Basic credentials would
// otherwise cross the network in clear text.
func WithBaseURL(raw string) Option {
	return func(o *options) error {
		u, err := parseBaseURL("WithBaseURL", raw)
		o.base = u
		return err
	}
}

// WithConversationsURL points the client at another host for Conversations
// v1 (default https://conversations.twilio.com), under the same rules as
// WithBaseURL: scheme and host only, plain http only for local hosts.
func WithConversationsURL(raw string) Option {
	return func(o *options) error {
		u, err := parseBaseURL("WithConversationsURL", raw)
		o.conversations = u
		return err
	}
}

// WithMCSURL points the client at another host for the Media Content
// Service (default https://mcs.us1.twilio.com), under the same rules as
// WithBaseURL. The MCS paths carry their /v1 prefix themselves.
func WithMCSURL(raw string) Option {
	return func(o *options) error {
		u, err := parseBaseURL("WithMCSURL", raw)
		o.mcs = u
		return err
	}
}

// parseBaseURL validates the base URL of one API host for option.
func parseBaseURL(option, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("twilio: %s: %q is not a URL", option, raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("twilio: %s: the URL must not contain user information (value not shown); use WithAuthToken or WithAPIKey", option)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("twilio: %s: %q: scheme must be http or https", option, raw)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("twilio: %s: %q has no host", option, raw)
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "", u.ForceQuery:
		return nil, fmt.Errorf("twilio: %s: %q must be scheme and host only, without path, query or fragment", option, raw)
	case u.Scheme == "http" && !isLocalHost(u.Hostname()):
		return nil, fmt.Errorf("twilio: %s: %q: plain http is only allowed for loopback, private or single-label hosts; use https", option, raw)
	}
	return &url.URL{Scheme: u.Scheme, Host: strings.ToLower(u.Host)}, nil
}

// WithHTTPClient makes the client send requests through hc (its Transport,
// Timeout). The client works on a copy: it replaces CheckRedirect, because
// it follows media redirects itself, and drops the cookie jar. hc must not
// disable TLS certificate verification.
func WithHTTPClient(hc *http.Client) Option {
	return func(o *options) error {
		if hc == nil {
			return fmt.Errorf("twilio: WithHTTPClient: client is nil")
		}
		if t, ok := hc.Transport.(*http.Transport); ok && t.TLSClientConfig != nil && t.TLSClientConfig.InsecureSkipVerify {
			return fmt.Errorf("twilio: WithHTTPClient: the transport disables TLS certificate verification (InsecureSkipVerify); trust the server's CA in RootCAs instead")
		}
		o.httpClient = hc
		return nil
	}
}

// WithLimiter makes every request to the API host hold a slot of l from
// before it is sent until its response body is closed.
func WithLimiter(l Limiter) Option {
	return func(o *options) error {
		if l == nil {
			return fmt.Errorf("twilio: WithLimiter: limiter is nil")
		}
		o.limiter = l
		return nil
	}
}

// WithRetryPolicy replaces DefaultRetryPolicy. Zero fields take their
// defaults.
func WithRetryPolicy(p RetryPolicy) Option {
	return func(o *options) error {
		p = p.withDefaults()
		if err := p.validate(); err != nil {
			return err
		}
		o.retry = &p
		return nil
	}
}

// WithRetryHook calls fn for every retry decision: each retry, with its
// cause and wait, and each give-up. fn runs on the calling goroutine before
// the wait, so it must be quick; it must be safe for concurrent use.
func WithRetryHook(fn func(RetryEvent)) Option {
	return func(o *options) error {
		if fn == nil {
			return fmt.Errorf("twilio: WithRetryHook: hook is nil")
		}
		o.onRetry = fn
		return nil
	}
}

// WithUserAgent sets the User-Agent header sent to every host.
func WithUserAgent(ua string) Option {
	return func(o *options) error {
		if strings.TrimSpace(ua) == "" {
			return fmt.Errorf("twilio: WithUserAgent: user agent is empty")
		}
		for _, r := range ua {
			if r < ' ' || r == 0x7f {
				return fmt.Errorf("twilio: WithUserAgent: %q contains control characters", ua)
			}
		}
		o.userAgent = ua
		return nil
	}
}

// WithClock replaces the wall clock the client waits on between retries.
// Tests use it to make backoff instant and observable.
func WithClock(c Clock) Option {
	return func(o *options) error {
		if c == nil {
			return fmt.Errorf("twilio: WithClock: clock is nil")
		}
		o.clock = c
		return nil
	}
}
