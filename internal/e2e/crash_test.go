package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/internal/testenv"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// A worker killed with SIGKILL three times during a --delete run, at
// moments drawn at random (mid-download, mid-delete, late in the run),
// loses nothing: the run completes once asynq hands the dead workers' tasks
// to a new one, every in-range media is in S3 byte for byte with exactly one
// row, nothing was deleted before its copy was checked, and nothing is left
// half-done.
func TestKill9MidRunLosesNothing(t *testing.T) {
	t.Parallel()
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	t.Logf("kill moments drawn with seed %d", seed)

	d := e2etest.New(t, e2etest.Options{Emulator: twiliotest.Config{
		// Twilio's own latency: workers spend their time inside Twilio
		// calls, so kills land between a commit and what follows it.
		Faults: twiliotest.Faults{Latency: 30 * time.Millisecond},
	}})
	run := startDeleteRun(t, d, time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), 150)
	n := len(run.in)

	w := d.StartWorker(t)
	workers := []*e2etest.Process{w}
	var deletes int
	deleted := func() int { deletes += len(d.Emu.Deletes(deletes)); return deletes }
	downloads := func() int { return int(d.Emu.Stats().ByRoute["media.content"]) }
	kills := []struct {
		what   string
		count  func() int
		lo, hi float64 // the kill comes once count reaches a share of the media drawn from [lo, hi)
	}{
		{"mid-archive", downloads, 0.1, 0.3},
		{"mid-delete", deleted, 0.3, 0.5},
		{"late in the run", deleted, 0.6, 0.85},
	}
	for i, k := range kills {
		threshold := int(float64(n) * (k.lo + (k.hi-k.lo)*rng.Float64()))
		testenv.WaitFor(t, 3*time.Minute, "kill "+k.what, func() bool { return k.count() >= threshold }, workerLog(w.Logs))
		time.Sleep(time.Duration(rng.IntN(250)) * time.Millisecond) // a random instant past the threshold
		w.Kill()
		t.Logf("kill %d (%s): %d downloads, %d deletes of %d media so far", i+1, k.what, downloads(), deleted(), n)
		w = d.StartWorker(t)
		workers = append(workers, w)
	}

	// asynq gives a dead worker's tasks back once their lease (30s) has
	// been expired for 30s, at its recoverer's next pass (every minute).
	code, stdout, stderr := d.Enqueue(t, 4*time.Minute, "status", run.id, "--wait")
	if code != 0 {
		t.Fatalf("status --wait exited %d\nstdout:\n%s\nstderr:\n%s\nlast worker:\n%s", code, stdout, stderr, lastLines(w.Logs(), 60))
	}
	requireRunSettled(t, d, run, stdout, nil)
	reportRepeats(t, d, run, workers)
}

// deleteRun is a backfill with --delete over part of a generated dataset.
type deleteRun struct {
	id      string
	in, out map[string]string // media SID → message SID, inside and outside the range
}

// startDeleteRun generates about messages×2 media of at most 32 KiB over
// six days from start and queues a backfill of days two to five, with
// --delete; the run id is what enqueue printed.
func startDeleteRun(t *testing.T, d *e2etest.Deployment, start time.Time, messages int) deleteRun {
	t.Helper()
	_, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Messages: messages, Start: start, End: start.AddDate(0, 0, 6),
		MaxMediaPerMessage: 4, MinMediaSize: 512, MaxMediaSize: 32 << 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	since, until := start.AddDate(0, 0, 1), start.AddDate(0, 0, 5)
	in, out := d.MediaIn(since, until)
	if len(in) < 100 || len(out) == 0 {
		t.Fatalf("dataset has %d media in range and %d outside: too few to test with", len(in), len(out))
	}
	code, stdout, stderr := d.Enqueue(t, time.Minute, "backfill",
		"--since", since.Format(time.DateOnly), "--until", until.Format(time.DateOnly), "--delete")
	if code != 0 {
		t.Fatalf("enqueue backfill exited %d: %s %s", code, stdout, stderr)
	}
	return deleteRun{id: strings.TrimSpace(stdout), in: in, out: out}
}

// requireRunSettled fails t unless the run ended as a user expects after
// any crash or outage: succeeded, every in-range media archived byte for
// byte with one row and deleted from Twilio exactly once, nothing outside
// the range touched, no DELETE before the copy was in S3 (but those the
// caller excuses, by media SID, with the reason), and no row left
// half-done.
func requireRunSettled(t *testing.T, d *e2etest.Deployment, run deleteRun, status string, excused map[string]string) {
	t.Helper()
	if got := e2etest.StatusValue(t, status, "media deleted"); got != fmt.Sprint(len(run.in)) {
		t.Fatalf("media deleted %s, want %d\n%s", got, len(run.in), status)
	}
	d.CheckArchived(t, run.in, "deleted")
	msgs := slices.Sorted(maps.Values(run.in))
	d.CheckMessageRecords(t, slices.Compact(msgs))

	early, _ := d.EarlyDeletes()
	for _, e := range early {
		sid, _, _ := strings.Cut(e, ":")
		if why, ok := excused[sid]; ok {
			t.Logf("guard could not read the copy of %s when its DELETE arrived (%s); excused: %s", sid, e, why)
			continue
		}
		t.Errorf("DELETE before the copy was in S3: %s", e)
	}
	times := map[string]int{}
	for _, del := range d.Emu.Deletes(0) {
		times[del.MediaSID]++
	}
	for sid := range run.in {
		if times[sid] != 1 {
			t.Errorf("media %s deleted from Twilio %d times, want 1", sid, times[sid])
		}
	}
	for sid := range run.out {
		if times[sid] != 0 {
			t.Errorf("media %s, outside the range, was deleted", sid)
		}
	}

	ctx := context.Background()
	var state string
	var rows, runMedia, runDeleted, messagesOpen, windowsOpen, unfinished, halfDeleted int
	err := d.Pool.QueryRow(ctx, `
		SELECT r.state,
			(SELECT count(*) FROM media),
			(SELECT count(*) FROM run_media WHERE run_id = r.id),
			(SELECT count(*) FROM run_media WHERE run_id = r.id AND state = 'deleted'),
			(SELECT count(*) FROM run_messages WHERE run_id = r.id AND state <> 'listed'),
			(SELECT count(*) FROM run_windows WHERE run_id = r.id AND state <> 'done'),
			(SELECT count(*) FROM media WHERE state IN ('pending', 'failed')),
			(SELECT count(*) FROM media WHERE delete_claimed_at IS NOT NULL AND deleted_at IS NULL)
		FROM runs r WHERE r.id = $1`, run.id).
		Scan(&state, &rows, &runMedia, &runDeleted, &messagesOpen, &windowsOpen, &unfinished, &halfDeleted)
	if err != nil {
		t.Fatalf("read the run's rows: %v", err)
	}
	n := len(run.in)
	if state != "succeeded" || rows != n || runMedia != n || runDeleted != n || messagesOpen+windowsOpen+unfinished+halfDeleted != 0 {
		t.Fatalf("run %s, %d media rows, %d run_media (%d deleted) for %d media; %d messages and %d days not done; "+
			"%d media pending or failed; %d claimed for delete but not deleted",
			state, rows, runMedia, runDeleted, n, messagesOpen, windowsOpen, unfinished, halfDeleted)
	}
}

// reportRepeats logs the work that crashes or outages made mediasync do
// again: repeated downloads and DELETEs (harmless, by design) and task
// attempts that failed (each uses up one of the task's retries).
func reportRepeats(t *testing.T, d *e2etest.Deployment, run deleteRun, workers []*e2etest.Process) {
	t.Helper()
	_, attempts := d.EarlyDeletes()
	var recorded int
	if err := d.Pool.QueryRow(context.Background(), `SELECT coalesce(sum(attempts), 0) FROM media`).Scan(&recorded); err != nil {
		t.Fatalf("count failed attempts: %v", err)
	}
	failed, maxRetry := 0, 0
	for _, w := range workers {
		for line := range strings.SplitSeq(w.Logs(), "\n") {
			var l struct {
				Message string `json:"message"`
				Retry   int    `json:"retry"`
			}
			if json.Unmarshal([]byte(line), &l) == nil && l.Message == "task failed" {
				failed++
				maxRetry = max(maxRetry, l.Retry)
			}
		}
	}
	t.Logf("%d media: %d downloads, %d DELETEs; %d failed task attempts logged (most retries of one task: %d), %d recorded on media rows",
		len(run.in), d.Emu.Stats().ByRoute["media.content"], attempts, failed, maxRetry, recorded)
}

// workerLog gives WaitFor the tail of a worker's log, for its failure.
func workerLog(logs func() string) func() string {
	return func() string { return "worker log:\n" + lastLines(logs(), 60) }
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
