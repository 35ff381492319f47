package catalog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mediasync/mediasync/internal/sleep"
)

// A hold and a delete race: a DELETE claimed before a hold may wait minutes
// at the rate limiter or between retries. Leases close the race without
// holding a connection across the network call:
//
//   - Before each attempt of a DELETE, with the limiter slot taken,
//     LeaseDelete checks in one short transaction that no hold covers the
//     media and stamps delete_lease_until = now() + DeleteLease. The
//     caller must write the request within DeleteSendWindow, a quarter of
//     the lease: a request written late and slow on the wire (kernel
//     retransmits, a proxy that forwards at leisure) still has most of the
//     lease to arrive before a hold stops waiting for it.
//   - AddHold commits the hold under the same advisory lock (exclusive
//     there, shared here), so a lease is either taken before the hold
//     commits (and seen by AddHold's wait) or sees the hold.
//   - AddHold then waits, polling, until every lease on a media the hold
//     covers has ended more than leaseMargin ago, or was closed by the
//     delete being recorded before the hold: a request written before its
//     deadline has reached Twilio by then. Nothing else shortens a lease:
//     another task giving up its claim says nothing of a request another
//     worker has on the wire.

// DeleteLease is how long a hold treats a leased DELETE as possibly on its
// way: long enough for one attempt's request to be written and to arrive,
// short enough that a hold placed while a worker died holding one returns
// soon.
const DeleteLease = 20 * time.Second

// DeleteSendWindow is how long after LeaseDelete a caller may still write
// the request: the attempt's deadline.
const DeleteSendWindow = DeleteLease / 4

// leaseMargin covers a request written just before its lease ended and
// still on its way to Twilio. Twilio's latency is not documented; seconds
// is far beyond a healthy network's.
const leaseMargin = 2 * time.Second

// leasePoll is how often a hold looks again at the leases it waits on.
const leasePoll = 100 * time.Millisecond

// holdsLock is the advisory lock key placing a hold and leasing a delete
// share ("mediasync holds" in ASCII, truncated to fit a bigint).
const holdsLock int64 = 0x6d73686f6c6473

// LeaseDelete lets one DELETE attempt of a claimed media be sent: it
// returns how long the caller may take to write the request
// (DeleteSendWindow), counted from no earlier than the call, so a caller
// that starts its clock before calling never overruns it. A lease only
// grows: one attempt never shortens another's still on the wire. It
// returns ErrHeld when a hold covers the media, and ErrNotDeletable when
// the media is not archived and claimed.
func (c *Catalog) LeaseDelete(ctx context.Context, sid string) (time.Duration, error) {
	return c.leaseDelete(ctx, uuid.Nil, sid)
}

// LeaseRunDelete is LeaseDelete for a run's delete: it also returns
// ErrRunNotLive once the run is no longer running (cancelled, or ended).
// The run's row is read FOR SHARE, which CancelRun's UPDATE waits for, so
// a lease is either taken before the cancel commits (and CancelRun waits
// for it, as AddHold does) or sees the run cancelled.
func (c *Catalog) LeaseRunDelete(ctx context.Context, run uuid.UUID, sid string) (time.Duration, error) {
	return c.leaseDelete(ctx, run, sid)
}

func (c *Catalog) leaseDelete(ctx context.Context, run uuid.UUID, sid string) (time.Duration, error) {
	var runArg any // NULL: a delete of no run
	if run != uuid.Nil {
		runArg = run
	}
	// One round trip, one implicit transaction: each DELETE attempt of a
	// run pays for it. The lease's statement takes its snapshot after the
	// lock (it sees every hold committed before it), and the lock is held
	// until it commits.
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock_shared($1)`, holdsLock)
	b.Queue(`
		WITH r AS (
			SELECT state = 'running' AS live FROM runs WHERE id = $3 FOR SHARE
		), live AS (
			SELECT $3::uuid IS NULL OR coalesce((SELECT live FROM r), false) AS live
		), m AS (
			-- The run's row is locked first, the media's only for a live
			-- run, as when they were two statements.
			SELECT m.sid, m.delete_claimed_at IS NOT NULL AS claimed,
				held(g.sid, g.from_number, g.to_number, coalesce(g.date_sent, g.date_created)) AS held
			FROM media m JOIN messages g ON g.sid = m.message_sid
			WHERE m.sid = $1 AND m.state = 'archived' AND (SELECT live FROM live)
			FOR UPDATE OF m
		), leased AS (
			UPDATE media SET delete_lease_until = greatest(delete_lease_until, now() + make_interval(secs => $2)),
				updated_at = now()
			WHERE sid = (SELECT sid FROM m WHERE claimed AND NOT held)
			RETURNING sid
		)
		SELECT CASE WHEN NOT (SELECT live FROM live) THEN 'not live'
		            WHEN EXISTS (SELECT 1 FROM leased) THEN 'leased'
		            WHEN EXISTS (SELECT 1 FROM m WHERE held) THEN 'held'
		            ELSE 'no' END`, sid, DeleteLease.Seconds(), runArg)
	var outcome string
	br := c.pool.SendBatch(ctx, b)
	_, err := br.Exec()
	if err == nil {
		err = br.QueryRow().Scan(&outcome)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("lease delete of media %s: %w", sid, err)
	}
	switch outcome {
	case "not live":
		return 0, fmt.Errorf("lease delete of media %s: run %s: %w", sid, run, ErrRunNotLive)
	case "leased":
		return DeleteSendWindow, nil
	case "held":
		return 0, fmt.Errorf("lease delete of media %s: %w", sid, ErrHeld)
	default:
		return 0, fmt.Errorf("lease delete of media %s: %w", sid, ErrNotDeletable)
	}
}

// ReleaseHeldDelete records that a hold stopped a delete: the claim is
// released, the run's outcome is held, and the audit log says so, in one
// transaction. The lease is left to run out: it may be another worker's,
// whose request is still on the wire, and the hold waits for it.
// inFlight says this task sent a DELETE before the hold was placed; a lease
// taken and never closed says some task may have (one that died, or gave
// up waiting for the answer), so the audit row says so in both cases:
// Twilio may no longer have the media. The row still says archived (its
// copy is intact) and a later run, once the hold is released, finds out.
// A hold that stopped nothing (no claim, no lease and nothing in flight:
// the delete was refused before it was claimed) is recorded as the run's
// outcome only: the hold's own audit row already says what it covers, and
// a row per media per run would grow the log by every held media each
// time a policy runs.
func (c *Catalog) ReleaseHeldDelete(ctx context.Context, run Run, sid string, inFlight bool) error {
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		var holds []int64
		var leased, claimed bool
		err := tx.QueryRow(ctx, `
			WITH old AS (
				SELECT sid, delete_claimed_at IS NOT NULL AS claimed FROM media
				WHERE sid = $1 AND state = 'archived' FOR UPDATE
			), m AS (
				UPDATE media SET delete_claimed_at = NULL, updated_at = now()
				WHERE sid = (SELECT sid FROM old) RETURNING message_sid, delete_lease_until IS NOT NULL AS leased
			)
			SELECT coalesce(holds_covering(g.sid, g.from_number, g.to_number, coalesce(g.date_sent, g.date_created)), '{}'),
				m.leased, (SELECT claimed FROM old)
			FROM m JOIN messages g ON g.sid = m.message_sid`, sid).Scan(&holds, &leased, &claimed)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return nil // not archived any more: nothing of this claim to release
		case err != nil:
			return err
		}
		// Audited once per run, by the call that records the outcome: a
		// task run twice adds nothing.
		tag, err := tx.Exec(ctx, `
			UPDATE run_media SET state = 'held', error = 'under legal hold', updated_at = now()
			WHERE run_id = $1 AND media_sid = $2 AND state <> 'held'`, run.ID, sid)
		if err != nil || tag.RowsAffected() == 0 || !(claimed || leased || inFlight) {
			return err
		}
		d := map[string]any{"run_id": run.ID.String(), "holds": holds}
		if inFlight || leased {
			d["delete_sent_before_hold"] = true
		}
		return audit(ctx, tx, run.Actor, AuditDeleteHeld, sid, d)
	})
	if err != nil {
		return fmt.Errorf("release held delete of media %s: %w", sid, err)
	}
	return nil
}

// waitForLeases returns once no lease on a media that hold covers can still
// let a DELETE reach Twilio. It holds no connection while it sleeps.
func (c *Catalog) waitForLeases(ctx context.Context, hold int64) error {
	for {
		var waiting bool
		err := c.pool.QueryRow(ctx, `
			SELECT EXISTS (
				SELECT 1 FROM media m JOIN messages g ON g.sid = m.message_sid
				WHERE m.delete_lease_until > now() - make_interval(secs => $2)
				  AND $1 = ANY (holds_covering(g.sid, g.from_number, g.to_number, coalesce(g.date_sent, g.date_created))))`,
			hold, leaseMargin.Seconds()).Scan(&waiting)
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
