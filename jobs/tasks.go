package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/mediasync/mediasync/internal/rediskeys"
	"github.com/mediasync/mediasync/twilio"
)

// Task types. They are part of the wire format between CLI and workers of
// different versions: rename one only with a period where both are handled.
const (
	TypeStartRun     = "run:start"
	TypeListPage     = "messages:page"
	TypeListMessage  = "message:media"
	TypeArchiveMedia = "media:archive"
	TypeDeleteMedia  = "media:delete"
)

// Queues names the two Asynq queues of a deployment. Listing work goes to
// one and media work to the other, and the media queue is served first, so
// a run drains what it has found before it finds more.
type Queues struct {
	Media string // archive and delete
	List  string // start, pages, messages
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

// StartRunPayload starts a run recorded by the CLI.
type StartRunPayload struct {
	RunID uuid.UUID `json:"run_id"`
}

// ListPagePayload lists one page of one window of a run. The page's cursor
// is in Postgres (run_windows.next_page_uri), not here, so the payload stays
// small and a replayed task cannot fetch a stale page.
type ListPagePayload struct {
	RunID  uuid.UUID `json:"run_id"`
	Window int       `json:"window"`
	Page   int       `json:"page"`
}

// ListMessagePayload lists the media of one message for a run.
type ListMessagePayload struct {
	RunID      uuid.UUID `json:"run_id"`
	MessageSID string    `json:"message_sid"`
}

// MediaPayload archives, or deletes, one media for a run.
type MediaPayload struct {
	RunID    uuid.UUID `json:"run_id"`
	MediaSID string    `json:"media_sid"`
}

// Each constructor derives the task ID from what the task does, so the same
// work enqueued twice (a retried handler, the reconciler) is queued once.

// NewStartRunTask returns the task that starts run id.
func NewStartRunTask(q Queues, id uuid.UUID) (*asynq.Task, error) {
	return newTask(TypeStartRun, StartRunPayload{RunID: id}, "start:"+id.String(),
		asynq.Queue(q.List), asynq.MaxRetry(listMaxRetry), asynq.Timeout(10*time.Minute))
}

// NewListPageTask returns the task that lists page `page` of a window.
func NewListPageTask(q Queues, p ListPagePayload) (*asynq.Task, error) {
	id := "page:" + p.RunID.String() + ":" + strconv.Itoa(p.Window) + ":" + strconv.Itoa(p.Page)
	return newTask(TypeListPage, p, id, asynq.Queue(q.List), asynq.MaxRetry(listMaxRetry), asynq.Timeout(10*time.Minute))
}

// NewListMessageTask returns the task that lists a message's media.
func NewListMessageTask(q Queues, p ListMessagePayload) (*asynq.Task, error) {
	if p.MessageSID == "" {
		return nil, fmt.Errorf("list message task: empty message SID")
	}
	return newTask(TypeListMessage, p, "msg:"+p.RunID.String()+":"+p.MessageSID,
		asynq.Queue(q.List), asynq.MaxRetry(listMaxRetry), asynq.Timeout(5*time.Minute))
}

// NewArchiveMediaTask returns the task that archives one media.
func NewArchiveMediaTask(q Queues, p MediaPayload) (*asynq.Task, error) {
	if p.MediaSID == "" {
		return nil, fmt.Errorf("archive media task: empty media SID")
	}
	return newTask(TypeArchiveMedia, p, "archive:"+p.RunID.String()+":"+p.MediaSID,
		asynq.Queue(q.Media), asynq.MaxRetry(12), asynq.Timeout(30*time.Minute))
}

// NewDeleteMediaTask returns the task that deletes one archived media from
// Twilio, after proving its copy.
func NewDeleteMediaTask(q Queues, p MediaPayload) (*asynq.Task, error) {
	if p.MediaSID == "" {
		return nil, fmt.Errorf("delete media task: empty media SID")
	}
	return newTask(TypeDeleteMedia, p, "delete:"+p.RunID.String()+":"+p.MediaSID,
		asynq.Queue(q.Media), asynq.MaxRetry(12), asynq.Timeout(5*time.Minute))
}

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

func (p StartRunPayload) validate() error {
	if p.RunID.Version() == 0 {
		return errors.New("no run_id")
	}
	return nil
}

func (p ListPagePayload) validate() error {
	if p.RunID.Version() == 0 || p.Window < 0 || p.Page < 0 {
		return errors.New("no run_id, or a negative window or page")
	}
	return nil
}

func (p ListMessagePayload) validate() error {
	if p.RunID.Version() == 0 || !twilio.ValidMessageSID(p.MessageSID) {
		return fmt.Errorf("bad run_id or message_sid %q", p.MessageSID)
	}
	return nil
}

func (p MediaPayload) validate() error {
	if p.RunID.Version() == 0 || !twilio.ValidMediaSID(p.MediaSID) {
		return fmt.Errorf("bad run_id or media_sid %q", p.MediaSID)
	}
	return nil
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
