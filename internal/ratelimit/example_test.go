package ratelimit_test

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/mediasync/mediasync/internal/ratelimit"
	"github.com/mediasync/mediasync/internal/testenv"
)

// Every worker process builds a Limiter with the same Key; each request to
// Twilio holds a slot from Acquire until release.
func ExampleLimiter() {
	ctx := context.Background()
	opt, err := redis.ParseURL(testenv.RedisURL())
	if err != nil {
		panic(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()

	key := "example" + rand.Text() + ":twilio:AC0123456789abcdef0123456789abcdef"
	defer rdb.Del(ctx, key+":slots", key+":backoff", "rate:"+key+":rps")

	lim, err := ratelimit.New(rdb, ratelimit.Config{
		Key:         key,
		MaxInFlight: 20, // TWILIO_MAX_CONCURRENCY
		PerSecond:   50, // TWILIO_MAX_RPS
	})
	if err != nil {
		panic(err)
	}

	release, err := lim.Acquire(ctx)
	if err != nil {
		panic(err)
	}
	inFlight, _, _ := lim.Stats(ctx)
	fmt.Println("in flight during the request:", inFlight)
	release()

	inFlight, _, _ = lim.Stats(ctx)
	fmt.Println("in flight after release:", inFlight)
	// Output:
	// in flight during the request: 1
	// in flight after release: 0
}
