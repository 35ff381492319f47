package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/internal/testenv"
	"github.com/mediasync/mediasync/jobs"
)

// A task whose payload is corrupt (cut JSON, the wrong shape, a bad run ID
// or SID) can never succeed. A worker rejects it on its first attempt, and
// asynq archives it at once with the reason, although the task allows a
// dozen retries: no retry storm of tasks that cannot work, for every task
// type the worker handles.
func TestCorruptPayloadIsRejectedOnce(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{})
	q := jobs.QueuesFor(d.Env["MEDIASYNC_NAMESPACE"])
	const runID = "01a207c4-813c-7410-a23e-d1c030489966"
	corrupt := []struct{ typ, queue, payload string }{
		{jobs.TypeStartRun, q.List, `{"run_id":`},
		{jobs.TypeListPage, q.List, `{"run_id":"` + runID + `","window":-1,"page":0}`},
		{jobs.TypeArchiveMessage, q.Media, `{"run_id":"` + runID + `","message_sid":"MM1"}`},
		// The graph before #14, still in Redis after an upgrade.
		{jobs.TypeListMessage, q.List, `{"run_id":"` + runID + `","message_sid":"MM1"}`},
		{jobs.TypeArchiveMedia, q.Media, `[]`},
		{jobs.TypeDeleteMedia, q.Media, `{"run_id":"not-a-uuid","media_sid":"ME0123456789abcdef0123456789abcdef"}`},
		{jobs.TypeApplyHold, q.List, `{"hold_id":"1","event":"added"}`},
	}

	redisOpt, err := asynq.ParseRedisURI(d.Env["REDIS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClient(redisOpt)
	t.Cleanup(func() { _ = client.Close() })
	insp := asynq.NewInspector(redisOpt)
	t.Cleanup(func() { _ = insp.Close() })
	for i, c := range corrupt {
		_, err := client.Enqueue(asynq.NewTask(c.typ, []byte(c.payload)),
			asynq.Queue(c.queue), asynq.MaxRetry(12), asynq.TaskID(fmt.Sprintf("corrupt-%d", i)))
		if err != nil {
			t.Fatalf("enqueue %s: %v", c.typ, err)
		}
	}

	w := d.StartWorker(t)
	var archived []*asynq.TaskInfo
	testenv.WaitFor(t, 2*time.Minute, "every corrupt task archived", func() bool {
		archived = archived[:0]
		for _, queue := range []string{q.List, q.Media} {
			tasks, err := insp.ListArchivedTasks(queue)
			if err != nil {
				t.Fatalf("list archived tasks of %s: %v", queue, err)
			}
			archived = append(archived, tasks...)
			retry, err := insp.ListRetryTasks(queue)
			if err != nil {
				t.Fatalf("list retry tasks of %s: %v", queue, err)
			}
			if len(retry) > 0 {
				ti := retry[0]
				t.Fatalf("%s task %s (payload %q) is waiting for a retry after %q", ti.Type, ti.ID, ti.Payload, ti.LastErr)
			}
		}
		return len(archived) == len(corrupt)
	}, workerLog(w.Logs))

	types := make([]string, 0, len(archived))
	for _, ti := range archived {
		types = append(types, ti.Type)
		if ti.Retried != 0 {
			t.Errorf("%s task %s (payload %q) was retried %d times before it was archived, want 0", ti.Type, ti.ID, ti.Payload, ti.Retried)
		}
		if !strings.Contains(ti.LastErr, "corrupt payload") {
			t.Errorf("%s task %s archived with %q, want the reason (corrupt payload)", ti.Type, ti.ID, ti.LastErr)
		}
	}
	want := make([]string, 0, len(corrupt))
	for _, c := range corrupt {
		want = append(want, c.typ)
	}
	slices.Sort(types)
	slices.Sort(want)
	if !slices.Equal(types, want) {
		t.Fatalf("archived task types %v, want %v", types, want)
	}
}
