package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/internal/testenv"
	"github.com/mediasync/mediasync/jobs"
)

// A deployment upgraded mid-run (issue #14) may still hold, in Redis, the
// media:delete tasks of the per-media graph: a worker of the message graph
// handles each by queueing its message's message:archive task (after the
// old task's scope checks), which does the work, so every media they stand
// for is deleted, each only after its own proof (the guard sees no early
// DELETE), and the run finishes.
func TestOldDeleteTasksLeftByAnUpgradeStillDelete(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{})
	in, w := archivedDay(t, d)

	// A --delete run whose media the old graph had archived and queued a
	// media:delete task for each (run_media archived, delete_wanted).
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
	for sid, msg := range in {
		if _, err := d.Pool.Exec(ctx, `
			INSERT INTO run_media (run_id, media_sid, message_sid, state, delete_wanted, reused)
			VALUES ($1, $2, $3, 'archived', true, true)`, run.ID, sid, msg); err != nil {
			t.Fatal(err)
		}
	}
	redisOpt, err := asynq.ParseRedisURI(d.Env["REDIS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClient(redisOpt)
	t.Cleanup(func() { _ = client.Close() })
	q := jobs.QueuesFor(d.Env["MEDIASYNC_NAMESPACE"])
	for sid := range in {
		task, err := jobs.NewDeleteMediaTask(q, jobs.MediaPayload{RunID: run.ID, MediaSID: sid})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Enqueue(task); err != nil {
			t.Fatal(err)
		}
	}
	testenv.WaitFor(t, 2*time.Minute, "the run finished", func() bool {
		r, err := cat.GetRun(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		return r.Finished()
	}, workerLog(w.Logs))
	if r, _ := cat.GetRun(ctx, run.ID); r.State != catalog.RunSucceeded {
		t.Fatalf("run %s, want succeeded: %s", r.State, r.Error)
	}
	d.CheckArchived(t, in, catalog.MediaDeleted)
	for sid := range in {
		if md, _ := d.Emu.Media(sid); !md.Deleted {
			t.Errorf("media %s not deleted from Twilio", sid)
		}
	}
	if early, _ := d.EarlyDeletes(); len(early) != 0 {
		t.Fatalf("DELETEs before the copy was proven: %v", early)
	}
}
