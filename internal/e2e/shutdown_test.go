package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/internal/testenv"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// SIGTERM lets a worker finish or hand back what it is doing: it exits
// cleanly within its shutdown timeout while downloads are in flight, and a
// worker started afterwards completes the run with every media archived
// and deleted exactly once, never before its copy was in S3.
func TestSigtermDrainsOrHandsBack(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{Emulator: twiliotest.Config{
		// Slow bodies keep downloads in flight when SIGTERM arrives.
		Faults: twiliotest.Faults{BodyBytesPerSecond: 256 << 10},
	}})
	start := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	_, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Messages: 40, Start: start, End: start.AddDate(0, 0, 2), MinMediaSize: 64 << 10, MaxMediaSize: 200 << 10,
		MaxMediaPerMessage: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	in, _ := d.MediaIn(start, start.AddDate(0, 0, 2))
	w := d.StartWorker(t, "WORKER_SHUTDOWN_TIMEOUT=2s")

	code, stdout, stderr := d.Enqueue(t, time.Minute, "backfill", "--since", "2026-04-01", "--until", "2026-04-03", "--delete")
	if code != 0 {
		t.Fatalf("enqueue exited %d: %s %s", code, stdout, stderr)
	}
	runID := strings.TrimSpace(stdout)

	// Wait until downloads are under way, then stop the worker.
	testenv.WaitFor(t, time.Minute, "downloads under way", func() bool { return d.Emu.Stats().ByRoute["media.content"] >= 3 }, workerLog(w.Logs))
	stopped := time.Now()
	if err := w.Stop(20 * time.Second); err != nil {
		t.Fatalf("worker did not exit cleanly on SIGTERM: %v\n%s", err, w.Logs())
	}
	if took := time.Since(stopped); took > 15*time.Second {
		t.Fatalf("worker took %s to stop with a 2s shutdown timeout", took)
	}
	if !strings.Contains(w.Logs(), "worker stopped") {
		t.Fatalf("no clean stop in the log:\n%s", w.Logs())
	}

	w2 := d.StartWorker(t)
	code, stdout, stderr = d.Enqueue(t, 3*time.Minute, "status", runID, "--wait")
	if code != 0 {
		t.Fatalf("status --wait exited %d\nstdout:\n%s\nstderr:\n%s\nworker:\n%s", code, stdout, stderr, w2.Logs())
	}
	if got := e2etest.StatusValue(t, stdout, "media deleted"); got != fmt.Sprint(len(in)) {
		t.Fatalf("media deleted %s, want %d", got, len(in))
	}
	d.CheckArchived(t, in, "deleted")
	// A DELETE cut off by the shutdown timeout may have reached Twilio
	// unrecorded: the next worker sends it again and takes Twilio's 404 as
	// deleted. Each media is deleted once; a repeat is only such a resend.
	early, attempts := d.EarlyDeletes()
	if len(early) > 0 || attempts < len(in) {
		t.Fatalf("early deletes %v; %d DELETEs for %d media", early, attempts, len(in))
	}
	deleted := map[string]int{}
	for _, del := range d.Emu.Deletes(0) {
		deleted[del.MediaSID]++
	}
	for sid, n := range deleted {
		if n != 1 {
			t.Fatalf("media %s deleted %d times", sid, n)
		}
	}
	if len(deleted) != len(in) || attempts > len(in)+8 {
		t.Fatalf("%d media deleted by %d DELETEs, want %d, each at most resent once per task cut off", len(deleted), attempts, len(in))
	}
}
