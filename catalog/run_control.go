package catalog

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mediasync/mediasync/internal/sleep"
)

// ErrRunNotLive is a run's step refused because the run is no longer
// running: cancelled, or ended.
var ErrRunNotLive = errors.New("run is not running")

// RunFinishedError is CancelRun or CreateRetry refusing a run in the wrong
// state: State says which.
type RunFinishedError struct {
	ID    uuid.UUID
	State RunState
}

func (e *RunFinishedError) Error() string {
	switch e.State {
	case RunQueued, RunRunning:
		return fmt.Sprintf("run %s is %s: it has not finished", e.ID, e.State)
	}
	return fmt.Sprintf("run %s already finished: %s", e.ID, e.State)
}

// CancelRun stops a queued or running run: it ends cancelled, with the
// audit row, in one transaction, and from then on every step of the run
// finds it finished and does nothing (runStep's live-run check), and no
// DELETE of it is leased (LeaseRunDelete). CancelRun then waits, as AddHold
// does, until no DELETE leased before the cancel can still reach Twilio:
// when it returns, none of the run's deletes is sent any more. Cancelling
// a cancelled run again returns it unchanged (wasCancelled false); one that
// succeeded or failed is a *RunFinishedError.
func (c *Catalog) CancelRun(ctx context.Context, id uuid.UUID, actor string) (r Run, cancelled bool, err error) {
	err = pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		cur, err := scanRun(tx.QueryRow(ctx, `SELECT `+runColumns+` FROM runs WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return err
		}
		switch cur.State {
		case RunCancelled:
			r = cur
			return nil
		case RunSucceeded, RunFailed:
			return &RunFinishedError{ID: id, State: cur.State}
		}
		r, err = scanRun(tx.QueryRow(ctx, `
			UPDATE runs SET state = 'cancelled', finished_at = now(), error = $2,
				waiting = NULL, waiting_since = NULL
			WHERE id = $1 RETURNING `+runColumns, id, "cancelled by "+actor))
		if err != nil {
			return err
		}
		cancelled = true
		d := runDetails(r)
		d["state_before"] = cur.State
		return audit(ctx, tx, actor, AuditRunCancelled, r.ID.String(), d)
	})
	if err != nil {
		return Run{}, false, fmt.Errorf("cancel run %s: %w", id, err)
	}
	if err := c.waitForRunLeases(ctx, id); err != nil {
		return r, cancelled, fmt.Errorf("cancel run %s: %w", id, err)
	}
	return r, cancelled, nil
}

// waitForRunLeases returns once no delete lease on a media of the run can
// still let a DELETE reach Twilio (see waitForLeases). A lease of another
// run on the same media is waited for too: at most DeleteLease longer.
func (c *Catalog) waitForRunLeases(ctx context.Context, id uuid.UUID) error {
	for {
		var waiting bool
		err := c.pool.QueryRow(ctx, `
			SELECT EXISTS (
				SELECT 1 FROM media m JOIN run_media d ON d.media_sid = m.sid AND d.run_id = $1
				WHERE m.delete_lease_until > now() - make_interval(secs => $2))`,
			id, leaseMargin.Seconds()).Scan(&waiting)
		if err != nil {
			return fmt.Errorf("wait for deletes in flight: %w", err)
		}
		if !waiting {
			return nil
		}
		if err := sleep.For(ctx, leasePoll); err != nil {
			return fmt.Errorf("wait for deletes in flight: %w", err)
		}
	}
}

// CreateRetry records a run that does again what a finished run failed:
// its failed days are listed again, its failed messages' media listed
// again, and its failed or suspect media archived (and, if it deleted,
// deleted) again. It is a new run, so the finished run's record and counts
// stay what happened; it names that run (RetryOf). While a retry of the run
// is queued or running, asking again returns that one (created false): a
// retry asked twice does the work once. The new run's work is seeded when
// it starts (SeedRetry).
func (c *Catalog) CreateRetry(ctx context.Context, of uuid.UUID, actor string) (Run, bool, error) {
	var id uuid.UUID
	created := false
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		src, err := scanRun(tx.QueryRow(ctx, `SELECT `+runColumns+` FROM runs WHERE id = $1 FOR UPDATE`, of))
		if err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT id FROM runs WHERE retry_of = $1 AND state IN ('queued', 'running')`, of).Scan(&id); err == nil {
			return nil
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if !src.Finished() || src.Kind == KindExport || src.Kind == KindVerify || src.Kind == KindRestore {
			if !src.Finished() {
				return &RunFinishedError{ID: of, State: src.State}
			}
			return fmt.Errorf("run %s is of kind %s: %w", of, src.Kind, errRetryKind)
		}
		// The same source and services: a Conversations run's windows are
		// its services (seq i lists Services[i]), its messages IM…, and a
		// Messaging retry of them would list days of SMS/MMS instead.
		spec := RunSpec{Kind: KindRetry, AccountSID: src.AccountSID, Source: src.Source, Services: src.Services,
			From: src.From, To: src.To, Delete: src.Delete, DryRun: src.DryRun, NoBodies: src.NoBodies, Actor: actor}
		// No windows here: SeedRetry copies the failed ones.
		if id, err = insertRun(ctx, tx, spec, nil, nil, nullTime(src.DeleteBefore)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE runs SET retry_of = $2, since = $3, until = $4 WHERE id = $1`,
			id, of, nullTime(src.Since), nullTime(src.Until)); err != nil {
			return err
		}
		created = true
		n, err := seedRetry(ctx, tx, id, of)
		if err == nil && n == 0 {
			err = fmt.Errorf("run %s: %w", of, ErrNothingToRetry)
		}
		return err
	})
	if err != nil {
		return Run{}, false, fmt.Errorf("retry run %s: %w", of, err)
	}
	r, err := c.GetRun(ctx, id)
	return r, created, err
}

var errRetryKind = errors.New("only archiving runs can be retried")

// ErrNotRetriable is CreateRetry refusing an export or verify run.
var ErrNotRetriable = errRetryKind

// ErrNothingToRetry is CreateRetry refusing a run with nothing failed.
var ErrNothingToRetry = errors.New("nothing of it failed: nothing to retry")

// seedRetry gives a retry run its work, in the transaction that creates
// it (a run with no work left would end at once): the source run's failed
// windows (listed again from their first page), its failed conversation
// scans (scanned again from their newest message, down to where they were
// to stop), its failed messages (listed again), and its failed or suspect
// media (archived again; their message counted listed). Rows are stamped in the past, so the run's start
// queues their messages in the reconciler's batches (as SeedDeletes does):
// the backlog bound holds however many failed.
func seedRetry(ctx context.Context, tx pgx.Tx, id, of uuid.UUID) (int64, error) {
	var n int64
	for _, q := range []string{`
		INSERT INTO run_windows (run_id, seq, starts_at, ends_at)
		SELECT $1::uuid, seq, starts_at, ends_at FROM run_windows WHERE run_id = $2 AND state = 'failed'`, `
		INSERT INTO run_conversations (run_id, conversation_sid, service_sid, stop_index, updated_at)
		SELECT $1::uuid, conversation_sid, service_sid, stop_index, '-infinity'::timestamptz FROM run_conversations
		WHERE run_id = $2 AND state = 'failed'`, `
		INSERT INTO run_messages (run_id, message_sid, state, updated_at)
		SELECT $1::uuid, message_sid, 'pending', '-infinity'::timestamptz FROM run_messages WHERE run_id = $2 AND state = 'failed'`, `
		INSERT INTO run_messages (run_id, message_sid, state, updated_at)
		SELECT DISTINCT $1::uuid, message_sid, 'listed', '-infinity'::timestamptz FROM run_media
		WHERE run_id = $2 AND state IN ('failed', 'suspect')
		ON CONFLICT DO NOTHING`, `
		INSERT INTO run_media (run_id, media_sid, message_sid, state, delete_wanted, updated_at)
		SELECT $1::uuid, media_sid, message_sid, 'pending', delete_wanted, '-infinity'::timestamptz FROM run_media
		WHERE run_id = $2 AND state IN ('failed', 'suspect')`} {
		tag, err := tx.Exec(ctx, q, id, of)
		if err != nil {
			return 0, err
		}
		n += tag.RowsAffected()
	}
	return n, nil
}
