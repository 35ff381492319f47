package jobs

import (
	"errors"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
)

// Export task types. An export run starts like any run (run:start), which
// fixes its media in Postgres and then fans out: a dir export into batches
// copied in parallel and a finish that writes the manifests; a zip export
// into one task that streams the whole zip, since a zip is one stream.
const (
	TypeExportBatch  = "export:batch"
	TypeExportFinish = "export:finish"
	TypeExportZip    = "export:zip"
)

// exportBatchSize is how many media one export:batch task copies: enough to
// amortise a task, few enough that a retried batch repeats little.
const exportBatchSize = 50

// ExportBatchPayload copies batch number Batch of an export: the media with
// seq in [Batch*50, Batch*50+50).
type ExportBatchPayload struct {
	RunID uuid.UUID `json:"run_id"`
	Batch int       `json:"batch"`
}

func (p ExportBatchPayload) run() uuid.UUID { return p.RunID }

func (p ExportBatchPayload) validate() error {
	if p.RunID.Version() == 0 || p.Batch < 0 {
		return errors.New("no run_id, or a negative batch")
	}
	return nil
}

// NewExportBatchTask returns the task that copies one batch of an export.
func NewExportBatchTask(q Queues, p ExportBatchPayload) (*asynq.Task, error) {
	return newTask(TypeExportBatch, p, "export-batch:"+p.RunID.String()+":"+strconv.Itoa(p.Batch),
		asynq.Queue(q.Media), asynq.MaxRetry(12), asynq.Timeout(time.Hour))
}

// NewExportFinishTask returns the task that writes a dir export's manifests
// and ends it.
func NewExportFinishTask(q Queues, id uuid.UUID) (*asynq.Task, error) {
	return newTask(TypeExportFinish, StartRunPayload{RunID: id}, "export-finish:"+id.String(),
		asynq.Queue(q.Media), asynq.MaxRetry(12), asynq.Timeout(time.Hour))
}

// NewExportZipTask returns the task that streams a zip export.
func NewExportZipTask(q Queues, id uuid.UUID) (*asynq.Task, error) {
	return newTask(TypeExportZip, StartRunPayload{RunID: id}, "export-zip:"+id.String(),
		asynq.Queue(q.Media), asynq.MaxRetry(12), asynq.Timeout(24*time.Hour))
}
