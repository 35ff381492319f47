package testenv

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A test's namespace leaves nothing behind: every kind of key
// internal/rediskeys builds, redis_rate's and Asynq's included, is deleted
// at cleanup, and the namespace's queues leave Asynq's shared set.
func TestNewRedisCleanupDeletesEveryKeyOfTheNamespace(t *testing.T) {
	t.Parallel()
	var r *Redis
	t.Run("use", func(t *testing.T) {
		r = NewRedis(t)
		ctx := t.Context()
		k := r.Keys
		for _, key := range []string{
			k.TwilioLimiter("AC1") + ":slots",
			"rate:" + k.TwilioLimiter("AC1") + ":rps", // as redis_rate writes it
			k.ReconcileLock(), k.AuditAnchorLock(), k.ListingSlot(),
			"asynq:{" + k.MediaQueue() + "}:pending", "asynq:{" + k.ListQueue() + "}:t:x", // as Asynq writes them
		} {
			require.NoError(t, r.Client.Set(ctx, key, "1", 0).Err())
		}
		require.NoError(t, r.Client.SAdd(ctx, "asynq:queues", k.Queues()).Err())
	})

	c := NewRedis(t).Client // another namespace's client, to look
	ctx := t.Context()
	for _, pattern := range r.Keys.Patterns() {
		left, err := c.Keys(ctx, pattern).Result()
		require.NoError(t, err)
		require.Empty(t, left, "left behind by %s", pattern)
	}
	for _, q := range r.Keys.Queues() {
		member, err := c.SIsMember(ctx, "asynq:queues", q).Result()
		require.NoError(t, err)
		require.False(t, member, "queue %s still in asynq:queues", q)
	}
}
