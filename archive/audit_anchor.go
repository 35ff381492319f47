package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// AuditAnchor is the head of the audit chain as written to the archive. The
// database alone cannot prove that its newest rows were not removed: the
// chain that remains links perfectly. An anchor in the archive, create-only
// (and Object-Locked under WORM), is out of reach of whoever can change the
// database, and VerifyAudit checks the log against every anchor.
type AuditAnchor struct {
	HeadID   int64     `json:"head_id"`   // the newest row at the time
	HeadHash []byte    `json:"head_hash"` // its hash
	At       time.Time `json:"at"`        // when the anchor was written

	// Key is where the anchor is in the archive (set by ListAuditAnchors,
	// which reads anchors from their keys: At is then zero).
	//
	// There is no row count: counting the log would scan all of it on
	// every anchor, and the hashes already prove the chain up to the head.
	Key string `json:"-"`
}

// parseAuditAnchorKey reads the head id and hash back from a key's name
// under the account's anchor prefix: {shard}/{head id}-{hash}.json, the id
// in its own shard (see AuditAnchorKey).
func parseAuditAnchorKey(name string) (int64, []byte, bool) {
	shard, name, ok := strings.Cut(name, "/")
	if !ok || len(shard) != 14 || !strings.HasSuffix(name, ".json") {
		return 0, nil, false
	}
	id, hash, ok := strings.Cut(strings.TrimSuffix(name, ".json"), "-")
	if !ok || len(id) != 20 {
		return 0, nil, false
	}
	n, err := strconv.ParseInt(id, 10, 64)
	sh, serr := strconv.ParseInt(shard, 10, 64)
	h, herr := hex.DecodeString(hash)
	if err != nil || serr != nil || herr != nil || len(h) != sha256.Size || n < 0 || sh != n/AuditAnchorsPerShard {
		return 0, nil, false
	}
	return n, h, true
}

// AnchorTarget is where and how anchors are written.
type AnchorTarget struct {
	Store      Store
	Prefix     string // the archive's key prefix, from ARCHIVE_URL
	AccountSID string
	// LockMode and Retention, when set, write the anchor Object-Locked
	// until its time + Retention, as archived media are.
	LockMode  ObjectLockMode
	Retention time.Duration
}

// AnchorAudit writes the current head of the audit log to the archive and
// returns it, unless the log is empty or its head is still that of last
// (the anchor this caller wrote before): written then says false. Writing
// the same head again is harmless anyway: the key is the same and the
// store is create-only.
func (c *Catalog) AnchorAudit(ctx context.Context, t AnchorTarget, now time.Time, last AuditAnchor) (a AuditAnchor, written bool, err error) {
	a = AuditAnchor{At: now.UTC().Truncate(time.Second)}
	// The newest row, by the primary key's index: no scan of the log. Rows
	// at or below a committed head are final: appends commit in id order
	// (see audit_chain in migration 00003).
	err = c.pool.QueryRow(ctx, `SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1`).Scan(&a.HeadID, &a.HeadHash)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, false, nil
	}
	if err != nil {
		return a, false, fmt.Errorf("audit anchor: read head: %w", err)
	}
	if a.HeadID == last.HeadID && bytes.Equal(a.HeadHash, last.HeadHash) {
		return last, false, nil
	}
	body, err := json.Marshal(a)
	if err != nil {
		return a, false, fmt.Errorf("audit anchor: %w", err)
	}
	in := PutInput{
		Key:         AuditAnchorKey(t.Prefix, t.AccountSID, a.HeadID, a.HeadHash),
		ContentType: "application/json",
		Size:        int64(len(body)),
		SHA256:      sha256.Sum256(body),
	}
	if t.LockMode != "" {
		in.LockMode, in.RetainUntil = t.LockMode, a.At.Add(t.Retention)
	}
	// ErrConflict: another writer anchored this head, at another time.
	if _, err := t.Store.Put(ctx, in, bytes.NewReader(body)); err != nil && !errors.Is(err, ErrConflict) {
		return a, false, fmt.Errorf("audit anchor: %w", err)
	}
	return a, true, nil
}

// ListAuditAnchors yields an account's anchors in the archive, ascending by
// head id, from their keys, as the store lists them: a page (S3) or a
// window of a directory (file store) at a time, so memory does not grow
// with their number. Objects under the prefix that are not anchors are
// skipped, and so are anchors in the flat layout of before the shards
// (never released).
func ListAuditAnchors(ctx context.Context, s Store, prefix, accountSID string) iter.Seq2[AuditAnchor, error] {
	dir := AuditAnchorPrefix(prefix, accountSID)
	return func(yield func(AuditAnchor, error) bool) {
		for key, err := range s.List(ctx, dir) {
			if err != nil {
				yield(AuditAnchor{}, fmt.Errorf("audit anchors: %w", err))
				return
			}
			id, hash, ok := parseAuditAnchorKey(strings.TrimPrefix(key, dir))
			if !ok {
				continue
			}
			if !yield(AuditAnchor{HeadID: id, HeadHash: hash, Key: key}, nil) {
				return
			}
		}
	}
}
