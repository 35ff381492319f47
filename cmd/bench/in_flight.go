package main

import (
	"context"
	"net/http"
	"time"

	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// requestLogSize is the emulator's request log in the Twilio-shaped
// scenarios, at least: every request of a 4000-media run (about 6000 API
// requests and 8000 signed downloads) with room to spare; a larger run
// gets four entries per media (emulatorFlags). The other scenarios keep
// no log, which costs the emulator CPU.
const requestLogSize = 40_000

// requests returns the emulator's request log, oldest first.
func (e *emulator) requests(ctx context.Context) ([]twiliotest.Request, error) {
	var r []twiliotest.Request
	return r, e.admin(ctx, http.MethodGet, "requests", nil, &r)
}

// inFlightProfile is the mean number of API requests the emulator was
// serving (429s excluded) in each of n equal parts of the time from the
// first API request's start to the last one's end. Its first and last
// parts show what a run's start and tail leave idle, its middle what
// the steady state does with the slots the limit allows.
func inFlightProfile(log []twiliotest.Request, n int) []float64 {
	var first, last time.Time
	for _, r := range log {
		if r.Host != "api" || r.Status == http.StatusTooManyRequests {
			continue
		}
		if first.IsZero() || r.Time.Before(first) {
			first = r.Time
		}
		last = later(last, r.Time.Add(r.Duration))
	}
	if n <= 0 || !last.After(first) {
		return nil
	}
	width := last.Sub(first) / time.Duration(n)
	if width <= 0 {
		return nil
	}
	busy := make([]time.Duration, n)
	for _, r := range log {
		if r.Host != "api" || r.Status == http.StatusTooManyRequests {
			continue
		}
		start, end := r.Time.Sub(first), r.Time.Add(r.Duration).Sub(first)
		for i := max(0, int(start/width)); i < n && time.Duration(i)*width < end; i++ {
			lo, hi := time.Duration(i)*width, time.Duration(i+1)*width
			busy[i] += min(hi, end) - max(lo, start)
		}
	}
	out := make([]float64, n)
	for i, b := range busy {
		out[i] = b.Seconds() / width.Seconds()
	}
	return out
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
