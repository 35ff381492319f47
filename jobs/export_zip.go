package jobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/hibiken/asynq"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/manifest"
	"github.com/mediasync/mediasync/internal/zipstream"
)

// ExportZip streams a zip export to its destination in one pass: each
// media read back and checked as it goes into the zip, then the manifests
// and export.json. The zip is published only if every media checked out;
// otherwise the upload is aborted and nothing appears. An interrupted pass
// starts over.
func (h *Handlers) ExportZip(ctx context.Context, t *asynq.Task) error {
	return exportStep(h, h.exportZip)(ctx, t)
}

func (h *Handlers) exportZip(ctx context.Context, e catalog.Export, dest exportDest, p StartRunPayload) error {
	if e.Format == catalog.ExportRSMF {
		return h.exportRSMF(ctx, e, dest, p)
	}
	key := dest.key(archive.ExportZipName(p.RunID))
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
	var err error
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
		name := archive.ExportMediaPath(exportKeyInfo(it))
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
	for i, name := range []string{archive.ExportJSONLName, archive.ExportCSVName, archive.ExportSumsName, archive.ExportSummaryName} {
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
	out := catalog.ExportOutput{Key: key, ManifestSHA256: spools[0].SHA256(), SumsSHA256: spools[2].SHA256()}
	if err := h.catalog.RecordExportOutput(ctx, p.RunID, out); err != nil {
		return h.exportError(ctx, p.RunID, err)
	}
	if _, err := ow.Commit(); err != nil {
		return h.exportError(ctx, p.RunID, err)
	}
	_, err = h.catalog.FinishExport(ctx, p.RunID, true, "")
	return err
}
