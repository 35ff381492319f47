package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/objects"
	"github.com/mediasync/mediasync/internal/retention"
	"github.com/mediasync/mediasync/twilio"
)

// Handlers runs mediasync's tasks. It holds the clients every task shares.
type Handlers struct {
	catalog  *catalog.Catalog
	twilio   *twilio.Client
	store    archive.Store
	prefix   string
	queues   Queues
	enqueuer *Enqueuer
	spoolDir string
	log      zerolog.Logger
	metrics  Metrics

	maxBacklog   int
	requeueBatch int
	passTimeout  time.Duration
	pageSize     int
	now          func() time.Time
	legalHolds   bool
	objectLock   objects.LockMode
	retention    time.Duration
	twilioKeeps  retention.Window

	// anchorNow asks AnchorLoop to anchor the audit log at once (a run
	// ended); a full buffer means a request is already waiting.
	anchorNow chan struct{}

	windowsReleased int

	// reconcileStart rotates the run each Reconcile pass begins with.
	reconcileStart atomic.Uint64

	destMu sync.Mutex
	dests  map[string]exportDest // export destinations opened so far, by URL
}

// DefaultMaxBacklog is Deps.MaxBacklog's default. Listing runs only
// when the media queue has nothing pending (StrictPriority), so the tasks
// waiting are messages still to archive, up to maxMessagesPerTask (8) to a
// task: 32 of them are about 250 messages, at least 250 media while the
// next page is fetched, and keep Redis at about one page of tasks (a few
// MB) for any run (issue #5's benchmark: docs/benchmarks.md). It was 250
// tasks of one message each before messages were batched (issue #14).
const DefaultMaxBacklog = 32

// DefaultWindowsReleased is Deps.WindowsReleased's default.
const DefaultWindowsReleased = 2

// Deps are what the handlers need; all but the last three are required.
type Deps struct {
	Catalog  *catalog.Catalog
	Twilio   *twilio.Client
	Store    archive.Store
	Prefix   string // key prefix inside the store, from ARCHIVE_URL
	Queues   Queues
	Enqueuer *Enqueuer
	Log      zerolog.Logger

	// SpoolDir holds large downloads while they are hashed and uploaded.
	// Defaults to the OS temp dir.
	SpoolDir string
	// MaxBacklog is how many tasks may wait in the queues for the next
	// page to be listed (one page at a time, across the fleet): Redis then
	// holds at most this plus one page's tasks, however large the run and
	// however many workers. Defaults to DefaultMaxBacklog.
	MaxBacklog int
	// WindowsReleased is how many of a run's windows (UTC days) have a page
	// task in the queue at a time; the next is released as one is listed to
	// the end. Pages are listed one at a time across the fleet, so two keep
	// listing busy (one lists, the next waits for the listing slot) without
	// tying up task slots in that wait. Defaults to DefaultWindowsReleased.
	WindowsReleased int
	// RequeueBatch is how many stale messages, media or export items the
	// reconciler queues again per run and pass. Defaults to 5000.
	RequeueBatch int
	// PassTimeout bounds one pass of the reconcile and schedule loops, so
	// a stuck Postgres, Redis or S3 fails that pass instead of wedging the
	// loop. Defaults to 2 minutes.
	PassTimeout time.Duration
	// PageSize is how many messages one Twilio page holds. Defaults to 1000,
	// Twilio's maximum: fewer requests per message.
	PageSize int
	// Now is the clock of policy ticks. Defaults to time.Now.
	Now func() time.Time
	// LegalHolds says the store can set S3 legal holds (an S3 bucket with
	// Object Lock enabled): held media's objects then carry one.
	LegalHolds bool
	// ObjectLock and Retention, when set, write every archived object
	// write-once (WORM) until archiving time + Retention.
	ObjectLock objects.LockMode
	Retention  time.Duration
	// TwilioRetention is how long Twilio keeps the account's media
	// (TWILIO_RETENTION_DAYS): purge warnings count from it. Defaults to
	// retention.Default.
	TwilioRetention retention.Window
	// Metrics counts media outcomes; nil counts nothing.
	Metrics Metrics
}

// NewHandlers checks deps and returns the handlers.
func NewHandlers(d Deps) (*Handlers, error) {
	switch {
	case d.Catalog == nil:
		return nil, errors.New("jobs: Deps.Catalog is nil")
	case d.Twilio == nil:
		return nil, errors.New("jobs: Deps.Twilio is nil")
	case d.Store == nil:
		return nil, errors.New("jobs: Deps.Store is nil")
	case d.Enqueuer == nil:
		return nil, errors.New("jobs: Deps.Enqueuer is nil")
	case d.Queues.Media == "" || d.Queues.List == "":
		return nil, errors.New("jobs: Deps.Queues is empty")
	case d.PageSize < 0 || d.PageSize > 1000:
		return nil, fmt.Errorf("jobs: Deps.PageSize %d is outside 1..1000", d.PageSize)
	}
	h := &Handlers{
		catalog: d.Catalog, twilio: d.Twilio, store: d.Store, prefix: d.Prefix,
		queues: d.Queues, enqueuer: d.Enqueuer, spoolDir: d.SpoolDir, log: d.Log,
		maxBacklog: cmp.Or(d.MaxBacklog, DefaultMaxBacklog), requeueBatch: cmp.Or(d.RequeueBatch, 5000),
		pageSize: cmp.Or(d.PageSize, 1000), now: d.Now, passTimeout: d.PassTimeout,
		windowsReleased: cmp.Or(d.WindowsReleased, DefaultWindowsReleased),
		legalHolds:      d.LegalHolds, objectLock: d.ObjectLock, retention: d.Retention,
		twilioKeeps: cmp.Or(d.TwilioRetention, retention.Default),
		anchorNow:   make(chan struct{}, 1),
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.metrics = d.Metrics
	if h.passTimeout <= 0 {
		h.passTimeout = 2 * time.Minute
	}
	return h, nil
}

// Register routes every task type to its handler, in one place.
func Register(mux *asynq.ServeMux, h *Handlers) {
	mux.HandleFunc(TypeStartRun, h.StartRun)
	mux.HandleFunc(TypeListPage, h.ListPage)
	mux.HandleFunc(TypeArchiveMessage, h.ArchiveMessage)
	mux.HandleFunc(TypeScanConversation, h.ScanConversation)
	mux.HandleFunc(TypeArchiveConversationMessage, h.ArchiveConversationMessage)
	// The graph before #14, still in Redis after an upgrade mid-run.
	mux.HandleFunc(TypeListMessage, h.ListMessage)
	mux.HandleFunc(TypeArchiveMedia, h.ArchiveMedia)
	mux.HandleFunc(TypeDeleteMedia, h.DeleteMedia)
	mux.HandleFunc(TypeApplyHold, h.ApplyHold)
	mux.HandleFunc(TypeExportBatch, h.ExportBatch)
	mux.HandleFunc(TypeExportFinish, h.ExportFinish)
	mux.HandleFunc(TypeExportZip, h.ExportZip)
	mux.HandleFunc(TypeRestoreBatch, h.RestoreBatch)
	mux.HandleFunc(TypeRestoreFinish, h.RestoreFinish)
	mux.HandleFunc(TypeVerifyBatch, h.VerifyBatch)
}

// liveRun returns the run a task belongs to, or ok=false when the task has
// nothing left to do (the run is finished, or unknown).
func (h *Handlers) liveRun(ctx context.Context, id uuid.UUID) (catalog.Run, bool, error) {
	return h.liveRunFrom(ctx, id, h.catalog.GetRun)
}

// liveRunFrom is liveRun with the run read by get.
func (h *Handlers) liveRunFrom(ctx context.Context, id uuid.UUID, get func(context.Context, uuid.UUID) (catalog.Run, error)) (catalog.Run, bool, error) {
	run, err := get(ctx, id)
	if errors.Is(err, catalog.ErrRunNotFound) {
		return catalog.Run{}, false, permanent(err)
	}
	if err != nil {
		return catalog.Run{}, false, err
	}
	if run.Finished() {
		return run, false, nil
	}
	if run.AccountSID != h.twilio.AccountSID() {
		// Checked at every step, not only at start: a fleet misconfigured
		// halfway must not act on another account's media.
		reason := fmt.Sprintf("run is for account %s but this worker is configured for %s", run.AccountSID, h.twilio.AccountSID())
		if err := h.catalog.FailRun(ctx, id, reason); err != nil {
			return run, false, err
		}
		return run, false, permanent(errors.New(reason))
	}
	return run, true, nil
}

// finish ends the run if this step was its last.
func (h *Handlers) finish(ctx context.Context, id uuid.UUID) error {
	done, err := h.catalog.FinishRunIfDone(ctx, id)
	if err != nil {
		return err
	}
	if done {
		h.requestAnchor()
		st, err := h.catalog.RunStatus(ctx, id)
		if err != nil {
			return err
		}
		h.log.Info().Str("run_id", id.String()).Str("state", string(st.State)).
			Int("media_archived", st.MediaArchived).Int("media_deleted", st.MediaDeleted).
			Int("media_gone", st.MediaGone).Int("media_failed", st.MediaFailed).
			Int64("bytes", st.BytesArchived).Msg("run finished")
	}
	return nil
}

// errText is what a row keeps of an error. Errors from the twilio and
// archive packages carry no secrets by construction; this only bounds size.
func errText(err error) string {
	s := err.Error()
	if len(s) > 1000 {
		s = s[:1000] + "…"
	}
	return s
}
