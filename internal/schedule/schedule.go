// Package schedule parses retention policies' schedules and durations and
// computes their ticks. A tick is an absolute instant that every worker
// computes alike (`@every` ticks are multiples of the interval since the
// zero time, cron ticks are the cron's own instants, in UTC), which is what
// lets the database start exactly one run per tick.
package schedule

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule is a policy's schedule.
type Schedule struct {
	spec  string
	every time.Duration // @every
	cron  cron.Schedule
}

// String returns the spec as given.
func (s Schedule) String() string { return s.spec }

// Parse parses a standard 5-field cron expression (or a descriptor such as
// @daily, @hourly) or `@every DUR`, with DUR as ParseDuration takes it. Cron
// times are UTC.
func Parse(spec string) (Schedule, error) {
	spec = strings.TrimSpace(spec)
	if rest, ok := strings.CutPrefix(spec, "@every "); ok {
		d, err := ParseDuration(strings.TrimSpace(rest))
		if err != nil {
			return Schedule{}, fmt.Errorf("schedule %q: %w", spec, err)
		}
		if d < time.Second {
			return Schedule{}, fmt.Errorf("schedule %q: the interval must be at least 1s", spec)
		}
		return Schedule{spec: spec, every: d}, nil
	}
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return Schedule{}, fmt.Errorf("schedule %q: time zones are not supported; cron times are UTC", spec)
	}
	c, err := cron.ParseStandard(spec)
	if err != nil {
		return Schedule{}, fmt.Errorf("schedule %q is neither a cron expression (e.g. \"0 3 * * *\") nor @every DUR (e.g. \"@every 24h\"): %v", spec, err)
	}
	return Schedule{spec: spec, cron: c}, nil
}

// maxSteps bounds the walk over a cron's ticks (a per-minute cron over 13
// months is about 570,000 ticks).
const maxSteps = 1 << 20

// Latest returns the latest tick at or before now and after `after`, or the
// zero time when there is none. Ticks missed while no worker ran collapse
// into the latest: one run then covers the whole gap.
func (s Schedule) Latest(after, now time.Time) time.Time {
	now = now.UTC()
	var tick time.Time
	if s.every > 0 {
		tick = now.Truncate(s.every)
	} else {
		t := after.UTC()
		if t.IsZero() || now.Sub(t) > 400*24*time.Hour {
			t = now.Add(-400 * 24 * time.Hour)
		}
		for range maxSteps {
			n := s.cron.Next(t)
			if n.After(now) || n.IsZero() {
				break
			}
			tick, t = n, n
		}
	}
	if tick.IsZero() || !tick.After(after) {
		return time.Time{}
	}
	return tick
}

// MaxDuration is the longest duration ParseDuration accepts: 100 years,
// far inside what time.Duration holds (about 292 years).
const MaxDuration = 100 * 365 * 24 * time.Hour

// ParseDuration parses durations like 36h, 30d, 1d12h or 90m: Go's
// durations plus d for 24-hour days. Negative durations are refused, and so
// is anything longer than MaxDuration: the day count is checked before it
// is multiplied, so 213504d is refused instead of wrapping to 25m26s.
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("empty duration")
	}
	var total time.Duration
	rest := s
	if i := strings.IndexByte(rest, 'd'); i > 0 {
		days, err := strconv.ParseUint(rest[:i], 10, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("duration %q: want e.g. 36h, 30d or 1d12h", s)
		}
		if err != nil || days > uint64(MaxDuration/(24*time.Hour)) {
			return 0, fmt.Errorf("duration %q is out of range (at most %s)", s, FormatDuration(MaxDuration))
		}
		total = time.Duration(days) * 24 * time.Hour
		rest = rest[i+1:]
	}
	if rest != "" {
		d, err := time.ParseDuration(rest)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("duration %q: want e.g. 36h, 30d or 1d12h", s)
		}
		if d > MaxDuration-total {
			return 0, fmt.Errorf("duration %q is out of range (at most %s)", s, FormatDuration(MaxDuration))
		}
		total += d
	}
	return total, nil
}

// FormatDuration writes d the way ParseDuration reads it, with days.
func FormatDuration(d time.Duration) string {
	days := d / (24 * time.Hour)
	rest := d % (24 * time.Hour)
	switch {
	case days == 0:
		return rest.String()
	case rest == 0:
		return fmt.Sprintf("%dd", days)
	default:
		return fmt.Sprintf("%dd%s", days, rest)
	}
}
