package sleep_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/internal/sleep"
)

func TestFor(t *testing.T) {
	t.Parallel()
	ctx := t.Context()

	start := time.Now()
	require.NoError(t, sleep.For(ctx, 20*time.Millisecond))
	require.GreaterOrEqual(t, time.Since(start), 20*time.Millisecond)

	require.NoError(t, sleep.For(ctx, 0), "a zero wait on a live context is no error")

	done, cancel := context.WithCancel(ctx)
	cancel()
	start = time.Now()
	require.ErrorIs(t, sleep.For(done, time.Hour), context.Canceled)
	require.Less(t, time.Since(start), time.Minute, "a cancelled context ends the wait at once")
	require.ErrorIs(t, sleep.For(done, 0), context.Canceled)
}
