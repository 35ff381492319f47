package catalog_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/objects"
	"github.com/mediasync/mediasync/internal/testenv"
)

func newCatalogPool(t *testing.T) (*catalog.Catalog, *pgxpool.Pool) {
	t.Helper()
	pool := testenv.Postgres(t)
	_, err := catalog.Migrate(t.Context(), pool)
	require.NoError(t, err)
	return catalog.NewCatalog(pool), pool
}

// anchor writes the log's head to the archive as a worker does (jobs'
// AnchorLoop), and says whether there was a head to write.
func anchor(t *testing.T, c *catalog.Catalog, target archive.AnchorTarget, at time.Time) (objects.AuditAnchor, bool) {
	t.Helper()
	a, ok, err := c.AuditHead(t.Context())
	require.NoError(t, err)
	if !ok {
		return a, false
	}
	a.At = at.UTC().Truncate(time.Second)
	require.NoError(t, archive.WriteAuditAnchor(t.Context(), target, a))
	return a, true
}

// noAnchors is an empty anchor listing.
func noAnchors(func(objects.AuditAnchor, error) bool) {}

// An append whose transaction rolled back leaves a gap in the ids (the
// sequence does not give its id back): that is not tampering, and the log
// verifies.
func TestAuditVerifiesAcrossRolledBackAppend(t *testing.T) {
	t.Parallel()
	c, pool := newCatalogPool(t)
	ctx := t.Context()
	insert := `INSERT INTO audit_log (actor, action, subject, details, prev_hash, hash) VALUES ('ops', 'hold.added', $1, '{}', '', '')`
	for i := range 2 {
		_, err := pool.Exec(ctx, insert, fmt.Sprint(i))
		require.NoError(t, err)
	}
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, insert, "rolled back")
	require.NoError(t, err)
	require.NoError(t, tx.Rollback(ctx))
	for i := range 2 {
		_, err := pool.Exec(ctx, insert, fmt.Sprint(i+2))
		require.NoError(t, err)
	}
	var maxID int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT max(id) FROM audit_log`).Scan(&maxID))
	require.Equal(t, int64(5), maxID, "4 rows, with id 3 skipped")

	v, err := c.VerifyAudit(ctx, noAnchors)
	require.NoError(t, err)
	require.Nil(t, v.Broken, "a rolled-back append is not tampering")
	require.Equal(t, 4, v.Rows)
	require.Equal(t, int64(5), v.HeadID)
}

// Removing the newest rows leaves a chain that links perfectly; only the
// anchor in the archive shows they existed, whether or not rows were
// appended since.
func TestAuditAnchorCatchesRemovedNewestRows(t *testing.T) {
	t.Parallel()
	c, pool := newCatalogPool(t)
	ctx := t.Context()
	store, err := archive.NewFileStore(t.TempDir())
	require.NoError(t, err)
	target := archive.AnchorTarget{Store: store, Prefix: "media", AccountSID: acct}
	anchors := func() func(func(objects.AuditAnchor, error) bool) {
		return archive.ListAuditAnchors(ctx, store, "media", acct)
	}
	insert := `INSERT INTO audit_log (actor, action, subject, details, prev_hash, hash) VALUES ('ops', 'hold.added', $1, '{}', '', '')`

	_, written := anchor(t, c, target, time.Now())
	require.False(t, written, "an empty log has no head to anchor")

	for i := range 4 {
		_, err := pool.Exec(ctx, insert, fmt.Sprint(i))
		require.NoError(t, err)
	}
	a, written := anchor(t, c, target, time.Now())
	require.True(t, written)
	require.Equal(t, int64(4), a.HeadID)
	body, err := store.Open(ctx, archive.AuditAnchorKey("media", acct, a.HeadID, a.HeadHash))
	require.NoError(t, err)
	var fields map[string]json.RawMessage
	require.NoError(t, json.NewDecoder(body).Decode(&fields))
	require.NoError(t, body.Close())
	require.ElementsMatch(t, []string{"head_id", "head_hash", "at"}, slices.Collect(maps.Keys(fields)),
		"the anchor's JSON: no row count, which would scan the whole log")
	info, err := store.Stat(ctx, archive.AuditAnchorKey("media", acct, a.HeadID, a.HeadHash))
	require.NoError(t, err, "the anchor is an object in the archive")
	require.Equal(t, "application/json", info.ContentType)
	// Another worker anchoring the same head, later, is no conflict.
	_, written = anchor(t, c, target, time.Now().Add(time.Hour))
	require.True(t, written)

	v, err := c.VerifyAudit(ctx, anchors())
	require.NoError(t, err)
	require.Nil(t, v.Broken)
	require.Equal(t, 1, v.Anchors)

	_, err = pool.Exec(ctx, `ALTER TABLE audit_log DISABLE TRIGGER audit_log_immutable;
		DELETE FROM audit_log WHERE id >= 3;
		ALTER TABLE audit_log ENABLE TRIGGER audit_log_immutable`)
	require.NoError(t, err)
	v, err = c.VerifyAudit(ctx, anchors())
	require.NoError(t, err)
	require.NotNil(t, v.Broken, "rows removed from the end are found")
	require.Equal(t, int64(4), v.Broken.ID)
	require.Contains(t, v.Broken.Reason, "the log ends at row 2")
	require.Contains(t, v.Broken.Reason, "removed from the end")

	// New rows hide the end from the chain (row 5 links to row 2), not from
	// the anchor.
	_, err = pool.Exec(ctx, insert, "after")
	require.NoError(t, err)
	v, err = c.VerifyAudit(ctx, anchors())
	require.NoError(t, err)
	require.NotNil(t, v.Broken)
	require.Equal(t, int64(4), v.Broken.ID)
	require.Contains(t, v.Broken.Reason, "the row is missing")
}

// A row rewritten with its hash recomputed verifies on its own (its link
// and its hash agree); the anchor still holds the hash it had.
func TestAuditAnchorCatchesRehashedRow(t *testing.T) {
	t.Parallel()
	c, pool := newCatalogPool(t)
	ctx := t.Context()
	store, err := archive.NewFileStore(t.TempDir())
	require.NoError(t, err)
	for i := range 3 {
		_, err := pool.Exec(ctx, `INSERT INTO audit_log (actor, action, subject, details, prev_hash, hash) VALUES ('ops', 'hold.added', $1, '{}', '', '')`, fmt.Sprint(i))
		require.NoError(t, err)
	}
	anchor(t, c, archive.AnchorTarget{Store: store, AccountSID: acct}, time.Now())
	_, err = pool.Exec(ctx, `ALTER TABLE audit_log DISABLE TRIGGER audit_log_immutable;
		UPDATE audit_log SET actor = 'someone else' WHERE id = 3;
		UPDATE audit_log a SET hash = sha256(a.prev_hash || convert_to(audit_payload(a), 'UTF8')) WHERE id = 3;
		ALTER TABLE audit_log ENABLE TRIGGER audit_log_immutable`)
	require.NoError(t, err)

	v, err := c.VerifyAudit(ctx, noAnchors)
	require.NoError(t, err)
	require.Nil(t, v.Broken, "the chain alone cannot tell")
	v, err = c.VerifyAudit(ctx, archive.ListAuditAnchors(ctx, store, "", acct))
	require.NoError(t, err)
	require.NotNil(t, v.Broken)
	require.Equal(t, int64(3), v.Broken.ID)
	require.Contains(t, v.Broken.Reason, "the row was rewritten")
}
