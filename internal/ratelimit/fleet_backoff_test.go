package ratelimit_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/internal/ratelimit"
	"github.com/mediasync/mediasync/twilio"
)

// The twilio client takes a *FleetBackoff as its Limiter.
var _ twilio.Limiter = (*ratelimit.FleetBackoff)(nil)

func TestFleetBackoff_A429HoldsBackTheFleet(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	cfg := ratelimit.Config{MaxInFlight: 5}
	fleet := &ratelimit.FleetBackoff{Limiter: b.limiter(t, 0, cfg), OnError: func(err error) { t.Errorf("OnError: %v", err) }}
	other := b.limiter(t, 1, cfg)

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, `{"code":20429,"message":"Too Many Requests","status":429}`)
	}))
	t.Cleanup(srv.Close)
	client, err := twilio.New("AC0123456789abcdef0123456789abcdef",
		twilio.WithBaseURL(srv.URL), twilio.WithAuthToken("token"),
		twilio.WithLimiter(fleet), twilio.WithRetryHook(fleet.OnRetry),
		twilio.WithRetryPolicy(twilio.RetryPolicy{MaxAttempts: 1}))
	require.NoError(t, err)

	before := redisNow(t, b.clients[0])
	_, err = client.Media.Get(ctx, "MM0123456789abcdef0123456789abcdef", "ME0123456789abcdef0123456789abcdef")
	require.True(t, twilio.IsRateLimited(err), "got %v", err)

	// Another process sees the back-off (at least a second, Twilio sent no
	// Retry-After) and the ceiling lowered to what was in flight, at least 1.
	_, until, err := other.Stats(ctx)
	require.NoError(t, err)
	require.False(t, until.Before(before.Truncate(time.Millisecond).Add(time.Second)), "back-off until %v", until)
	limit, err := b.clients[1].HGet(ctx, b.key+":ceiling", "limit").Result()
	require.NoError(t, err)
	require.Equal(t, "1", limit)
}

func TestFleetBackoff_OnlyA429IsShared(t *testing.T) {
	t.Parallel()
	for _, ev := range []twilio.RetryEvent{
		{Status: 503, Cause: twilio.CauseServerError, Wait: time.Minute},
		{Status: 0, Cause: twilio.CauseNetwork, Wait: time.Minute},
	} {
		t.Run(fmt.Sprint(ev.Cause), func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			fleet := &ratelimit.FleetBackoff{Limiter: b.limiter(t, 0, ratelimit.Config{MaxInFlight: 5})}
			fleet.OnRetry(ev)
			_, until, err := fleet.Stats(t.Context())
			require.NoError(t, err)
			require.True(t, until.IsZero(), "back-off recorded for %+v: %v", ev, until)
			n, err := b.clients[0].Exists(t.Context(), b.key+":ceiling").Result()
			require.NoError(t, err)
			require.Zero(t, n, "ceiling lowered for %+v", ev)
		})
	}
}

func TestFleetBackoff_RedisErrorsGoToOnError(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	l, err := ratelimit.New(rdb, ratelimit.Config{Key: "unreachable:twilio:AC1", MaxInFlight: 1})
	require.NoError(t, err)
	var errs []error
	fleet := &ratelimit.FleetBackoff{Limiter: l, OnError: func(err error) { errs = append(errs, err) }}
	fleet.OnRetry(twilio.RetryEvent{Status: 429, Cause: twilio.CauseRateLimited, Wait: 3 * time.Second})
	require.Len(t, errs, 2)
	require.ErrorContains(t, errs[0], "ratelimit: record back-off of 3s")
	require.ErrorContains(t, errs[1], "ratelimit: lower the ceiling")

	(&ratelimit.FleetBackoff{Limiter: l}).OnRetry(twilio.RetryEvent{Status: 429}) // nil OnError: ignored
}
