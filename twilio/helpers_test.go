package twilio

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Test identities. Credentials are [A-Za-z0-9] like real ones.
const (
	testAccount = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	testToken   = "tok3nS3cretValue0123456789abcdefX"
	testKeySID  = "SKbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	testSecret  = "k3ySecretValue0123456789abcdefXyz"
	testMessage = "MMc26223853f8c46b4ab7dfaa6abba0a26"
	testMedia   = "ME0123456789abcdef0123456789abcdef"
	testMedia2  = "MEfedcba9876543210fedcba9876543210"
)

var testAuthHeader = "Basic " + base64.StdEncoding.EncodeToString([]byte(testAccount+":"+testToken))

// step is one scripted exchange: the request the client must send and the
// answer it gets.
type step struct {
	method string // defaults to GET
	uri    string // the exact request URI (path and raw query)
	status int    // defaults to 200
	header map[string]string
	body   string
	// serve, when set, replaces status/header/body.
	serve http.HandlerFunc
}

// script is a Twilio stand-in that answers a fixed queue of requests and
// fails the test on any request it does not expect, out of order, with a
// body, or without the account's credentials. At cleanup every step must
// have been consumed.
type script struct {
	t     testing.TB
	mu    sync.Mutex
	steps []step
	next  int
	auth  string
}

func newScript(t testing.TB, steps ...step) *script {
	s := &script{t: t, steps: steps, auth: testAuthHeader}
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.next != len(s.steps) {
			t.Errorf("script: %d of %d scripted requests were made; next unmet: %s %s",
				s.next, len(s.steps), s.steps[s.next].method, s.steps[s.next].uri)
		}
	})
	return s
}

func (s *script) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.next >= len(s.steps) {
		s.mu.Unlock()
		s.t.Errorf("script: unexpected request %s %s", r.Method, r.RequestURI)
		http.Error(w, "unexpected", http.StatusTeapot)
		return
	}
	st := s.steps[s.next]
	s.next++
	s.mu.Unlock()

	method := st.method
	if method == "" {
		method = http.MethodGet
	}
	if r.Method != method || r.RequestURI != st.uri {
		s.t.Errorf("script: got %s %s, want %s %s", r.Method, r.RequestURI, method, st.uri)
	}
	if got := r.Header.Get("Authorization"); got != s.auth {
		s.t.Errorf("script: %s %s: Authorization %q, want the account's Basic credentials", r.Method, r.RequestURI, got)
	}
	if r.ContentLength != 0 || len(r.TransferEncoding) != 0 {
		s.t.Errorf("script: %s %s carries a body (Content-Length %d, Transfer-Encoding %v)", r.Method, r.RequestURI, r.ContentLength, r.TransferEncoding)
	}
	if ua := r.Header.Get("User-Agent"); ua == "" || strings.HasPrefix(ua, "Go-http-client") {
		s.t.Errorf("script: User-Agent %q is not the client's", ua)
	}
	if st.serve != nil {
		st.serve(w, r)
		return
	}
	for k, v := range st.header {
		w.Header().Set(k, v)
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.Header().Set("Twilio-Request-Id", "RQ0123456789abcdef0123456789abcdef")
	status := st.status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, st.body)
}

// fakeClock makes retry waits instant and records them.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2024, 5, 24, 17, 44, 46, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	c.mu.Unlock()
	return ctx.Err()
}

func (c *fakeClock) waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// countingLimiter checks that every Acquire is released exactly once.
type countingLimiter struct {
	t        testing.TB
	mu       sync.Mutex
	acquired int
	inFlight int
	err      error // returned by Acquire when set
}

func newCountingLimiter(t testing.TB) *countingLimiter {
	l := &countingLimiter{t: t}
	t.Cleanup(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.inFlight != 0 {
			t.Errorf("limiter: %d of %d slots never released", l.inFlight, l.acquired)
		}
	})
	return l
}

func (l *countingLimiter) Acquire(ctx context.Context) (func(), error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil, l.err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.acquired++
	l.inFlight++
	var once bool
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if once {
			l.t.Errorf("limiter: slot released twice")
			return
		}
		once = true
		l.inFlight--
	}, nil
}

func (l *countingLimiter) held() (acquired, inFlight int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acquired, l.inFlight
}

// eventLog collects RetryEvents.
type eventLog struct {
	mu     sync.Mutex
	events []RetryEvent
}

func (e *eventLog) record(ev RetryEvent) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events = append(e.events, ev)
}

func (e *eventLog) all() []RetryEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]RetryEvent(nil), e.events...)
}

type testBundle struct {
	srv     *httptest.Server
	client  *Client
	clock   *fakeClock
	limiter *countingLimiter
	events  *eventLog
}

// setup serves h on 127.0.0.1 and returns a client for it with an instant
// clock, a counting limiter and a retry event log. Extra options are
// applied last.
func setup(t *testing.T, h http.Handler, opts ...Option) *testBundle {
	t.Helper()
	srv := newServer(t, h)
	b := &testBundle{srv: srv, clock: newFakeClock(), limiter: newCountingLimiter(t), events: &eventLog{}}
	all := append([]Option{
		WithAuthToken(testToken),
		WithBaseURL(srv.URL),
		WithHTTPClient(srv.Client()),
		WithClock(b.clock),
		WithLimiter(b.limiter),
		WithRetryHook(b.events.record),
	}, opts...)
	c, err := New(testAccount, all...)
	require.NoError(t, err)
	b.client = c
	return b
}

// Wire fixtures shaped like Twilio's (see the OpenAPI examples).

func messagesPath() string { return "/2010-04-01/Accounts/" + testAccount + "/Messages.json" }

func mediaListPath(msg string) string {
	return "/2010-04-01/Accounts/" + testAccount + "/Messages/" + msg + "/Media.json"
}

func messageJSON(sid, numMedia string) string {
	return fmt.Sprintf(`{"account_sid": %[1]q, "api_version": "2010-04-01", "body": "customer text that must not be kept",
 "date_created": "Fri, 24 May 2019 17:44:46 +0000", "date_sent": "Fri, 24 May 2019 17:44:50 +0000",
 "date_updated": "Fri, 24 May 2019 17:44:50 +0000", "direction": "inbound", "error_code": null, "error_message": null,
 "from": "+12019235161", "messaging_service_sid": "MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "num_media": %[3]s,
 "num_segments": "1", "price": "-0.00750", "price_unit": "USD", "sid": %[2]q, "status": "received",
 "subresource_uris": {"media": "/2010-04-01/Accounts/%[1]s/Messages/%[2]s/Media.json"},
 "to": "+18182008801", "uri": "/2010-04-01/Accounts/%[1]s/Messages/%[2]s.json"}`, testAccount, sid, numMedia)
}

func mediaJSON(msg, sid string) string {
	return fmt.Sprintf(`{"account_sid": %[1]q, "content_type": "image/jpeg",
 "date_created": "Sun, 16 Aug 2015 15:53:54 +0000", "date_updated": "Sun, 16 Aug 2015 15:53:55 +0000",
 "parent_sid": %[2]q, "sid": %[3]q, "uri": "/2010-04-01/Accounts/%[1]s/Messages/%[2]s/Media/%[3]s.json"}`, testAccount, msg, sid)
}

// pageJSON renders a list page; next "" becomes null.
func pageJSON(key string, items []string, page, pageSize int, uri, next string) string {
	nextJSON := "null"
	if next != "" {
		nextJSON = fmt.Sprintf("%q", next)
	}
	end := page*pageSize + len(items) - 1
	if len(items) == 0 {
		end = 0
	}
	return fmt.Sprintf(`{"end": %d, "first_page_uri": %q, %q: [%s], "next_page_uri": %s, "page": %d, "page_size": %d,
 "previous_page_uri": null, "start": %d, "uri": %q}`,
		end, uri, key, strings.Join(items, ","), nextJSON, page, pageSize, page*pageSize, uri)
}

func sid(prefix string, n int) string { return fmt.Sprintf("%s%032x", prefix, n) }

func newServer(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}
