package archive

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
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

// AddHold places a hold and records it in the audit log, in one
// transaction. From then on no run deletes a media it covers: it returns
// only once no DELETE leased before the hold can still reach Twilio (see
// LeaseDelete), which takes at most DeleteLease and a margin.
func (c *Catalog) AddHold(ctx context.Context, h Hold) (Hold, error) {
	if h.Reason == "" || h.CreatedBy == "" {
		return Hold{}, errors.New("add hold: a reason and an actor are required")
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
// covers (or covered, once released), for setting or lifting their S3
// legal holds. It reads them in keyset batches by media SID and holds no
// connection while the caller works.
func (c *Catalog) HeldMedia(ctx context.Context, holdID int64, loc Location) iter.Seq2[HeldObject, error] {
	return c.heldObjects(ctx, fmt.Sprintf("media of hold %d", holdID), `
		SELECT m.sid, m.object_key, coalesce(m.version_id, '')
		FROM holds h JOIN messages g ON `+holdCovers+`
		JOIN media m ON m.message_sid = g.sid AND m.object_key IS NOT NULL
		WHERE h.id = $4 AND m.store = $1 AND m.bucket = $2 AND m.sid > $3
		ORDER BY m.sid LIMIT `+fmt.Sprint(heldBatch), loc, holdID)
}

// holdCovers joins a hold h to the messages g it covers.
const holdCovers = `(g.sid = ANY (h.message_sids) OR g.from_number = h.from_number OR g.to_number = h.to_number)
		AND (h.since IS NULL OR coalesce(g.date_sent, g.date_created) >= h.since)
		AND (h.until IS NULL OR coalesce(g.date_sent, g.date_created) < h.until)`

// heldObjects pages through query, whose $1 and $2 are loc's kind and
// bucket, $3 the last media SID yielded, and $4… the extra args.
func (c *Catalog) heldObjects(ctx context.Context, what, query string, loc Location, args ...any) iter.Seq2[HeldObject, error] {
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
