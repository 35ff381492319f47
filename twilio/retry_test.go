package twilio

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	tooMany = `{"code": 20429, "message": "Too Many Requests", "more_info": "https://www.twilio.com/docs/errors/20429", "status": 429}`
	oops    = `{"code": 20500, "message": "Internal Server Error", "more_info": "https://www.twilio.com/docs/errors/20500", "status": 500}`
)

func msgPath(sid string) string {
	return "/2010-04-01/Accounts/" + testAccount + "/Messages/" + sid + ".json"
}

func TestRetries429WithRetryAfterThenSucceeds(t *testing.T) {
	t.Parallel()
	b := setup(t, newScript(t,
		step{uri: msgPath(testMessage), status: 429, header: map[string]string{"Retry-After": "7"}, body: tooMany},
		step{uri: msgPath(testMessage), body: messageJSON(testMessage, `"2"`)},
	))

	m, err := b.client.Messages.Get(t.Context(), testMessage)
	require.NoError(t, err)
	require.Equal(t, testMessage, m.SID)
	require.Equal(t, []time.Duration{7 * time.Second}, b.clock.waits())

	ev := b.events.all()
	require.Len(t, ev, 1)
	require.Equal(t, CauseRateLimited, ev[0].Cause)
	require.Equal(t, 429, ev[0].Status)
	require.True(t, ev[0].FromRetryAfter)
	require.False(t, ev[0].GiveUp)
	require.Equal(t, 1, ev[0].Attempt)
	require.Equal(t, msgPath(testMessage), ev[0].Path)
	require.Contains(t, ev[0].Reason, "Retry-After")
	acquired, _ := b.limiter.held()
	require.Equal(t, 2, acquired, "each attempt holds its own slot")
}

func TestRetries429WithHTTPDateRetryAfter(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	at := clock.Now().Add(3 * time.Second).Format(http.TimeFormat)
	b := setup(t, newScript(t,
		step{uri: msgPath(testMessage), status: 429, header: map[string]string{"Retry-After": at}, body: tooMany},
		step{uri: msgPath(testMessage), body: messageJSON(testMessage, `"2"`)},
	), WithClock(clock))

	_, err := b.client.Messages.Get(t.Context(), testMessage)
	require.NoError(t, err)
	require.Equal(t, []time.Duration{3 * time.Second}, clock.waits())
}

func TestRetries429WithoutRetryAfterBacksOffWithJitter(t *testing.T) {
	t.Parallel()
	policy := RetryPolicy{MaxAttempts: 4, BaseDelay: time.Second, MaxDelay: 3 * time.Second, MaxTotalWait: time.Minute}
	b := setup(t, newScript(t,
		step{uri: msgPath(testMessage), status: 429, body: tooMany},
		step{uri: msgPath(testMessage), status: 429, body: tooMany},
		step{uri: msgPath(testMessage), status: 429, body: tooMany},
		step{uri: msgPath(testMessage), body: messageJSON(testMessage, `"2"`)},
	), WithRetryPolicy(policy))

	_, err := b.client.Messages.Get(t.Context(), testMessage)
	require.NoError(t, err)
	waits := b.clock.waits()
	require.Len(t, waits, 3)
	for i, ceiling := range []time.Duration{time.Second, 2 * time.Second, 3 * time.Second} {
		require.GreaterOrEqual(t, waits[i], ceiling/2, "wait %d", i)
		require.LessOrEqual(t, waits[i], ceiling, "wait %d", i)
	}
	for _, ev := range b.events.all() {
		require.False(t, ev.FromRetryAfter)
		require.Equal(t, CauseRateLimited, ev.Cause)
	}
}

func TestBackoffDoublesUpToMaxDelay(t *testing.T) {
	t.Parallel()
	p := RetryPolicy{MaxAttempts: 10, BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second, MaxTotalWait: time.Minute}
	top := func(n int64) int64 { return n - 1 }
	bottom := func(int64) int64 { return 0 }
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		require.Equal(t, w*time.Millisecond, p.backoff(i+1, top), "attempt %d", i+1)
		require.Equal(t, w*time.Millisecond/2, p.backoff(i+1, bottom), "attempt %d", i+1)
	}
	// A huge attempt number must not overflow into a negative wait.
	require.Equal(t, time.Second, p.backoff(1000, top))
}

func TestRetries500ThenSucceeds(t *testing.T) {
	t.Parallel()
	b := setup(t, newScript(t,
		step{uri: msgPath(testMessage), status: 500, body: oops},
		step{uri: msgPath(testMessage), status: 502, body: "<html>bad gateway</html>", header: map[string]string{"Content-Type": "text/html"}},
		step{uri: msgPath(testMessage), body: messageJSON(testMessage, `"2"`)},
	))

	_, err := b.client.Messages.Get(t.Context(), testMessage)
	require.NoError(t, err)
	ev := b.events.all()
	require.Len(t, ev, 2)
	require.Equal(t, CauseServerError, ev[0].Cause)
	require.Equal(t, 500, ev[0].Status)
	require.Equal(t, 502, ev[1].Status)
}

func TestRetriesExhaustedReturnTypedErrors(t *testing.T) {
	t.Parallel()
	t.Run("5xx", func(t *testing.T) {
		t.Parallel()
		var steps []step
		for range 4 {
			steps = append(steps, step{uri: msgPath(testMessage), status: 503, body: oops})
		}
		b := setup(t, newScript(t, steps...))

		_, err := b.client.Messages.Get(t.Context(), testMessage)
		var apiErr *Error
		require.ErrorAs(t, err, &apiErr)
		require.Equal(t, 503, apiErr.Status)
		require.True(t, IsRetryable(err))
		require.False(t, IsRateLimited(err))
		require.Len(t, b.clock.waits(), 3)
		ev := b.events.all()
		require.Len(t, ev, 4)
		require.True(t, ev[3].GiveUp)
		require.Contains(t, ev[3].Reason, "no attempts left")
	})
	t.Run("429", func(t *testing.T) {
		t.Parallel()
		var steps []step
		for range 4 {
			steps = append(steps, step{uri: msgPath(testMessage), status: 429, header: map[string]string{"Retry-After": "2"}, body: tooMany})
		}
		b := setup(t, newScript(t, steps...))

		_, err := b.client.Messages.Get(t.Context(), testMessage)
		var rl *RateLimitError
		require.ErrorAs(t, err, &rl)
		require.Equal(t, 2*time.Second, rl.RetryAfter)
		require.Equal(t, CodeTooManyRequests, rl.Err.Code)
		require.True(t, IsRateLimited(err))
		require.True(t, IsRetryable(err))
		require.Equal(t, CodeTooManyRequests, ErrorCode(err))
		var apiErr *Error
		require.ErrorAs(t, err, &apiErr, "a *RateLimitError unwraps to its *Error")
		require.Contains(t, err.Error(), "retry after 2s")
	})
}

func TestRetryAfterBeyondBudgetGivesUpAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, newScript(t,
		step{uri: msgPath(testMessage), status: 429, header: map[string]string{"Retry-After": "120"}, body: tooMany},
	), WithRetryPolicy(RetryPolicy{MaxTotalWait: 30 * time.Second}))

	_, err := b.client.Messages.Get(t.Context(), testMessage)
	var rl *RateLimitError
	require.ErrorAs(t, err, &rl)
	require.Equal(t, 2*time.Minute, rl.RetryAfter, "the job layer reschedules after what Twilio asked for")
	require.Empty(t, b.clock.waits())
	ev := b.events.all()
	require.Len(t, ev, 1)
	require.True(t, ev[0].GiveUp)
	require.Contains(t, ev[0].Reason, "retry wait budget")
}

func TestRetryWaitPastDeadlineGivesUpAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, newScript(t,
		step{uri: msgPath(testMessage), status: 429, header: map[string]string{"Retry-After": "30"}, body: tooMany},
	))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	_, err := b.client.Messages.Get(ctx, testMessage)
	require.True(t, IsRateLimited(err), "%v", err)
	require.Empty(t, b.clock.waits())
	require.Contains(t, b.events.all()[0].Reason, "context deadline")
}

func TestSingleAttemptPolicy(t *testing.T) {
	t.Parallel()
	b := setup(t, newScript(t, step{uri: msgPath(testMessage), status: 429, body: tooMany}),
		WithRetryPolicy(RetryPolicy{MaxAttempts: 1}))

	_, err := b.client.Messages.Get(t.Context(), testMessage)
	var rl *RateLimitError
	require.ErrorAs(t, err, &rl)
	require.Positive(t, rl.RetryAfter, "without Retry-After the suggested wait is the next backoff")
}

func TestCancelDuringBackoffStopsWithContextError(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// The real clock waits in a select on ctx.Done(); the hook cancels
	// before the wait starts, so the wait must end at once.
	b := setup(t, newScript(t, step{uri: msgPath(testMessage), status: 503, body: oops}),
		WithClock(realClock{}),
		WithRetryPolicy(RetryPolicy{BaseDelay: time.Hour, MaxDelay: time.Hour, MaxTotalWait: 2 * time.Hour}),
		WithRetryHook(func(RetryEvent) { cancel() }))

	_, err := b.client.Messages.Get(ctx, testMessage)
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, IsRetryable(err))
}

func TestNotRetried(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc   string
		status int
		body   string
		check  func(error) bool
		code   int
	}{
		{"401", 401, `{"code": 20003, "detail": "Your AccountSid or AuthToken was incorrect.", "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}`, func(err error) bool { return !IsNotFound(err) && !IsRetryable(err) }, CodeAuthenticate},
		{"404", 404, `{"code": 20404, "message": "The requested resource /2010-04-01/Accounts/AC/Messages/MM.json was not found", "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404}`, IsNotFound, CodeNotFound},
		{"400", 400, `{"code": 21602, "message": "Bad parameter", "status": 400}`, func(err error) bool { return !IsRetryable(err) }, 21602},
		{"501", 501, `{}`, func(err error) bool { return !IsRetryable(err) }, 0},
		{"302 on a JSON call", 302, ``, func(err error) bool { return !IsRetryable(err) }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			b := setup(t, newScript(t, step{uri: msgPath(testMessage), status: tt.status, body: tt.body,
				header: map[string]string{"WWW-Authenticate": `Basic realm="Twilio API"`, "Location": "https://elsewhere.example/"}}))

			_, err := b.client.Messages.Get(t.Context(), testMessage)
			var apiErr *Error
			require.ErrorAs(t, err, &apiErr)
			require.Equal(t, tt.status, apiErr.Status)
			require.Equal(t, tt.code, apiErr.Code)
			require.True(t, tt.check(err), "%v", err)
			require.Equal(t, "RQ0123456789abcdef0123456789abcdef", apiErr.RequestID)
			require.Empty(t, b.events.all(), "no retry decision for a final answer")
			require.Empty(t, b.clock.waits())
			require.NotContains(t, err.Error(), testToken)
		})
	}
}

// hangUp closes the connection without an answer, as a server that resets
// does.
func hangUp(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		require.NoError(t, err)
		require.NoError(t, conn.Close())
	}
}

// cutShort promises n bytes and sends fewer, then closes the connection.
func cutShort(t *testing.T, contentType string, n int, partial string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		require.NoError(t, err)
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: " + contentType + "\r\nContent-Length: " + strconv.Itoa(n) + "\r\n\r\n" + partial)
		_ = buf.Flush()
		_ = conn.Close()
	}
}

func TestRetriesConnectionErrors(t *testing.T) {
	t.Parallel()
	body := messageJSON(testMessage, `"2"`)
	b := setup(t, newScript(t,
		step{uri: msgPath(testMessage), serve: hangUp(t)},
		step{uri: msgPath(testMessage), serve: cutShort(t, "application/json", len(body), body[:len(body)/2])},
		step{uri: msgPath(testMessage), body: body},
	))

	m, err := b.client.Messages.Get(t.Context(), testMessage)
	require.NoError(t, err)
	require.Equal(t, testMessage, m.SID)
	ev := b.events.all()
	require.Len(t, ev, 2)
	for _, e := range ev {
		require.Equal(t, CauseNetwork, e.Cause)
		require.Zero(t, e.Status)
		require.True(t, IsRetryable(e.Err), "%v", e.Err)
	}
	require.ErrorIs(t, ev[1].Err, io.ErrUnexpectedEOF)
}

func TestConnectionRefusedIsRetriedThenReturned(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now

	clock := newFakeClock()
	events := &eventLog{}
	c, err := New(testAccount, WithAuthToken(testToken), WithBaseURL("http://"+addr), WithClock(clock), WithRetryHook(events.record))
	require.NoError(t, err)

	_, err = c.Messages.Get(t.Context(), testMessage)
	require.Error(t, err)
	require.True(t, IsRetryable(err), "%v", err)
	require.Len(t, clock.waits(), 3)
	require.Len(t, events.all(), 4)
	require.NotContains(t, err.Error(), "http://", "the request URL is not echoed")
}

func TestRetryPolicyValidation(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		p    RetryPolicy
		want string
	}{
		{RetryPolicy{MaxAttempts: -1}, "RetryPolicy.MaxAttempts is -1"},
		{RetryPolicy{MaxAttempts: 21}, "RetryPolicy.MaxAttempts is 21"},
		{RetryPolicy{BaseDelay: -time.Second}, "RetryPolicy.BaseDelay is -1s"},
		{RetryPolicy{MaxDelay: -time.Second}, "RetryPolicy.MaxDelay is -1s"},
		{RetryPolicy{MaxTotalWait: -time.Second}, "RetryPolicy.MaxTotalWait is -1s"},
		{RetryPolicy{BaseDelay: time.Minute, MaxDelay: time.Second}, "BaseDelay 1m0s is longer than MaxDelay 1s"},
	} {
		_, err := New(testAccount, WithAuthToken(testToken), WithRetryPolicy(tt.p))
		require.ErrorContains(t, err, tt.want)
	}
	// Zero fields take the defaults; a lone long BaseDelay raises MaxDelay.
	_, err := New(testAccount, WithAuthToken(testToken), WithRetryPolicy(RetryPolicy{BaseDelay: time.Minute}))
	require.NoError(t, err)
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 5, 24, 17, 44, 46, 0, time.UTC)
	for _, tt := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{" 5 ", 5 * time.Second, true},
		{"120", 2 * time.Minute, true},
		{"99999999999999999999999", maxRetryAfter, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"Fri, 31 Dec 9999 23:59:59 GMT", maxRetryAfter, true},
		{"Friday, 24-May-24 17:45:46 GMT", time.Minute, true}, // RFC 850, still a valid HTTP date
	} {
		got, ok := parseRetryAfter(tt.in, now)
		require.Equal(t, tt.ok, ok, "%q", tt.in)
		require.Equal(t, tt.want, got, "%q", tt.in)
	}
}

func TestLimiterAcquireErrorIsReturned(t *testing.T) {
	t.Parallel()
	s := newScript(t)
	b := setup(t, s)
	b.limiter.err = errors.New("redis unavailable")

	_, err := b.client.Messages.Get(t.Context(), testMessage)
	require.ErrorContains(t, err, "acquire limiter slot: redis unavailable")
	require.Zero(t, s.requests())
	require.Empty(t, b.events.all())
}

func TestLimiterSlotHeldUntilBodyClosedAndBalancedOnErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, newScript(t,
		step{uri: msgPath(testMessage), status: 500, body: oops},
		step{uri: msgPath(testMessage), status: 404, body: `{"code": 20404}`},
		step{uri: msgPath(testMessage), body: `{"sid": 5}`},
	), WithRetryPolicy(RetryPolicy{MaxAttempts: 2}))

	_, err := b.client.Messages.Get(t.Context(), testMessage)
	require.True(t, IsNotFound(err))
	_, err = b.client.Messages.Get(t.Context(), testMessage)
	require.ErrorContains(t, err, "decode response")
	acquired, inFlight := b.limiter.held()
	require.Equal(t, 3, acquired)
	require.Zero(t, inFlight)
}

// A request cancelled while the server holds it returns the context's
// error, and is not retried.
func TestCancelDuringRequest(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	arrived := make(chan struct{})
	b := setup(t, newScript(t, step{uri: msgPath(testMessage), serve: func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done()
	}}))
	go func() {
		<-arrived
		cancel()
	}()

	_, err := b.client.Messages.Get(ctx, testMessage)
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, IsRetryable(err))
	require.Empty(t, b.events.all())
}

// The http.Client's own Timeout is a retryable timeout, unlike the
// caller's deadline, although both answer errors.Is(DeadlineExceeded).
func TestClientTimeoutIsRetryableButDeadlineIsNot(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	// srv.Client() is one shared *http.Client: each client here gets its
	// own, or the first's Timeout races the second's deadline.
	hc := &http.Client{Transport: srv.Client().Transport, Timeout: 50 * time.Millisecond}
	c, err := New(testAccount, WithAuthToken(testToken), WithBaseURL(srv.URL), WithHTTPClient(hc),
		WithClock(newFakeClock()), WithRetryPolicy(RetryPolicy{MaxAttempts: 1}))
	require.NoError(t, err)
	_, err = c.Messages.Get(t.Context(), testMessage)
	require.Error(t, err)
	require.True(t, IsRetryable(err), "%v", err)

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	c2, err := New(testAccount, WithAuthToken(testToken), WithBaseURL(srv.URL),
		WithHTTPClient(&http.Client{Transport: srv.Client().Transport}), WithClock(newFakeClock()))
	require.NoError(t, err)
	_, err = c2.Messages.Get(ctx, testMessage)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.False(t, IsRetryable(err), "%v", err)
}

// A 429's slot is held until the retry hook has seen it: the hook is where
// the fleet learns of the back-off, and a slot released before it could go
// to a waiting request sent straight into the same refusal.
func TestRefusedSlotIsHeldUntilTheRetryHookRan(t *testing.T) {
	t.Parallel()
	var lim *countingLimiter
	var heldAtHook []int
	b := setup(t, newScript(t,
		step{uri: msgPath(testMessage), status: 429, body: tooMany},
		step{uri: msgPath(testMessage), status: 500, body: oops},
		step{uri: msgPath(testMessage), body: messageJSON(testMessage, `"2"`)},
	), WithRetryHook(func(RetryEvent) {
		_, inFlight := lim.held()
		heldAtHook = append(heldAtHook, inFlight)
	}))
	lim = b.limiter
	_, err := b.client.Messages.Get(t.Context(), testMessage)
	require.NoError(t, err)
	require.Equal(t, []int{1, 0}, heldAtHook, "the 429's slot is still held when the hook runs; a 500's is not")
	_, inFlight := b.limiter.held()
	require.Zero(t, inFlight)
}
