package jobs

import (
	"cmp"

	"github.com/mediasync/mediasync/catalog"
)

// Metrics counts what runs decide about their media, as it is committed
// (internal/metrics implements it for /metrics). A task replayed after it
// died between its commit and its return counts again: the catalog is the
// record, the counters are the rate of it.
type Metrics interface {
	// Media counts n media of a source with a result (the result*
	// constants).
	Media(source, result string, n int)
	// ArchivedBytes counts bytes of a source's media copied into the
	// archive.
	ArchivedBytes(source string, n int64)
	// Verified counts one archived object re-read and checked against the
	// catalog (the verify* constants): mediasync_verify_total.
	Verified(result string)
}

// Sources and results, the label values of mediasync_media_total.
const (
	sourceMessaging = "messaging"

	resultArchived = "archived" // copied into the archive by this run
	resultReused   = "reused"   // already archived (or deleted) before: nothing copied
	resultDeleted  = "deleted"  // deleted from Twilio after its copy was proven
	resultGone     = "gone"     // Twilio no longer had it
	resultFailed   = "failed"   // failed for the run
	resultHeld     = "held"     // its delete stopped by a legal hold
	resultSuspect  = "suspect"  // its download not plausibly the media: kept aside

	verifyOK       = "ok"       // size and SHA-256 match the catalog
	verifyMismatch = "mismatch" // the object differs from the catalog
	verifyMissing  = "missing"  // no object where the catalog says
	verifyError    = "error"    // could not be read
)

type noMetrics struct{}

// meter is h.metrics, or one that counts nothing for Handlers built
// without NewHandlers (tests).
func (h *Handlers) meter() Metrics {
	if h.metrics == nil {
		return noMetrics{}
	}
	return h.metrics
}

func (noMetrics) Media(string, string, int)   {}
func (noMetrics) ArchivedBytes(string, int64) {}
func (noMetrics) Verified(string)             {}

// counted counts one media of source with result when err, the error of
// the step that recorded it, is nil; it returns err.
func (h *Handlers) counted(source, result string, err error) error {
	if err == nil {
		h.meter().Media(cmp.Or(source, sourceMessaging), result, 1)
	}
	return err
}

// countCommit counts what one CommitMessage recorded: the copies (their
// bytes where the copy became the media's row) and the outcomes.
func (h *Handlers) countCommit(source string, archived []catalog.ArchivedMedia, committed []string, outcomes []catalog.RunOutcome) {
	m := h.meter()
	source = cmp.Or(source, sourceMessaging)
	m.Media(source, resultArchived, len(archived))
	mine := make(map[string]bool, len(committed))
	for _, sid := range committed {
		mine[sid] = true
	}
	var bytes int64
	for _, a := range archived {
		if mine[a.SID] {
			bytes += a.Copy.Size
		}
	}
	m.ArchivedBytes(source, bytes)
	for _, o := range outcomes {
		switch o.State {
		case catalog.MediaArchived, catalog.MediaDeleted:
			m.Media(source, resultReused, 1)
		case catalog.MediaGone:
			m.Media(source, resultGone, 1)
		}
	}
}
