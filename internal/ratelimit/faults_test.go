package ratelimit_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/internal/ratelimit"
)

// errInjected is the error a scriptFault makes a script's caller see.
var errInjected = errors.New("injected: i/o timeout")

// scriptFault is a go-redis hook that hands every run of one of the
// Limiter's scripts to fn, which decides what Redis and the caller see:
// a reply lost after the script ran, a retry, a delay.
type scriptFault struct {
	script string
	fn     func(ctx context.Context, cmd redis.Cmder, next redis.ProcessHook) error
}

func (f *scriptFault) DialHook(next redis.DialHook) redis.DialHook { return next }

func (f *scriptFault) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if ratelimit.ScriptOf(cmd) != f.script {
			return next(ctx, cmd)
		}
		return f.fn(ctx, cmd, next)
	}
}

func (f *scriptFault) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// faulty returns a new client to the test's Redis whose runs of script go
// through fn. The scripts are loaded first, so fn sees each run once.
func (b *testBundle) faulty(t *testing.T, script string, fn func(ctx context.Context, cmd redis.Cmder, next redis.ProcessHook) error) *redis.Client {
	t.Helper()
	require.NoError(t, ratelimit.LoadScripts(t.Context(), b.clients[0]))
	rdb := redis.NewClient(b.clients[0].Options())
	t.Cleanup(func() { _ = rdb.Close() })
	rdb.AddHook(&scriptFault{script: script, fn: fn})
	return rdb
}

type acquired struct {
	release func()
	err     error
}

func acquireAsync(ctx context.Context, l *ratelimit.Limiter) <-chan acquired {
	res := make(chan acquired, 1)
	go func() {
		release, err := l.Acquire(ctx)
		res <- acquired{release, err}
	}()
	return res
}

func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(signalTimeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// A slot passed on to the waiter that is polling Redis, while that poll
// fails, is the waiter's: Acquire returns it rather than the poll's error,
// and no slot is left behind in Redis.
func TestAcquire_SlotPassedOnWhilePollFailsIsKept(t *testing.T) {
	t.Parallel()
	b := setup(t)
	inTake, proceed := make(chan struct{}), make(chan struct{})
	var takes atomic.Int64
	rdb := b.faulty(t, "take", func(ctx context.Context, cmd redis.Cmder, next redis.ProcessHook) error {
		if takes.Add(1) != 2 {
			return next(ctx, cmd)
		}
		close(inTake)
		<-proceed
		return errInjected // Redis read timeout: the script never ran
	})
	l := b.limiterOn(t, rdb, ratelimit.Config{MaxInFlight: 2})

	first, err := l.Acquire(t.Context())
	require.NoError(t, err)
	res := acquireAsync(t.Context(), l)
	receive(t, inTake, "the second Acquire's poll")
	first() // passed on to the waiter, whose poll is under way
	close(proceed)

	r := receive(t, res, "the second Acquire")
	require.NoError(t, r.err, "the slot passed on was dropped")
	requireInFlight(t, l, 1)
	r.release()
	requireInFlight(t, l, 0)
}
