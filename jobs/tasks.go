package jobs

import (
	"encoding/json"
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/mediasync/mediasync/internal/rediskeys"
)

// Task types are part of the wire format between CLI and workers of
// different versions: rename one only with a period where both are
// handled. Each is declared in its own file, with its payload, its
// constructor and its handler: run_start.go, list_page.go,
// archive_message.go (and legacy_media.go, the old per-media graph).

// Queues names the two Asynq queues of a deployment. Listing work goes to
// one and media work to the other, and the media queue is served first, so
// a run drains what it has found before it finds more.
type Queues struct {
	Media string // messages (archive and delete), exports
	List  string // start, pages, holds
	// Keys builds the deployment's own Redis keys (the listing slot).
	Keys rediskeys.Namespace
}

// QueuesFor returns the queues of a namespace (MEDIASYNC_NAMESPACE).
func QueuesFor(namespace string) Queues {
	n := rediskeys.Namespace(namespace)
	return Queues{Media: n.MediaQueue(), List: n.ListQueue(), Keys: n}
}

// Payloads carry identifiers only: never credentials, never lists, never
// bytes. What a task needs beyond them is read from Postgres when it runs.
// Each constructor derives the task ID from what the task does, so the same
// work enqueued twice (a retried handler, the reconciler) is queued once.

// Headers by which a task names its own queue and ID: asynq does not say
// them, and Enqueuer.Requeue needs them to find the archived task a
// conflict is about.
const (
	headerQueue  = "mediasync-queue"
	headerTaskID = "mediasync-task-id"
)

func newTask(typ string, payload any, id string, opts ...asynq.Option) (*asynq.Task, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("%s task: %w", typ, err)
	}
	headers := map[string]string{headerTaskID: id}
	for _, o := range opts {
		if q, ok := o.Value().(string); ok && o.Type() == asynq.QueueOpt {
			headers[headerQueue] = q
		}
	}
	return asynq.NewTaskWithHeaders(typ, b, headers, append(opts, asynq.TaskID(id))...), nil
}

// decode parses and checks a payload. A payload that does not parse can
// never succeed: the error wraps asynq.SkipRetry so it is archived at once.
func decode[T interface{ validate() error }](t *asynq.Task) (T, error) {
	var p T
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return p, fmt.Errorf("%s: corrupt payload: %v: %w", t.Type(), err, asynq.SkipRetry)
	}
	if err := p.validate(); err != nil {
		return p, fmt.Errorf("%s: corrupt payload: %v: %w", t.Type(), err, asynq.SkipRetry)
	}
	return p, nil
}
