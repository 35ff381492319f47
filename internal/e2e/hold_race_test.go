package e2e

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"

	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/internal/testenv"
	"github.com/mediasync/mediasync/jobs"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// A legal hold placed while a --delete run has many deletes claimed and
// queued behind a slow Twilio wins every race: once `enqueue hold add` has
// returned, no DELETE of a media it covers reaches Twilio. Each covered
// media ends held unless its delete had already gone
// out; every other media is deleted and the run finishes. A covered media
// whose delete was claimed has exactly one audit row saying the hold
// stopped it; one refused before its claim has none (the hold's own row
// says what it covers).
func TestHoldWinsRaceWithClaimedDeletes(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{Emulator: twiliotest.Config{Faults: twiliotest.Faults{
		DeleteLatency: 300 * time.Millisecond,
	}}})
	_, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Messages: 40, Start: faultsStart, End: faultsStart.AddDate(0, 0, 1),
		NoMediaShare: -1, MaxMediaPerMessage: 1, MaxMediaSize: 4 << 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	in, _ := d.MediaIn(faultsStart, faultsStart.AddDate(0, 0, 1))
	// One request at a time across the fleet: the claimed deletes wait at
	// the limiter, each behind a slow DELETE. Archived first, so that the
	// --delete run's tasks are nearly all deletes.
	w := d.StartWorker(t, "TWILIO_MAX_CONCURRENCY=1")
	code, stdout, stderr := d.Enqueue(t, 100*time.Second, "backfill", "--since", faultsStart.Format(time.DateOnly),
		"--until", faultsStart.AddDate(0, 0, 1).Format(time.DateOnly), "--wait")
	if code != 0 {
		t.Fatalf("backfill exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	type result struct {
		code           int
		stdout, stderr string
	}
	backfill := make(chan result, 1)
	go func() {
		code, stdout, stderr := faultsBackfill(t, d, 1)
		backfill <- result{code, stdout, stderr}
	}()
	ctx := context.Background()
	claimedNow := func() []string {
		rows, err := d.Pool.Query(ctx, `SELECT sid FROM media WHERE state = 'archived' AND delete_claimed_at IS NOT NULL`)
		if err != nil {
			t.Fatal(err)
		}
		sids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return sids
	}
	testenv.WaitFor(t, 90*time.Second, "deletes under way, several claimed and waiting", func() bool {
		return len(d.Emu.Deletes(0)) >= 2 && len(claimedNow()) >= 4
	}, workerLog(w.Logs))

	// Hold the media claimed and waiting now, and every other one of those
	// not yet claimed.
	covered := map[string]bool{}       // media SIDs
	claimedAtHold := map[string]bool{} // of them, those claimed and waiting
	for _, sid := range claimedNow() {
		covered[sid] = true
		claimedAtHold[sid] = true
	}
	waiting := len(covered)
	deleted := map[string]bool{}
	for _, del := range d.Emu.Deletes(0) {
		deleted[del.MediaSID] = true
	}
	for i, sid := range slices.Sorted(maps.Keys(in)) {
		if !deleted[sid] && i%2 == 0 {
			covered[sid] = true
		}
	}
	args := []string{"--actor", "legal@example.com", "hold", "add", "--reason", "case 12"}
	for sid := range covered {
		args = append(args, "--message", in[sid])
	}
	code, _, stderr = d.Enqueue(t, time.Minute, args...)
	returned := time.Now()
	if code != 0 {
		t.Fatalf("hold add exited %d: %s", code, stderr)
	}

	var r result
	select {
	case r = <-backfill:
	case <-time.After(3 * time.Minute):
		t.Fatalf("run not finished\n%s", lastLines(w.Logs(), 60))
	}
	if r.code != 0 {
		t.Fatalf("backfill exited %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}

	deletedAt := map[string]time.Time{}
	for _, del := range d.Emu.Deletes(0) {
		deletedAt[del.MediaSID] = del.Time
		if covered[del.MediaSID] && !del.Time.Before(returned) {
			t.Errorf("media %s is held, but its DELETE reached Twilio at %s, after hold add returned at %s",
				del.MediaSID, del.Time.Format(time.StampMicro), returned.Format(time.StampMicro))
		}
	}
	held := 0
	for sid := range in {
		var state catalog.MediaState
		if err := d.Pool.QueryRow(ctx, `
			SELECT d.state FROM run_media d JOIN runs r ON r.id = d.run_id WHERE d.media_sid = $1 AND r.delete_media`, sid).Scan(&state); err != nil {
			t.Fatalf("media %s: run outcome: %v", sid, err)
		}
		_, gone := deletedAt[sid]
		switch {
		case !covered[sid]:
			if state != catalog.MediaDeleted || !gone {
				t.Errorf("media %s is not held but ended %s (deleted from Twilio: %v)", sid, state, gone)
			}
		case state == catalog.MediaHeld:
			held++
			var audits int
			if err := d.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = $1 AND subject = $2`,
				catalog.AuditDeleteHeld, sid).Scan(&audits); err != nil {
				t.Fatal(err)
			}
			// A delete the hold stopped after its claim is audited once; one
			// refused before it was claimed is the run's outcome only (it
			// may have been claimed after claimedNow() was read: at most one).
			if want := 1; (claimedAtHold[sid] && audits != want) || audits > want {
				t.Errorf("media %s ended held with %d audit rows, want %d (claimed when held: %v)",
					sid, audits, want, claimedAtHold[sid])
			}
		case state != catalog.MediaDeleted:
			t.Errorf("held media %s ended %s, want held (or deleted before the hold)", sid, state)
		}
	}
	if held == 0 {
		t.Fatalf("no covered media ended held: the hold raced nothing")
	}
	if early, _ := d.EarlyDeletes(); len(early) > 0 {
		t.Fatalf("deleted before the copy was in S3: %v", early)
	}
	t.Logf("%d media, %d covered by the hold (%d claimed and waiting when it was placed), %d ended held",
		len(in), len(covered), waiting, held)
}

// A delete task runs only for a media of its run's account that its run
// marked to delete: a task naming any other (forged, or left from a bug) is
// refused for good, and no DELETE is sent.
func TestDeleteTaskOutOfScopeIsRefused(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{})
	in, w := archivedDay(t, d)
	sids := slices.Sorted(maps.Keys(in))
	if len(sids) < 2 {
		t.Fatalf("want at least 2 media, got %d", len(sids))
	}
	notWanted, otherAccount := sids[0], sids[1]

	// A live --delete run of this account that never listed notWanted,
	// and whose row for otherAccount is marked to delete while the media
	// row says it is another account's.
	ctx := context.Background()
	cat := catalog.NewCatalog(d.Pool)
	run, err := cat.CreateRun(ctx, catalog.RunSpec{Kind: catalog.KindBackfill, AccountSID: d.Account.SID,
		Since: faultsStart.AddDate(0, 0, 10), Until: faultsStart.AddDate(0, 0, 11), Delete: true, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cat.StartRun(ctx, run.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Pool.Exec(ctx, `
		INSERT INTO run_media (run_id, media_sid, message_sid, state, delete_wanted) VALUES ($1, $2, $3, 'archived', true)`,
		run.ID, otherAccount, in[otherAccount]); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Pool.Exec(ctx, `UPDATE media SET account_sid = $2 WHERE sid = $1`,
		otherAccount, "AC"+strings.Repeat("9", 32)); err != nil {
		t.Fatal(err)
	}

	redisOpt, err := asynq.ParseRedisURI(d.Env["REDIS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClient(redisOpt)
	t.Cleanup(func() { _ = client.Close() })
	insp := asynq.NewInspector(redisOpt)
	t.Cleanup(func() { _ = insp.Close() })
	q := jobs.QueuesFor(d.Env["MEDIASYNC_NAMESPACE"])
	// The delete tasks of workers before #14 (still in Redis after an
	// upgrade), and the message task of otherAccount's message.
	for _, sid := range []string{notWanted, otherAccount} {
		task, err := jobs.NewDeleteMediaTask(q, jobs.MediaPayload{RunID: run.ID, MediaSID: sid})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Enqueue(task); err != nil {
			t.Fatal(err)
		}
	}
	msgTask, err := jobs.NewArchiveMessageTask(q, jobs.ArchiveMessagePayload{RunID: run.ID, MessageSID: in[otherAccount]})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Enqueue(msgTask); err != nil {
		t.Fatal(err)
	}
	var archived []*asynq.TaskInfo
	testenv.WaitFor(t, time.Minute, "the delete tasks and the message task refused", func() bool {
		if _, attempts := d.EarlyDeletes(); attempts != 0 {
			t.Fatalf("%d DELETEs sent for tasks out of scope", attempts)
		}
		archived, err = insp.ListArchivedTasks(q.Media)
		if err != nil {
			t.Fatalf("list archived tasks: %v", err)
		}
		return len(archived) == 3
	}, workerLog(w.Logs))
	reasons := map[string]string{}
	for _, ti := range archived {
		reasons[string(ti.Payload)] = ti.LastErr
	}
	if reason, ok := reasons[string(msgTask.Payload())]; !ok || !strings.Contains(reason, "belongs to account") {
		t.Errorf("message task of %s's message: refused %v with %q, want %q", otherAccount, ok, reason, "belongs to account")
	}
	for sid, want := range map[string]string{notWanted: "did not mark it to delete", otherAccount: "belongs to account"} {
		found := false
		for payload, reason := range reasons {
			if strings.Contains(payload, sid) {
				found = true
				if !strings.Contains(reason, want) {
					t.Errorf("delete task of %s refused with %q, want %q", sid, reason, want)
				}
			}
		}
		if !found {
			t.Errorf("no refused delete task of %s in %v", sid, reasons)
		}
		if md, _ := d.Emu.Media(sid); md.Deleted {
			t.Errorf("media %s was deleted from Twilio by a task out of its scope", sid)
		}
	}
	if _, attempts := d.EarlyDeletes(); attempts != 0 {
		t.Fatalf("%d DELETEs sent for tasks out of scope", attempts)
	}
}
