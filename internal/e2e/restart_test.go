package e2e

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/internal/testenv"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// slowTwilio makes each Twilio call take a while, so that a run lasts long
// enough for an outage to land in the middle of it.
var slowTwilio = twiliotest.Config{Faults: twiliotest.Faults{Latency: 30 * time.Millisecond}}

// deletesReach polls until the emulator has logged at least a share of n
// deletes drawn from [lo, hi): the run is then archiving and deleting.
func deletesReach(t *testing.T, d *e2etest.Deployment, w *e2etest.Process, n int, lo, hi float64) int {
	t.Helper()
	threshold := int(float64(n) * (lo + (hi-lo)*rand.Float64()))
	testenv.WaitFor(t, 3*time.Minute, "deletes under way", func() bool { return len(d.Emu.Deletes(0)) >= threshold }, workerLog(w.Logs))
	return len(d.Emu.Deletes(0))
}

// holdOutage keeps a service down for length, failing t if the worker
// exits meanwhile: losing a service must not kill it.
func holdOutage(t *testing.T, w *e2etest.Process, length time.Duration) {
	t.Helper()
	end := time.Now().Add(length)
	for time.Now().Before(end) {
		if w.Exited() {
			t.Fatalf("the worker exited during the outage:\n%s", lastLines(w.Logs(), 60))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Redis restarting without its data mid-run loses every queued task; the
// worker stays up, the reconciler rebuilds the lost work from Postgres, and
// the run completes with nothing lost, duplicated or deleted early.
func TestRedisRestartMidRunLosesNothing(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedisServer(t)
	d := e2etest.New(t, e2etest.Options{Emulator: slowTwilio, RedisURL: r.URL})
	run := startDeleteRun(t, d, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), 150)
	w := d.StartWorker(t)

	at := deletesReach(t, d, w, len(run.in), 0.2, 0.6)
	r.Restart()
	t.Logf("Redis restarted empty after %d of %d deletes", at, len(run.in))

	// The reconciler re-queues work that has not moved for a minute, every
	// 30s: expect the run to resume within about two minutes.
	code, stdout, stderr := d.Enqueue(t, 4*time.Minute, "status", run.id, "--wait")
	if code != 0 {
		t.Fatalf("status --wait exited %d\nstdout:\n%s\nstderr:\n%s\nworker:\n%s", code, stdout, stderr, lastLines(w.Logs(), 60))
	}
	if w.Exited() {
		t.Fatalf("the worker exited:\n%s", lastLines(w.Logs(), 60))
	}
	requireRunSettled(t, d, run, stdout, nil)
	reportRepeats(t, d, run, []*e2etest.Process{w})
}

// Postgres shut down (fast) mid-run and started again a few seconds later:
// the worker survives, its pool reconnects, tasks that failed meanwhile are
// retried, and the run completes with nothing lost or half-done.
func TestPostgresRestartMidRunLosesNothing(t *testing.T) {
	t.Parallel()
	pg := testenv.StartPostgresServer(t)
	d := e2etest.New(t, e2etest.Options{Emulator: slowTwilio, AdminDatabaseURL: pg.AdminURL})
	run := startDeleteRun(t, d, time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), 150)
	w := d.StartWorker(t)

	at := deletesReach(t, d, w, len(run.in), 0.2, 0.6)
	pg.Stop()
	down := time.Duration(2000+rand.IntN(3000)) * time.Millisecond
	holdOutage(t, w, down)
	pg.Start()
	t.Logf("Postgres down for %v after %d of %d deletes", down, at, len(run.in))

	code, stdout, stderr := d.Enqueue(t, 4*time.Minute, "status", run.id, "--wait")
	if code != 0 {
		t.Fatalf("status --wait exited %d\nstdout:\n%s\nstderr:\n%s\nworker:\n%s", code, stdout, stderr, lastLines(w.Logs(), 60))
	}
	if w.Exited() {
		t.Fatalf("the worker exited:\n%s", lastLines(w.Logs(), 60))
	}
	requireRunSettled(t, d, run, stdout, nil)
	reportRepeats(t, d, run, []*e2etest.Process{w})
}

// The S3 server down for ten seconds mid-run: no media is deleted from
// Twilio on a proof taken while S3 was down, the worker survives, and once
// S3 is back the run completes with every copy checked.
//
// Each failed attempt during an outage costs the media one of its 13
// attempts (backoff 2s·2^n capped at 5 min, jittered to [½, 1)): a
// ten-second outage costs about three; the 13 are spent after 14 to 28
// minutes.
func TestS3OutageMidRunDeletesNothingUnchecked(t *testing.T) {
	t.Parallel()
	s3 := testenv.StartS3Server(t)
	d := e2etest.New(t, e2etest.Options{Emulator: slowTwilio, S3: s3.S3Server})
	run := startDeleteRun(t, d, time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC), 150)
	w := d.StartWorker(t)

	at := deletesReach(t, d, w, len(run.in), 0.2, 0.6)
	stopping := time.Now()
	s3.Stop()
	// S3 answers until its process is gone: a check it answered while
	// stopping was taken while it was up.
	stopped := time.Now()
	holdOutage(t, w, 10*time.Second)
	s3.Start()
	restarted := time.Now()
	t.Logf("S3 down for %v after %d of %d deletes", restarted.Sub(stopped).Round(time.Millisecond), at, len(run.in))

	// A delete whose copy was verified just before S3 went away may reach
	// Twilio just after: its proof was taken while S3 was up. Any DELETE
	// during the outage must carry such a proof (verified_at is set by the
	// claim that follows the check, and never moves once the row says
	// deleted). The claim commits a moment after S3's answer (a Postgres
	// round trip, longer on a loaded machine), so a claim up to claimLag
	// after the stop may carry a check S3 answered before it; a worker
	// that deleted without a check would claim throughout the outage.
	const claimLag = 2 * time.Second
	excused := map[string]string{}
	ctx := context.Background()
	// A DELETE the guard held up while S3 was down (its own reads of the
	// copy retrying) may reach Twilio after the restart: every delete from
	// the stop on is checked, by when its copy was verified.
	for _, del := range d.Emu.Deletes(0) {
		if del.Time.Before(stopping) {
			continue
		}
		var verified time.Time
		if err := d.Pool.QueryRow(ctx, `SELECT verified_at FROM media WHERE sid = $1`, del.MediaSID).Scan(&verified); err != nil {
			t.Fatalf("media %s: %v", del.MediaSID, err)
		}
		if verified.After(restarted) {
			continue // checked once S3 was back
		}
		if !verified.Before(stopped.Add(claimLag)) {
			t.Fatalf("media %s deleted at %s while S3 was down (%s to %s, stopped at %s), on a check at %s",
				del.MediaSID, del.Time, stopping, restarted, stopped, verified)
		}
		excused[del.MediaSID] = "its copy was verified at " + verified.String() + ", as S3 stopped"
	}
	t.Logf("%d DELETEs reached Twilio during or after the outage on a check before it", len(excused))

	code, stdout, stderr := d.Enqueue(t, 4*time.Minute, "status", run.id, "--wait")
	if code != 0 {
		t.Fatalf("status --wait exited %d\nstdout:\n%s\nstderr:\n%s\nworker:\n%s", code, stdout, stderr, lastLines(w.Logs(), 60))
	}
	if w.Exited() {
		t.Fatalf("the worker exited:\n%s", lastLines(w.Logs(), 60))
	}
	requireRunSettled(t, d, run, stdout, excused)
	reportRepeats(t, d, run, []*e2etest.Process{w})
}

// Tasks whose retries ran out while their failure could not be recorded
// (Postgres down for over an hour: the 70 retries of a message task are
// spent after 34 to 68 minutes) are archived by asynq while Postgres still
// says their work is outstanding. The reconciler must queue that work again
// although asynq keeps the archived tasks, under the same IDs, for 90 days:
// the run completes instead of hanging forever.
func TestRunCompletesAfterTasksRanOutOfRetries(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedisServer(t)
	d := e2etest.New(t, e2etest.Options{Emulator: slowTwilio, RedisURL: r.URL})
	run := startDeleteRun(t, d, time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), 150)
	// Few tasks at once, so that message tasks are still waiting in the
	// queue (to be archived below) when half the deletes are done: with
	// the default (twice TWILIO_MAX_CONCURRENCY) every remaining message
	// can already be in flight by then, and nothing waits.
	w := d.StartWorker(t, "WORKER_CONCURRENCY=4")

	at := deletesReach(t, d, w, len(run.in), 0.2, 0.5)
	// What asynq does to a task whose last retry fails, done at once to
	// every task waiting in the deployment's queues.
	opt, err := redis.ParseURL(r.URL)
	if err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: opt.Addr})
	t.Cleanup(func() { _ = insp.Close() })
	archived := 0
	for _, q := range []string{d.Env["MEDIASYNC_NAMESPACE"], d.Env["MEDIASYNC_NAMESPACE"] + ".list"} {
		n, err := insp.ArchiveAllPendingTasks(q)
		if err != nil {
			t.Fatalf("archive the tasks of queue %s: %v", q, err)
		}
		archived += n
	}
	if archived == 0 {
		t.Fatalf("no task was waiting to be archived after %d deletes", at)
	}
	t.Logf("archived %d waiting tasks after %d of %d deletes", archived, at, len(run.in))

	// The reconciler re-queues work that has not moved for a minute, every
	// 30s.
	code, stdout, stderr := d.Enqueue(t, 4*time.Minute, "status", run.id, "--wait")
	if code != 0 {
		// Stuck: every goroutine's stack says on what.
		t.Fatalf("status --wait exited %d\nstdout:\n%s\nstderr:\n%s\nworker, then its goroutines:\n%s", code, stdout, stderr, lastLines(w.Dump(), 1500))
	}
	requireRunSettled(t, d, run, stdout, nil)
}
