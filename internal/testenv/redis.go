package testenv

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/mediasync/mediasync/internal/rediskeys"
)

// RedisURL is the Redis server tests use; TEST_REDIS_URL points elsewhere.
func RedisURL() string {
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// Redis is a namespace of the test's own on the shared Redis server.
// Every key of a namespace is built by internal/rediskeys, so tests using
// different namespaces never see each other.
type Redis struct {
	URL       string
	Namespace string
	Keys      rediskeys.Namespace // Namespace's keys
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
	keys := rediskeys.Namespace(ns)
	t.Cleanup(func() {
		ctx := context.WithoutCancel(context.Background())
		for _, pattern := range keys.Patterns() {
			iter := c.Scan(ctx, 0, pattern, 500).Iterator()
			for iter.Next(ctx) {
				c.Del(ctx, iter.Val())
			}
		}
		for _, q := range keys.Queues() {
			c.SRem(ctx, "asynq:queues", q)
		}
		_ = c.Close()
	})
	return &Redis{URL: RedisURL(), Namespace: ns, Keys: keys, Client: c}
}
