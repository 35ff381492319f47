package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Audit actions.
const (
	AuditMediaDeleted  = "media.deleted"
	AuditDeleteHeld    = "media.delete_held" // a hold stopped a claimed delete
	AuditHoldAdded     = "hold.added"
	AuditHoldReleased  = "hold.released"
	AuditPolicyCreated = "policy.created"
	AuditPolicyChanged = "policy.changed"
	AuditPolicyRemoved = "policy.removed"
	AuditRunStarted    = "run.started"
	AuditRunFinished   = "run.finished"
)

// AuditEntry is one row of the audit log.
type AuditEntry struct {
	ID       int64           `json:"id"`
	At       time.Time       `json:"at"`
	Actor    string          `json:"actor"`
	Action   string          `json:"action"`
	Subject  string          `json:"subject"`
	Details  json.RawMessage `json:"details"`
	PrevHash []byte          `json:"prev_hash"`
	Hash     []byte          `json:"hash"`
}

// audit appends an entry in the caller's transaction, so the record and
// the action it records commit together or not at all. The database
// chains it (see migration 00003).
func audit(ctx context.Context, db execer, actor, action, subject string, details any) error {
	b, err := json.Marshal(details)
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	if details == nil {
		b = []byte("{}")
	}
	if _, err := db.Exec(ctx, `INSERT INTO audit_log (actor, action, subject, details, prev_hash, hash)
		VALUES ($1, $2, $3, $4, '', '')`, actor, action, subject, b); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// AuditLog returns entries at or after since (zero: all), oldest first,
// calling fn for each so the log is never held in memory whole. It reads
// the log in batches by id and calls fn only between them, so a slow fn
// (a paused pipe) holds no connection.
func (c *Catalog) AuditLog(ctx context.Context, since time.Time, fn func(AuditEntry) error) error {
	const batch = 500
	var after int64
	for {
		rows, err := c.pool.Query(ctx, `
			SELECT id, at, actor, action, subject, details::text, prev_hash, hash
			FROM audit_log WHERE at >= $1 AND id > $2 ORDER BY id LIMIT $3`, since, after, batch)
		if err != nil {
			return fmt.Errorf("audit log: %w", err)
		}
		entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEntry, error) {
			var e AuditEntry
			var details string
			err := r.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Subject, &details, &e.PrevHash, &e.Hash)
			e.At, e.Details = e.At.UTC(), json.RawMessage(details)
			return e, err
		})
		if err != nil {
			return fmt.Errorf("audit log: %w", err)
		}
		for _, e := range entries {
			if err := fn(e); err != nil {
				return err
			}
		}
		if len(entries) < batch {
			return nil
		}
		after = entries[len(entries)-1].ID
	}
}

// AuditBreak says where the chain is broken.
type AuditBreak struct {
	ID     int64  // the first row that does not verify
	Reason string // what is wrong with it
}

// VerifyAudit recomputes the chain from the first row, independently of the
// database's own function, and returns the first row that does not verify
// (nil when the whole log does) and how many rows were checked. A changed
// row fails its own hash; a removed row breaks the next row's link.
func (c *Catalog) VerifyAudit(ctx context.Context) (*AuditBreak, int, error) {
	var prev []byte
	var prevID int64
	n := 0
	var broken *AuditBreak
	err := c.AuditLog(ctx, time.Time{}, func(e AuditEntry) error {
		n++
		switch {
		case !bytes.Equal(e.PrevHash, prev):
			broken = &AuditBreak{ID: e.ID, Reason: fmt.Sprintf("its link does not match row %d's hash: a row before it was removed or changed", prevID)}
		case e.ID != prevID+1 && prevID != 0:
			broken = &AuditBreak{ID: e.ID, Reason: fmt.Sprintf("rows %d to %d are missing", prevID+1, e.ID-1)}
		case !bytes.Equal(e.Hash, auditHash(e)):
			broken = &AuditBreak{ID: e.ID, Reason: "its content does not match its hash: the row was changed"}
		}
		if broken != nil {
			return errStop
		}
		prev, prevID = e.Hash, e.ID
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, n, err
	}
	return broken, n, nil
}

var errStop = errors.New("stop")

// auditHash is sha256(prev_hash || payload) with the payload laid out as
// the database's audit_payload function lays it out.
func auditHash(e AuditEntry) []byte {
	payload := strconv.FormatInt(e.ID, 10) + "|" + e.At.UTC().Format("2006-01-02T15:04:05.000000Z") +
		"|" + e.Actor + "|" + e.Action + "|" + e.Subject + "|" + string(e.Details)
	h := sha256.New()
	h.Write(e.PrevHash)
	h.Write([]byte(payload))
	return h.Sum(nil)
}
