package catalog

import (
	"context"
	"encoding/hex"
	"fmt"
)

// ArchivedRecord is the proof of a message's archived record and whether
// it was stored without its body.
type ArchivedRecord struct {
	MessageRecordCopy
	NoBody bool
}

// MessageRecords returns the archived record of each of sids that has one,
// in one round trip: a page lister stores no second record of a message
// (issue #17).
func (c *Catalog) MessageRecords(ctx context.Context, sids []string) (map[string]ArchivedRecord, error) {
	out := make(map[string]ArchivedRecord)
	if len(sids) == 0 {
		return out, nil
	}
	rows, err := c.pool.Query(ctx, `
		SELECT sid, record_key, record_size, record_sha256, record_no_body FROM messages
		WHERE sid = ANY($1) AND record_key IS NOT NULL`, sids)
	if err != nil {
		return nil, fmt.Errorf("records of %d messages: %w", len(sids), err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			sid, sha string
			r        ArchivedRecord
		)
		if err := rows.Scan(&sid, &r.Key, &r.Size, &sha, &r.NoBody); err != nil {
			return nil, fmt.Errorf("records of %d messages: %w", len(sids), err)
		}
		if _, err := hex.Decode(r.SHA256[:], []byte(sha)); err != nil {
			return nil, fmt.Errorf("message %s: stored record sha256: %w", sid, err)
		}
		out[sid] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("records of %d messages: %w", len(sids), err)
	}
	return out, nil
}
