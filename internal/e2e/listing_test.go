package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/internal/testenv"
	"github.com/mediasync/mediasync/jobs"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// queuePeak polls the deployment's queues until the test ends and returns
// a function that reports the most tasks they held at once (pending,
// scheduled, retrying or running): Redis memory follows it.
func queuePeak(t *testing.T, d *e2etest.Deployment) func() int {
	t.Helper()
	opt, err := asynq.ParseRedisURI(d.Env["REDIS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspector(opt)
	qs := jobs.QueuesFor(d.Env["MEDIASYNC_NAMESPACE"])
	var mu sync.Mutex
	peak := 0
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			known, err := insp.Queues()
			if err == nil {
				n := 0
				for _, q := range []string{qs.Media, qs.List} {
					if !slices.Contains(known, q) {
						continue
					}
					if info, err := insp.GetQueueInfo(q); err == nil {
						n += info.Pending + info.Scheduled + info.Retry + info.Active
					}
				}
				mu.Lock()
				peak = max(peak, n)
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done; _ = insp.Close() })
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// sparseYears generates about one message a day, half of them with one
// small media, over [start, end), and returns the media of that range.
func sparseYears(t *testing.T, d *e2etest.Deployment, start, end time.Time) map[string]string {
	t.Helper()
	days := int(end.Sub(start) / (24 * time.Hour))
	if _, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Messages: days, Start: start, End: end, NoMediaShare: 0.5,
		MinMediaPerMessage: 1, MaxMediaPerMessage: 1, MinMediaSize: 256, MaxMediaSize: 2 << 10,
	}); err != nil {
		t.Fatal(err)
	}
	in, _ := d.MediaIn(start, end)
	if len(in) < days/4 {
		t.Fatalf("only %d media over %d days: too few to test with", len(in), days)
	}
	return in
}

// requireLongRun fails t unless enqueue's --wait ended in a succeeded run
// that listed every day, archived every media of its range, and never had
// more than MaxBacklog tasks queued: the page tasks of a run's days are
// queued a few at a time as listing advances, not one per day at its start.
func requireLongRun(t *testing.T, d *e2etest.Deployment, w *e2etest.Process, code int, stdout, stderr string, in map[string]string, peak func() int) {
	t.Helper()
	if code != 0 {
		t.Fatalf("enqueue exited %d\nstdout:\n%s\nstderr:\n%s\nworker, then its goroutines:\n%s", code, stdout, stderr, lastLines(w.Dump(), 300))
	}
	if got := e2etest.StatusValue(t, stdout, "state"); got != "succeeded" {
		t.Fatalf("state %s\n%s", got, stdout)
	}
	listed := e2etest.StatusValue(t, stdout, "days listed")
	days, _, _ := strings.Cut(listed, " ")
	done, total, _ := strings.Cut(days, "/")
	if done != total {
		t.Fatalf("days listed %s\n%s", listed, stdout)
	}
	d.CheckArchived(t, in, "archived")
	if p := peak(); p > jobs.DefaultMaxBacklog {
		t.Fatalf("the queues held %d tasks at once; listing keeps them under %d", p, jobs.DefaultMaxBacklog)
	} else {
		t.Logf("%s days, %d media archived; at most %d tasks queued at once", total, len(in), p)
	}
}

// A backfill of the last 400 days (more than MaxBacklog days) completes.
func TestBackfillOf400DaysCompletes(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{})
	until := time.Now().UTC().Truncate(24 * time.Hour)
	since := until.AddDate(0, 0, -400)
	in := sparseYears(t, d, since, until)
	peak := queuePeak(t, d)
	w := d.StartWorker(t)
	code, stdout, stderr := d.Enqueue(t, 4*time.Minute, "backfill",
		"--since", since.Format(time.DateOnly), "--until", until.Format(time.DateOnly), "--wait")
	requireLongRun(t, d, w, code, stdout, stderr, in, peak)
}

// A backfill of three years completes.
func TestBackfillOfThreeYearsCompletes(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{})
	until := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	since := until.AddDate(-3, 0, 0)
	in := sparseYears(t, d, since, until)
	peak := queuePeak(t, d)
	w := d.StartWorker(t)
	code, stdout, stderr := d.Enqueue(t, 6*time.Minute, "backfill",
		"--since", since.Format(time.DateOnly), "--until", until.Format(time.DateOnly), "--wait")
	requireLongRun(t, d, w, code, stdout, stderr, in, peak)
}

// A retention policy whose --start is three years back: its first run
// lists three years of days, and completes.
func TestPolicyStartingThreeYearsBackCompletes(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{})
	now := time.Now().UTC()
	start := now.AddDate(-3, 0, 0).Truncate(24 * time.Hour)
	in := sparseYears(t, d, start, now.Add(-time.Hour))
	// A yearly schedule that does not tick during the test: the run is the
	// one `policy run` asks for, as a new user tries a policy out.
	if code, _, stderr := d.Enqueue(t, time.Minute, "policy", "set", "archive3y",
		"--schedule", "0 3 1 1 *", "--start", start.Format(time.DateOnly)); code != 0 {
		t.Fatalf("policy set: %s", stderr)
	}
	peak := queuePeak(t, d)
	w := d.StartWorker(t)
	code, stdout, stderr := d.Enqueue(t, 6*time.Minute, "policy", "run", "archive3y", "--wait")
	requireLongRun(t, d, w, code, stdout, stderr, in, peak)
}

// A day whose next_page_uri goes round (A→B→A): the cycle is found across
// page tasks, the day fails with the reason, the other days are archived,
// and the run ends (failed) instead of listing forever.
func TestNextPageCycleFailsTheDay(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{})
	start := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	in := sparseYears(t, d, start, start.AddDate(0, 0, 40))
	cyclic := start.AddDate(0, 0, 20).Format(time.DateOnly)

	// Between mediasync and the emulator: the list of that day answers
	// page 0 → A, A → B, B → A.
	proxy := d.ProxyTwilio(t, nil)
	var direct func(*http.Request)
	director := func(r *http.Request) {
		direct(r)
		// The emulator knows no such tokens: it is asked for the day's
		// first page each time, and the token travels in a header.
		if q := r.URL.Query(); strings.HasSuffix(r.URL.Path, "/Messages.json") && q.Get("DateSent") == cyclic {
			r.Header.Set("X-Cycle-Token", q.Get("PageToken"))
			q.Del("PageToken")
			q.Del("Page")
			r.URL.RawQuery = q.Encode()
		}
	}
	var mu sync.Mutex
	asked := map[string]int{}
	modify := func(resp *http.Response) error {
		q := resp.Request.URL.Query()
		if !strings.HasSuffix(resp.Request.URL.Path, "/Messages.json") || q.Get("DateSent") != cyclic || resp.StatusCode != http.StatusOK {
			return nil
		}
		token := resp.Request.Header.Get("X-Cycle-Token")
		mu.Lock()
		asked[token]++
		mu.Unlock()
		next := map[string]string{"": "PAcycleA", "PAcycleA": "PAcycleB", "PAcycleB": "PAcycleA"}[token]
		var page map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
			return err
		}
		_ = resp.Body.Close()
		q.Set("PageToken", next)
		q.Set("Page", "1")
		page["next_page_uri"] = resp.Request.URL.Path + "?" + q.Encode()
		b, err := json.Marshal(page)
		if err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	}
	proxy.Configure(func(rp *httputil.ReverseProxy) {
		direct = rp.Director
		rp.Director = director
		rp.ModifyResponse = modify
	})
	w := d.StartWorker(t, "TWILIO_API_URL="+proxy.URL)
	code, stdout, stderr := d.Enqueue(t, 2*time.Minute, "backfill",
		"--since", start.Format(time.DateOnly), "--until", start.AddDate(0, 0, 40).Format(time.DateOnly), "--wait")
	if code != 1 {
		t.Fatalf("enqueue exited %d, want 1 (a day failed)\nstdout:\n%s\nstderr:\n%s\nworker, then its goroutines:\n%s", code, stdout, stderr, lastLines(w.Dump(), 300))
	}
	if got := e2etest.StatusValue(t, stdout, "failed"); !strings.Contains(got, "window 20:") || !strings.Contains(got, "cycle") {
		t.Fatalf("failed: %s, want window 20 failed for a next_page_uri cycle\n%s", got, stdout)
	}
	mu.Lock()
	t.Logf("the cyclic day was asked for page 0 %d times, A %d, B %d", asked[""], asked["PAcycleA"], asked["PAcycleB"])
	if asked["PAcycleA"] > 2 || asked["PAcycleB"] > 1 {
		t.Errorf("the cycle was followed round more than once: %v", asked)
	}
	mu.Unlock()
	// Every other day was listed and archived.
	var media int
	for sid, msg := range in {
		if m, ok := d.Emu.Message(msg); ok && m.DateSent.Format(time.DateOnly) == cyclic {
			delete(in, sid)
			media++
		}
	}
	d.CheckArchived(t, in, "archived")
	t.Logf("%d media archived; the cyclic day's %d were listed before the cycle was found", len(in), media)
}

// While the queues hold more than MaxBacklog tasks, listing waits, and
// `status` says so: on what, and since when. Once the backlog drains, the
// run goes on and completes.
func TestStatusSaysWhatListingWaitsOn(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{})
	start := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
	// One day of many messages (one page: more media than MaxBacklog),
	// then a dozen more days: listing pages take turns at the listing
	// slot, so a later day may be listed before the first (on a loaded
	// machine it has been, twice); with a dozen, some are still to list
	// once the first day's tasks are queued.
	if _, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Messages: 400, Start: start, End: start.Add(23 * time.Hour), NoMediaShare: 0.01,
		MinMediaPerMessage: 1, MaxMediaPerMessage: 1, MinMediaSize: 128, MaxMediaSize: 512,
	}); err != nil {
		t.Fatal(err)
	}
	const days = 13
	in := sparseYears(t, d, start.AddDate(0, 0, 1), start.AddDate(0, 0, days))
	first, _ := d.MediaIn(start, start.AddDate(0, 0, 1))
	if len(first) <= jobs.DefaultMaxBacklog {
		t.Fatalf("%d media on the first day: no more than MaxBacklog", len(first))
	}
	for sid, msg := range first {
		in[sid] = msg
	}
	// The media queue held back, as a busy or slow archive would.
	opt, err := asynq.ParseRedisURI(d.Env["REDIS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspector(opt)
	t.Cleanup(func() { _ = insp.Close() })
	media := jobs.QueuesFor(d.Env["MEDIASYNC_NAMESPACE"]).Media
	if err := insp.PauseQueue(media); err != nil {
		t.Fatal(err)
	}
	w := d.StartWorker(t)
	code, stdout, stderr := d.Enqueue(t, time.Minute, "backfill",
		"--since", start.Format(time.DateOnly), "--until", start.AddDate(0, 0, days).Format(time.DateOnly))
	if code != 0 {
		t.Fatalf("enqueue backfill exited %d: %s %s", code, stdout, stderr)
	}
	id := strings.TrimSpace(stdout)
	var status string
	testenv.WaitFor(t, 90*time.Second, "status says listing waits on the backlog", func() bool {
		_, status, _ = d.Enqueue(t, time.Minute, "status", id)
		return strings.Contains(status, "listing:") && strings.Contains(e2etest.StatusValue(t, status, "listing"), "waiting since")
	}, workerLog(w.Logs))
	t.Logf("while the media queue is held:\n%s", status)
	if got := e2etest.StatusValue(t, status, "listing"); !strings.Contains(got, fmt.Sprintf("queue backlog over %d", jobs.DefaultMaxBacklog)) {
		t.Fatalf("listing: %s, want the backlog it waits on", got)
	}
	if err := insp.UnpauseQueue(media); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = d.Enqueue(t, 2*time.Minute, "status", id, "--wait")
	if code != 0 {
		t.Fatalf("status --wait exited %d\nstdout:\n%s\nstderr:\n%s\nworker:\n%s", code, stdout, stderr, lastLines(w.Logs(), 60))
	}
	if strings.Contains(stdout, "listing:") {
		t.Fatalf("a finished run still says what listing waits on:\n%s", stdout)
	}
	d.CheckArchived(t, in, "archived")
}
