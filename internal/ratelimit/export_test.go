package ratelimit

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// Wait reasons reported to the hook set by SetOnWait.
const (
	WaitFull    = waitFull
	WaitBackoff = waitBackoff
	WaitRate    = waitRate
	WaitQueued  = waitQueued
)

// SetOnWait makes l call f before each wait inside Acquire. Set it before
// l is used.
func SetOnWait(l *Limiter, f func(reason string, d time.Duration)) { l.onWait = f }

// EffectiveConfig is l's Config after defaults.
func EffectiveConfig(l *Limiter) Config { return l.cfg }

// RateLimitFor is the GCRA limit used for a PerSecond.
func RateLimitFor(perSecond float64) redis_rate.Limit { return rateLimit(perSecond) }

// ScriptOf names the Limiter's script cmd runs (EVALSHA or EVAL): "take",
// "confirm", "renew", "refused", "backoff", or "" for any other command.
func ScriptOf(cmd redis.Cmder) string {
	args := cmd.Args()
	if len(args) < 2 {
		return ""
	}
	s, _ := args[1].(string)
	switch cmd.Name() {
	case "evalsha":
	case "eval":
		sum := sha1.Sum([]byte(s))
		s = hex.EncodeToString(sum[:])
	default:
		return ""
	}
	for name, script := range map[string]*redis.Script{
		"take": takeScript, "confirm": confirmScript, "renew": renewScript, "refused": refusedScript, "backoff": backoffScript,
	} {
		if script.Hash() == s {
			return name
		}
	}
	return ""
}

// LoadScripts loads the Limiter's scripts into rdb's server, so that an
// EVALSHA of them is never answered NOSCRIPT and sent again as EVAL.
func LoadScripts(ctx context.Context, rdb redis.Scripter) error {
	for _, s := range []*redis.Script{takeScript, confirmScript, renewScript, refusedScript, backoffScript} {
		if err := s.Load(ctx, rdb).Err(); err != nil {
			return err
		}
	}
	return nil
}
