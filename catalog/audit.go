package catalog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"iter"
	"strconv"
	"time"

	"github.com/mediasync/mediasync/internal/objects"
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
	AuditRunCancelled  = "run.cancelled" // an operator stopped a run (enqueue cancel)
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

// auditBatch is how many rows AuditLog reads per query.
const auditBatch = 1000

// AuditLog yields entries at or after since (zero: all), oldest first. It
// reads them in keyset batches, so no cursor stays open while the caller
// does other I/O between entries (writes to a terminal, lists the archive)
// and memory holds one batch, never the whole log. After an error it
// yields nothing more.
func (c *Catalog) AuditLog(ctx context.Context, since time.Time) iter.Seq2[AuditEntry, error] {
	return func(yield func(AuditEntry, error) bool) {
		var after int64 = -1
		for {
			batch, err := c.auditBatch(ctx, since, after)
			if err != nil {
				yield(AuditEntry{}, err)
				return
			}
			for _, e := range batch {
				if !yield(e, nil) {
					return
				}
			}
			if len(batch) < auditBatch {
				return
			}
			after = batch[len(batch)-1].ID
		}
	}
}

func (c *Catalog) auditBatch(ctx context.Context, since time.Time, after int64) ([]AuditEntry, error) {
	rows, err := c.pool.Query(ctx, `
		SELECT id, at, actor, action, subject, details::text, prev_hash, hash
		FROM audit_log WHERE at >= $1 AND id > $2 ORDER BY id LIMIT $3`, since, after, auditBatch)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	defer rows.Close()
	batch := make([]AuditEntry, 0, auditBatch)
	for rows.Next() {
		var e AuditEntry
		var details string
		if err := rows.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Subject, &details, &e.PrevHash, &e.Hash); err != nil {
			return nil, fmt.Errorf("audit log: %w", err)
		}
		e.At, e.Details = e.At.UTC(), json.RawMessage(details)
		batch = append(batch, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return batch, nil
}

// AuditBreak says where the chain is broken.
type AuditBreak struct {
	ID     int64  // the first row that does not verify (or is missing)
	Reason string // what is wrong with it
}

// AuditVerification is what VerifyAudit found.
type AuditVerification struct {
	Rows    int                  // rows read
	HeadID  int64                // the last row read (0: none)
	Anchors int                  // anchors checked
	Latest  *objects.AuditAnchor // the latest anchor checked, if any
	Broken  *AuditBreak          // the first break; nil when the log verifies
}

// VerifyAudit recomputes the chain from the first row, independently of the
// database's own function, and checks it against anchors (ascending by
// HeadID, as ListAuditAnchors yields them): each anchored row must exist
// with its anchored hash, and the log must reach the latest anchor.
//
// A changed row fails its own hash; a removed row breaks the next row's
// link; rows removed from the end (which leave a shorter chain that links
// perfectly) are missing at an anchor. Gaps in ids alone are not breaks:
// the id sequence skips the id of an append whose transaction rolled back.
func (c *Catalog) VerifyAudit(ctx context.Context, anchors iter.Seq2[objects.AuditAnchor, error]) (AuditVerification, error) {
	next, stop := iter.Pull2(anchors)
	defer stop()
	var v AuditVerification
	var a objects.AuditAnchor
	pending := false
	advance := func() error {
		anchor, err, ok := next()
		if err != nil {
			return err
		}
		if pending = ok; ok {
			a, v.Latest = anchor, &anchor
			v.Anchors++
		}
		return nil
	}
	if err := advance(); err != nil {
		return v, err
	}
	var prev []byte
	for e, err := range c.AuditLog(ctx, time.Time{}) {
		if err != nil {
			return v, err
		}
		v.Rows++
		switch {
		case !bytes.Equal(e.PrevHash, prev):
			v.Broken = &AuditBreak{ID: e.ID, Reason: fmt.Sprintf("its link does not match row %d's hash: a row before it was removed or changed", v.HeadID)}
		case !bytes.Equal(e.Hash, auditHash(e)):
			v.Broken = &AuditBreak{ID: e.ID, Reason: "its content does not match its hash: the row was changed"}
		case pending && a.HeadID < e.ID:
			v.Broken = &AuditBreak{ID: a.HeadID, Reason: fmt.Sprintf("the row is missing, but the archive anchored it (%s): it was removed", a.Key)}
		}
		for v.Broken == nil && pending && a.HeadID == e.ID {
			if !bytes.Equal(e.Hash, a.HeadHash) {
				v.Broken = &AuditBreak{ID: e.ID, Reason: fmt.Sprintf("its hash differs from the one the archive anchored (%s): the row was rewritten", a.Key)}
			} else if err := advance(); err != nil {
				return v, err
			}
		}
		if v.Broken != nil {
			return v, nil
		}
		prev, v.HeadID = e.Hash, e.ID
	}
	if pending {
		v.Broken = &AuditBreak{ID: a.HeadID, Reason: fmt.Sprintf("the log ends at row %d, but the archive anchored row %d (%s): rows were removed from the end of the log",
			v.HeadID, a.HeadID, a.Key)}
	}
	return v, nil
}

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
