package jobs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/manifest"
)

// ExportBatch copies one batch of a dir export, verifying each media.
func (h *Handlers) ExportBatch(ctx context.Context, t *asynq.Task) error {
	return exportStep(h, h.exportBatch)(ctx, t)
}

func (h *Handlers) exportBatch(ctx context.Context, _ catalog.Export, dest exportDest, p ExportBatchPayload) error {
	lo := p.Batch * exportBatchSize
	for it, err := range h.catalog.ExportItems(ctx, p.RunID, lo, lo+exportBatchSize, true) {
		if err != nil {
			return err
		}
		if err := h.exportFile(ctx, p.RunID, dest, it); err != nil {
			if !lastAttempt(ctx) {
				return err
			}
			// Out of retries: this batch's media fail with the reason, and
			// the export ends failed rather than waiting forever.
			if ferr := h.catalog.FailExportMedia(ctx, p.RunID, it.Seq, errText(err)); ferr != nil {
				return ferr
			}
		}
	}
	return h.exportBatchDone(ctx, p.RunID)
}

// exportBatchDone queues the finish once no media is left to copy.
func (h *Handlers) exportBatchDone(ctx context.Context, id uuid.UUID) error {
	n, err := h.catalog.ExportCounts(ctx, id)
	if err != nil || n.Pending > 0 {
		return err
	}
	return h.enqueuer.In(ctx)(NewExportFinishTask(h.queues, id))
}

// exportFile reads one media's archived copy back, checks it against its
// row, and stores it in the export. A copy that is missing or differs fails
// the media (and so the export) by name; other errors are returned to be
// retried.
func (h *Handlers) exportFile(ctx context.Context, id uuid.UUID, dest exportDest, it catalog.ExportItem) error {
	spool := archive.NewSpool(archive.SpoolConfig{Dir: h.spoolDir})
	defer spool.Close()
	bad, err := h.readArchived(ctx, it, spool)
	if err != nil {
		return err
	}
	if bad != "" {
		return h.catalog.FailExportMedia(ctx, id, it.Seq, bad)
	}
	body, err := spool.Reader()
	if err != nil {
		return err
	}
	p := archive.ExportMediaPath(exportKeyInfo(it))
	_, err = dest.store.Put(ctx, archive.PutInput{
		Key: dest.key(p), ContentType: it.ContentType, Size: it.Size, SHA256: it.SHA256,
	}, body)
	if errors.Is(err, archive.ErrConflict) || errors.Is(err, archive.ErrInvalidInput) {
		return h.catalog.FailExportMedia(ctx, id, it.Seq, errText(fmt.Errorf("write to the export: %w", err)))
	}
	if err != nil {
		return fmt.Errorf("export media %s: %w", it.MediaSID, err)
	}
	return h.catalog.MarkExported(ctx, id, it.Seq, p)
}

// ExportFinish writes a dir export's manifests and export.json once every
// media is copied, and ends it.
func (h *Handlers) ExportFinish(ctx context.Context, t *asynq.Task) error {
	return exportStep(h, func(ctx context.Context, e catalog.Export, dest exportDest, p StartRunPayload) error {
		if err := h.finishDir(ctx, e, dest); err != nil {
			return h.exportError(ctx, p.RunID, err)
		}
		return nil
	})(ctx, t)
}

// finishDir is ExportFinish once the export is known to be live.
func (h *Handlers) finishDir(ctx context.Context, e catalog.Export, dest exportDest) error {
	n, err := h.catalog.ExportCounts(ctx, e.ID)
	if err != nil || n.Pending > 0 {
		return err // the last batch queues the finish again
	}
	if e.EndedAt, err = h.catalog.ExportEnd(ctx, e.ID); err != nil {
		return err
	}
	sum := manifest.NewSummary(e)
	if n.Failed > 0 {
		// A reviewer who opens the folder sees it is not a valid export.
		if err := h.summarizeFailures(ctx, &sum, e.ID, n); err != nil {
			return err
		}
		if err := h.putBytes(ctx, dest, archive.ExportSummaryName, "application/json", sum); err != nil {
			return err
		}
		_, err := h.catalog.FinishExport(ctx, e.ID, false, fmt.Sprintf("%d media failed verification", n.Failed))
		return err
	}
	spools, sums, err := h.writeManifests(ctx, e.ID, n.Total)
	if err != nil {
		return err
	}
	defer spools.close()
	for i, f := range manifestFiles {
		body, err := spools[i].Reader()
		if err != nil {
			return err
		}
		if err := h.putFile(ctx, dest, f.name, f.contentType, spools[i].Size(), spools[i].SHA256(), body); err != nil {
			return err
		}
	}
	sum.Complete(n.Exported, n.Bytes, sums)
	out := catalog.ExportOutput{Key: dest.key(archive.ExportSummaryName)}
	out.ManifestSHA256, out.SumsSHA256 = spools[0].SHA256(), spools[2].SHA256()
	if err := h.catalog.RecordExportOutput(ctx, e.ID, out); err != nil {
		return err
	}
	if err := h.putBytes(ctx, dest, archive.ExportSummaryName, "application/json", sum); err != nil {
		return err
	}
	_, err = h.catalog.FinishExport(ctx, e.ID, true, "")
	return err
}

func (h *Handlers) summarizeFailures(ctx context.Context, sum *manifest.Summary, id uuid.UUID, n catalog.ExportCounts) error {
	fs, err := h.catalog.ExportFailures(ctx, id, 1000)
	if err != nil {
		return err
	}
	sum.State, sum.Media, sum.Failed = manifest.SummaryFailed, n.Total, n.Failed
	for _, f := range fs {
		sum.Failures = append(sum.Failures, manifest.Failure{MediaSID: f.SID, Reason: f.Reason})
	}
	return nil
}

// putBytes stores export.json.
func (h *Handlers) putBytes(ctx context.Context, dest exportDest, name, typ string, sum manifest.Summary) error {
	b, err := sum.Encode()
	if err != nil {
		return err
	}
	return h.putFile(ctx, dest, name, typ, int64(len(b)), sha256.Sum256(b), bytes.NewReader(b))
}

// putFile stores one file of the export, create-only: a retry finds its own
// identical file; a different file there means the destination already
// holds another export, and the export fails saying so.
func (h *Handlers) putFile(ctx context.Context, dest exportDest, name, typ string, size int64, sha [32]byte, body io.ReadSeeker) error {
	key := dest.key(name)
	_, err := dest.store.Put(ctx, archive.PutInput{Key: key, ContentType: typ, Size: size, SHA256: sha}, body)
	switch {
	case errors.Is(err, archive.ErrConflict):
		return fmt.Errorf("export: %s already holds a different %s (another export?): export to an empty destination: %w", key, name, asynq.SkipRetry)
	case err != nil:
		return fmt.Errorf("export: write %s: %w", key, err)
	}
	return nil
}
