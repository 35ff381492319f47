package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// Three worker processes each run the policy scheduler; an @every 2s
// policy gets exactly one run per tick (consecutive ticks, none twice,
// none skipped) and no two runs list the same window at the same time.
func TestPolicyTicksStartExactlyOneRunEach(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{})
	now := time.Now().UTC()
	if _, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Messages: 60, Start: now.Add(-48 * time.Hour), End: now.Add(-time.Minute), MaxMediaPerMessage: 2, MaxMediaSize: 4 << 10,
	}); err != nil {
		t.Fatal(err)
	}
	start := now.Add(-72 * time.Hour).Format(time.DateOnly)
	if code, _, stderr := d.Enqueue(t, time.Minute, "policy", "set", "every2s", "--schedule", "@every 2s", "--start", start); code != 0 {
		t.Fatalf("policy set: %s", stderr)
	}
	for range 3 {
		d.StartWorker(t)
	}

	const ticks = 11 // the first may be cut short by the workers' start
	deadline := time.Now().Add(90 * time.Second)
	var n int
	for {
		if err := d.Pool.QueryRow(t.Context(), `SELECT count(*) FROM runs WHERE policy_name = 'every2s' AND state <> 'queued'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n >= ticks {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d policy runs after 90s", n)
		}
		time.Sleep(200 * time.Millisecond)
	}

	rows, err := d.Pool.Query(t.Context(), `SELECT tick, coalesce(since, 'epoch'), coalesce(until, 'epoch'),
		started_at, coalesce(finished_at, '9999-12-31') FROM runs WHERE policy_name = 'every2s' ORDER BY tick`)
	if err != nil {
		t.Fatal(err)
	}
	type run struct{ tick, since, until, started, finished time.Time }
	var runs []run
	for rows.Next() {
		var r run
		var started *time.Time
		if err := rows.Scan(&r.tick, &r.since, &r.until, &started, &r.finished); err != nil {
			t.Fatal(err)
		}
		if started != nil {
			r.started = *started
		}
		runs = append(runs, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(runs); i++ {
		if gap := runs[i].tick.Sub(runs[i-1].tick); gap != 2*time.Second {
			t.Fatalf("ticks %v and %v are %v apart: a tick was skipped or ran twice", runs[i-1].tick, runs[i].tick, gap)
		}
	}
	for i := range runs {
		for j := i + 1; j < len(runs); j++ {
			a, b := runs[i], runs[j]
			concurrent := !a.started.IsZero() && !b.started.IsZero() && a.started.Before(b.finished) && b.started.Before(a.finished)
			overlap := a.since.Before(b.until) && b.since.Before(a.until) && !a.since.Equal(a.until) && !b.since.Equal(b.until)
			if concurrent && overlap {
				t.Fatalf("runs of ticks %v and %v listed overlapping windows [%v, %v) and [%v, %v) at the same time",
					a.tick, b.tick, a.since, a.until, b.since, b.until)
			}
		}
	}
	var dupTicks int
	if err := d.Pool.QueryRow(t.Context(), `SELECT count(*) - count(DISTINCT tick) FROM runs WHERE policy_name = 'every2s'`).Scan(&dupTicks); err != nil {
		t.Fatal(err)
	}
	if dupTicks != 0 {
		t.Fatalf("%d ticks started more than one run", dupTicks)
	}
	t.Logf("%d runs over %v of ticks", len(runs), runs[len(runs)-1].tick.Sub(runs[0].tick))

	// A changed schedule takes effect without restarting any worker.
	changed := time.Now()
	if code, _, stderr := d.Enqueue(t, time.Minute, "policy", "set", "every2s", "--schedule", "@every 3s"); code != 0 {
		t.Fatalf("policy set: %s", stderr)
	}
	var later []time.Time
	deadline = time.Now().Add(60 * time.Second)
	for len(later) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d runs after the schedule changed", len(later))
		}
		time.Sleep(200 * time.Millisecond)
		rows, err := d.Pool.Query(t.Context(), `SELECT tick FROM runs WHERE policy_name = 'every2s' AND created_at > $1 ORDER BY tick`, changed.Add(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		later = later[:0]
		for rows.Next() {
			var tk time.Time
			if err := rows.Scan(&tk); err != nil {
				t.Fatal(err)
			}
			later = append(later, tk)
		}
	}
	for i := 1; i < len(later); i++ {
		if gap := later[i].Sub(later[i-1]); gap != 3*time.Second {
			t.Fatalf("after the change, ticks %v and %v are %v apart, want 3s", later[i-1], later[i], gap)
		}
	}
}

// Catch-up: the workers stop for three days (their clock is moved on by
// MEDIASYNC_CLOCK_OFFSET); messages arrive meanwhile. The first run after
// they start again archives all of them, and nothing sent before the
// watermark is missing from the archive.
func TestPolicyCatchesUpAfterDowntime(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{})
	now := time.Now().UTC()
	if _, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Messages: 40, Start: now.Add(-5 * 24 * time.Hour), End: now.Add(-time.Minute), MaxMediaPerMessage: 2, MaxMediaSize: 4 << 10,
	}); err != nil {
		t.Fatal(err)
	}
	start := now.Add(-6 * 24 * time.Hour).Format(time.DateOnly)
	if code, _, stderr := d.Enqueue(t, time.Minute, "policy", "set", "nightly", "--schedule", "@every 2s", "--start", start); code != 0 {
		t.Fatalf("policy set: %s", stderr)
	}
	watermark := func() time.Time {
		var w time.Time
		if err := d.Pool.QueryRow(t.Context(), `SELECT watermark FROM policies WHERE name = 'nightly'`).Scan(&w); err != nil {
			t.Fatal(err)
		}
		return w
	}
	waitWatermark := func(past time.Time) {
		deadline := time.Now().Add(90 * time.Second)
		for !watermark().After(past) {
			if time.Now().After(deadline) {
				t.Fatalf("watermark %v did not pass %v", watermark(), past)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	w := d.StartWorker(t)
	waitWatermark(now)
	if err := w.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	stoppedAt := watermark()
	var lastRun time.Time
	if err := d.Pool.QueryRow(t.Context(), `SELECT max(created_at) FROM runs`).Scan(&lastRun); err != nil {
		t.Fatal(err)
	}

	// Three days pass with the workers down; customers keep sending.
	var arrived []twiliotest.MessageInfo
	for _, after := range []time.Duration{6 * time.Hour, 26 * time.Hour, 49 * time.Hour, 70 * time.Hour} {
		m, err := d.Emu.AddMessage(d.Account.SID, twiliotest.MessageOptions{DateSent: now.Add(after),
			Media: []twiliotest.MediaOptions{{Size: 2048}, {Size: 1024, ContentType: "image/png"}}})
		if err != nil {
			t.Fatal(err)
		}
		arrived = append(arrived, m)
	}
	d.StartWorker(t, "MEDIASYNC_CLOCK_OFFSET=72h")
	waitWatermark(now.Add(71 * time.Hour))

	// The first run after the restart covered the whole gap.
	var first string
	if err := d.Pool.QueryRow(t.Context(), `SELECT id FROM runs WHERE policy_name = 'nightly' AND created_at > $1
		ORDER BY created_at LIMIT 1`, lastRun).Scan(&first); err != nil {
		t.Fatal(err)
	}
	for _, m := range arrived {
		for _, sid := range m.MediaSIDs {
			var state string
			if err := d.Pool.QueryRow(t.Context(), `SELECT state FROM run_media WHERE run_id = $1 AND media_sid = $2`, first, sid).Scan(&state); err != nil {
				t.Fatalf("media %s (sent %v) not in the first run after downtime (watermark was %v): %v", sid, m.DateSent, stoppedAt, err)
			}
			if state != "archived" {
				t.Fatalf("media %s: %s in the first run after downtime", sid, state)
			}
		}
	}
	// Nothing sent before the watermark is missing: compare the sets.
	wm := watermark()
	want := map[string]string{}
	for m := range d.Emu.Messages(d.Account.SID) {
		if m.DateSent.Before(wm) {
			for _, sid := range m.MediaSIDs {
				want[sid] = m.SID
			}
		}
	}
	var archived int
	if err := d.Pool.QueryRow(t.Context(), `SELECT count(*) FROM media WHERE state = 'archived'`).Scan(&archived); err != nil {
		t.Fatal(err)
	}
	if archived != len(want) {
		t.Fatalf("%d media archived, %d sent before the watermark", archived, len(want))
	}
	d.CheckArchived(t, want, "archived")
}

// Against Twilio's purge (the default window, 400 days), an operator sees a
// policy's watermark age in `policy list` (with a warning past the
// window's warning age), in the worker's log (once), and as a metric on
// /metrics beside the window.
func TestPurgeWarningsAndMetrics(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{})
	start := time.Now().UTC().Add(-400 * 24 * time.Hour).Format(time.DateOnly)
	// A yearly schedule: no run moves the watermark during the test.
	if code, _, stderr := d.Enqueue(t, time.Minute, "policy", "set", "yearly", "--schedule", "0 3 1 1 *", "--start", start); code != 0 {
		t.Fatalf("policy set: %s", stderr)
	}
	code, out, stderr := d.Enqueue(t, time.Minute, "policy", "list")
	if code != 0 || !strings.Contains(out, "yearly") || !strings.Contains(out, "WARNING: past Twilio's 400 days") {
		t.Fatalf("policy list (exit %d) does not warn:\n%s%s", code, out, stderr)
	}

	addr := freeAddr(t)
	w := d.StartWorker(t, "HTTP_ADDR="+addr)
	var body string
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			if strings.Contains(body, `mediasync_policy_watermark_age_seconds{policy="yearly"}`) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no watermark metric on /metrics:\n%s\nworker:\n%s", body, w.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	var age float64
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, `mediasync_policy_watermark_age_seconds{policy="yearly"} `); ok {
			if _, err := fmt.Sscan(v, &age); err != nil {
				t.Fatal(err)
			}
		}
	}
	if age < 399*24*3600 || age > 402*24*3600 {
		t.Fatalf("watermark age %v s, want about 400 days", age)
	}
	if !strings.Contains(body, "\nmediasync_twilio_retention_seconds 3.456e+07\n") {
		t.Fatalf("no 400-day window on /metrics:\n%s", body)
	}
	const warning = "media older than 365 days are not archived: Twilio deletes messages and media after 400 days (TWILIO_RETENTION_DAYS)"
	deadline = time.Now().Add(30 * time.Second)
	for !strings.Contains(w.Logs(), warning) {
		if time.Now().After(deadline) {
			t.Fatalf("no purge warning logged:\n%s", w.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Let a few more scheduler passes go by: the warning must not repeat.
	time.Sleep(3 * time.Second)
	if err := w.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(w.Logs(), warning); n != 1 {
		t.Fatalf("purge warning logged %d times, want once:\n%s", n, w.Logs())
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
