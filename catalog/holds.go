package catalog

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mediasync/mediasync/internal/objects"
	"github.com/mediasync/mediasync/internal/sids"
)

// ErrHeld is returned by ClaimDelete when a legal hold covers the media.
var ErrHeld = errors.New("under legal hold")

// ErrHoldNotFound is returned for an unknown or already released hold.
var ErrHoldNotFound = errors.New("no active hold with that id")

// Hold is a legal hold. It covers the messages named, or those from or to a
// number, optionally only those sent in [Since, Until).
type Hold struct {
	ID            int64
	Reason        string
	MessageSIDs   []string
	From, To      string
	Since, Until  time.Time
	CreatedBy     string
	CreatedAt     time.Time
	ReleasedAt    time.Time
	ReleasedBy    string
	ReleaseReason string
}

// Validate returns an *InvalidError unless h says why it holds and
// selects its media one way: exactly one of valid message SIDs, a From
// number or a To number, and a sent range whose since comes before until
// when both are set.
func (h Hold) Validate() error {
	if strings.TrimSpace(h.Reason) == "" {
		return &InvalidError{Field: "reason", Reason: "is required: say why the media are held"}
	}
	n := 0
	for _, set := range []bool{len(h.MessageSIDs) > 0, h.From != "", h.To != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return &InvalidError{Reason: "give exactly one of {message}, {from} or {to}"}
	}
	for _, sid := range h.MessageSIDs {
		if !sids.ValidMessage(sid) && !sids.ValidConversationMessage(sid) {
			return &InvalidError{Field: "message", Value: sid, Reason: "is not a message SID (SM, MM or, for Conversations, IM followed by 32 hex digits)"}
		}
	}
	if err := checkNumbers("from", h.From, "to", h.To); err != nil {
		return err
	}
	if !h.Since.IsZero() && !h.Until.IsZero() && !h.Since.Before(h.Until) {
		return &InvalidError{Field: "since", Reason: h.Since.Format(time.DateOnly) + " must be before {until} " + h.Until.Format(time.DateOnly)}
	}
	return nil
}

// AddHold places a hold and records it in the audit log, in one
// transaction. From then on no run deletes a media it covers: it returns
// only once no DELETE leased before the hold can still reach Twilio (see
// LeaseDelete), which takes at most DeleteLease and a margin. A hold
// h.Validate refuses returns its *InvalidError.
func (c *Catalog) AddHold(ctx context.Context, h Hold) (Hold, error) {
	if err := h.Validate(); err != nil {
		return Hold{}, fmt.Errorf("add hold: %w", err)
	}
	if h.CreatedBy == "" {
		return Hold{}, errors.New("add hold: an actor is required")
	}
	var sids []string
	if len(h.MessageSIDs) > 0 {
		sids = make([]string, len(h.MessageSIDs))
		for i, sid := range h.MessageSIDs {
			sids[i] = canonicalSID(sid)
		}
		h.MessageSIDs = sids
	}
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		// Exclusive: waits out the delete leases being taken, and makes
		// those taken after the commit see the hold.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, holdsLock); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `
			INSERT INTO holds (reason, message_sids, from_number, to_number, since, until, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, created_at`,
			h.Reason, sids, nullString(h.From), nullString(h.To), nullTime(h.Since), nullTime(h.Until), h.CreatedBy).
			Scan(&h.ID, &h.CreatedAt); err != nil {
			return err
		}
		return audit(ctx, tx, h.CreatedBy, AuditHoldAdded, fmt.Sprint(h.ID), holdDetails(h))
	})
	if err != nil {
		return Hold{}, fmt.Errorf("add hold: %w", err)
	}
	if err := c.waitForLeases(ctx, h.ID); err != nil {
		return Hold{}, fmt.Errorf("hold %d is in force, but deletes leased before it may still reach Twilio: %w", h.ID, err)
	}
	return h, nil
}

func holdDetails(h Hold) map[string]any {
	d := map[string]any{"reason": h.Reason}
	if len(h.MessageSIDs) > 0 {
		d["message_sids"] = h.MessageSIDs
	}
	if h.From != "" {
		d["from"] = h.From
	}
	if h.To != "" {
		d["to"] = h.To
	}
	if !h.Since.IsZero() {
		d["since"] = h.Since
	}
	if !h.Until.IsZero() {
		d["until"] = h.Until
	}
	return d
}

// ReleaseHold releases an active hold and records it in the audit log.
func (c *Catalog) ReleaseHold(ctx context.Context, id int64, actor, reason string) (Hold, error) {
	if reason == "" || actor == "" {
		return Hold{}, errors.New("release hold: a reason and an actor are required")
	}
	var h Hold
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			UPDATE holds SET released_at = now(), released_by = $2, release_reason = $3
			WHERE id = $1 AND released_at IS NULL`, id, actor, reason)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrHoldNotFound
		}
		if h, err = getHold(ctx, tx, id); err != nil {
			return err
		}
		return audit(ctx, tx, actor, AuditHoldReleased, fmt.Sprint(id), map[string]any{"reason": reason})
	})
	if err != nil {
		return Hold{}, fmt.Errorf("release hold %d: %w", id, err)
	}
	return h, nil
}

const holdColumns = `id, reason, coalesce(message_sids, '{}'), coalesce(from_number, ''), coalesce(to_number, ''),
	since, until, created_by, created_at, released_at, coalesce(released_by, ''), coalesce(release_reason, '')`

func scanHold(row pgx.Row) (Hold, error) {
	var h Hold
	var since, until, released *time.Time
	err := row.Scan(&h.ID, &h.Reason, &h.MessageSIDs, &h.From, &h.To, &since, &until,
		&h.CreatedBy, &h.CreatedAt, &released, &h.ReleasedBy, &h.ReleaseReason)
	h.Since, h.Until, h.ReleasedAt = deref(since), deref(until), deref(released)
	return h, err
}

func getHold(ctx context.Context, tx pgx.Tx, id int64) (Hold, error) {
	return scanHold(tx.QueryRow(ctx, `SELECT `+holdColumns+` FROM holds WHERE id = $1`, id))
}

// Holds lists holds, newest first; released ones too when all is set.
func (c *Catalog) Holds(ctx context.Context, all bool) ([]Hold, error) {
	rows, err := c.pool.Query(ctx, `SELECT `+holdColumns+` FROM holds
		WHERE $1 OR released_at IS NULL ORDER BY id DESC`, all)
	if err != nil {
		return nil, fmt.Errorf("list holds: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Hold, error) { return scanHold(r) })
}

// HeldObject is an archived object a hold covers, in the store at loc.
type HeldObject struct {
	MediaSID  string
	Key       string
	VersionID string
}

// heldBatch is how many objects one query reads: the rows are in memory
// and the connection back in the pool before any S3 call is made.
const heldBatch = 500

// HeldMedia yields the archived objects in the store at loc that a hold
// covers and whose S3 legal hold is not yet confirmed to follow it: not
// confirmed ON while the hold is active; once released, not confirmed OFF
// and kept by no other hold. Objects already confirmed are not yielded, so
// a retry redoes only what is left. It reads the hold's messages in keyset
// batches by message SID through the index of the hold's kind (each batch
// costs its own messages, not the hold's), and holds no connection while
// the caller works.
func (c *Catalog) HeldMedia(ctx context.Context, holdID int64, loc objects.Location) iter.Seq2[HeldObject, error] {
	query := `
		SELECT g.sid, m.sid, m.object_key, coalesce(m.version_id, '')
		FROM holds h CROSS JOIN LATERAL (` + coveredAfter + `) g
		LEFT JOIN media m ON m.message_sid = g.sid AND m.object_key IS NOT NULL
			AND m.store = $1 AND m.bucket = $2 AND ` + holdOutOfSync + `
		WHERE h.id = $4 ORDER BY g.sid`
	return func(yield func(HeldObject, error) bool) {
		after := ""
		for {
			rows, err := c.pool.Query(ctx, query, loc.Kind, loc.Bucket, after, holdID)
			if err != nil {
				yield(HeldObject{}, fmt.Errorf("media of hold %d: %w", holdID, err))
				return
			}
			type row struct {
				msg           string
				sid, key, ver *string
			}
			batch, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
				var o row
				return o, r.Scan(&o.msg, &o.sid, &o.key, &o.ver)
			})
			if err != nil {
				yield(HeldObject{}, fmt.Errorf("media of hold %d: %w", holdID, err))
				return
			}
			msgs := 0
			for _, o := range batch {
				if o.msg != after {
					msgs++
					after = o.msg
				}
				if o.sid != nil && !yield(HeldObject{MediaSID: *o.sid, Key: *o.key, VersionID: *o.ver}, nil) {
					return
				}
			}
			if msgs < heldBatch {
				return
			}
		}
	}
}

// coveredAfter is coveredBy for a batch: the first heldBatch messages with
// a SID after $3, each arm in its index's order (messages pkey,
// messages_from_sid, messages_to_sid).
var coveredAfter = func() string {
	arm := func(cond string) string {
		return `(SELECT g.sid, g.from_number, g.to_number, g.date_sent, g.date_created FROM messages g
		WHERE ` + cond + ` AND g.sid > $3 AND ` + holdSent + `
		ORDER BY g.sid LIMIT ` + fmt.Sprint(heldBatch) + `)`
	}
	return arm(`g.sid = ANY (h.message_sids)`) + ` UNION ALL ` + arm(`g.from_number = h.from_number`) +
		` UNION ALL ` + arm(`g.to_number = h.to_number`)
}()

// holdCovers joins a hold h to the messages g it covers, as one condition:
// for a single message (held()). To list a hold's messages, coveredBy reads
// them through indexes.
const holdCovers = `(g.sid = ANY (h.message_sids) OR g.from_number = h.from_number OR g.to_number = h.to_number)
		AND (h.since IS NULL OR coalesce(g.date_sent, g.date_created) >= h.since)
		AND (h.until IS NULL OR coalesce(g.date_sent, g.date_created) < h.until)`

// coveredBy selects the messages g a hold h (from the enclosing query, for
// LATERAL) covers: one arm per kind of hold, each able to use its index
// (message SIDs: the messages pkey; from and to: an index led by that
// number, messages_from_sent / _to_sent or messages_from_sid / _to_sid).
// A hold has exactly one of the three, so the arms never overlap. The
// single OR condition (holdCovers) can use none of them.
const coveredBy = `
		SELECT g.sid, g.from_number, g.to_number, g.date_sent, g.date_created FROM messages g
		WHERE g.sid = ANY (h.message_sids) AND ` + holdSent + `
		UNION ALL
		SELECT g.sid, g.from_number, g.to_number, g.date_sent, g.date_created FROM messages g
		WHERE g.from_number = h.from_number AND ` + holdSent + `
		UNION ALL
		SELECT g.sid, g.from_number, g.to_number, g.date_sent, g.date_created FROM messages g
		WHERE g.to_number = h.to_number AND ` + holdSent

// holdSent is a hold h's optional date range over messages g.
const holdSent = `(h.since IS NULL OR coalesce(g.date_sent, g.date_created) >= h.since)
		  AND (h.until IS NULL OR coalesce(g.date_sent, g.date_created) < h.until)`

// holdOutOfSync is true for an archived media m of a message g that hold h
// covers whose S3 legal hold is not confirmed to follow h: while h is
// active, not confirmed ON; once released, not confirmed OFF and kept by
// no other hold.
const holdOutOfSync = `CASE WHEN h.released_at IS NULL THEN m.legal_hold_s3 IS NOT TRUE
		ELSE m.legal_hold_s3 IS NOT FALSE AND NOT held(g.sid, g.from_number, g.to_number, coalesce(g.date_sent, g.date_created)) END`

// holdUnsynced is true for a hold h whose S3 legal holds are not yet known
// to be in place (active) or lifted (released); the holds_unsynced index.
const holdUnsynced = `((h.released_at IS NULL AND h.applied_at IS NULL) OR (h.released_at IS NOT NULL AND h.lifted_at IS NULL))`

// MarkHoldsSynced records, of the holds not yet applied or lifted (only
// hold id, when not 0), those that have no object left in the store at loc
// whose S3 legal hold differs from what they require: applied for an active
// hold, lifted for a released one. From then on only objects whose state is
// unknown are swept for them (LegalHoldsToSync).
func (c *Catalog) MarkHoldsSynced(ctx context.Context, loc objects.Location, id int64) error {
	if _, err := c.pool.Exec(ctx, `
		UPDATE holds h SET applied_at = CASE WHEN h.released_at IS NULL THEN now() ELSE h.applied_at END,
			lifted_at = CASE WHEN h.released_at IS NOT NULL THEN now() ELSE h.lifted_at END
		WHERE `+holdUnsynced+` AND ($3 = 0 OR h.id = $3) AND NOT EXISTS (
			SELECT 1 FROM (`+coveredBy+`) g
			JOIN media m ON m.message_sid = g.sid AND m.object_key IS NOT NULL
			WHERE m.store = $1 AND m.bucket = $2 AND `+holdOutOfSync+`)`, loc.Kind, loc.Bucket, id); err != nil {
		return fmt.Errorf("mark holds synced: %w", err)
	}
	return nil
}

// UnsyncedHolds lists the holds not yet applied or lifted, oldest first,
// and whether each is still active.
func (c *Catalog) UnsyncedHolds(ctx context.Context) (map[int64]bool, error) {
	rows, err := c.pool.Query(ctx, `SELECT h.id, h.released_at IS NULL FROM holds h WHERE `+holdUnsynced)
	if err != nil {
		return nil, fmt.Errorf("unsynced holds: %w", err)
	}
	holds := map[int64]bool{}
	var id int64
	var active bool
	if _, err := pgx.ForEachRow(rows, []any{&id, &active}, func() error { holds[id] = active; return nil }); err != nil {
		return nil, fmt.Errorf("unsynced holds: %w", err)
	}
	return holds, nil
}

// heldObjects pages through query, whose $1 and $2 are loc's kind and
// bucket, $3 the last media SID yielded, and $4… the extra args.
func (c *Catalog) heldObjects(ctx context.Context, what, query string, loc objects.Location, args ...any) iter.Seq2[HeldObject, error] {
	return func(yield func(HeldObject, error) bool) {
		after := ""
		for {
			rows, err := c.pool.Query(ctx, query, append([]any{loc.Kind, loc.Bucket, after}, args...)...)
			if err != nil {
				yield(HeldObject{}, fmt.Errorf("%s: %w", what, err))
				return
			}
			batch, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (HeldObject, error) {
				var o HeldObject
				return o, r.Scan(&o.MediaSID, &o.Key, &o.VersionID)
			})
			if err != nil {
				yield(HeldObject{}, fmt.Errorf("%s: %w", what, err))
				return
			}
			for _, o := range batch {
				if !yield(o, nil) {
					return
				}
			}
			if len(batch) < heldBatch {
				return
			}
			after = batch[len(batch)-1].MediaSID
		}
	}
}

// canonicalSID writes a SID's 32 hex digits in lower case, as Twilio writes
// every SID it returns (and so as the catalog holds them). Twilio's OpenAPI
// pattern admits either case, so a SID typed in upper case names the same
// message; compared as typed, a hold on it would cover nothing.
func canonicalSID(sid string) string {
	if len(sid) != 34 {
		return sid
	}
	return sid[:2] + strings.ToLower(sid[2:])
}
