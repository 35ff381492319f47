package catalog_test

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/mediasync/mediasync/catalog"
	"github.com/stretchr/testify/require"
)

// A suspect media is not archived: the last gate refuses to claim its
// delete, the schema refuses a claim or a deleted state written around the
// gate, and the run fails naming it. A later download with plausible bytes
// archives it under its own key and it may then be deleted.
func TestSuspectMediaCannotBeDeleted(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	run := seedMedia(t, c, true)
	bad := sha256.Sum256([]byte("mangled"))
	require.NoError(t, c.MarkSuspect(ctx, run.ID, me1, catalog.SuspectCopy{
		Size: 7, SHA256: bad, Key: "suspect/k/" + me1, Reason: "binary image/jpeg re-encoded as UTF-8 text"}))
	it, err := c.GetMedia(ctx, me1)
	require.NoError(t, err)
	require.Equal(t, catalog.MediaSuspect, it.State)
	require.Empty(t, it.Key, "the media's own key stays free")

	require.ErrorIs(t, c.ClaimDelete(ctx, me1, 7, bad, copyAt(t, c, me1)), catalog.ErrNotDeletable)
	// A policy deletes only what is archived: a suspect media is not seeded.
	policyRun, err := c.CreateRun(ctx, catalog.RunSpec{Kind: catalog.KindMessage, AccountSID: acct,
		MessageSID: msg1, Delete: true, Actor: "test"})
	require.NoError(t, err)
	policyRun.DeleteBefore = time.Now().Add(24 * time.Hour)
	seeded, err := c.SeedDeletes(ctx, policyRun)
	require.NoError(t, err)
	require.Zero(t, seeded, "a suspect media is joined to no policy's deletes")

	pool := c.Pool()
	_, err = pool.Exec(ctx, `UPDATE media SET verified_at = now(), delete_claimed_at = now() WHERE sid = $1`, me1)
	require.Error(t, err, "the schema refuses a delete claim on a suspect media")
	_, err = pool.Exec(ctx, `UPDATE media SET state = 'archived', size_bytes = 7, sha256 = $2, object_key = suspect_key,
		archived_at = now() WHERE sid = $1`, me1, hex.EncodeToString(bad[:]))
	require.Error(t, err, "the schema refuses a suspect copy as the verified one")

	_, err = c.MarkArchived(ctx, run.ID, me2, catalog.ArchivedCopy{Size: 4, SHA256: sha256.Sum256([]byte("png!")), Store: "s3", Bucket: "b", Key: "k/" + me2})
	require.NoError(t, err)
	require.NoError(t, c.ClaimDelete(ctx, me2, 4, sha256.Sum256([]byte("png!")), copyAt(t, c, me2)))
	require.NoError(t, c.MarkDeleted(ctx, run, me2))
	done, err := c.FinishRunIfDone(ctx, run.ID)
	require.NoError(t, err)
	require.True(t, done)
	st, err := c.RunStatus(ctx, run.ID)
	require.NoError(t, err)
	require.Equal(t, catalog.RunFailed, st.State, "a run that could not archive a media does not succeed, even with nothing failed")
	require.Equal(t, 1, st.MediaSuspect)
	require.Equal(t, 1, st.MediaArchived, "the other media, archived and deleted")
	require.Equal(t, []catalog.Failure{{Kind: catalog.FailureSuspect, SID: me1, Reason: "binary image/jpeg re-encoded as UTF-8 text"}}, st.Suspects)

	// A later run downloads it again, and this time the bytes are the media.
	later := seedMedia(t, c, true)
	good := sha256.Sum256([]byte("jpeg"))
	wanted, err := c.MarkArchived(ctx, later.ID, me1, catalog.ArchivedCopy{
		Size: 4, SHA256: good, Store: "s3", Bucket: "b", Key: "k/" + me1})
	require.NoError(t, err)
	require.True(t, wanted)
	require.NoError(t, c.ClaimDelete(ctx, me1, 4, good, copyAt(t, c, me1)))
	require.NoError(t, c.MarkDeleted(ctx, later, me1))
	it, err = c.GetMedia(ctx, me1)
	require.NoError(t, err)
	require.Equal(t, catalog.MediaDeleted, it.State)
}
