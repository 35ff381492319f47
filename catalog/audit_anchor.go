package catalog

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mediasync/mediasync/internal/objects"
)

// AuditHead returns the head of the audit log, the anchor to write to the
// archive (archive.WriteAuditAnchor) with At still to set, or ok false
// while the log is empty. The newest row is read by the primary key's
// index: no scan of the log. Rows at or below a committed head are final:
// appends commit in id order (see audit_chain in migration 00003).
func (c *Catalog) AuditHead(ctx context.Context) (a objects.AuditAnchor, ok bool, err error) {
	err = c.pool.QueryRow(ctx, `SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1`).Scan(&a.HeadID, &a.HeadHash)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, false, nil
	}
	if err != nil {
		return a, false, fmt.Errorf("audit anchor: read head: %w", err)
	}
	return a, true, nil
}
