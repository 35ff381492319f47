package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/catalog"
)

// TypeVerifyBatch re-reads one batch of a verify run's media from the
// archive and checks each against its row.
const TypeVerifyBatch = "verify:batch"

// verifyBatchSize is how many media one verify:batch task reads.
const verifyBatchSize = 50

// VerifyBatchPayload reads batch number Batch of a verify run: the media
// with seq in [Batch*50, Batch*50+50).
type VerifyBatchPayload struct {
	RunID uuid.UUID `json:"run_id"`
	Batch int       `json:"batch"`
}

func (p VerifyBatchPayload) run() uuid.UUID { return p.RunID }

func (p VerifyBatchPayload) validate() error {
	if p.RunID.Version() == 0 || p.Batch < 0 {
		return errors.New("no run_id, or a negative batch")
	}
	return nil
}

// NewVerifyBatchTask returns the task that reads one batch of a verify run.
func NewVerifyBatchTask(q Queues, p VerifyBatchPayload) (*asynq.Task, error) {
	return newTask(TypeVerifyBatch, p, "verify-batch:"+p.RunID.String()+":"+strconv.Itoa(p.Batch),
		asynq.Queue(q.Media), asynq.MaxRetry(12), asynq.Timeout(time.Hour))
}

// startVerify chooses a verify run's media and queues its first batches:
// as many as a run has windows listing (Deps.WindowsReleased); each batch
// queues the one that many after it, while the queues' backlog allows
// (verifyBatch), so a verify of millions of objects keeps Redis at a few
// tasks, as listing does.
func (h *Handlers) startVerify(ctx context.Context, run catalog.Run) error {
	n, err := h.catalog.SelectVerifyMedia(ctx, run)
	if err != nil {
		return err
	}
	enqueue := h.enqueuer.In(ctx)
	for b := 0; b < h.windowsReleased && b*verifyBatchSize < n; b++ {
		if err := enqueue(NewVerifyBatchTask(h.queues, VerifyBatchPayload{RunID: run.ID, Batch: b})); err != nil {
			return err
		}
	}
	return nil
}

// VerifyBatch re-reads one batch of a verify run's media.
func (h *Handlers) VerifyBatch(ctx context.Context, t *asynq.Task) error {
	return runStep(h, nil, h.verifyBatch)(ctx, t)
}

func (h *Handlers) verifyBatch(ctx context.Context, run catalog.Run, p VerifyBatchPayload) error {
	from := p.Batch * verifyBatchSize
	items, err := h.catalog.VerifyItems(ctx, run.ID, from, from+verifyBatchSize)
	if err != nil {
		return err
	}
	records := map[string][2]string{} // record key → result, reason: read once per batch
	for _, it := range items {
		result, reason, err := h.readStored(ctx, it.SID, it.Copy, it.Size, it.SHA256, io.Discard)
		if err == nil && result == catalog.VerifyOK && it.Record != nil {
			// A Conversations media's message record is in the same
			// archive; one that does not match fails the media's check,
			// its reason naming the record (run_verify counts media).
			rr, ok := records[it.Record.Key]
			if !ok {
				at := catalog.CopyAt{Store: it.Copy.Store, Bucket: it.Copy.Bucket, Key: it.Record.Key}
				rr[0], rr[1], err = h.readStored(ctx, it.MessageSID, at, it.Record.Size, it.Record.SHA256, io.Discard)
				if err == nil {
					records[it.Record.Key] = rr
				}
			}
			if err == nil && rr[0] != catalog.VerifyOK {
				result, reason = rr[0], "record of message "+it.MessageSID+": "+rr[1]
			}
		}
		if err != nil {
			if !lastAttempt(ctx) {
				return err // the store did not answer: try again
			}
			result, reason = catalog.VerifyError, errText(err)
		}
		if result != catalog.VerifyOK {
			h.log.Error().Str("run_id", run.ID.String()).Str("media_sid", it.SID).Str("s3_key", it.Copy.Key).
				Str("result", result).Str("reason", reason).Msg("archived object does not match the catalog")
		}
		if err := h.catalog.RecordVerify(ctx, run.ID, it.SID, result, reason); err != nil {
			return err
		}
		// Metrics: mediasync_verify_total{result} (internal/metrics),
		// counted here once per object read.
		h.meter().Verified(result)
	}
	return h.nextVerifyBatch(ctx, run, p)
}

// nextVerifyBatch queues the batch windowsReleased after this one, if the
// run has one, once the queues' backlog is at most MaxBacklog; until then
// this task waits in the queue (its own media are recorded, so its retry
// only queues).
func (h *Handlers) nextVerifyBatch(ctx context.Context, run catalog.Run, p VerifyBatchPayload) error {
	n, err := h.catalog.SelectVerifyMedia(ctx, run)
	if err != nil {
		return err
	}
	next := p.Batch + h.windowsReleased
	if next*verifyBatchSize >= n {
		return nil
	}
	backlog, err := h.enqueuer.Backlog()
	if err != nil {
		return err
	}
	if backlog > h.maxBacklog {
		return &RetryLaterError{After: jitter(backlogWait), Reason: fmt.Sprintf("queue backlog %d > %d", backlog, h.maxBacklog)}
	}
	return h.enqueuer.In(ctx)(NewVerifyBatchTask(h.queues, VerifyBatchPayload{RunID: run.ID, Batch: next}))
}

// reconcileVerify queues again the batches of a verify run that have not
// moved.
func (h *Handlers) reconcileVerify(ctx context.Context, run catalog.Run, cutoff time.Time) error {
	if run.StartedAt.After(cutoff) {
		return nil
	}
	enqueue := h.enqueuer.RequeueIn(ctx)
	seqs, err := h.catalog.StaleVerifySeqs(ctx, run.ID, cutoff, h.requeueBatch)
	if err != nil {
		return err
	}
	if run.VerifySelectedAt.IsZero() {
		// Its media not chosen yet: the start task chooses (once).
		return enqueue(NewStartRunTask(h.queues, run.ID))
	}
	// Only the heads of the chains: the lowest batches with media left.
	// Later ones wait for their turn, not lost (each batch queues the one
	// after it), and queueing them would unbound the backlog.
	queued := map[int]bool{}
	for _, s := range seqs {
		if len(queued) == h.windowsReleased {
			break
		}
		if b := s / verifyBatchSize; !queued[b] {
			queued[b] = true
			if err := enqueue(NewVerifyBatchTask(h.queues, VerifyBatchPayload{RunID: run.ID, Batch: b})); err != nil {
				return err
			}
		}
	}
	return h.finish(ctx, run.ID)
}

// readStored reads a media's archived object into w, streaming (memory
// does not grow with its size), and checks its size and SHA-256 against
// the row. It returns the result (catalog.VerifyOK, VerifyMismatch,
// VerifyMissing, or VerifyError for a copy this worker cannot read: another
// archive) with the reason, or an error when the store could not tell.
func (h *Handlers) readStored(ctx context.Context, sid string, cp catalog.CopyAt, size int64, sha [32]byte, w io.Writer) (result, reason string, err error) {
	loc := h.store.Location()
	if cp.Store != loc.Kind || cp.Bucket != loc.Bucket {
		return catalog.VerifyError, fmt.Sprintf("archived in %s %q, not in this worker's archive (%s %q)", cp.Store, cp.Bucket, loc.Kind, loc.Bucket), nil
	}
	rc, err := h.store.Open(ctx, cp.Key)
	if errors.Is(err, archive.ErrNotFound) {
		return catalog.VerifyMissing, fmt.Sprintf("archived object %s is missing", cp.Key), nil
	}
	if err != nil {
		return "", "", fmt.Errorf("read archived media %s: %w", sid, err)
	}
	defer rc.Close()
	cw := archive.NewHashWriter(w)
	// One byte more than recorded is enough to know the object grew.
	_, err = io.Copy(cw, io.LimitReader(rc, size+1))
	switch {
	case errors.Is(err, archive.ErrChecksumMismatch):
		return catalog.VerifyMismatch, fmt.Sprintf("archived object %s was altered: %v", cp.Key, err), nil
	case err != nil:
		return "", "", fmt.Errorf("read archived media %s: %w", sid, err)
	}
	if got := cw.SHA256(); cw.Size() != size || got != sha {
		return catalog.VerifyMismatch, fmt.Sprintf("archived object %s was altered: it has %d bytes with sha256 %x, recorded at archive time: %d bytes with sha256 %x",
			cp.Key, cw.Size(), got, size, sha), nil
	}
	return catalog.VerifyOK, "", nil
}
