package testenv

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
)

// RedisURL is the Redis server tests use; TEST_REDIS_URL points elsewhere.
func RedisURL() string {
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// Redis is a namespace of the test's own on the shared Redis server.
// Asynq's keys embed the queue name and mediasync's own keys start with the
// namespace, so tests using different namespaces never see each other.
type Redis struct {
	URL       string
	Namespace string
	Client    *redis.Client
}

// NewRedis gives t a fresh namespace; its keys are deleted at cleanup.
func NewRedis(t testing.TB) *Redis {
	t.Helper()
	opt, err := redis.ParseURL(RedisURL())
	if err != nil {
		t.Fatalf("testenv: TEST_REDIS_URL: %v", err)
	}
	c := redis.NewClient(opt)
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("testenv: Redis at %s: %v (is Redis running?)", opt.Addr, err)
	}
	ns := "mst" + randomHex(5)
	t.Cleanup(func() {
		ctx := context.WithoutCancel(context.Background())
		// asynq keys look like asynq:{<queue>}:..., ours like <ns>:...
		for _, pattern := range []string{"asynq:{" + ns + "*", ns + ":*"} {
			iter := c.Scan(ctx, 0, pattern, 500).Iterator()
			for iter.Next(ctx) {
				c.Del(ctx, iter.Val())
			}
		}
		c.SRem(ctx, "asynq:queues", ns, ns+".list")
		_ = c.Close()
	})
	return &Redis{URL: RedisURL(), Namespace: ns, Client: c}
}
