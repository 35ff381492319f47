package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// Two worker processes on one Redis share a run: every in-range media is
// archived once and deleted once, and never before its copy is in S3.
func TestTwoWorkersShareARun(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{})
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	_, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Messages: 200, Start: start, End: start.AddDate(0, 0, 6), MaxMediaPerMessage: 3, MaxMediaSize: 32 << 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	in, out := d.MediaIn(start.AddDate(0, 0, 1), start.AddDate(0, 0, 5))
	w1, w2 := d.StartWorker(t), d.StartWorker(t)

	code, stdout, stderr := d.Enqueue(t, 3*time.Minute, "backfill", "--since", "2026-03-02", "--until", "2026-03-06", "--delete", "--wait")
	if code != 0 {
		t.Fatalf("enqueue exited %d\nstdout:\n%s\nstderr:\n%s\nworker 1:\n%s\nworker 2:\n%s", code, stdout, stderr, w1.Logs(), w2.Logs())
	}
	if got := e2etest.StatusValue(t, stdout, "media deleted"); got != fmt.Sprint(len(in)) {
		t.Fatalf("media deleted %s, want %d", got, len(in))
	}
	d.CheckArchived(t, in, "deleted")
	early, attempts := d.EarlyDeletes()
	if len(early) > 0 {
		t.Fatalf("deleted before the copy was in S3: %v", early)
	}
	if attempts != len(in) {
		t.Fatalf("%d DELETEs for %d media", attempts, len(in))
	}
	for sid := range out {
		if md, _ := d.Emu.Media(sid); md.Deleted {
			t.Fatalf("media %s outside the range was deleted", sid)
		}
	}
}
