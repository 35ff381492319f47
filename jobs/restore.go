package jobs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/manifest"
)

// Restore task types. A restore run starts like any run (run:start), which
// fixes its media in Postgres and fans out into batches uploaded in
// parallel across the fleet, then a finish that writes the restore
// manifest into the archive and ends the run.
const (
	TypeRestoreBatch  = "restore:batch"
	TypeRestoreFinish = "restore:finish"
)

// restoreBatchSize is how many (media, service) items one restore:batch
// uploads, one after the other: few, since a file may be 150 MB, so that
// the fleet's task slots spread a restore's uploads and the queue holds
// one task per ten media, not one per media.
const restoreBatchSize = 10

// RestoreBatchPayload uploads batch number Batch of a restore: the items
// with seq in [Batch*10, Batch*10+10).
type RestoreBatchPayload struct {
	RunID uuid.UUID `json:"run_id"`
	Batch int       `json:"batch"`
}

func (p RestoreBatchPayload) run() uuid.UUID { return p.RunID }

func (p RestoreBatchPayload) validate() error {
	if p.RunID.Version() == 0 || p.Batch < 0 {
		return errors.New("no run_id, or a negative batch")
	}
	return nil
}

// NewRestoreBatchTask returns the task that uploads one batch of a
// restore. Its timeout covers ten uploads of the largest file at the
// slowest rate uploadBudget allows.
func NewRestoreBatchTask(q Queues, p RestoreBatchPayload) (*asynq.Task, error) {
	return newTask(TypeRestoreBatch, p, "restore-batch:"+p.RunID.String()+":"+strconv.Itoa(p.Batch),
		asynq.Queue(q.Media), asynq.MaxRetry(12), asynq.Timeout(3*time.Hour))
}

// NewRestoreFinishTask returns the task that writes a restore's manifest
// and ends it.
func NewRestoreFinishTask(q Queues, id uuid.UUID) (*asynq.Task, error) {
	return newTask(TypeRestoreFinish, StartRunPayload{RunID: id}, "restore-finish:"+id.String(),
		asynq.Queue(q.Media), asynq.MaxRetry(12), asynq.Timeout(time.Hour))
}

// startRestore fixes a restore's media and fans it out.
func (h *Handlers) startRestore(ctx context.Context, run catalog.Run) error {
	n, err := h.catalog.SelectRestoreMedia(ctx, run.ID)
	if err != nil {
		return err
	}
	enqueue := h.enqueuer.In(ctx)
	for b := 0; b*restoreBatchSize < n; b++ {
		if err := enqueue(NewRestoreBatchTask(h.queues, RestoreBatchPayload{RunID: run.ID, Batch: b})); err != nil {
			return err
		}
	}
	if n == 0 {
		return enqueue(NewRestoreFinishTask(h.queues, run.ID))
	}
	return nil
}

// RestoreBatch uploads one batch of a restore.
func (h *Handlers) RestoreBatch(ctx context.Context, t *asynq.Task) error {
	return runStep(h, nil, h.restoreBatch)(ctx, t)
}

func (h *Handlers) restoreBatch(ctx context.Context, run catalog.Run, p RestoreBatchPayload) error {
	lo, hi := p.Batch*restoreBatchSize, (p.Batch+1)*restoreBatchSize
	// Claims whose worker died are settled first: they are never uploaded
	// again (see restoreUpload).
	if _, err := h.catalog.ExpireRestoreClaims(ctx, run.ID, lo, hi); err != nil {
		return err
	}
	var errs []error
	for it, err := range h.catalog.RestoreItems(ctx, run.ID, lo, hi, true) {
		if err != nil {
			return err
		}
		if it.State != catalog.RestorePending {
			continue // another attempt holds its claim
		}
		if err := h.restoreUpload(ctx, run, it); err != nil {
			var rl *RetryLaterError
			if errors.As(err, &rl) || ctx.Err() != nil {
				return err // the rest waits with it
			}
			errs = append(errs, fmt.Errorf("media %s → %s: %w", it.MediaSID, it.ServiceSID, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return h.restoreBatchDone(ctx, run.ID)
}

// restoreBatchDone queues the finish once nothing is left to upload.
func (h *Handlers) restoreBatchDone(ctx context.Context, id uuid.UUID) error {
	n, err := h.catalog.RestoreCounts(ctx, id)
	if err != nil || n.Open() > 0 {
		return err
	}
	return h.enqueuer.In(ctx)(NewRestoreFinishTask(h.queues, id))
}

// RestoreFinish writes the restore manifest once every item is settled,
// and ends the restore: succeeded only if every item was restored.
func (h *Handlers) RestoreFinish(ctx context.Context, t *asynq.Task) error {
	return runStep(h, nil, func(ctx context.Context, run catalog.Run, p StartRunPayload) error {
		err := h.finishRestore(ctx, run)
		if err != nil && (isPermanent(err) || lastAttempt(ctx)) {
			if _, ferr := h.catalog.FinishRestore(ctx, run.ID, false, errText(err)); ferr != nil {
				return errors.Join(err, ferr)
			}
		}
		return err
	})(ctx, t)
}

func (h *Handlers) finishRestore(ctx context.Context, run catalog.Run) error {
	n, err := h.catalog.RestoreCounts(ctx, run.ID)
	if err != nil || n.Open() > 0 {
		return err // the last batch queues the finish again
	}
	end, err := h.catalog.RestoreEnd(ctx, run.ID)
	if err != nil {
		return err
	}
	spool := archive.NewSpool(archive.SpoolConfig{Dir: h.spoolDir})
	defer spool.Close()
	mw := manifest.NewRestoreWriter(spool, run.ID, end)
	for it, err := range h.catalog.RestoreItems(ctx, run.ID, 0, n.Total, false) {
		if err == nil {
			err = mw.Add(it)
		}
		if err != nil {
			return err
		}
	}
	body, err := spool.Reader()
	if err != nil {
		return err
	}
	key := archive.RestoreManifestKey(h.prefix, run.AccountSID, run.ID)
	if err := h.catalog.RecordRestoreManifest(ctx, run.ID, key, spool.SHA256(), spool.Size()); err != nil {
		return err
	}
	_, err = h.store.Put(ctx, archive.PutInput{Key: key, ContentType: "application/jsonl", Size: spool.Size(), SHA256: spool.SHA256()}, body)
	switch {
	case errors.Is(err, archive.ErrConflict):
		return permanent(fmt.Errorf("restore manifest: %s already holds a different manifest", key))
	case err != nil:
		return fmt.Errorf("restore manifest: write %s: %w", key, err)
	}
	ok, reason := n.Failed == 0 && n.Unconfirmed == 0, ""
	if !ok {
		reason = fmt.Sprintf("%d media failed, %d unconfirmed (see the manifest)", n.Failed, n.Unconfirmed)
	}
	_, err = h.catalog.FinishRestore(ctx, run.ID, ok, reason)
	return err
}

// reconcileRestore queues again the work of a restore that has not moved.
func (h *Handlers) reconcileRestore(ctx context.Context, run catalog.Run, cutoff time.Time) error {
	if run.StartedAt.After(cutoff) {
		return nil
	}
	r, err := h.catalog.GetRestore(ctx, run.ID)
	if err != nil {
		return err
	}
	enqueue := h.enqueuer.RequeueIn(ctx)
	if r.SelectedAt.IsZero() {
		return enqueue(NewStartRunTask(h.queues, run.ID))
	}
	seqs, err := h.catalog.OpenRestoreSeqs(ctx, run.ID, cutoff, h.requeueBatch)
	if err != nil {
		return err
	}
	queued := map[int]bool{}
	for _, s := range seqs {
		if b := s / restoreBatchSize; !queued[b] {
			queued[b] = true
			if err := enqueue(NewRestoreBatchTask(h.queues, RestoreBatchPayload{RunID: run.ID, Batch: b})); err != nil {
				return err
			}
		}
	}
	if n, err := h.catalog.RestoreCounts(ctx, run.ID); err != nil || n.Open() > 0 {
		return err
	}
	return enqueue(NewRestoreFinishTask(h.queues, run.ID))
}
