package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// loadStart is the first day of the load tests' data.
var loadStart = time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)

// loadRun generates messages over three days, starts workers worker
// processes with extra settings, runs one backfill over those days with
// --wait and returns the media it had to archive, enqueue's stdout, and
// the workers. It fails t unless enqueue exits 0.
func loadRun(t *testing.T, d *e2etest.Deployment, messages, workers int, extra ...string) (map[string]string, string, []*e2etest.Process) {
	t.Helper()
	_, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Messages: messages, Start: loadStart, End: loadStart.AddDate(0, 0, 3),
		MaxMediaPerMessage: 3, MaxMediaSize: 8 << 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	in, _ := d.MediaIn(loadStart, loadStart.AddDate(0, 0, 3))
	ws := make([]*e2etest.Process, workers)
	for i := range ws {
		ws[i] = d.StartWorker(t, extra...)
	}
	code, stdout, stderr := d.Enqueue(t, 100*time.Second, "backfill",
		"--since", loadStart.Format(time.DateOnly), "--until", loadStart.AddDate(0, 0, 3).Format(time.DateOnly), "--wait")
	if code != 0 {
		t.Fatalf("enqueue exited %d\nstdout:\n%s\nstderr:\n%s\n%s", code, stdout, stderr, fleetLogs(ws))
	}
	return in, stdout, ws
}

// fleetLogs is the tail of each worker's output, for failure messages.
func fleetLogs(ws []*e2etest.Process) string {
	var b strings.Builder
	for i, w := range ws {
		logs := w.Logs()
		if len(logs) > 4000 {
			logs = "…" + logs[len(logs)-4000:]
		}
		fmt.Fprintf(&b, "worker %d:\n%s\n", i+1, logs)
	}
	return b.String()
}

// Three workers, 24 task slots between them, against an account whose
// Twilio limit is 4 requests in flight, told TWILIO_MAX_CONCURRENCY=4:
// the fleet never has more than 4 requests at Twilio at once (the
// emulator's peak demand counts even those it would refuse), so it is
// not refused, and the run completes.
func TestFleetKeepsToTwilioConcurrency(t *testing.T) {
	t.Parallel()
	const limit = 4
	d := e2etest.New(t, e2etest.Options{Emulator: twiliotest.Config{Faults: twiliotest.Faults{
		MaxInFlight: limit, Latency: 20 * time.Millisecond,
	}}})
	in, stdout, ws := loadRun(t, d, 120, 3, fmt.Sprintf("TWILIO_MAX_CONCURRENCY=%d", limit), "WORKER_CONCURRENCY=8")
	if got := e2etest.StatusValue(t, stdout, "media failed"); got != "0" {
		t.Fatalf("media failed %s, want 0", got)
	}
	d.CheckArchived(t, in, "archived")

	st := d.Emu.Stats()
	demand := st.PeakDemand[d.Account.SID]
	share := float64(st.RateLimited) / float64(st.Requests)
	t.Logf("%d media; %d API requests, %d answered 429 (%.1f%%); peak demand %d, peak in flight %d (limit %d)",
		len(in), st.Requests, st.RateLimited, 100*share, demand, st.PeakInFlight[d.Account.SID], limit)
	if demand > limit {
		t.Fatalf("the fleet had %d requests at Twilio at once; TWILIO_MAX_CONCURRENCY is %d\n%s", demand, limit, fleetLogs(ws))
	}
	if share >= 0.05 {
		t.Fatalf("%d of %d requests answered 429 (%.1f%%), want under 5%%", st.RateLimited, st.Requests, 100*share)
	}
}

// Twilio's real limit is not published: here the account allows 3
// requests in flight while the workers are told 8. Twilio then answers
// 429, and a 429 seen by one worker holds back the whole fleet (a shared
// back-off, and a shared ceiling on requests in flight, in Redis), so the
// run still completes with nothing failed, and 429s stay a small share of
// the requests instead of a storm.
func TestFleetBacksOffWhenTwilioAllowsLess(t *testing.T) {
	t.Parallel()
	const twilioLimit, configured = 3, 8
	d := e2etest.New(t, e2etest.Options{Emulator: twiliotest.Config{Faults: twiliotest.Faults{
		MaxInFlight: twilioLimit, Latency: 20 * time.Millisecond,
	}}})
	in, stdout, ws := loadRun(t, d, 120, 3, fmt.Sprintf("TWILIO_MAX_CONCURRENCY=%d", configured), "WORKER_CONCURRENCY=8")
	if got := e2etest.StatusValue(t, stdout, "media failed"); got != "0" {
		t.Fatalf("media failed %s, want 0\n%s", got, fleetLogs(ws))
	}
	d.CheckArchived(t, in, "archived")

	st := d.Emu.Stats()
	share := float64(st.RateLimited) / float64(st.Requests)
	t.Logf("%d media; %d API requests (%d answered), %d answered 429 (%.1f%%); peak demand %d, peak in flight %d (Twilio allows %d, workers told %d)",
		len(in), st.Requests, st.Requests-st.RateLimited, st.RateLimited, 100*share,
		st.PeakDemand[d.Account.SID], st.PeakInFlight[d.Account.SID], twilioLimit, configured)
	if st.RateLimited == 0 {
		t.Fatalf("no 429 at all: the test did not exercise the back-off")
	}
	// Before the shared ceiling, every back-off ended in a burst of
	// refused requests: over half were answered 429.
	if share >= 0.25 {
		t.Fatalf("%d of %d requests answered 429 (%.1f%%): the fleet storms Twilio instead of backing off", st.RateLimited, st.Requests, 100*share)
	}
}

// TWILIO_MAX_RPS is one budget for the fleet: three workers with 24 task
// slots between them start no more API requests than the rate allows,
// counted by the emulator over every window of the run (GCRA allows a
// burst of one second's worth on top of the rate).
func TestFleetKeepsToMaxRPS(t *testing.T) {
	t.Parallel()
	const rps = 10
	d := e2etest.New(t, e2etest.Options{})
	in, _, ws := loadRun(t, d, 60, 3, fmt.Sprintf("TWILIO_MAX_RPS=%d", rps), "WORKER_CONCURRENCY=8")
	d.CheckArchived(t, in, "archived")

	var at []time.Time
	for _, r := range d.Emu.Requests() {
		if r.Host == "api" {
			at = append(at, r.Time)
		}
	}
	if len(at) < 4*rps {
		t.Fatalf("only %d API requests: too few to measure a rate of %d/s", len(at), rps)
	}
	// The log is in order of answers; count by arrival, in [at[i], at[i]+3s).
	slices.SortFunc(at, time.Time.Compare)
	const window = 3 * time.Second
	const slack = 10 // requests leave the limiter a little before they reach the emulator
	limit := rps + int(window.Seconds())*rps + slack
	busiest, j := 0, 0
	for i := range at {
		for j < len(at) && at[j].Sub(at[i]) < window {
			j++
		}
		busiest = max(busiest, j-i)
	}
	span := at[len(at)-1].Sub(at[0])
	t.Logf("%d media; %d API requests over %s (%.1f/s), busiest %s: %d requests (bound %d)",
		len(in), len(at), span.Round(time.Millisecond), float64(len(at))/span.Seconds(), window, busiest, limit)
	if busiest > limit {
		t.Fatalf("%d API requests within %s; TWILIO_MAX_RPS=%d allows at most %d\n%s", busiest, window, rps, limit, fleetLogs(ws))
	}
}
