package e2e

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/internal/testenv"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// scrape reads the worker's /metrics as Prometheus does: one sample a
// line, its name and labels (as the server wrote them, labels sorted) then
// its value.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sum adds the samples of a metric whose labels contain every one of
// want (`code="500"`).
func sum(samples map[string]float64, name string, want ...string) float64 {
	total := 0.0
	for k, v := range samples {
		base, labels, _ := strings.Cut(k, "{")
		if base != name {
			continue
		}
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(labels, w)
		}
		if ok {
			total += v
		}
	}
	return total
}

func httpStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// After two runs, the worker's /metrics counts what the catalog recorded
// of them: media archived, reused (archived by the first run, deleted by
// the second), deleted, held (a legal hold stops their delete), none gone
// or failed, and their bytes; each request Twilio (the emulator) answered,
// by status, 500s included; the runs by state, the tasks' durations, the
// limiter's waits, the queues and the build's version. /livez and /readyz
// answer.
func TestMetricsCountTheRun(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{Emulator: twiliotest.Config{
		// Some answers fail and are retried: each attempt is a request.
		Faults: twiliotest.Faults{ErrorRate: 0.05},
	}})
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	if _, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Messages: 30, Start: start, End: start.AddDate(0, 0, 2), MaxMediaPerMessage: 3,
		MinMediaSize: 1 << 10, MaxMediaSize: 64 << 10,
	}); err != nil {
		t.Fatal(err)
	}
	in, _ := d.MediaIn(start, start.AddDate(0, 0, 2))
	var heldMsg string
	for m := range d.Emu.Messages(d.Account.SID) {
		if m.NumMedia > 0 && !m.DateSent.Before(start.AddDate(0, 0, 1)) {
			heldMsg = m.SID
			break
		}
	}
	if heldMsg == "" {
		t.Fatal("no message with media on the second day")
	}
	addr := freeAddr(t)
	w := d.StartWorker(t, "HTTP_ADDR="+addr)
	testenv.WaitFor(t, 30*time.Second, "/readyz answers 200", func() bool {
		code, _ := httpStatus(t, "http://"+addr+"/readyz")
		return code == http.StatusOK
	}, workerLog(w.Logs))
	if code, body := httpStatus(t, "http://"+addr+"/readyz"); !strings.Contains(body, "postgres ok") || !strings.Contains(body, "store ok") {
		t.Fatalf("/readyz %d %q: want each dependency named ok", code, body)
	}
	if code, _ := httpStatus(t, "http://"+addr+"/livez"); code != http.StatusOK {
		t.Fatalf("/livez %d", code)
	}
	before := len(d.Emu.Requests())

	for _, args := range [][]string{
		{"backfill", "--since", "2026-05-01", "--until", "2026-05-02", "--wait"},
		{"hold", "add", "--reason", "metrics test", "--message", heldMsg},
		{"backfill", "--since", "2026-05-01", "--until", "2026-05-03", "--delete", "--wait"},
	} {
		if code, stdout, stderr := d.Enqueue(t, 3*time.Minute, args...); code != 0 {
			t.Fatalf("enqueue %v exited %d\n%s\n%s\n%s", args, code, stdout, stderr, w.Logs())
		}
	}
	var (
		archived, reused, deleted, gone, failed, held, suspect int
		bytes, reusedBytes                                     int64
	)
	err := d.Pool.QueryRow(t.Context(), `
		SELECT sum(media_archived), sum(media_reused), sum(media_deleted), sum(media_gone), sum(media_failed),
			sum(media_held), sum(media_suspect), sum(bytes_archived)
		FROM run_progress`).
		Scan(&archived, &reused, &deleted, &gone, &failed, &held, &suspect, &bytes)
	if err != nil {
		t.Fatal(err)
	}
	// bytes_archived counts a reused media's bytes again; the counter
	// counts bytes copied.
	err = d.Pool.QueryRow(t.Context(), `
		SELECT coalesce(sum(m.size_bytes), 0) FROM run_media d JOIN media m ON m.sid = d.media_sid WHERE d.reused`).Scan(&reusedBytes)
	if err != nil {
		t.Fatal(err)
	}
	if reused == 0 || held == 0 || deleted+held != len(in) || archived != len(in)+reused {
		t.Fatalf("the runs archived %d (reused %d), deleted %d, held %d of %d media: the test needs each", archived, reused, deleted, held, len(in))
	}

	m := scrape(t, addr)
	src := `source="messaging"`
	for _, c := range []struct {
		result string
		want   int
	}{
		// The catalog counts a reused media as archived, and a deleted or
		// held one as archived too; the counters count each outcome once.
		{"archived", archived - reused}, {"reused", reused}, {"deleted", deleted},
		{"gone", gone}, {"failed", failed}, {"held", held}, {"suspect", suspect},
	} {
		if got := sum(m, "mediasync_media_total", src, `result="`+c.result+`"`); got != float64(c.want) {
			t.Errorf("mediasync_media_total{result=%q} = %v, the catalog says %d", c.result, got, c.want)
		}
	}
	if got := sum(m, "mediasync_archived_bytes_total", src); got != float64(bytes-reusedBytes) {
		t.Errorf("mediasync_archived_bytes_total = %v, the catalog says %d bytes copied", got, bytes-reusedBytes)
	}

	// Every request the emulator answered, by status, as the worker
	// counted it (enqueue sends none).
	byStatus := map[int]float64{}
	for _, r := range d.Emu.Requests()[before:] {
		byStatus[r.Status]++
	}
	if byStatus[500]+byStatus[503] == 0 {
		t.Fatalf("the emulator failed no request: the test proves nothing of error codes")
	}
	for status, n := range byStatus {
		if got := sum(m, "mediasync_twilio_requests_total", `code="`+strconv.Itoa(status)+`"`); got != n {
			t.Errorf("mediasync_twilio_requests_total{code=\"%d\"} = %v, the emulator answered %v", status, got, n)
		}
	}
	if got := sum(m, "mediasync_twilio_requests_total", `api="delete"`, `code="204"`); got != float64(deleted) {
		t.Errorf("DELETEs answered 204: %v, want %d", got, deleted)
	}

	for _, c := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"mediasync_runs", []string{`kind="backfill"`, `state="succeeded"`}, 2},
		{"mediasync_task_duration_seconds_count", []string{`type="message:archive"`}, 1},
		{"mediasync_task_duration_seconds_count", []string{`type="run:start"`}, 1},
		{"mediasync_ratelimit_wait_seconds_count", nil, float64(len(in))},
		{"mediasync_build_info", []string{`version="` + e2etest.Version + `"`}, 1},
	} {
		if got := sum(m, c.name, c.labels...); got < c.min {
			t.Errorf("%s%v = %v, want at least %v", c.name, c.labels, got, c.min)
		}
	}
	for _, state := range []string{"pending", "active", "scheduled", "retry", "archived"} {
		found := false
		for k := range m {
			found = found || strings.HasPrefix(k, "mediasync_queue_tasks{") && strings.Contains(k, `state="`+state+`"`)
		}
		if !found {
			t.Errorf("no mediasync_queue_tasks{state=%q} series", state)
		}
	}
	if t.Failed() {
		t.Logf("worker:\n%s", lastLines(w.Logs(), 40))
	}
}

// On SIGTERM the worker is no longer ready (503) while its tasks in flight
// finish, and still alive: an orchestrator stops sending it work without
// killing it mid-task.
func TestReadyzFailsWhileDraining(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{Emulator: twiliotest.Config{
		// Slow bodies keep downloads in flight when SIGTERM arrives.
		Faults: twiliotest.Faults{BodyBytesPerSecond: 64 << 10},
	}})
	start := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	if _, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Messages: 20, Start: start, End: start.AddDate(0, 0, 1), MinMediaSize: 256 << 10, MaxMediaSize: 512 << 10,
		MaxMediaPerMessage: 2,
	}); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	w := d.StartWorker(t, "HTTP_ADDR="+addr, "WORKER_SHUTDOWN_TIMEOUT=8s")
	if code, _, stderr := d.Enqueue(t, time.Minute, "backfill", "--since", "2026-04-01", "--until", "2026-04-02"); code != 0 {
		t.Fatalf("backfill: %s", stderr)
	}
	testenv.WaitFor(t, time.Minute, "downloads under way", func() bool { return d.Emu.Stats().ByRoute["media.content"] >= 2 }, workerLog(w.Logs))
	if code, body := httpStatus(t, "http://"+addr+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz before SIGTERM: %d %s", code, body)
	}

	w.Terminate()
	testenv.WaitFor(t, 5*time.Second, "/readyz answers 503", func() bool {
		code, _ := httpStatus(t, "http://"+addr+"/readyz")
		return code == http.StatusServiceUnavailable
	}, workerLog(w.Logs))
	if w.Exited() {
		t.Fatal("the worker had exited: nothing was draining")
	}
	if code, body := httpStatus(t, "http://"+addr+"/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "draining") {
		t.Errorf("/healthz (the old name of /readyz) while draining: %d %q", code, body)
	}
	if code, _ := httpStatus(t, "http://"+addr+"/livez"); code != http.StatusOK {
		t.Errorf("/livez while draining: %d, want 200 (the process serves)", code)
	}
	if err := w.Stop(30 * time.Second); err != nil {
		t.Fatalf("worker did not exit cleanly: %v\n%s", err, w.Logs())
	}
}
