package ratelimit_test

import (
	"context"
	"crypto/rand"
	"errors"
	"math"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/internal/ratelimit"
	"github.com/mediasync/mediasync/internal/testenv"
	"github.com/mediasync/mediasync/twilio"
)

// The twilio client takes a *Limiter as its Limiter.
var _ twilio.Limiter = (*ratelimit.Limiter)(nil)

// signalTimeout bounds every wait for something that must happen; reaching
// it fails the test (it is not a performance claim).
const signalTimeout = 30 * time.Second

// testBundle is one test's account key and two Redis clients, standing in
// for two worker processes.
type testBundle struct {
	key     string
	clients [2]*redis.Client
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	r := testenv.NewRedis(t) // deletes the namespace's keys at cleanup, redis_rate's included
	opt, err := redis.ParseURL(r.URL)
	require.NoError(t, err)
	other := redis.NewClient(opt)
	t.Cleanup(func() { _ = other.Close() })

	b := &testBundle{
		key:     r.Keys.TwilioLimiter("AC" + rand.Text()),
		clients: [2]*redis.Client{r.Client, other},
	}
	return b
}

// limiter returns a Limiter on clients[i] with cfg.Key set to the test's.
func (b *testBundle) limiter(t *testing.T, i int, cfg ratelimit.Config) *ratelimit.Limiter {
	t.Helper()
	cfg.Key = b.key
	l, err := ratelimit.New(b.clients[i], cfg)
	require.NoError(t, err)
	return l
}

// redisNow is Redis's clock, the one the Limiter judges time by.
func redisNow(t *testing.T, rdb redis.UniversalClient) time.Time {
	t.Helper()
	now, err := rdb.Time(t.Context()).Result()
	require.NoError(t, err)
	return now
}

func requireInFlight(t *testing.T, l *ratelimit.Limiter, want int) {
	t.Helper()
	n, _, err := l.Stats(t.Context())
	require.NoError(t, err)
	require.Equal(t, want, n, "slots in flight")
}

// signalWaits makes l send each wait's reason on the returned channel,
// dropping reasons nobody is reading.
func signalWaits(l *ratelimit.Limiter) <-chan string {
	ch := make(chan string, 1)
	ratelimit.SetOnWait(l, func(reason string, _ time.Duration) {
		select {
		case ch <- reason:
		default:
		}
	})
	return ch
}

func TestAcquire_NeverMoreThanMaxInFlightAcrossProcesses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const (
		maxInFlight = 3
		goroutines  = 6 // per limiter
		perG        = 20
	)
	cfg := ratelimit.Config{MaxInFlight: maxInFlight, PollInterval: 2 * time.Millisecond}
	lims := []*ratelimit.Limiter{b.limiter(t, 0, cfg), b.limiter(t, 1, cfg)}

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var held, maxHeld, done atomic.Int64
	var wg sync.WaitGroup
	for _, l := range lims {
		for range goroutines {
			wg.Go(func() {
				for range perG {
					release, err := l.Acquire(ctx)
					if err != nil {
						t.Errorf("Acquire: %v", err)
						return
					}
					n := held.Add(1)
					for m := maxHeld.Load(); n > m && !maxHeld.CompareAndSwap(m, n); m = maxHeld.Load() {
					}
					if n > maxInFlight {
						t.Errorf("%d holders at once, want at most %d", n, maxInFlight)
					}
					// Redis's own count, read while holding a slot: a
					// round trip that lets other holders overlap ours.
					inFlight, _, err := l.Stats(ctx)
					if err != nil {
						t.Errorf("Stats: %v", err)
					} else if inFlight < 1 || inFlight > maxInFlight {
						t.Errorf("Stats in flight = %d while holding a slot, want 1..%d", inFlight, maxInFlight)
					}
					held.Add(-1)
					release()
					done.Add(1)
				}
			})
		}
	}
	wg.Wait()

	require.Equal(t, int64(len(lims)*goroutines*perG), done.Load(), "acquisitions completed")
	t.Logf("most holders seen at once: %d of %d", maxHeld.Load(), maxInFlight)
	requireInFlight(t, lims[0], 0)
}

func TestAcquire_ExpiredHolderFreesSlot(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const holdTTL = 300 * time.Millisecond
	cfg := ratelimit.Config{MaxInFlight: 1, HoldTTL: holdTTL, PollInterval: 5 * time.Millisecond}
	crashed := b.limiter(t, 0, cfg)
	survivor := b.limiter(t, 1, cfg)

	before := redisNow(t, b.clients[0])
	_, err := crashed.Acquire(t.Context()) // never released: its process "died"
	require.NoError(t, err)
	requireInFlight(t, survivor, 1)

	ctx, cancel := context.WithTimeout(t.Context(), signalTimeout)
	defer cancel()
	release, err := survivor.Acquire(ctx)
	require.NoError(t, err)
	after := redisNow(t, b.clients[1])
	release()

	// The dead holder's slot was only handed on once it had expired.
	require.False(t, after.Before(before.Add(holdTTL)),
		"slot handed on at %v, before the dead holder's expiry (taken after %v + HoldTTL %v)", after, before, holdTTL)
	requireInFlight(t, survivor, 0)
}

func TestAcquire_CancelWhileWaiting(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := ratelimit.Config{MaxInFlight: 1, PollInterval: 5 * time.Millisecond}
	holder := b.limiter(t, 0, cfg)
	waiter := b.limiter(t, 1, cfg)
	waits := signalWaits(waiter)

	releaseHeld, err := holder.Acquire(t.Context())
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type result struct {
		release func()
		err     error
	}
	res := make(chan result, 1)
	go func() {
		release, err := waiter.Acquire(ctx)
		res <- result{release, err}
	}()

	select {
	case reason := <-waits:
		require.Equal(t, ratelimit.WaitFull, reason)
	case <-time.After(signalTimeout):
		t.Fatal("Acquire never waited for the full semaphore")
	}
	cancel()

	select {
	case r := <-res:
		require.ErrorIs(t, r.err, context.Canceled)
		require.Nil(t, r.release)
	case <-time.After(signalTimeout):
		t.Fatal("Acquire did not return after its context was cancelled")
	}

	// No slot leaked: only the holder's, and once it is back the waiter's
	// limiter can take the only slot.
	requireInFlight(t, waiter, 1)
	releaseHeld()
	requireInFlight(t, waiter, 0)
	release, err := waiter.Acquire(t.Context())
	require.NoError(t, err)
	release()
}

func TestAcquire_ContextEndingAnywhereLeaksNoSlot(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := ratelimit.Config{MaxInFlight: 2, PollInterval: time.Millisecond}
	lims := []*ratelimit.Limiter{b.limiter(t, 0, cfg), b.limiter(t, 1, cfg)}

	// Contexts that end at random points: before Acquire, during its Redis
	// calls, while it waits, or not at all.
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for i := range 4 {
		l := lims[i%2]
		wg.Go(func() {
			for range 50 {
				ctx, cancel := context.WithTimeout(t.Context(), mrand.N(3*time.Millisecond))
				release, err := l.Acquire(ctx)
				cancel()
				switch {
				case err == nil:
					ok.Add(1)
					release()
				case errors.Is(err, context.DeadlineExceeded):
					failed.Add(1)
				default:
					t.Errorf("Acquire: %v", err)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("acquired %d, timed out %d", ok.Load(), failed.Load())
	requireInFlight(t, lims[0], 0)
}

func TestAcquire_ReleaseTwiceIsHarmless(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := ratelimit.Config{MaxInFlight: 1, PollInterval: 5 * time.Millisecond}
	first := b.limiter(t, 0, cfg)
	second := b.limiter(t, 1, cfg)

	release1, err := first.Acquire(t.Context())
	require.NoError(t, err)
	release1()
	release1()
	requireInFlight(t, first, 0)

	release2, err := second.Acquire(t.Context())
	require.NoError(t, err)
	release1() // a stale release must not free the new holder's slot
	requireInFlight(t, first, 1)

	// The slot is still taken: an Acquire can only wait, until its context ends.
	waits := signalWaits(first)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		release, err := first.Acquire(ctx)
		if err == nil {
			release()
		}
		errc <- err
	}()
	select {
	case reason := <-waits:
		require.Equal(t, ratelimit.WaitFull, reason)
	case <-time.After(signalTimeout):
		t.Fatal("Acquire never waited")
	}
	cancel()
	require.ErrorIs(t, <-errc, context.Canceled)

	release2()
	release2()
	requireInFlight(t, first, 0)
}

func TestRelease_FailureIsReportedAndSlotExpires(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const holdTTL = 200 * time.Millisecond
	var reported []error
	var mu sync.Mutex
	cfg := ratelimit.Config{MaxInFlight: 1, HoldTTL: holdTTL, PollInterval: 5 * time.Millisecond}
	cfg.OnReleaseError = func(err error) {
		mu.Lock()
		defer mu.Unlock()
		reported = append(reported, err)
	}
	cut := b.limiter(t, 1, cfg)
	other := b.limiter(t, 0, cfg)

	release, err := cut.Acquire(t.Context())
	require.NoError(t, err)
	require.NoError(t, b.clients[1].Close()) // Redis now unreachable for cut
	release()
	release()

	mu.Lock()
	require.Len(t, reported, 1, "one report for one failed release")
	require.ErrorContains(t, reported[0], "ratelimit: release slot on "+b.key)
	mu.Unlock()

	// The slot is still taken, and frees itself after HoldTTL.
	requireInFlight(t, other, 1)
	ctx, cancel := context.WithTimeout(t.Context(), signalTimeout)
	defer cancel()
	release, err = other.Acquire(ctx)
	require.NoError(t, err)
	release()
}

func TestBackoff_DelaysAcquireInOtherProcess(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := ratelimit.Config{MaxInFlight: 5, PollInterval: 5 * time.Millisecond}
	got429 := b.limiter(t, 0, cfg)
	other := b.limiter(t, 1, cfg)

	before := redisNow(t, b.clients[0])
	require.NoError(t, got429.Backoff(t.Context(), 400*time.Millisecond))
	_, until, err := other.Stats(t.Context())
	require.NoError(t, err)
	require.False(t, until.Before(before.Truncate(time.Millisecond).Add(400*time.Millisecond)), "back-off until %v", until)

	ctx, cancel := context.WithTimeout(t.Context(), signalTimeout)
	defer cancel()
	release, err := other.Acquire(ctx)
	require.NoError(t, err)
	after := redisNow(t, b.clients[1])
	release()
	require.False(t, after.Before(until), "Acquire returned at %v, before the back-off deadline %v", after, until)

	_, until, err = other.Stats(t.Context())
	require.NoError(t, err)
	require.True(t, until.IsZero(), "back-off still reported after it ended: %v", until)
}

func TestBackoff_KeepsLaterDeadlineAndCaps(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const maxBackoff = 20 * time.Second
	l := b.limiter(t, 0, ratelimit.Config{MaxInFlight: 1, MaxBackoff: maxBackoff})
	ctx := t.Context()
	backoffUntil := func() time.Time {
		t.Helper()
		_, until, err := l.Stats(ctx)
		require.NoError(t, err)
		return until
	}

	require.NoError(t, l.Backoff(ctx, 10*time.Second))
	first := backoffUntil()
	require.False(t, first.IsZero())

	for _, d := range []time.Duration{time.Second, 0, -time.Minute} {
		require.NoError(t, l.Backoff(ctx, d))
		require.Equal(t, first, backoffUntil(), "after Backoff(%v)", d)
	}

	before := redisNow(t, b.clients[0])
	require.NoError(t, l.Backoff(ctx, time.Hour))
	after := redisNow(t, b.clients[0])
	capped := backoffUntil()
	require.True(t, capped.After(first), "a later deadline must replace an earlier one")
	require.False(t, capped.Before(before.Truncate(time.Millisecond).Add(maxBackoff)), "capped deadline %v", capped)
	require.False(t, capped.After(after.Add(maxBackoff)), "deadline %v beyond MaxBackoff %v", capped, maxBackoff)

	// While the back-off is in force no slot is handed out.
	waits := signalWaits(l)
	actx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	release, err := l.Acquire(actx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Nil(t, release)
	require.Equal(t, ratelimit.WaitBackoff, <-waits)
	requireInFlight(t, l, 0)
}

func TestAcquire_PerSecondStaysWithinGCRABound(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc      string
		perSecond float64
		n         int     // acquisitions
		slack     float64 // extra acquisitions tolerated
	}{
		{desc: "whole rate", perSecond: 20, n: 50, slack: 1},
		{desc: "fractional rate", perSecond: 12.5, n: 40, slack: 1},
		// One request per two seconds: the second may only come after 2s.
		{desc: "below one per second", perSecond: 0.5, n: 2, slack: 0.05},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			cfg := ratelimit.Config{MaxInFlight: 50, PerSecond: tc.perSecond, PollInterval: 5 * time.Millisecond}
			lims := []*ratelimit.Limiter{b.limiter(t, 0, cfg), b.limiter(t, 1, cfg)}
			var rateWaits atomic.Int64
			for _, l := range lims {
				ratelimit.SetOnWait(l, func(reason string, _ time.Duration) {
					if reason == ratelimit.WaitRate {
						rateWaits.Add(1)
					}
				})
			}

			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			before := redisNow(t, b.clients[0])
			var left, done atomic.Int64
			left.Store(int64(tc.n))
			var wg sync.WaitGroup
			for i := range 4 {
				l := lims[i%2]
				wg.Go(func() {
					for left.Add(-1) >= 0 {
						release, err := l.Acquire(ctx)
						if err != nil {
							t.Errorf("Acquire: %v", err)
							return
						}
						done.Add(1)
						release()
					}
				})
			}
			wg.Wait()
			after := redisNow(t, b.clients[0])

			require.Equal(t, int64(tc.n), done.Load())
			limit := ratelimit.RateLimitFor(tc.perSecond)
			elapsed := after.Sub(before).Seconds()
			bound := float64(limit.Burst) + tc.perSecond*elapsed + tc.slack
			t.Logf("%d acquisitions in %.3fs (Redis time), GCRA bound %.2f, %d rate waits", tc.n, elapsed, bound, rateWaits.Load())
			require.LessOrEqual(t, float64(tc.n), bound,
				"%d acquisitions in %.3fs exceed burst %d + %v/s", tc.n, elapsed, limit.Burst, tc.perSecond)
			requireInFlight(t, lims[0], 0)
		})
	}
}

func TestLimiter_RedisErrorsAreReturned(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	l, err := ratelimit.New(rdb, ratelimit.Config{Key: "unreachable:twilio:AC1", MaxInFlight: 1, PerSecond: 1})
	require.NoError(t, err)

	release, err := l.Acquire(t.Context())
	require.Error(t, err)
	require.Nil(t, release)
	require.ErrorContains(t, err, "ratelimit: acquire on unreachable:twilio:AC1")
	require.NotErrorIs(t, err, context.Canceled)

	_, _, err = l.Stats(t.Context())
	require.ErrorContains(t, err, "ratelimit: read stats")
	require.ErrorContains(t, l.Backoff(t.Context(), time.Second), "ratelimit: record back-off")
}

func TestAcquire_ContextAlreadyDone(t *testing.T) {
	t.Parallel()
	b := setup(t)
	l := b.limiter(t, 0, ratelimit.Config{MaxInFlight: 1})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	release, err := l.Acquire(ctx)
	require.ErrorIs(t, err, context.Canceled)
	require.Nil(t, release)
	requireInFlight(t, l, 0)
}

func TestNew_Config(t *testing.T) {
	t.Parallel()
	single := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	cluster := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:6379"}})
	t.Cleanup(func() {
		_ = single.Close()
		_ = cluster.Close()
	})
	valid := ratelimit.Config{Key: "ns:twilio:AC1", MaxInFlight: 1}
	with := func(f func(*ratelimit.Config)) ratelimit.Config {
		c := valid
		f(&c)
		return c
	}

	for _, tc := range []struct {
		desc    string
		rdb     redis.UniversalClient
		cfg     ratelimit.Config
		wantErr string // "" for a valid config
	}{
		{desc: "minimal", cfg: valid},
		{desc: "every field", cfg: ratelimit.Config{Key: "k", MaxInFlight: 50, PerSecond: 0.5, HoldTTL: time.Minute, PollInterval: time.Millisecond, MaxBackoff: time.Second}},
		{desc: "nil client", rdb: redis.UniversalClient(nil), cfg: valid, wantErr: "Redis client is nil"},
		{desc: "empty key", cfg: with(func(c *ratelimit.Config) { c.Key = "" }), wantErr: "Config.Key must not be empty"},
		{desc: "cluster without hash tag", rdb: cluster, cfg: valid, wantErr: "Config.Key"},
		{desc: "cluster with empty hash tag", rdb: cluster, cfg: with(func(c *ratelimit.Config) { c.Key = "ns:{}:AC1" }), wantErr: "Config.Key"},
		{desc: "cluster with hash tag", rdb: cluster, cfg: with(func(c *ratelimit.Config) { c.Key = "ns:twilio:{AC1}" })},
		{desc: "zero MaxInFlight", cfg: with(func(c *ratelimit.Config) { c.MaxInFlight = 0 }), wantErr: "Config.MaxInFlight"},
		{desc: "negative MaxInFlight", cfg: with(func(c *ratelimit.Config) { c.MaxInFlight = -3 }), wantErr: "Config.MaxInFlight"},
		{desc: "negative PerSecond", cfg: with(func(c *ratelimit.Config) { c.PerSecond = -1 }), wantErr: "Config.PerSecond"},
		{desc: "NaN PerSecond", cfg: with(func(c *ratelimit.Config) { c.PerSecond = math.NaN() }), wantErr: "Config.PerSecond"},
		{desc: "infinite PerSecond", cfg: with(func(c *ratelimit.Config) { c.PerSecond = math.Inf(1) }), wantErr: "Config.PerSecond"},
		{desc: "tiny PerSecond", cfg: with(func(c *ratelimit.Config) { c.PerSecond = 1e-9 }), wantErr: "Config.PerSecond"},
		{desc: "huge PerSecond", cfg: with(func(c *ratelimit.Config) { c.PerSecond = 1e7 }), wantErr: "Config.PerSecond"},
		{desc: "negative HoldTTL", cfg: with(func(c *ratelimit.Config) { c.HoldTTL = -time.Second }), wantErr: "Config.HoldTTL"},
		{desc: "sub-millisecond HoldTTL", cfg: with(func(c *ratelimit.Config) { c.HoldTTL = time.Microsecond }), wantErr: "Config.HoldTTL"},
		{desc: "negative PollInterval", cfg: with(func(c *ratelimit.Config) { c.PollInterval = -time.Second }), wantErr: "Config.PollInterval"},
		{desc: "sub-millisecond PollInterval", cfg: with(func(c *ratelimit.Config) { c.PollInterval = time.Microsecond }), wantErr: "Config.PollInterval"},
		{desc: "negative MaxBackoff", cfg: with(func(c *ratelimit.Config) { c.MaxBackoff = -time.Second }), wantErr: "Config.MaxBackoff"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			rdb := tc.rdb
			if rdb == nil && tc.desc != "nil client" {
				rdb = single
			}
			l, err := ratelimit.New(rdb, tc.cfg)
			if tc.wantErr == "" {
				require.NoError(t, err)
				require.NotNil(t, l)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
			require.Nil(t, l)
		})
	}
}

func TestNew_ReportsEveryBadField(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { _ = rdb.Close() })
	_, err := ratelimit.New(rdb, ratelimit.Config{MaxInFlight: 0, PerSecond: -1, HoldTTL: -1})
	for _, field := range []string{"Config.Key", "Config.MaxInFlight", "Config.PerSecond", "Config.HoldTTL"} {
		require.ErrorContains(t, err, field)
	}
}

func TestNew_Defaults(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { _ = rdb.Close() })
	l, err := ratelimit.New(rdb, ratelimit.Config{Key: "k", MaxInFlight: 1})
	require.NoError(t, err)
	cfg := ratelimit.EffectiveConfig(l)
	require.Equal(t, ratelimit.DefaultHoldTTL, cfg.HoldTTL)
	require.Equal(t, ratelimit.DefaultPollInterval, cfg.PollInterval)
	require.Equal(t, ratelimit.DefaultMaxBackoff, cfg.MaxBackoff)
	require.Zero(t, cfg.PerSecond)
}

func TestRateLimitFor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		perSecond float64
		rate      int
		burst     int
		period    time.Duration
	}{
		{perSecond: 1, rate: 1, burst: 1, period: time.Second},
		{perSecond: 20, rate: 20, burst: 20, period: time.Second},
		{perSecond: 0.5, rate: 1, burst: 1, period: 2 * time.Second},
		{perSecond: 2.5, rate: 1, burst: 2, period: 400 * time.Millisecond},
		{perSecond: 12.5, rate: 1, burst: 12, period: 80 * time.Millisecond},
		{perSecond: 0.001, rate: 1, burst: 1, period: 1000 * time.Second},
		{perSecond: 1e6, rate: 1e6, burst: 1e6, period: time.Second},
	} {
		got := ratelimit.RateLimitFor(tc.perSecond)
		require.Equal(t, tc.rate, got.Rate, "Rate for %v/s", tc.perSecond)
		require.Equal(t, tc.burst, got.Burst, "Burst for %v/s", tc.perSecond)
		require.Equal(t, tc.period, got.Period, "Period for %v/s", tc.perSecond)
		// GCRA's emission interval is Period/Rate = 1/PerSecond.
		require.InEpsilon(t, 1/tc.perSecond, got.Period.Seconds()/float64(got.Rate), 1e-9)
	}
}
