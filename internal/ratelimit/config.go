package ratelimit

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

const (
	// DefaultHoldTTL is Config.HoldTTL's default.
	DefaultHoldTTL = 2 * time.Minute
	// DefaultPollInterval is Config.PollInterval's default.
	DefaultPollInterval = 30 * time.Millisecond
	// DefaultMaxBackoff is Config.MaxBackoff's default.
	DefaultMaxBackoff = 5 * time.Minute
	// DefaultRecovery is Config.Recovery's default.
	DefaultRecovery = 5 * time.Second
	// DefaultReuseWindow is Config.ReuseWindow's default, unless HoldTTL
	// is under four times it.
	DefaultReuseWindow = time.Second

	// MaxPerSecond is the largest Config.PerSecond accepted.
	MaxPerSecond = 1e6
	// MinPerSecond is the smallest non-zero Config.PerSecond accepted
	// (one request every 1000 seconds).
	MinPerSecond = 0.001
)

// Config configures a Limiter. Every process limiting the same Twilio
// account must use the same Key, MaxInFlight and PerSecond; HoldTTL,
// PollInterval and MaxBackoff may differ between processes.
type Config struct {
	// Key names the limited account in Redis, e.g.
	// "<namespace>:twilio:<AccountSid>". The Limiter's keys all start with
	// it (see the package documentation for the layout). It must not be
	// empty, and must not hold secrets. With a Redis Cluster or Ring client
	// it must contain a hash tag ("ms:twilio:{AC…}") so that the keys one
	// script touches live on one shard.
	Key string

	// MaxInFlight is how many requests may be in flight at once across
	// every process sharing Key (TWILIO_MAX_CONCURRENCY). Must be at
	// least 1.
	MaxInFlight int

	// PerSecond bounds how many requests may start per second across every
	// process sharing Key (TWILIO_MAX_RPS), with a burst of one second's
	// worth (at least 1). Fractions are allowed: 0.5 is one request every
	// two seconds. Zero means no rate bound. Must be zero or between
	// MinPerSecond and MaxPerSecond.
	PerSecond float64

	// HoldTTL is the longest a request may hold a slot: a holder that dies
	// without releasing frees its slot after HoldTTL + ReuseWindow. Every
	// request, including
	// reading its response body, must finish within HoldTTL (set the HTTP
	// client's timeout below it), or the slot is handed to someone else
	// while the request still runs. Must be at least a millisecond.
	// Defaults to DefaultHoldTTL (2 minutes).
	HoldTTL time.Duration

	// ReuseWindow is the longest after a process takes a slot from Redis
	// that it may pass the slot on (each slot's window is drawn from half
	// to all of it) to its own next request without giving it back
	// first (see the package documentation): a slot then expires in Redis
	// HoldTTL + ReuseWindow after it was taken, so every request it
	// carries ends before. It is also the longest a busy process keeps a
	// slot that others are waiting for. Must not be negative. Defaults to
	// DefaultReuseWindow (1 second), or HoldTTL/4 if that is shorter.
	ReuseWindow time.Duration

	// PollInterval is the mean wait between attempts while every slot is
	// taken; each wait is drawn at random from [PollInterval/2,
	// 3*PollInterval/2) so waiters spread out. A slot a process holds
	// but does not use goes back to Redis within one to two PollIntervals.
	// Must be at least a millisecond. Defaults to DefaultPollInterval
	// (30ms).
	PollInterval time.Duration

	// MaxBackoff caps the duration one Backoff call can impose, so a bogus
	// Retry-After cannot stall every worker for hours. Must not be
	// negative. Defaults to DefaultMaxBackoff (5 minutes).
	MaxBackoff time.Duration

	// Recovery is how long a ceiling lowered by Refused takes to rise by
	// one slot, back up to MaxInFlight: each step up probes whether Twilio
	// now allows one more request in flight. Must be at least a
	// millisecond. Defaults to DefaultRecovery (5 seconds).
	Recovery time.Duration

	// OnReleaseError, if set, is called with the error when giving slots
	// back fails (Redis unreachable). They then stay taken until HoldTTL +
	// ReuseWindow passes. Use it to log; it is called on the releasing
	// goroutine, or on a timer's for slots a process kept idle a while.
	// Defaults to ignoring the error.
	OnReleaseError func(error)
}

// withDefaults returns c with zero durations replaced by their defaults.
func (c Config) withDefaults() Config {
	c.HoldTTL = cmp.Or(c.HoldTTL, DefaultHoldTTL)
	c.PollInterval = cmp.Or(c.PollInterval, DefaultPollInterval)
	c.MaxBackoff = cmp.Or(c.MaxBackoff, DefaultMaxBackoff)
	c.Recovery = cmp.Or(c.Recovery, DefaultRecovery)
	if c.ReuseWindow == 0 {
		c.ReuseWindow = min(DefaultReuseWindow, c.HoldTTL/4)
	}
	return c
}

// validate checks a Config that has had its defaults applied.
func (c Config) validate(rdb redis.UniversalClient) error {
	var errs []error
	if c.Key == "" {
		errs = append(errs, errors.New("Config.Key must not be empty"))
	} else if isSharded(rdb) && !hasHashTag(c.Key) {
		errs = append(errs, fmt.Errorf("Config.Key %q must contain a hash tag such as {AccountSid} when the Redis client is a Cluster or Ring", c.Key))
	}
	if c.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("Config.MaxInFlight must be at least 1, got %d", c.MaxInFlight))
	}
	switch {
	case math.IsNaN(c.PerSecond) || math.IsInf(c.PerSecond, 0):
		errs = append(errs, fmt.Errorf("Config.PerSecond must be a finite number, got %v", c.PerSecond))
	case c.PerSecond < 0:
		errs = append(errs, fmt.Errorf("Config.PerSecond must not be negative, got %v", c.PerSecond))
	case c.PerSecond != 0 && (c.PerSecond < MinPerSecond || c.PerSecond > MaxPerSecond):
		errs = append(errs, fmt.Errorf("Config.PerSecond must be 0 or between %v and %v, got %v", MinPerSecond, float64(MaxPerSecond), c.PerSecond))
	}
	if c.HoldTTL < time.Millisecond {
		errs = append(errs, fmt.Errorf("Config.HoldTTL must be at least 1ms, got %v", c.HoldTTL))
	}
	if c.PollInterval < time.Millisecond {
		errs = append(errs, fmt.Errorf("Config.PollInterval must be at least 1ms, got %v", c.PollInterval))
	}
	if c.Recovery < time.Millisecond {
		errs = append(errs, fmt.Errorf("Config.Recovery must be at least 1ms, got %v", c.Recovery))
	}
	if c.ReuseWindow < 0 {
		errs = append(errs, fmt.Errorf("Config.ReuseWindow must not be negative, got %v", c.ReuseWindow))
	}
	if c.MaxBackoff < 0 {
		errs = append(errs, fmt.Errorf("Config.MaxBackoff must not be negative, got %v", c.MaxBackoff))
	}
	return errors.Join(errs...)
}

// rateLimit converts PerSecond into a GCRA limit for redis_rate. GCRA
// spaces requests by its emission interval Period/Rate; whole rates use a
// one-second Period as redis_rate.PerSecond does, fractional rates use
// Rate 1 and a Period of 1/PerSecond seconds, so 0.5/s is one request per
// 2s. The burst is one second's worth of requests, at least one.
func rateLimit(perSecond float64) redis_rate.Limit {
	burst := max(1, int(math.Floor(perSecond)))
	if perSecond == math.Trunc(perSecond) {
		return redis_rate.Limit{Rate: int(perSecond), Burst: burst, Period: time.Second}
	}
	return redis_rate.Limit{
		Rate:   1,
		Burst:  burst,
		Period: time.Duration(math.Round(float64(time.Second) / perSecond)),
	}
}

// isSharded reports whether rdb spreads keys over several servers, so that
// a script's keys must share a hash tag.
func isSharded(rdb redis.UniversalClient) bool {
	switch rdb.(type) {
	case *redis.ClusterClient, *redis.Ring:
		return true
	}
	return false
}

// hasHashTag reports whether key has a non-empty {…} section, the part
// Redis Cluster hashes instead of the whole key.
func hasHashTag(key string) bool {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return false
	}
	end := strings.IndexByte(key[open+1:], '}')
	return end > 0
}
