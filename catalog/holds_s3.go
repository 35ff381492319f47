package catalog

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/jackc/pgx/v5"
	"github.com/mediasync/mediasync/internal/objects"
)

// S3 legal holds follow the holds in force, but are set on S3 after the
// rows that ask for them commit: a PUT that fails, or a worker that dies
// before it, leaves an object unprotected. media.legal_hold_s3 records the
// state S3 last confirmed (or, for an object its commit's PUT created,
// off: a PUT sets no legal hold; see CommitMessage), so what differs from
// what the holds require is found again (LegalHoldsToSync) and shown
// (UnconfirmedLegalHolds).

// LegalHoldState is what a media's S3 legal hold must be, and what it was
// last confirmed to be.
type LegalHoldState struct {
	Want      bool  // an active hold covers the media now
	Confirmed *bool // the S3 legal hold last confirmed; nil: never
}

// MediaLegalHold returns what a media's S3 legal hold must be now and what
// it was last confirmed to be.
func (c *Catalog) MediaLegalHold(ctx context.Context, sid string) (LegalHoldState, error) {
	var s LegalHoldState
	err := c.pool.QueryRow(ctx, `
		SELECT held(g.sid, g.from_number, g.to_number, coalesce(g.date_sent, g.date_created)), m.legal_hold_s3
		FROM media m JOIN messages g ON g.sid = m.message_sid WHERE m.sid = $1`, sid).Scan(&s.Want, &s.Confirmed)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, fmt.Errorf("media %s: %w", sid, ErrMediaNotFound)
	}
	if err != nil {
		return s, fmt.Errorf("media %s: %w", sid, err)
	}
	return s, nil
}

// ConfirmLegalHold records that S3 accepted the media's legal hold as on;
// was is the confirmed state read before the S3 call. Call it only after
// the store confirmed the change. When another worker confirmed a
// different state meanwhile, the two S3 calls may have landed in either
// order: the state becomes unknown (NULL), so the object is set again by
// the reconciler rather than trusted. One that confirmed the same state
// keeps it: both PUTs set the same value, whichever landed last, and
// wiping it would have two workers syncing the same object unconfirm each
// other for ever.
//
// A confirmed state that agreed with the holds in force may have been
// trusted (hold:apply skips what is confirmed): when on replaces it and
// the holds now want the old state back (a hold placed while this worker
// lifted the object), the state becomes unknown too, so the sweep sets it
// again. The shared holds lock orders this check with AddHold's commit.
func (c *Catalog) ConfirmLegalHold(ctx context.Context, sid string, on bool, was *bool) error {
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock_shared($1)`, holdsLock); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			UPDATE media m SET legal_hold_s3 = CASE
				WHEN m.legal_hold_s3 = $2::boolean THEN $2::boolean
				WHEN m.legal_hold_s3 IS NOT DISTINCT FROM $3::boolean THEN CASE
					WHEN $3::boolean IS NOT NULL AND
						$2::boolean <> held(g.sid, g.from_number, g.to_number, coalesce(g.date_sent, g.date_created)) THEN NULL
					ELSE $2::boolean END
				END
			FROM messages g WHERE m.sid = $1 AND g.sid = m.message_sid`, sid, on, was)
		return err
	})
	if err != nil {
		return fmt.Errorf("confirm legal hold of media %s: %w", sid, err)
	}
	return nil
}

// legalHoldsOutOfSync selects, in the store at $1/$2 and after media SID
// $3, the archived objects whose S3 legal hold is not known to follow the
// holds in force: those whose state is unknown (the
// media_legal_hold_s3_unknown index), and those of the holds not yet
// applied or lifted that differ from what the hold requires. Once every
// hold is applied or lifted, it reads only the unknown ones: the cost of a
// pass does not grow with the media held.
const legalHoldsOutOfSync = `
	WITH out_of_sync AS (
		SELECT m.sid FROM media m
		WHERE m.legal_hold_s3 IS NULL AND m.object_key IS NOT NULL AND m.store = $1 AND m.bucket = $2 AND m.sid > $3
		UNION
		SELECT m.sid FROM holds h CROSS JOIN LATERAL (` + coveredBy + `) g
		JOIN media m ON m.message_sid = g.sid AND m.object_key IS NOT NULL
		WHERE ` + holdUnsynced + ` AND m.store = $1 AND m.bucket = $2 AND m.sid > $3 AND ` + holdOutOfSync + `
	)
	SELECT m.sid, m.object_key, coalesce(m.version_id, '')
	FROM out_of_sync o JOIN media m ON m.sid = o.sid`

// LegalHoldsToSync yields the archived objects in the store at loc whose
// S3 legal hold is not known to be what the holds in force require, in
// keyset batches by media SID (no connection held between them): for hold
// list, which shows the first few. Its cost grows with the holds not yet
// applied; the reconciler sweeps UnknownLegalHolds instead.
func (c *Catalog) LegalHoldsToSync(ctx context.Context, loc objects.Location) iter.Seq2[HeldObject, error] {
	return c.heldObjects(ctx, "legal holds to sync", legalHoldsOutOfSync+`
		ORDER BY m.sid LIMIT `+fmt.Sprint(heldBatch), loc)
}

// UnknownLegalHolds yields the archived objects in the store at loc whose
// S3 legal hold is unknown (never confirmed, or confirmations that
// disagreed), in keyset batches by media SID through the
// media_legal_hold_s3_unknown index: the reconciler's sweep, whose cost is
// that of the unknown objects, however many media are held. The objects of
// a hold not yet applied or lifted are hold:apply's, which the reconciler
// queues again.
func (c *Catalog) UnknownLegalHolds(ctx context.Context, loc objects.Location) iter.Seq2[HeldObject, error] {
	return c.heldObjects(ctx, "unknown legal holds", `
		SELECT m.sid, m.object_key, coalesce(m.version_id, '') FROM media m
		WHERE m.legal_hold_s3 IS NULL AND m.object_key IS NOT NULL AND m.store = $1 AND m.bucket = $2 AND m.sid > $3
		ORDER BY m.sid LIMIT `+fmt.Sprint(heldBatch), loc)
}

// UnconfirmedLegalHolds counts, per hold, the objects in the store at loc
// it covers whose S3 legal hold is not yet confirmed to follow it. For a
// hold not yet applied (or, released, not yet lifted): those not confirmed
// ON (or still confirmed ON, kept by no other hold). For an applied active
// hold: those whose state is unknown. Released holds already lifted are
// not counted at all, so the cost does not grow with every hold ever
// placed.
func (c *Catalog) UnconfirmedLegalHolds(ctx context.Context, loc objects.Location) (map[int64]int, error) {
	rows, err := c.pool.Query(ctx, `
		SELECT h.id, count(*) FROM holds h CROSS JOIN LATERAL (`+coveredBy+`) g
		JOIN media m ON m.message_sid = g.sid AND m.object_key IS NOT NULL
		WHERE `+holdUnsynced+` AND m.store = $1 AND m.bucket = $2 AND `+holdOutOfSync+`
		GROUP BY h.id
		UNION ALL
		SELECT h.id, count(*) FROM media m JOIN messages g ON g.sid = m.message_sid
		JOIN holds h ON h.released_at IS NULL AND h.applied_at IS NOT NULL AND `+holdCovers+`
		WHERE m.legal_hold_s3 IS NULL AND m.object_key IS NOT NULL AND m.store = $1 AND m.bucket = $2
		GROUP BY h.id`, loc.Kind, loc.Bucket)
	if err != nil {
		return nil, fmt.Errorf("unconfirmed legal holds: %w", err)
	}
	counts := map[int64]int{}
	var id int64
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&id, &n}, func() error { counts[id] = n; return nil }); err != nil {
		return nil, fmt.Errorf("unconfirmed legal holds: %w", err)
	}
	return counts, nil
}

// UnconfirmedHoldsOfMessages returns the archived objects of messages, in
// the store at loc, whose S3 legal hold is unknown (up to heldBatch; the
// reconciler's sweep finds any more): a message task that committed them
// may have failed, or died, before it set them; its retry sets them. One
// round trip for a task's messages.
func (c *Catalog) UnconfirmedHoldsOfMessages(ctx context.Context, messages []string, loc objects.Location) ([]HeldObject, error) {
	if len(messages) == 0 {
		return nil, nil
	}
	rows, err := c.pool.Query(ctx, `
		SELECT m.sid, m.object_key, coalesce(m.version_id, '') FROM media m
		WHERE m.message_sid = ANY($1) AND m.legal_hold_s3 IS NULL AND m.object_key IS NOT NULL
		  AND m.store = $2 AND m.bucket = $3
		ORDER BY m.sid LIMIT `+fmt.Sprint(heldBatch), messages, loc.Kind, loc.Bucket)
	if err != nil {
		return nil, fmt.Errorf("unconfirmed legal holds of %d messages: %w", len(messages), err)
	}
	objs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (HeldObject, error) {
		var o HeldObject
		return o, r.Scan(&o.MediaSID, &o.Key, &o.VersionID)
	})
	if err != nil {
		return nil, fmt.Errorf("unconfirmed legal holds of %d messages: %w", len(messages), err)
	}
	return objs, nil
}
