package ratelimit

import (
	"time"

	"github.com/go-redis/redis_rate/v10"
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
