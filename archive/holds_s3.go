package archive

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/jackc/pgx/v5"
)

// S3 legal holds follow the holds in force, but are set on S3 after the
// rows that ask for them commit: a PUT that fails, or a worker that dies
// before it, leaves an object unprotected. media.legal_hold_s3 records the
// state S3 last confirmed, so what differs from what the holds require is
// found again (LegalHoldsToSync) and shown (UnconfirmedLegalHolds).

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
// order: the state becomes unknown (NULL), so a held object is set again by
// the reconciler rather than trusted. One that confirmed the same state
// keeps it: both PUTs set the same value, whichever landed last, and
// wiping it would have two workers syncing the same object unconfirm each
// other for ever.
func (c *Catalog) ConfirmLegalHold(ctx context.Context, sid string, on bool, was *bool) error {
	if _, err := c.pool.Exec(ctx, `
		UPDATE media SET legal_hold_s3 = CASE
			WHEN legal_hold_s3 IS NOT DISTINCT FROM $3::boolean OR legal_hold_s3 = $2::boolean THEN $2::boolean END
		WHERE sid = $1`, sid, on, was); err != nil {
		return fmt.Errorf("confirm legal hold of media %s: %w", sid, err)
	}
	return nil
}

// legalHoldsOutOfSync selects, in the store at $1/$2, the archived objects
// whose confirmed S3 legal hold differs from what the holds in force
// require: held but not confirmed on, or confirmed on but no longer held.
const legalHoldsOutOfSync = `
	WITH out_of_sync AS (
		SELECT m.sid FROM holds h JOIN messages g ON ` + holdCovers + `
		JOIN media m ON m.message_sid = g.sid AND m.object_key IS NOT NULL
		WHERE h.released_at IS NULL AND m.legal_hold_s3 IS NOT TRUE
		UNION
		SELECT m.sid FROM media m JOIN messages g ON g.sid = m.message_sid
		WHERE m.legal_hold_s3 AND NOT held(g.sid, g.from_number, g.to_number, coalesce(g.date_sent, g.date_created))
	)
	SELECT m.sid, m.object_key, coalesce(m.version_id, '')
	FROM out_of_sync o JOIN media m ON m.sid = o.sid
	WHERE m.store = $1 AND m.bucket = $2`

// LegalHoldsToSync yields the archived objects in the store at loc whose
// S3 legal hold is not confirmed to be what the holds in force require,
// in keyset batches by media SID (no connection held between them).
func (c *Catalog) LegalHoldsToSync(ctx context.Context, loc Location) iter.Seq2[HeldObject, error] {
	return c.heldObjects(ctx, "legal holds to sync", legalHoldsOutOfSync+` AND m.sid > $3
		ORDER BY m.sid LIMIT `+fmt.Sprint(heldBatch), loc)
}

// UnconfirmedLegalHolds counts, per hold, the objects in the store at loc
// it covers whose S3 legal hold is not yet confirmed to follow it: for an
// active hold, objects not confirmed on; for a released one, objects still
// confirmed on that no other hold keeps.
func (c *Catalog) UnconfirmedLegalHolds(ctx context.Context, loc Location) (map[int64]int, error) {
	rows, err := c.pool.Query(ctx, `
		SELECT h.id, count(*) FROM holds h JOIN messages g ON `+holdCovers+`
		JOIN media m ON m.message_sid = g.sid AND m.object_key IS NOT NULL
		WHERE m.store = $1 AND m.bucket = $2 AND CASE
			WHEN h.released_at IS NULL THEN m.legal_hold_s3 IS NOT TRUE
			ELSE m.legal_hold_s3 AND NOT held(g.sid, g.from_number, g.to_number, coalesce(g.date_sent, g.date_created)) END
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
