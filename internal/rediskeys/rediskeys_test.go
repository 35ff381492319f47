package rediskeys_test

import (
	"path"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/internal/rediskeys"
)

// matches reports whether key matches one of patterns. Redis's glob and
// path.Match agree on the patterns used here (*, and literal braces).
func matches(t *testing.T, patterns []string, key string) bool {
	t.Helper()
	for _, p := range patterns {
		ok, err := path.Match(p, key)
		require.NoError(t, err)
		if ok {
			return true
		}
	}
	return false
}

func TestEveryKeyIsUnderItsNamespaceAndNoOther(t *testing.T) {
	t.Parallel()
	n, other := rediskeys.Namespace("prod"), rediskeys.Namespace("prod-eu")
	const sid = "AC0123456789abcdef0123456789abcdef"
	keys := func(n rediskeys.Namespace) map[string]string {
		return map[string]string{
			"limiter slots":   n.TwilioLimiter(sid) + ":slots",
			"limiter rate":    "rate:" + n.TwilioLimiter(sid) + ":rps", // as redis_rate writes it
			"reconcile lock":  n.ReconcileLock(),
			"audit lock":      n.AuditAnchorLock(),
			"listing slot":    n.ListingSlot(),
			"media queue key": "asynq:{" + n.MediaQueue() + "}:pending", // as asynq writes them
			"list queue key":  "asynq:{" + n.ListQueue() + "}:t:some-task",
		}
	}
	for desc, key := range keys(n) {
		require.True(t, matches(t, n.Patterns(), key), "%s %q is not matched by %v", desc, key, n.Patterns())
		require.False(t, matches(t, other.Patterns(), key), "%s %q is matched by another namespace's %v", desc, key, other.Patterns())
	}
	for desc, key := range keys(other) {
		require.False(t, matches(t, n.Patterns(), key), "another namespace's %s %q is matched by %v", desc, key, n.Patterns())
	}
	require.False(t, matches(t, n.Patterns(), "asynq:queues"), "Asynq's shared set is not the namespace's")
}

// The default namespace's keys are those of earlier releases, so workers
// of two versions share them during a rolling upgrade.
func TestDefaultNamespaceKeysAreUnchanged(t *testing.T) {
	t.Parallel()
	n := rediskeys.Namespace("mediasync")
	require.Equal(t, "mediasync:{mediasync.list}:listing-slot", n.ListingSlot())
	require.Equal(t, "mediasync:reconcile", n.ReconcileLock())
	require.Equal(t, "mediasync:audit-anchor", n.AuditAnchorLock())
	require.Equal(t, "mediasync:twilio:AC1", n.TwilioLimiter("AC1"))
	require.Equal(t, []string{"mediasync", "mediasync.list"}, n.Queues())
}
