package twilio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// request is one logical call. do sends it, with retries.
type request struct {
	method string
	url    *url.URL
	// host is set for requests to a Twilio API host: they carry the
	// credentials and hold a limiter slot. It is nil for media storage
	// hosts reached through a redirect, which get neither.
	host   *apiHost
	accept string
	// redirects lets 301/302/303/307/308 through as a result for the
	// caller to follow; otherwise a 3xx is an error.
	redirects bool
	// read, when set, consumes a successful response inside the retry
	// loop, so a body cut short is retried like any other transient
	// failure; do then returns the response with its body closed. When nil,
	// do returns the response with its body open.
	read func(resp *http.Response) error
	// guard, when set, is asked before each attempt is sent (see Guard).
	guard Guard
	// body, when set, is the request's body (an MCS upload); every other
	// request has none.
	body *requestBody
}

// requestBody is a streamed request body. Each attempt reads it through
// its own attemptReader, which is cut off once the attempt is over, so an
// attempt the transport abandoned cannot read on under the next one. An
// attempt may be retried only while the caller's reader is untouched (a
// 429 answered before the body was read) or when getBody can open it anew.
type requestBody struct {
	size        int64
	contentType string
	header      map[string]string
	getBody     func() (io.ReadCloser, error)

	mu   sync.Mutex
	r    io.Reader
	used bool // bytes of r were read
}

// replayable reports whether another attempt can send the whole body.
func (b *requestBody) replayable() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.getBody != nil || !b.used
}

// open returns the body of one attempt.
func (b *requestBody) open(first bool) (*attemptReader, error) {
	a := &attemptReader{b: b}
	if b.getBody != nil && !first {
		rc, err := b.getBody()
		if err != nil {
			return nil, fmt.Errorf("reopen the body: %w", err)
		}
		a.rc = rc
	}
	return a, nil
}

var errBodyDetached = errors.New("twilio: request body read after its attempt ended")

type attemptReader struct {
	b      *requestBody
	rc     io.ReadCloser // from getBody; nil reads b.r
	closed bool
}

func (a *attemptReader) Read(p []byte) (int, error) {
	a.b.mu.Lock()
	defer a.b.mu.Unlock()
	if a.closed {
		return 0, errBodyDetached
	}
	if a.rc != nil {
		return a.rc.Read(p)
	}
	n, err := a.b.r.Read(p)
	if n > 0 {
		a.b.used = true
	}
	return n, err
}

// Close detaches the attempt from the body; it is safe to call twice.
func (a *attemptReader) Close() error {
	a.b.mu.Lock()
	defer a.b.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	if a.rc != nil {
		return a.rc.Close()
	}
	return nil
}

// failure is a failed attempt and what the retry loop may do about it.
type failure struct {
	err           error
	cause         RetryCause // "" when not retryable
	status        int
	apiErr        *Error
	retryAfter    time.Duration
	hasRetryAfter bool
	// release, when set, is the limiter slot of a refused (429) attempt,
	// kept until the retry hook has shared the back-off: released first,
	// the slot could go to a waiting request that is sent into the same
	// refusal before the fleet knows of it.
	release func()
}

// releaseSlot releases a slot the failure still holds.
func (f *failure) releaseSlot() {
	if f.release != nil {
		f.release()
		f.release = nil
	}
}

// do sends r until it succeeds, fails in a way that is not retryable, or
// the retry policy is spent. It alone attaches credentials, holds limiter
// slots and retries, so every call gets the same rules. The returned body
// releases the limiter slot when closed.
func (c *Client) do(ctx context.Context, r *request) (*http.Response, error) {
	method, path := r.method, sanitizeURL(r.url, r.host != nil)
	p := c.retry
	var waited time.Duration
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("twilio: %s %s: %w", method, path, err)
		}
		resp, f := c.attempt(ctx, r, method, path, attempt == 1)
		if f == nil {
			return resp, nil
		}
		if f.cause == "" {
			f.releaseSlot()
			return nil, f.err
		}
		if r.body != nil && !r.body.replayable() {
			f.releaseSlot()
			return nil, fmt.Errorf("%w (not retried: the body was partly sent and cannot be read again)", f.err)
		}
		if ctx.Err() != nil {
			f.releaseSlot()
			return nil, fmt.Errorf("twilio: %s %s: %w", method, path, ctx.Err())
		}

		ev := RetryEvent{Method: method, Path: path, Attempt: attempt, MaxAttempts: p.MaxAttempts,
			Cause: f.cause, Status: f.status, Err: f.err}
		// Retry-After ≤ 0 gives no useful hint; backing off still beats
		// hammering a server that is shedding load.
		if f.hasRetryAfter && f.retryAfter > 0 {
			ev.Wait, ev.FromRetryAfter = f.retryAfter, true
		} else {
			ev.Wait = p.backoff(attempt, c.jitter)
		}
		deadline, hasDeadline := ctx.Deadline()
		switch {
		case attempt >= p.MaxAttempts:
			ev.GiveUp = true
			ev.Reason = fmt.Sprintf("%s on attempt %d of %d; no attempts left", f.cause, attempt, p.MaxAttempts)
		case waited+ev.Wait > p.MaxTotalWait:
			ev.GiveUp = true
			ev.Reason = fmt.Sprintf("%s on attempt %d; waiting %s would pass the retry wait budget of %s (%s used)",
				f.cause, attempt, ev.Wait, p.MaxTotalWait, waited)
		case hasDeadline && time.Until(deadline) < ev.Wait: // ctx deadlines are wall-clock time, whatever the Clock
			ev.GiveUp = true
			ev.Reason = fmt.Sprintf("%s on attempt %d; waiting %s would pass the context deadline", f.cause, attempt, ev.Wait)
		default:
			ev.Reason = fmt.Sprintf("%s on attempt %d of %d; retrying in %s", f.cause, attempt, p.MaxAttempts, ev.Wait)
			if ev.FromRetryAfter {
				ev.Reason += " (Retry-After)"
			}
		}
		if c.onRetry != nil {
			c.onRetry(ev)
		}
		f.releaseSlot()
		if ev.GiveUp {
			if f.cause == CauseRateLimited && f.apiErr != nil {
				return nil, &RateLimitError{RetryAfter: ev.Wait, Err: f.apiErr}
			}
			return nil, f.err
		}
		if err := c.clock.Sleep(ctx, ev.Wait); err != nil {
			return nil, fmt.Errorf("twilio: %s %s: waiting to retry: %w", method, path, err)
		}
		waited += ev.Wait
	}
}

// attempt sends r once. It returns the response, or a failure; a limiter
// slot it took is released unless it is handed over with the body.
func (c *Client) attempt(ctx context.Context, r *request, method, path string, first bool) (*http.Response, *failure) {
	release := func() {}
	if r.host != nil && c.limiter != nil {
		rel, err := c.limiter.Acquire(ctx)
		if err != nil {
			return nil, &failure{err: fmt.Errorf("twilio: %s %s: acquire limiter slot: %w", method, path, err)}
		}
		if rel != nil {
			release = sync.OnceFunc(rel)
		}
	}
	if r.guard != nil {
		until, err := r.guard(ctx)
		if err != nil {
			release()
			return nil, &failure{err: fmt.Errorf("twilio: %s %s: not sent: %w", method, path, err)}
		}
		if !until.IsZero() {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, until)
			rel := release
			release = func() { rel(); cancel() }
		}
	}

	// No body but an upload's: Twilio answers a GET with a body 403 since
	// 2024-02.
	var body io.ReadCloser
	if r.body != nil {
		ar, err := r.body.open(first)
		if err != nil {
			release()
			return nil, &failure{err: fmt.Errorf("twilio: %s %s: %w", method, path, err)}
		}
		defer ar.Close() // detach: a transport still writing stops reading
		body = ar
		if r.body.size == 0 {
			body = http.NoBody
		}
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url.String(), body)
	if err != nil {
		release()
		// Not wrapped: url.Parse errors quote the whole URL.
		return nil, &failure{err: fmt.Errorf("twilio: %s %s: cannot build the request", method, path)}
	}
	if r.body != nil {
		req.ContentLength = r.body.size
		req.Header.Set("Content-Type", r.body.contentType)
		for k, v := range r.body.header {
			req.Header.Set(k, v)
		}
	}
	req.Header.Set("User-Agent", c.userAgent)
	if r.accept != "" {
		req.Header.Set("Accept", r.accept)
	}
	if r.host != nil {
		req.Header.Set("Authorization", c.creds.header())
	}

	resp, err := c.http.Do(req)
	c.observe(r, resp, err)
	if err != nil {
		release()
		return nil, c.transportFailure(ctx, method, path, err)
	}

	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300, r.redirects && isRedirect(resp.StatusCode):
		resp.Body = &releaseBody{ReadCloser: resp.Body, release: release}
		if r.read == nil {
			return resp, nil
		}
		err := r.read(resp)
		resp.Body.Close()
		if err != nil {
			f := &failure{err: fmt.Errorf("twilio: %s %s: %w", method, path, err)}
			if ctx.Err() == nil && IsRetryable(err) {
				f.cause = CauseNetwork
			}
			return nil, f
		}
		return resp, nil
	default:
		apiErr := newError(resp, method, path, c.creds.redact)
		drainAndClose(resp.Body)
		f := &failure{err: apiErr, apiErr: apiErr, status: resp.StatusCode}
		switch {
		case resp.StatusCode == http.StatusTooManyRequests || apiErr.Code == CodeTooManyRequests:
			f.cause = CauseRateLimited
			f.release = release // until the retry hook has seen the 429
		case retryableStatus(resp.StatusCode):
			f.cause = CauseServerError
		}
		if f.release == nil {
			release()
		}
		if f.cause != "" {
			f.retryAfter, f.hasRetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), c.clock.Now())
		}
		return nil, f
	}
}

// transportFailure turns an http.Client error into a failure. The
// *url.Error is unwrapped because its text holds the full URL, whose query
// may be a signed URL's signature or a phone-number filter.
func (c *Client) transportFailure(ctx context.Context, method, path string, err error) *failure {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return &failure{err: fmt.Errorf("twilio: %s %s: %w", method, path, ctxErr)}
	}
	if isContextErr(err) {
		// The caller's context is alive, so this deadline is the
		// http.Client's own Timeout: while dialing, net/http reports it as
		// the bare context error, which would pass for the caller giving up.
		err = clientTimeoutError{err}
	}
	f := &failure{err: fmt.Errorf("twilio: %s %s: %w", method, path, err)}
	if IsRetryable(err) {
		f.cause = CauseNetwork
	}
	return f
}

// clientTimeoutError is the http.Client's Timeout, reported as a timeout
// (retryable) and deliberately not unwrapping to context.DeadlineExceeded,
// which IsRetryable reads as the caller's own deadline.
type clientTimeoutError struct{ err error }

func (e clientTimeoutError) Error() string   { return "http client timeout: " + e.err.Error() }
func (e clientTimeoutError) Timeout() bool   { return true }
func (e clientTimeoutError) Temporary() bool { return true }

func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// releaseBody releases the limiter slot once, when the body is closed.
type releaseBody struct {
	io.ReadCloser
	release func()
}

func (b *releaseBody) Close() error {
	err := b.ReadCloser.Close()
	b.release()
	return err
}

// drainAndClose reads a little of what is left, so the connection can be
// reused, and closes the body.
func drainAndClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxErrorBytes))
	_ = body.Close()
}

// getJSON fetches u from the API host and decodes the JSON object in its
// body into a new T.
func getJSON[T any](ctx context.Context, c *Client, u *url.URL) (*T, error) {
	return getJSONFrom[T](ctx, c, &c.api, u, c.maxJSON)
}

// getJSONFrom is getJSON for any API host, reading at most limit bytes.
func getJSONFrom[T any](ctx context.Context, c *Client, host *apiHost, u *url.URL, limit int64) (*T, error) {
	var out *T
	_, err := c.do(ctx, &request{
		method: http.MethodGet,
		url:    u,
		host:   host,
		accept: "application/json",
		read: func(resp *http.Response) error {
			v := new(T)
			if err := decodeJSON(resp.Body, limit, v); err != nil {
				return err
			}
			out = v
			return nil
		},
	})
	return out, err
}

// decodeJSON reads at most limit bytes and decodes one JSON object.
func decodeJSON(r io.Reader, limit int64, v any) error {
	body, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if int64(len(body)) > limit {
		return fmt.Errorf("response body is larger than the %d byte limit", limit)
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return fmt.Errorf("decode response: want a JSON object, got %s", jsonKind(trimmed))
	}
	if err := json.Unmarshal(trimmed, v); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	if k, ok := v.(rawKeeper); ok {
		k.keepRaw(trimmed) // the object as sent (body is this call's own)
	}
	return nil
}

// sanitizeURL renders a request URL for errors and logs: never the query or
// user information. For the API host the path is enough; for any other
// host, scheme and host are shown too.
func sanitizeURL(u *url.URL, apiHost bool) string {
	if apiHost {
		return u.EscapedPath()
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}).String()
}
