package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/internal/ratelimit"
	"github.com/mediasync/mediasync/internal/sleep"
)

// commandCounter is a go-redis hook counting the round trips a client
// makes. Not counted: the handshake of each new connection (HELLO,
// CLIENT SETINFO), and an EVALSHA answered NOSCRIPT, after which go-redis
// sends the script itself, once per script and Redis server.
type commandCounter struct {
	n      atomic.Int64
	mu     sync.Mutex
	byName map[string]int
}

func (c *commandCounter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprint(c.byName)
}

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		c.count(cmd, err)
		return err
	}
}

func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			c.count(cmd, cmd.Err())
		}
		return err
	}
}

func (c *commandCounter) count(cmd redis.Cmder, err error) {
	switch {
	case cmd.Name() == "hello" || cmd.Name() == "client":
	case err != nil && redis.HasErrorPrefix(err, "NOSCRIPT"):
	default:
		c.n.Add(1)
		c.mu.Lock()
		c.byName[cmd.Name()]++
		c.mu.Unlock()
	}
}

// counted returns a new client to the test's Redis (a process of its
// own) and the counter of its round trips.
func (b *testBundle) counted(t *testing.T) (*redis.Client, *commandCounter) {
	t.Helper()
	rdb := redis.NewClient(b.clients[0].Options())
	t.Cleanup(func() { _ = rdb.Close() })
	c := &commandCounter{byName: map[string]int{}}
	rdb.AddHook(c)
	return rdb, c
}

func (b *testBundle) limiterOn(t *testing.T, rdb redis.UniversalClient, cfg ratelimit.Config) *ratelimit.Limiter {
	t.Helper()
	cfg.Key = b.key
	l, err := ratelimit.New(rdb, cfg)
	require.NoError(t, err)
	return l
}

// maxCounter tracks how many requests are in flight at once, and the most
// seen.
type maxCounter struct{ cur, max atomic.Int64 }

func (m *maxCounter) inc() int64 {
	n := m.cur.Add(1)
	for old := m.max.Load(); n > old && !m.max.CompareAndSwap(old, n); old = m.max.Load() {
	}
	return n
}

func (m *maxCounter) dec() { m.cur.Add(-1) }

// request stands in for one Twilio request: it holds a slot for about
// d, the request's duration (a workload, not a wait for anything).
func request(ctx context.Context, t *testing.T, l *ratelimit.Limiter, inFlight *maxCounter, maxInFlight int, d time.Duration) bool {
	release, err := l.Acquire(ctx)
	if err != nil {
		t.Errorf("Acquire: %v", err)
		return false
	}
	if n := inFlight.inc(); n > int64(maxInFlight) {
		t.Errorf("%d requests in flight at once, want at most %d", n, maxInFlight)
	}
	_ = sleep.For(ctx, d)
	inFlight.dec()
	release()
	return true
}

// The limiter's Redis cost: at most one round trip per request, amortised,
// whether the callers of a process outnumber its share of slots (slots go
// from one request to the next) or not (a finished request's slot waits,
// idle, for the process's next request).
func TestAcquire_AtMostOneRoundTripPerRequest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc        string
		maxInFlight int
		goroutines  int
		perG        int
	}{
		{desc: "more callers than slots", maxInFlight: 4, goroutines: 16, perG: 25},
		{desc: "fewer callers than slots", maxInFlight: 16, goroutines: 4, perG: 100},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			rdb, count := b.counted(t)
			l := b.limiterOn(t, rdb, ratelimit.Config{MaxInFlight: tc.maxInFlight, PollInterval: 5 * time.Millisecond})
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()

			var inFlight maxCounter
			var done atomic.Int64
			var wg sync.WaitGroup
			for range tc.goroutines {
				wg.Go(func() {
					for range tc.perG {
						if !request(ctx, t, l, &inFlight, tc.maxInFlight, time.Millisecond) {
							return
						}
						done.Add(1)
					}
				})
			}
			wg.Wait()

			requests := int64(tc.goroutines * tc.perG)
			require.Equal(t, requests, done.Load())
			trips := count.n.Load()
			t.Logf("%d Redis round trips for %d requests: %.3f per request (%v); at most %d in flight of %d",
				trips, requests, float64(trips)/float64(requests), count, inFlight.max.Load(), tc.maxInFlight)
			require.LessOrEqual(t, trips, requests, "Redis round trips for %d requests", requests)
			requireInFlight(t, b.limiter(t, 1, ratelimit.Config{MaxInFlight: tc.maxInFlight}), 0)
		})
	}
}

// A rate bound spends a request in Redis for each request, but that round
// trip also takes or confirms the slot: two at most per request even with
// nothing else in flight to pass slots on to (it was three), about one
// with.
func TestAcquire_RoundTripsWithARateBound(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc       string
		goroutines int
		perG       int
		perRequest float64 // most round trips per request
	}{
		{desc: "one caller", goroutines: 1, perG: 100, perRequest: 2},
		{desc: "concurrent callers", goroutines: 4, perG: 100, perRequest: 1.2},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			rdb, count := b.counted(t)
			const maxInFlight = 16
			l := b.limiterOn(t, rdb, ratelimit.Config{MaxInFlight: maxInFlight, PerSecond: 1e5, PollInterval: 5 * time.Millisecond})
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()

			var inFlight maxCounter
			var wg sync.WaitGroup
			for range tc.goroutines {
				wg.Go(func() {
					for range tc.perG {
						if !request(ctx, t, l, &inFlight, maxInFlight, time.Millisecond) {
							return
						}
					}
				})
			}
			wg.Wait()

			requests := tc.goroutines * tc.perG
			trips := count.n.Load()
			t.Logf("%d Redis round trips for %d requests: %.3f per request (%v)", trips, requests, float64(trips)/float64(requests), count)
			require.LessOrEqual(t, float64(trips), tc.perRequest*float64(requests))
			requireInFlight(t, l, 0)
		})
	}
}

// Several processes on one Redis, each with more callers than slots:
// never more than MaxInFlight requests in flight across them, every
// process gets its turn, and Redis still sees at most one round trip per
// request.
func TestAcquire_FleetStaysWithinMaxInFlight(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const (
		maxInFlight = 5
		processes   = 3
		goroutines  = 8 // per process
		perG        = 30
	)
	cfg := ratelimit.Config{MaxInFlight: maxInFlight, PollInterval: 5 * time.Millisecond, ReuseWindow: 50 * time.Millisecond}
	var lims []*ratelimit.Limiter
	var counts []*commandCounter
	for range processes {
		rdb, c := b.counted(t)
		lims = append(lims, b.limiterOn(t, rdb, cfg))
		counts = append(counts, c)
	}

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var inFlight maxCounter
	var done [processes]atomic.Int64
	var wg sync.WaitGroup
	for i, l := range lims {
		for range goroutines {
			wg.Go(func() {
				for range perG {
					if !request(ctx, t, l, &inFlight, maxInFlight, time.Millisecond) {
						return
					}
					done[i].Add(1)
				}
			})
		}
	}
	wg.Wait()

	var trips int64
	for i := range lims {
		require.Equal(t, int64(goroutines*perG), done[i].Load(), "requests of process %d", i)
		trips += counts[i].n.Load()
	}
	requests := int64(processes * goroutines * perG)
	t.Logf("most in flight at once: %d of %d; %d Redis round trips for %d requests: %.3f per request",
		inFlight.max.Load(), maxInFlight, trips, requests, float64(trips)/float64(requests))
	require.LessOrEqual(t, inFlight.max.Load(), int64(maxInFlight))
	require.LessOrEqual(t, trips, requests)
	requireInFlight(t, lims[0], 0)
}

// A process whose callers keep every slot busy still gives each slot back
// to the fleet within its ReuseWindow, so another process's caller gets
// one while the busy process goes on.
func TestAcquire_BusyProcessDoesNotStarveAnother(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const maxInFlight = 2
	cfg := ratelimit.Config{MaxInFlight: maxInFlight, PollInterval: 5 * time.Millisecond, ReuseWindow: 50 * time.Millisecond}
	busy := b.limiter(t, 0, cfg)
	other := b.limiter(t, 1, cfg)

	ctx, cancel := context.WithTimeout(t.Context(), signalTimeout)
	defer cancel()
	stop := make(chan struct{})
	var busyRequests atomic.Int64
	var inFlight maxCounter
	var wg sync.WaitGroup
	for range 4 * maxInFlight {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if !request(ctx, t, busy, &inFlight, maxInFlight, time.Millisecond) {
					return
				}
				busyRequests.Add(1)
			}
		})
	}
	// Once the busy process holds every slot, the other asks for one.
	require.Eventually(t, func() bool { return busyRequests.Load() > 50 }, signalTimeout, time.Millisecond)
	release, err := other.Acquire(ctx)
	require.NoError(t, err, "the other process never got a slot")
	n := inFlight.inc()
	require.LessOrEqual(t, n, int64(maxInFlight))
	inFlight.dec()
	release()
	close(stop)
	wg.Wait()
	t.Logf("the busy process made %d requests meanwhile", busyRequests.Load())
	requireInFlight(t, other, 0)
}

// A slot a process keeps idle, while another of its requests is still in
// flight, goes back to the fleet within a couple of PollIntervals.
func TestAcquire_IdleSlotGoesBack(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := ratelimit.Config{MaxInFlight: 2, PollInterval: 5 * time.Millisecond}
	owner := b.limiter(t, 0, cfg)
	other := b.limiter(t, 1, cfg)

	long, err := owner.Acquire(t.Context()) // in flight all along
	require.NoError(t, err)
	short, err := owner.Acquire(t.Context())
	require.NoError(t, err)
	short() // kept for owner's next request, for a while

	ctx, cancel := context.WithTimeout(t.Context(), signalTimeout)
	defer cancel()
	release, err := other.Acquire(ctx)
	require.NoError(t, err, "the idle slot never came back")
	requireInFlight(t, other, 2)
	release()
	long()
	requireInFlight(t, other, 0)
}

// A worker that dies holding slots, some of them idle (kept for its next
// requests), shrinks the fleet's budget only until they expire: HoldTTL +
// ReuseWindow after it took them.
func TestAcquire_DeadWorkersSlotsExpire(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const (
		maxInFlight = 3
		holdTTL     = 300 * time.Millisecond
		reuse       = 50 * time.Millisecond
	)
	// A long PollInterval: the dead worker's idle slots stay idle until it dies.
	dying, err := ratelimit.New(b.clients[1], ratelimit.Config{Key: b.key, MaxInFlight: maxInFlight,
		HoldTTL: holdTTL, ReuseWindow: reuse, PollInterval: time.Minute})
	require.NoError(t, err)
	survivor := b.limiter(t, 0, ratelimit.Config{MaxInFlight: maxInFlight, HoldTTL: holdTTL, ReuseWindow: reuse, PollInterval: 5 * time.Millisecond})

	before := redisNow(t, b.clients[0])
	var releases []func()
	for range maxInFlight {
		release, err := dying.Acquire(t.Context())
		require.NoError(t, err)
		releases = append(releases, release)
	}
	releases[1]()
	releases[2]() // both kept idle: a request of the process is still in flight
	requireInFlight(t, survivor, maxInFlight)
	require.NoError(t, b.clients[1].Close()) // the worker "dies": it never gives anything back

	ctx, cancel := context.WithTimeout(t.Context(), signalTimeout)
	defer cancel()
	var got []func()
	for range maxInFlight {
		release, err := survivor.Acquire(ctx)
		require.NoError(t, err)
		got = append(got, release)
	}
	after := redisNow(t, b.clients[0])
	require.False(t, after.Before(before.Add(holdTTL+reuse)),
		"the dead worker's slots were handed on at %v, before they expired (taken after %v, HoldTTL %v + ReuseWindow %v)", after, before, holdTTL, reuse)
	for _, release := range got {
		release()
	}
	requireInFlight(t, survivor, 0)
}

// A back-off recorded by one process stops another's requests within a
// few PollIntervals, even while that one passes slots between its own
// callers without asking Redis.
func TestBackoff_StopsABusyProcess(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const (
		maxInFlight = 3
		backoff     = 1200 * time.Millisecond
		// Time for the busy process to hear of it: a few PollIntervals, and
		// a generous margin for a loaded machine.
		grace = 300 * time.Millisecond
	)
	cfg := ratelimit.Config{MaxInFlight: maxInFlight, PollInterval: 5 * time.Millisecond}
	busy := b.limiter(t, 0, cfg)
	got429 := b.limiter(t, 1, cfg)

	ctx, cancel := context.WithTimeout(t.Context(), signalTimeout)
	defer cancel()
	var mu sync.Mutex
	var starts []time.Time
	var count atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 * maxInFlight {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				release, err := busy.Acquire(ctx)
				if err != nil {
					if !errors.Is(err, context.Canceled) {
						t.Errorf("Acquire: %v", err)
					}
					return
				}
				now := time.Now()
				mu.Lock()
				starts = append(starts, now)
				mu.Unlock()
				count.Add(1)
				_ = sleep.For(ctx, time.Millisecond)
				release()
			}
		})
	}
	require.Eventually(t, func() bool { return count.Load() > 50 }, signalTimeout, time.Millisecond)
	from := time.Now()
	require.NoError(t, got429.Backoff(ctx, backoff))
	quietFrom, quietTo := from.Add(grace), from.Add(backoff-grace)
	// Requests start again once the back-off is over.
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return starts[len(starts)-1].After(from.Add(backoff))
	}, signalTimeout, time.Millisecond)
	close(stop)
	wg.Wait()

	var during int
	for _, s := range starts {
		if s.After(quietFrom) && s.Before(quietTo) {
			during++
		}
	}
	require.Zero(t, during, "requests started between %v and %v into a back-off of %v", grace, backoff-grace, backoff)
	requireInFlight(t, busy, 0)
}

// Refused lowers the ceiling below what a busy process holds: the process
// gives slots back until the fleet is under it, though its callers could
// pass them on among themselves.
func TestRefused_BusyProcessShedsSlots(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const maxInFlight = 4
	cfg := ratelimit.Config{MaxInFlight: maxInFlight, PollInterval: 5 * time.Millisecond, Recovery: time.Hour}
	busy := b.limiter(t, 0, cfg)
	refused := b.limiter(t, 1, cfg)

	ctx, cancel := context.WithTimeout(t.Context(), signalTimeout)
	defer cancel()
	stop := make(chan struct{})
	var inFlight maxCounter
	var count atomic.Int64
	var wg sync.WaitGroup
	for range 2 * maxInFlight {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if !request(ctx, t, busy, &inFlight, maxInFlight, time.Millisecond) {
					return
				}
				count.Add(1)
			}
		})
	}
	require.Eventually(t, func() bool { return inFlight.max.Load() == maxInFlight && count.Load() > 50 }, signalTimeout, time.Millisecond)
	require.NoError(t, refused.Refused(ctx))
	limit, err := b.clients[1].HGet(ctx, b.key+":ceiling", "limit").Int()
	require.NoError(t, err)
	require.Less(t, limit, maxInFlight)

	// Within a while, in flight stays under the ceiling for good.
	require.Eventually(t, func() bool {
		inFlight.max.Store(0)
		if err := sleep.For(ctx, 100*time.Millisecond); err != nil {
			return false
		}
		return inFlight.max.Load() <= int64(limit)
	}, signalTimeout, time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("ceiling %d of %d; at most %d in flight in the last 100ms", limit, maxInFlight, inFlight.max.Load())
	requireInFlight(t, busy, 0)
}

func TestNew_ReuseWindow(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { _ = rdb.Close() })
	for _, tc := range []struct {
		desc    string
		cfg     ratelimit.Config
		want    time.Duration
		wantErr string
	}{
		{desc: "default", cfg: ratelimit.Config{}, want: ratelimit.DefaultReuseWindow},
		{desc: "a quarter of a short HoldTTL", cfg: ratelimit.Config{HoldTTL: 300 * time.Millisecond}, want: 75 * time.Millisecond},
		{desc: "given", cfg: ratelimit.Config{ReuseWindow: 5 * time.Second}, want: 5 * time.Second},
		{desc: "negative", cfg: ratelimit.Config{ReuseWindow: -time.Second}, wantErr: "Config.ReuseWindow"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			cfg := tc.cfg
			cfg.Key, cfg.MaxInFlight = "k", 1
			l, err := ratelimit.New(rdb, cfg)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, ratelimit.EffectiveConfig(l).ReuseWindow)
		})
	}
}
