package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Catalog is the Postgres record of runs, messages and media. It decides what
// is left to do: every task asks it before acting, and every state change is
// a guarded UPDATE, so running a step twice changes nothing the second time.
type Catalog struct {
	pool *pgxpool.Pool
}

// NewCatalog returns a catalog on pool; the schema must be migrated.
func NewCatalog(pool *pgxpool.Pool) *Catalog { return &Catalog{pool: pool} }

// Pool is the underlying pool, for health checks.
func (c *Catalog) Pool() *pgxpool.Pool { return c.pool }

// ErrRunNotFound is returned for an unknown run id.
var ErrRunNotFound = errors.New("run not found")

// Run kinds.
const (
	KindBackfill = "backfill"
	KindMessage  = "message"
	KindRetry    = "retry"  // the failures of a finished run, again (enqueue retry)
	KindVerify   = "verify" // re-read archived objects against the catalog (enqueue verify)
)

// RunState is where a run is (runs.state).
type RunState string

// Run states.
const (
	RunQueued    RunState = "queued"
	RunRunning   RunState = "running"
	RunSucceeded RunState = "succeeded"
	RunFailed    RunState = "failed"
	RunCancelled RunState = "cancelled" // stopped by enqueue cancel
)

// WindowState is where a window's listing is (run_windows.state).
type WindowState string

// Window states.
const (
	WindowPending WindowState = "pending"
	WindowDone    WindowState = "done"
	WindowFailed  WindowState = "failed"
)

// MessageState is where a message is within a run (run_messages.state).
type MessageState string

// Message states within a run.
const (
	MessagePending MessageState = "pending" // its media not listed yet
	MessageListed  MessageState = "listed"
	MessageGone    MessageState = "gone" // Twilio no longer has it
	MessageFailed  MessageState = "failed"
)

// Sources a run archives from (runs.source, media.source).
const (
	SourceMessaging     = "messaging"     // Programmable Messaging media (MM…/ME…)
	SourceConversations = "conversations" // Conversations media in MCS (IM…/ME…)
)

// RunSpec is a request to archive, as the CLI makes it.
type RunSpec struct {
	Kind       string
	AccountSID string
	// Source is SourceMessaging ("" means it) or SourceConversations.
	Source string
	// Services are the Conversations services a conversations backfill
	// lists; none means the account's default service.
	Services   []string
	Since      time.Time // backfill: inclusive, UTC
	Until      time.Time // backfill: exclusive, UTC
	MessageSID string    // message
	From, To   string    // optional Twilio list filters
	Delete     bool
	DryRun     bool
	// NoBodies leaves the body out of the message records the run
	// archives (--no-bodies).
	NoBodies bool
	Actor    string
}

// Run is a run as recorded.
type Run struct {
	ID         uuid.UUID
	Kind       string
	AccountSID string
	Source     string   // SourceMessaging or SourceConversations
	Services   []string // conversations: window i lists Services[i] ("" the default service)
	Since      time.Time
	Until      time.Time
	MessageSID string
	From, To   string
	Delete     bool
	DryRun     bool
	NoBodies   bool // message records archived without their body
	Actor      string
	State      RunState
	Error      string
	CreatedAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time

	// A policy's run: the policy, the tick that started it, and the date
	// before which the media it archives are also deleted.
	PolicyName   string
	Tick         time.Time
	DeleteBefore time.Time

	// RetryOf is the run whose failures a retry run does again.
	RetryOf uuid.UUID
	// VerifySample is the share of archived media a verify run re-reads;
	// VerifySelectedAt, when it chose them.
	VerifySample     float64
	VerifySelectedAt time.Time
}

// Finished reports whether the run has reached a final state.
func (r Run) Finished() bool {
	return r.State == RunSucceeded || r.State == RunFailed || r.State == RunCancelled
}

// Window is one slice of a backfill's time range, listed page by page.
type Window struct {
	RunID       uuid.UUID
	Seq         int
	StartsAt    time.Time
	EndsAt      time.Time
	State       WindowState
	Page        int    // pages fetched so far
	NextPageURI string // cursor of the next page; "" before the first page
}

// WindowSize is how a backfill's range is cut: one UTC day per window, so
// each window is one Twilio `DateSent=YYYY-MM-DD` listing and days are listed
// in parallel.
const WindowSize = 24 * time.Hour

// CreateRun records a new run in state queued, with its windows.
func (c *Catalog) CreateRun(ctx context.Context, s RunSpec) (Run, error) {
	switch s.Kind {
	case KindBackfill:
		if s.Since.IsZero() || s.Until.IsZero() || !s.Since.Before(s.Until) {
			return Run{}, fmt.Errorf("create run: since %s must be before until %s", s.Since.Format(time.DateOnly), s.Until.Format(time.DateOnly))
		}
		if err := checkRange(s.Since, s.Until); err != nil {
			return Run{}, fmt.Errorf("create run: %w", err)
		}
	case KindMessage:
		if s.MessageSID == "" {
			return Run{}, errors.New("create run: message SID is empty")
		}
	default:
		return Run{}, fmt.Errorf("create run: unknown kind %q", s.Kind)
	}
	if s.Delete && s.DryRun {
		return Run{}, errors.New("create run: --delete and --dry-run exclude each other")
	}
	switch s.Source {
	case "", SourceMessaging:
		if len(s.Services) > 0 {
			return Run{}, errors.New("create run: services are for the conversations source only")
		}
	case SourceConversations:
		if s.Kind != KindBackfill {
			return Run{}, fmt.Errorf("create run: the conversations source has backfills only, not %q", s.Kind)
		}
		if s.From != "" || s.To != "" {
			return Run{}, errors.New("create run: --from and --to are Messaging filters; Conversations has none")
		}
		if s.NoBodies {
			// Refused, not ignored: an account that must not keep bodies
			// must not find them archived.
			return Run{}, errors.New("create run: --no-bodies is for the messaging source only, for now")
		}
	default:
		return Run{}, fmt.Errorf("create run: unknown source %q", s.Source)
	}
	var id uuid.UUID
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		var err error
		id, err = insertRun(ctx, tx, s, nil, nil, nil)
		return err
	})
	if err != nil {
		return Run{}, fmt.Errorf("create run: %w", err)
	}
	return c.GetRun(ctx, id)
}

// insertRun records a run and its windows in tx.
func insertRun(ctx context.Context, tx pgx.Tx, s RunSpec, policy *string, tick, deleteBefore *time.Time) (uuid.UUID, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return id, err
	}
	params, err := json.Marshal(s)
	if err != nil {
		return id, err
	}
	source := s.Source
	if source == "" {
		source = SourceMessaging
	}
	var services []string
	if source == SourceConversations {
		services = s.Services
		if len(services) == 0 {
			services = []string{""} // the account's default service
		}
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO runs (id, kind, account_sid, since, until, message_sid, from_number, to_number,
		                  delete_media, dry_run, actor, params, policy_name, tick, delete_before, source, services, no_bodies)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
		id, s.Kind, s.AccountSID, nullTime(s.Since), nullTime(s.Until), nullString(s.MessageSID),
		nullString(s.From), nullString(s.To), s.Delete, s.DryRun, s.Actor, params,
		policy, tick, deleteBefore, source, services, s.NoBodies); err != nil {
		return id, err
	}
	if s.Since.IsZero() || s.Until.IsZero() {
		return id, nil
	}
	if source == SourceConversations {
		// One window per service, the whole range: Conversations cannot
		// list messages by day, so the window's cursor pages the
		// service's conversations and each conversation is scanned
		// (run_conversations).
		_, err = tx.Exec(ctx, `
			INSERT INTO run_windows (run_id, seq, starts_at, ends_at)
			SELECT $1, (i - 1)::int, $2, $3 FROM generate_subscripts($4::text[], 1) AS i`,
			id, s.Since, s.Until, services)
		return id, err
	}
	// Windows are cut in SQL so a range of years is one statement.
	_, err = tx.Exec(ctx, `
		INSERT INTO run_windows (run_id, seq, starts_at, ends_at)
		SELECT $1, (row_number() OVER (ORDER BY t))::int - 1, t, least(t + $4::interval, $3)
		FROM generate_series($2::timestamptz, $3::timestamptz - interval '1 microsecond', $4::interval) AS t`,
		id, s.Since, s.Until, WindowSize)
	return id, err
}

const runColumns = `id, kind, account_sid, since, until, coalesce(message_sid, ''), coalesce(from_number, ''),
	coalesce(to_number, ''), delete_media, dry_run, actor, state, coalesce(error, ''), created_at, started_at, finished_at,
	coalesce(policy_name, ''), tick, delete_before, retry_of, coalesce(verify_sample, 0), verify_selected_at,
	source, coalesce(services, '{}'), no_bodies`

// scanRun scans runColumns and then, into extra, the columns a query
// selects after them.
func scanRun(row pgx.Row, extra ...any) (Run, error) {
	var r Run
	var since, until, started, finished, tick, deleteBefore *time.Time
	var retryOf *uuid.UUID
	var selected *time.Time
	err := row.Scan(append([]any{&r.ID, &r.Kind, &r.AccountSID, &since, &until, &r.MessageSID, &r.From, &r.To,
		&r.Delete, &r.DryRun, &r.Actor, &r.State, &r.Error, &r.CreatedAt, &started, &finished,
		&r.PolicyName, &tick, &deleteBefore, &retryOf, &r.VerifySample, &selected, &r.Source, &r.Services, &r.NoBodies}, extra...)...)
	r.VerifySelectedAt = deref(selected)
	if retryOf != nil {
		r.RetryOf = *retryOf
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return Run{}, ErrRunNotFound
	}
	r.Since, r.Until, r.StartedAt, r.FinishedAt = deref(since), deref(until), deref(started), deref(finished)
	r.Tick, r.DeleteBefore = deref(tick), deref(deleteBefore)
	return r, err
}

// GetRun returns the run with the given id, or ErrRunNotFound.
func (c *Catalog) GetRun(ctx context.Context, id uuid.UUID) (Run, error) {
	r, err := scanRun(c.pool.QueryRow(ctx, `SELECT `+runColumns+` FROM runs WHERE id = $1`, id))
	if err != nil {
		return Run{}, fmt.Errorf("get run %s: %w", id, err)
	}
	return r, nil
}

// GetRunMessages is GetRun and RunMessageState of each of messages in one
// statement (one round trip): a message task reads them before anything
// else. A message the run has no row for is absent from states.
func (c *Catalog) GetRunMessages(ctx context.Context, id uuid.UUID, messages []string) (Run, map[string]MessageState, error) {
	var sids, states []string
	// One pass over run_messages yields both arrays, in the same order.
	r, err := scanRun(c.pool.QueryRow(ctx, `SELECT `+runColumns+`, s.sids, s.states
		FROM runs, LATERAL (
			SELECT coalesce(array_agg(m.message_sid ORDER BY m.message_sid), '{}') AS sids,
				coalesce(array_agg(m.state ORDER BY m.message_sid), '{}') AS states
			FROM run_messages m WHERE m.run_id = $1 AND m.message_sid = ANY($2)) s
		WHERE runs.id = $1`, id, messages), &sids, &states)
	if err != nil {
		return Run{}, nil, fmt.Errorf("get run %s with %d messages: %w", id, len(messages), err)
	}
	if len(sids) != len(states) {
		return Run{}, nil, fmt.Errorf("get run %s with %d messages: %d states for %d rows", id, len(messages), len(states), len(sids))
	}
	m := make(map[string]MessageState, len(sids))
	for i, sid := range sids {
		m[sid] = MessageState(states[i])
	}
	return r, m, nil
}

// StartRun moves a queued run to running; starting a running run again is a
// no-op, so the start task may run twice.
func (c *Catalog) StartRun(ctx context.Context, id uuid.UUID) (Run, error) {
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		r, err := scanRun(tx.QueryRow(ctx, `
			UPDATE runs SET state = 'running', started_at = now()
			WHERE id = $1 AND state = 'queued' RETURNING `+runColumns, id))
		if errors.Is(err, ErrRunNotFound) {
			return nil // started already, or finished
		}
		if err != nil {
			return err
		}
		return audit(ctx, tx, r.Actor, AuditRunStarted, r.ID.String(), runDetails(r))
	})
	if err != nil {
		return Run{}, fmt.Errorf("start run %s: %w", id, err)
	}
	return c.GetRun(ctx, id)
}

func runDetails(r Run) map[string]any {
	d := map[string]any{"kind": r.Kind, "account_sid": r.AccountSID, "delete": r.Delete, "dry_run": r.DryRun}
	if r.Source == SourceConversations {
		d["source"], d["services"] = r.Source, r.Services
	}
	if !r.Since.IsZero() {
		d["since"], d["until"] = r.Since, r.Until
	}
	if r.MessageSID != "" {
		d["message_sid"] = r.MessageSID
	}
	if r.NoBodies {
		d["no_bodies"] = true
	}
	if r.PolicyName != "" {
		d["policy"], d["tick"] = r.PolicyName, r.Tick
	}
	if !r.DeleteBefore.IsZero() {
		d["delete_before"] = r.DeleteBefore
	}
	return d
}

// FailRun ends a run that could not proceed at all (for example, its start
// task could not be enqueued, or the worker's account is not the run's).
func (c *Catalog) FailRun(ctx context.Context, id uuid.UUID, reason string) error {
	_, err := c.pool.Exec(ctx, `
		UPDATE runs SET state = 'failed', error = $2, finished_at = now()
		WHERE id = $1 AND state IN ('queued', 'running')`, id, reason)
	if err != nil {
		return fmt.Errorf("fail run %s: %w", id, err)
	}
	return nil
}

// SetWaiting records why a run's listing waits, for status to show; ""
// says it no longer does. The time it began is kept while the reason stays
// the same, and the row is written only when the reason changes, so
// calling it on every page costs a read.
func (c *Catalog) SetWaiting(ctx context.Context, id uuid.UUID, reason string) error {
	_, err := c.pool.Exec(ctx, `
		UPDATE runs SET waiting = $2, waiting_since = CASE WHEN $2::text IS NULL THEN NULL ELSE now() END
		WHERE id = $1 AND waiting IS DISTINCT FROM $2::text`, id, nullString(reason))
	if err != nil {
		return fmt.Errorf("run %s waiting: %w", id, err)
	}
	return nil
}

// UnfinishedRuns lists runs still queued or running, oldest first, so a
// worker can re-enqueue work that Redis lost.
func (c *Catalog) UnfinishedRuns(ctx context.Context) ([]Run, error) {
	rows, err := c.pool.Query(ctx, `SELECT `+runColumns+` FROM runs
		WHERE state IN ('queued', 'running') ORDER BY created_at LIMIT 1000`)
	if err != nil {
		return nil, fmt.Errorf("unfinished runs: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Run, error) { return scanRun(r) })
}

// runLeftToDo is true while a run (r) has work left: a window to list, a
// message whose media to list, a media to archive or (with --delete) to
// delete; a one-message run also waits for its message's row. Each part
// reads an index of only the rows still to do (run_media_message_unfinished, …),
// so asking costs the same whatever the run's size.
const runLeftToDo = `(
	EXISTS (SELECT 1 FROM run_windows w WHERE w.run_id = r.id AND w.state = 'pending')
	OR EXISTS (SELECT 1 FROM run_messages m WHERE m.run_id = r.id AND m.state = 'pending')
	OR EXISTS (SELECT 1 FROM run_conversations v WHERE v.run_id = r.id AND v.state = 'pending')
	OR EXISTS (SELECT 1 FROM run_media d WHERE d.run_id = r.id
	           AND (d.state = 'pending' OR (d.delete_wanted AND d.state = 'archived')))
	OR (r.kind = 'message' AND NOT EXISTS (SELECT 1 FROM run_messages m WHERE m.run_id = r.id))
	OR EXISTS (SELECT 1 FROM run_verify v WHERE v.run_id = r.id AND v.state = 'pending')
	OR (r.kind = 'verify' AND r.verify_selected_at IS NULL))`

// FinishRunIfDone ends a running run once nothing is left to do: every
// window listed, every message's media listed, every media in a final state
// (with --delete, archived is not final). It is called after each step and is
// safe to call concurrently: the guarded UPDATE ends the run exactly once.
// It reports whether this call finished the run.
//
// Almost every call finds work left: one read, outside a transaction,
// answers those, and only a run that looks done pays for the transaction
// that ends it (which checks again, under the row's lock).
func (c *Catalog) FinishRunIfDone(ctx context.Context, id uuid.UUID) (bool, error) {
	var done bool
	err := c.pool.QueryRow(ctx, `
		SELECT r.state = 'running' AND r.kind NOT IN ('export', 'restore') AND NOT `+runLeftToDo+`
		FROM runs r WHERE r.id = $1`, id).Scan(&done)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !done) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("finish run %s: %w", id, err)
	}
	finished := false
	err = pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		r, err := scanRun(tx.QueryRow(ctx, `
			UPDATE runs r SET
				finished_at = now(),
				state = CASE WHEN EXISTS (SELECT 1 FROM run_windows w WHERE w.run_id = r.id AND w.state = 'failed')
				              OR EXISTS (SELECT 1 FROM run_messages m WHERE m.run_id = r.id AND m.state = 'failed')
				              OR EXISTS (SELECT 1 FROM run_conversations v WHERE v.run_id = r.id AND v.state = 'failed')
				              OR EXISTS (SELECT 1 FROM run_media d WHERE d.run_id = r.id AND d.state IN ('failed', 'suspect'))
				              OR EXISTS (SELECT 1 FROM run_verify v WHERE v.run_id = r.id AND v.state NOT IN ('pending', 'ok'))
				             THEN 'failed' ELSE 'succeeded' END
			WHERE r.id = $1 AND r.state = 'running' AND r.kind NOT IN ('export', 'restore') -- they end in FinishExport, FinishRestore
			  AND NOT `+runLeftToDo+`
			RETURNING `+runColumns, id))
		if errors.Is(err, ErrRunNotFound) {
			return nil // not done yet, or finished by another task
		}
		if err != nil {
			return err
		}
		finished = true
		if r.PolicyName != "" && r.State == RunSucceeded {
			if err := advanceWatermark(ctx, tx, r.PolicyName); err != nil {
				return err
			}
		}
		d := runDetails(r)
		d["state"] = r.State
		return audit(ctx, tx, r.Actor, AuditRunFinished, r.ID.String(), d)
	})
	if err != nil {
		return false, fmt.Errorf("finish run %s: %w", id, err)
	}
	return finished, nil
}

// Status is a run's progress, counted from what Postgres holds (the
// run_progress view).
type Status struct {
	Run
	WindowsTotal, WindowsDone int
	PagesFetched              int
	MessagesSeen              int
	MessagesPending           int
	MessagesGone              int // gone from Twilio before their media were listed
	MediaFound                int
	MediaListed               int // dry run: found, not archived
	MediaArchived             int // archived or deleted, including reused
	MediaReused               int // already archived before this run
	MediaDeleted              int
	MediaGone                 int
	MediaFailed               int
	MediaPending              int
	MediaHeld                 int // archived, not deleted: under legal hold
	MediaSuspect              int // downloaded bytes not plausibly the media: kept aside, not deleted
	BytesArchived             int64
	Failures                  []Failure // the first few failures, with reasons
	GoneMessages              []Failure // the first few messages gone, with reasons
	Suspects                  []Failure // the first few suspect media, with reasons

	// Why, and since when, the run's listing waits ("" when it does not),
	// and how many of its windows are released and being listed.
	Waiting        string
	WaitingSince   time.Time
	WindowsListing int

	// An export's own record and progress (Kind == KindExport); its media
	// are also counted above as found, pending and failed.
	Export  *Export
	Exports ExportCounts

	// A restore's own record and progress (Kind == KindRestore); its media
	// are also counted above as found, pending and failed.
	Restore  *Restore
	Restores RestoreCounts
	// A verify run's counts (Kind == KindVerify).
	Verify *VerifyCounts
}

// maxSuspectsListed bounds the suspect media a status names: every one,
// up to a number a terminal can still show (each is a media kept on Twilio
// that an operator should look at).
const maxSuspectsListed = 1000

// StatusFailures is how many failed items of each kind a status names;
// RunFailures pages through all of them.
const StatusFailures = 20

// Failure is one failed item of a run.
type Failure struct {
	Kind   string // FailureMedia, FailureMessage, …
	SID    string
	Reason string
}

// RunStatus counts a run's progress.
func (c *Catalog) RunStatus(ctx context.Context, id uuid.UUID) (Status, error) {
	run, err := c.GetRun(ctx, id)
	if err != nil {
		return Status{}, err
	}
	s := Status{Run: run}
	switch run.Kind {
	case KindExport:
		return c.exportStatus(ctx, s)
	case KindRestore:
		return c.restoreStatus(ctx, s)
	}
	err = c.pool.QueryRow(ctx, `
		SELECT windows_total, windows_done, pages_fetched, messages_seen, messages_pending,
			media_found, media_listed, media_archived, media_reused, media_deleted,
			media_gone, media_failed, media_pending, media_held, bytes_archived, media_suspect
		FROM run_progress WHERE run_id = $1`, id).
		Scan(&s.WindowsTotal, &s.WindowsDone, &s.PagesFetched, &s.MessagesSeen, &s.MessagesPending,
			&s.MediaFound, &s.MediaListed, &s.MediaArchived, &s.MediaReused, &s.MediaDeleted,
			&s.MediaGone, &s.MediaFailed, &s.MediaPending, &s.MediaHeld, &s.BytesArchived, &s.MediaSuspect)
	if err != nil {
		return Status{}, fmt.Errorf("run status %s: %w", id, err)
	}
	var since *time.Time
	err = c.pool.QueryRow(ctx, `
		SELECT coalesce(waiting, ''), waiting_since,
			(SELECT count(*) FROM run_windows WHERE run_id = $1 AND state = 'pending' AND released_at IS NOT NULL)
		FROM runs WHERE id = $1`, id).Scan(&s.Waiting, &since, &s.WindowsListing)
	if err != nil {
		return Status{}, fmt.Errorf("run status %s: %w", id, err)
	}
	s.WaitingSince = deref(since)
	rows, err := c.pool.Query(ctx, `
		(SELECT 'media', media_sid, coalesce(error, '') FROM run_media WHERE run_id = $1 AND state = 'failed' ORDER BY media_sid LIMIT $2)
		UNION ALL
		(SELECT 'message', message_sid, coalesce(error, '') FROM run_messages WHERE run_id = $1 AND state = 'failed' ORDER BY message_sid LIMIT $2)
		UNION ALL
		(SELECT 'window', 'window ' || seq, coalesce(error, '') FROM run_windows WHERE run_id = $1 AND state = 'failed' ORDER BY seq LIMIT $2)
		UNION ALL
		(SELECT 'conversation', conversation_sid, coalesce(error, '') FROM run_conversations
		 WHERE run_id = $1 AND state = 'failed' ORDER BY conversation_sid LIMIT $2)
		UNION ALL
		(SELECT 'verify', media_sid, state || ': ' || coalesce(error, '') FROM run_verify
		 WHERE run_id = $1 AND state NOT IN ('pending', 'ok') ORDER BY media_sid LIMIT $2)`, id, StatusFailures)
	if err != nil {
		return Status{}, fmt.Errorf("run status %s: %w", id, err)
	}
	s.Failures, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Failure, error) {
		var f Failure
		return f, r.Scan(&f.Kind, &f.SID, &f.Reason)
	})
	if err != nil {
		return Status{}, fmt.Errorf("run status %s: %w", id, err)
	}
	rows, err = c.pool.Query(ctx, `
		SELECT message_sid, coalesce(error, ''), count(*) OVER ()
		FROM run_messages WHERE run_id = $1 AND state = 'gone' ORDER BY message_sid LIMIT 20`, id)
	if err != nil {
		return Status{}, fmt.Errorf("run status %s: %w", id, err)
	}
	s.GoneMessages, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Failure, error) {
		var f Failure
		return f, r.Scan(&f.SID, &f.Reason, &s.MessagesGone)
	})
	if err != nil {
		return Status{}, fmt.Errorf("run status %s: %w", id, err)
	}
	rows, err = c.pool.Query(ctx, `
		SELECT media_sid, coalesce(error, '') FROM run_media
		WHERE run_id = $1 AND state = 'suspect' ORDER BY media_sid LIMIT $2`, id, maxSuspectsListed)
	if err != nil {
		return Status{}, fmt.Errorf("run status %s: %w", id, err)
	}
	s.Suspects, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Failure, error) {
		f := Failure{Kind: FailureSuspect}
		return f, r.Scan(&f.SID, &f.Reason)
	})
	if err != nil {
		return Status{}, fmt.Errorf("run status %s: %w", id, err)
	}
	if run.Kind == KindVerify {
		n, err := c.VerifyCounts(ctx, id)
		if err != nil {
			return Status{}, err
		}
		s.Verify = &n
	}
	return s, nil
}

func (c *Catalog) exportStatus(ctx context.Context, s Status) (Status, error) {
	e, err := c.GetExport(ctx, s.ID)
	if err != nil {
		return Status{}, err
	}
	s.Export = &e
	if s.Exports, err = c.ExportCounts(ctx, s.ID); err != nil {
		return Status{}, err
	}
	s.MediaFound, s.MediaPending, s.MediaFailed = s.Exports.Total, s.Exports.Pending, s.Exports.Failed
	if s.Failures, err = c.ExportFailures(ctx, s.ID, 20); err != nil {
		return Status{}, err
	}
	return s, nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
