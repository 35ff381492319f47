package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/manifest"
)

// exportDest is an export's destination store and the root of the export
// inside it.
type exportDest struct {
	store archive.Store
	root  string
}

// key is the key of an export's file: see archive.ExportKey.
func (d exportDest) key(name string) string { return archive.ExportKey(d.root, name) }

// destination opens (once per worker) the store an export writes to.
func (h *Handlers) destination(ctx context.Context, out string) (exportDest, error) {
	h.destMu.Lock()
	defer h.destMu.Unlock()
	if d, ok := h.dests[out]; ok {
		return d, nil
	}
	st, root, err := archive.OpenStore(ctx, out)
	if err != nil {
		return exportDest{}, permanent(fmt.Errorf("export destination: %w", err))
	}
	d := exportDest{store: st, root: root}
	if h.dests == nil {
		h.dests = map[string]exportDest{}
	}
	h.dests[out] = d
	return d, nil
}

// startExport fixes an export's media and fans it out.
func (h *Handlers) startExport(ctx context.Context, run catalog.Run) error {
	n, err := h.catalog.SelectExportMedia(ctx, run.ID)
	if err != nil {
		return err
	}
	e, err := h.catalog.GetExport(ctx, run.ID)
	if err != nil {
		return err
	}
	if _, err := h.destination(ctx, e.Out); err != nil {
		return h.failExport(ctx, run.ID, err)
	}
	enqueue := h.enqueuer.In(ctx)
	if onePass(e.Format) {
		return enqueue(NewExportZipTask(h.queues, run.ID))
	}
	for b := 0; b*exportBatchSize < n; b++ {
		if err := enqueue(NewExportBatchTask(h.queues, ExportBatchPayload{RunID: run.ID, Batch: b})); err != nil {
			return err
		}
	}
	if n == 0 {
		return enqueue(NewExportFinishTask(h.queues, run.ID))
	}
	return nil
}

// onePass says whether an export of format is written by one task (the
// export:zip task) rather than in batches: a zip is one stream, and the
// .rsmf files follow the order of conversations, not of media.
func onePass(format string) bool { return format == catalog.ExportZip || format == catalog.ExportRSMF }

// failExport ends an export that cannot go on and makes the task stop.
func (h *Handlers) failExport(ctx context.Context, id uuid.UUID, cause error) error {
	if _, err := h.catalog.FinishExport(ctx, id, false, errText(cause)); err != nil {
		return err
	}
	return permanent(cause)
}

// exportStep is runStep for an export's tasks: work gets the export's
// record and its destination, opened. A destination that cannot be opened
// ends the export failed.
func exportStep[P runPayload](h *Handlers, work func(context.Context, catalog.Export, exportDest, P) error) asynq.HandlerFunc {
	return runStep(h, nil, func(ctx context.Context, run catalog.Run, p P) error {
		e, err := h.catalog.GetExport(ctx, run.ID)
		if err != nil {
			return err
		}
		d, err := h.destination(ctx, e.Out)
		if err != nil {
			return h.failExport(ctx, run.ID, err)
		}
		return work(ctx, e, d, p)
	})
}

// readArchived copies a media's archived object into w and checks its size
// and SHA-256 against what was recorded when it was archived. It returns a
// reason, naming what is wrong, when the object is missing or altered, and
// an error when it could not tell (the store is unreachable).
func (h *Handlers) readArchived(ctx context.Context, it catalog.ExportItem, w io.Writer) (bad string, err error) {
	cp := catalog.CopyAt{Store: it.Store, Bucket: it.Bucket, Key: it.Key}
	result, reason, err := h.readStored(ctx, it.MediaSID, cp, it.Size, it.SHA256, w)
	if err != nil || result == catalog.VerifyOK {
		return "", err
	}
	return reason, nil
}

// manifestFiles are the files writeManifests writes, in its order.
var manifestFiles = []struct{ name, contentType string }{
	{archive.ExportJSONLName, "application/jsonl"},
	{archive.ExportCSVName, "text/csv"},
	{archive.ExportSumsName, "text/plain"},
}

// manifestSpools hold the files of manifestFiles, in its order, on their
// way to the export: spools, because a store needs each file's size and
// SHA-256 before it takes it, and they spill to disk past 1 MiB.
type manifestSpools [3]*archive.Spool

func (m manifestSpools) close() {
	for _, s := range m {
		_ = s.Close()
	}
}

// writeManifests writes the three manifest files of an export's exported
// media, read from Postgres a page at a time. The caller closes the spools.
func (h *Handlers) writeManifests(ctx context.Context, id uuid.UUID, total int) (manifestSpools, manifest.Sums, error) {
	var sp manifestSpools
	for i := range sp {
		sp[i] = archive.NewSpool(archive.SpoolConfig{Dir: h.spoolDir})
	}
	mw := manifest.NewWriter(sp[0], sp[1], sp[2])
	for it, err := range h.catalog.ExportItems(ctx, id, 0, total, false) {
		if err == nil {
			err = mw.Add(it)
		}
		if err != nil {
			sp.close()
			return sp, manifest.Sums{}, err
		}
	}
	sums, err := mw.Close()
	if err != nil {
		sp.close()
	}
	return sp, sums, err
}

// exportError is retried, until the last attempt, which ends the export;
// an error no retry can fix ends it at once. Without this an export whose
// destination refuses a file would stay running, its task re-queued by the
// reconciler forever.
func (h *Handlers) exportError(ctx context.Context, id uuid.UUID, err error) error {
	if isPermanent(err) || errors.Is(err, archive.ErrConflict) || lastAttempt(ctx) {
		return h.failExport(ctx, id, err)
	}
	return err
}

// reconcileExport queues again the work of an export that has not moved.
func (h *Handlers) reconcileExport(ctx context.Context, run catalog.Run, cutoff time.Time) error {
	if run.StartedAt.After(cutoff) {
		return nil
	}
	e, err := h.catalog.GetExport(ctx, run.ID)
	if err != nil {
		return err
	}
	enqueue := h.enqueuer.RequeueIn(ctx)
	if e.SelectedAt.IsZero() {
		return enqueue(NewStartRunTask(h.queues, run.ID))
	}
	if onePass(e.Format) {
		return enqueue(NewExportZipTask(h.queues, run.ID))
	}
	seqs, err := h.catalog.PendingExportSeqs(ctx, run.ID, cutoff, h.requeueBatch)
	if err != nil {
		return err
	}
	queued := map[int]bool{}
	for _, s := range seqs {
		if b := s / exportBatchSize; !queued[b] {
			queued[b] = true
			if err := enqueue(NewExportBatchTask(h.queues, ExportBatchPayload{RunID: run.ID, Batch: b})); err != nil {
				return err
			}
		}
	}
	if n, err := h.catalog.ExportCounts(ctx, run.ID); err != nil || n.Pending > 0 {
		return err
	}
	return enqueue(NewExportFinishTask(h.queues, run.ID))
}

// exportKeyInfo is what names an export item's file.
func exportKeyInfo(it catalog.ExportItem) archive.KeyInfo {
	return archive.KeyInfo{
		AccountSID: it.AccountSID, MessageSID: it.MessageSID, MediaSID: it.MediaSID,
		ContentType: it.ContentType, DateSent: it.DateSent,
	}
}
