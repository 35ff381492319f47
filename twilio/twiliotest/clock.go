package twiliotest

import (
	"sync"
	"time"
)

// clock is the emulator's "now": Config.Now, or a time a test set, moved
// forward by Advance. Load limits and latency use real time instead: they
// pace real requests.
type clock struct {
	mu     sync.Mutex
	base   func() time.Time
	fixed  time.Time
	isSet  bool
	offset time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isSet {
		return c.fixed
	}
	return c.base().Add(c.offset)
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.IsZero() {
		c.isSet, c.offset = false, 0
		return
	}
	c.fixed, c.isSet = t, true
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isSet {
		c.fixed = c.fixed.Add(d)
		return
	}
	c.offset += d
}

// Now is the emulator's current time.
func (s *Server) Now() time.Time { return s.clock.now() }

// SetNow stops the emulator's clock at t (a zero t returns to Config.Now).
func (s *Server) SetNow(t time.Time) { s.clock.set(t) }

// AdvanceClock moves the emulator's clock forward by d, e.g. past a signed
// URL's expiry.
func (s *Server) AdvanceClock(d time.Duration) { s.clock.advance(d) }
