package jobs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/internal/manifest"
	"github.com/mediasync/mediasync/internal/zipstream"
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

// exportDest is an export's destination store and the root of the export
// inside it.
type exportDest struct {
	store archive.Store
	root  string
}

func (d exportDest) key(name string) string {
	if d.root == "" {
		return name
	}
	return d.root + "/" + name
}

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
func (h *Handlers) startExport(ctx context.Context, run archive.Run) error {
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
	if e.Format == archive.ExportZip {
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

// failExport ends an export that cannot go on and makes the task stop.
func (h *Handlers) failExport(ctx context.Context, id uuid.UUID, cause error) error {
	if _, err := h.catalog.FinishExport(ctx, id, false, errText(cause)); err != nil {
		return err
	}
	return permanent(cause)
}

// liveExport is liveRun for export tasks, with the export's record and
// destination.
func (h *Handlers) liveExport(ctx context.Context, id uuid.UUID) (archive.Export, exportDest, bool, error) {
	if _, live, err := h.liveRun(ctx, id); !live {
		return archive.Export{}, exportDest{}, false, err
	}
	e, err := h.catalog.GetExport(ctx, id)
	if err != nil {
		return e, exportDest{}, false, err
	}
	d, err := h.destination(ctx, e.Out)
	if err != nil {
		return e, d, false, h.failExport(ctx, id, err)
	}
	return e, d, true, nil
}

// ExportBatch copies one batch of a dir export, verifying each media.
func (h *Handlers) ExportBatch(ctx context.Context, t *asynq.Task) error {
	p, err := decode[ExportBatchPayload](t)
	if err != nil {
		return err
	}
	_, dest, live, err := h.liveExport(ctx, p.RunID)
	if !live {
		return err
	}
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
func (h *Handlers) exportFile(ctx context.Context, id uuid.UUID, dest exportDest, it archive.ExportItem) error {
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
	p := manifest.Path(it)
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

// readArchived copies a media's archived object into w and checks its size
// and SHA-256 against what was recorded when it was archived. It returns a
// reason, naming what is wrong, when the object is missing or altered, and
// an error when it could not tell (the store is unreachable).
func (h *Handlers) readArchived(ctx context.Context, it archive.ExportItem, w io.Writer) (bad string, err error) {
	loc := h.store.Location()
	if it.Store != loc.Kind || it.Bucket != loc.Bucket {
		return fmt.Sprintf("archived in %s %q, not in this worker's archive (%s %q)", it.Store, it.Bucket, loc.Kind, loc.Bucket), nil
	}
	rc, err := h.store.Open(ctx, it.Key)
	if errors.Is(err, archive.ErrNotFound) {
		return fmt.Sprintf("archived object %s is missing", it.Key), nil
	}
	if err != nil {
		return "", fmt.Errorf("read archived media %s: %w", it.MediaSID, err)
	}
	defer rc.Close()
	cw := &checkWriter{w: w, h: sha256.New()}
	// One byte more than recorded is enough to know the object grew.
	_, err = io.Copy(cw, io.LimitReader(rc, it.Size+1))
	switch {
	case errors.Is(err, archive.ErrChecksumMismatch):
		return fmt.Sprintf("archived object %s was altered: %v", it.Key, err), nil
	case err != nil:
		return "", fmt.Errorf("read archived media %s: %w", it.MediaSID, err)
	}
	if got := cw.sum(); cw.n != it.Size || got != it.SHA256 {
		return fmt.Sprintf("archived object %s was altered: it has %d bytes with sha256 %x, recorded at archive time: %d bytes with sha256 %x",
			it.Key, cw.n, got, it.Size, it.SHA256), nil
	}
	return "", nil
}

// ExportFinish writes a dir export's manifests and export.json once every
// media is copied, and ends it.
func (h *Handlers) ExportFinish(ctx context.Context, t *asynq.Task) error {
	p, err := decode[StartRunPayload](t)
	if err != nil {
		return err
	}
	e, dest, live, err := h.liveExport(ctx, p.RunID)
	if !live {
		return err
	}
	if err := h.finishDir(ctx, e, dest); err != nil {
		return h.exportError(ctx, p.RunID, err)
	}
	return nil
}

// finishDir is ExportFinish once the export is known to be live.
func (h *Handlers) finishDir(ctx context.Context, e archive.Export, dest exportDest) error {
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
		if err := h.putBytes(ctx, dest, manifest.ExportName, "application/json", sum); err != nil {
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
	out := archive.ExportOutput{Key: dest.key(manifest.ExportName)}
	out.ManifestSHA256, out.SumsSHA256 = spools[0].SHA256(), spools[2].SHA256()
	if err := h.catalog.RecordExportOutput(ctx, e.ID, out); err != nil {
		return err
	}
	if err := h.putBytes(ctx, dest, manifest.ExportName, "application/json", sum); err != nil {
		return err
	}
	_, err = h.catalog.FinishExport(ctx, e.ID, true, "")
	return err
}

// manifestFiles are the files writeManifests writes, in its order.
var manifestFiles = []struct{ name, contentType string }{
	{manifest.JSONLName, "application/jsonl"},
	{manifest.CSVName, "text/csv"},
	{manifest.SumsName, "text/plain"},
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

func (h *Handlers) summarizeFailures(ctx context.Context, sum *manifest.Summary, id uuid.UUID, n archive.ExportCounts) error {
	fs, err := h.catalog.ExportFailures(ctx, id, 1000)
	if err != nil {
		return err
	}
	sum.State, sum.Media, sum.Failed = "failed", n.Total, n.Failed
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

// ExportZip streams a zip export to its destination in one pass: each
// media read back and checked as it goes into the zip, then the manifests
// and export.json. The zip is published only if every media checked out;
// otherwise the upload is aborted and nothing appears. An interrupted pass
// starts over.
func (h *Handlers) ExportZip(ctx context.Context, t *asynq.Task) error {
	p, err := decode[StartRunPayload](t)
	if err != nil {
		return err
	}
	e, dest, live, err := h.liveExport(ctx, p.RunID)
	if !live {
		return err
	}
	key := dest.key("mediasync-export-" + p.RunID.String() + ".zip")
	if e.OutputKey == key {
		// An earlier attempt got as far as publishing: if the zip is
		// there, that attempt finished everything but the row.
		if _, err := dest.store.Stat(ctx, key); err == nil {
			_, err := h.catalog.FinishExport(ctx, p.RunID, true, "")
			return err
		} else if !errors.Is(err, archive.ErrNotFound) {
			return err
		}
	}
	creator, ok := dest.store.(archive.Creator)
	if !ok {
		return h.failExport(ctx, p.RunID, fmt.Errorf("export: destination %s cannot take a streamed zip", e.Out))
	}
	if err := h.catalog.RestartExport(ctx, p.RunID); err != nil {
		return err
	}
	if e.EndedAt, err = h.catalog.ExportEnd(ctx, p.RunID); err != nil {
		return err
	}
	n, err := h.catalog.ExportCounts(ctx, p.RunID)
	if err != nil {
		return err
	}
	ow, err := creator.Create(ctx, key, "application/zip")
	if err != nil {
		return h.exportError(ctx, p.RunID, err)
	}
	defer ow.Abort()
	// The zip's central directory, one record per media, is spooled to
	// disk, so the worker's memory does not grow with the export.
	zw := zipstream.NewWriter(ow, h.spoolDir)
	defer zw.Abort()
	for it, err := range h.catalog.ExportItems(ctx, p.RunID, 0, n.Total, false) {
		if err != nil {
			return h.exportError(ctx, p.RunID, err)
		}
		name := manifest.Path(it)
		fw, err := zw.Create(name, zipstream.Store, it.DateSent.UTC())
		if err != nil {
			return h.exportError(ctx, p.RunID, err)
		}
		bad, err := h.readArchived(ctx, it, fw)
		switch {
		case err != nil:
			return h.exportError(ctx, p.RunID, err)
		case bad != "":
			err = h.catalog.FailExportMedia(ctx, p.RunID, it.Seq, bad)
		default:
			err = h.catalog.MarkExported(ctx, p.RunID, it.Seq, name)
		}
		if err != nil {
			return h.exportError(ctx, p.RunID, err)
		}
	}
	if n, err = h.catalog.ExportCounts(ctx, p.RunID); err != nil {
		return h.exportError(ctx, p.RunID, err)
	}
	if n.Failed > 0 {
		ow.Abort()
		_, err := h.catalog.FinishExport(ctx, p.RunID, false,
			fmt.Sprintf("%d media failed verification; the zip was not published", n.Failed))
		return err
	}
	// The manifests are written after the media (the holds and deletes
	// they show were captured as each media was checked): first to spools,
	// whose sizes the zip does not need but whose hashes export.json does.
	spools, sums, err := h.writeManifests(ctx, p.RunID, n.Total)
	if err != nil {
		return h.exportError(ctx, p.RunID, err)
	}
	defer spools.close()
	sum := manifest.NewSummary(e)
	sum.Complete(n.Exported, n.Bytes, sums)
	doc, err := sum.Encode()
	if err != nil {
		return h.exportError(ctx, p.RunID, err)
	}
	for i, name := range []string{manifest.JSONLName, manifest.CSVName, manifest.SumsName, manifest.ExportName} {
		var r io.Reader = bytes.NewReader(doc)
		if i < 3 {
			if r, err = spools[i].Reader(); err != nil {
				return h.exportError(ctx, p.RunID, err)
			}
		}
		fw, err := zw.Create(name, zipstream.Deflate, e.EndedAt)
		if err == nil {
			_, err = io.Copy(fw, r)
		}
		if err != nil {
			return h.exportError(ctx, p.RunID, err)
		}
	}
	if err := zw.Close(); err != nil {
		return h.exportError(ctx, p.RunID, err)
	}
	out := archive.ExportOutput{Key: key, ManifestSHA256: spools[0].SHA256(), SumsSHA256: spools[2].SHA256()}
	if err := h.catalog.RecordExportOutput(ctx, p.RunID, out); err != nil {
		return h.exportError(ctx, p.RunID, err)
	}
	if _, err := ow.Commit(); err != nil {
		return h.exportError(ctx, p.RunID, err)
	}
	_, err = h.catalog.FinishExport(ctx, p.RunID, true, "")
	return err
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
func (h *Handlers) reconcileExport(ctx context.Context, run archive.Run, cutoff time.Time) error {
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
	if e.Format == archive.ExportZip {
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

// checkWriter passes bytes on while counting and hashing them.
type checkWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (c *checkWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

func (c *checkWriter) sum() (s [32]byte) {
	c.h.Sum(s[:0])
	return s
}
