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

	"github.com/mediasync/mediasync/internal/objects"
)

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
	LockMode  objects.LockMode
	Retention time.Duration
}

// WriteAuditAnchor writes a (the head of the audit log, from
// catalog.AuditHead) to the archive. Writing the same head again is
// harmless: the key is the same and the store is create-only.
func WriteAuditAnchor(ctx context.Context, t AnchorTarget, a objects.AuditAnchor) error {
	body, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("audit anchor: %w", err)
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
		return fmt.Errorf("audit anchor: %w", err)
	}
	return nil
}

// ListAuditAnchors yields an account's anchors in the archive, ascending by
// head id, from their keys, as the store lists them: a page (S3) or a
// window of a directory (file store) at a time, so memory does not grow
// with their number. Objects under the prefix that are not anchors are
// skipped, and so are anchors in the flat layout of before the shards
// (never released).
func ListAuditAnchors(ctx context.Context, s Store, prefix, accountSID string) iter.Seq2[objects.AuditAnchor, error] {
	dir := AuditAnchorPrefix(prefix, accountSID)
	return func(yield func(objects.AuditAnchor, error) bool) {
		for key, err := range s.List(ctx, dir) {
			if err != nil {
				yield(objects.AuditAnchor{}, fmt.Errorf("audit anchors: %w", err))
				return
			}
			id, hash, ok := parseAuditAnchorKey(strings.TrimPrefix(key, dir))
			if !ok {
				continue
			}
			if !yield(objects.AuditAnchor{HeadID: id, HeadHash: hash, Key: key}, nil) {
				return
			}
		}
	}
}
