package catalog_test

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/catalog"
)

// A policy set with --no-bodies keeps it, and each of its runs leaves
// bodies out (issue #17); Conversations refuses it rather than ignore it.
func TestNoBodiesGoesFromPolicyToItsRunsAndRetries(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	const acct = "AC0123456789abcdef0123456789abcdef"
	start := time.Now().UTC().AddDate(0, 0, -3).Truncate(24 * time.Hour)
	_, err := c.SetPolicy(ctx, catalog.Policy{Name: "nb", AccountSID: acct, Schedule: "@every 1h", Watermark: start, NoBodies: true}, "test")
	require.NoError(t, err)
	ps, err := c.Policies(ctx, acct)
	require.NoError(t, err)
	require.Len(t, ps, 1)
	require.True(t, ps[0].NoBodies)
	run, ok, err := c.StartPolicyRun(ctx, "nb", time.Now().UTC(), true, "test")
	require.NoError(t, err)
	require.True(t, ok)
	require.True(t, run.NoBodies, "the policy's run leaves bodies out")

	_, err = c.SetPolicy(ctx, catalog.Policy{Name: "nb2", AccountSID: acct, Schedule: "@every 1h", Source: catalog.SourceConversations, NoBodies: true}, "test")
	var inv *catalog.InvalidError
	require.ErrorAs(t, err, &inv)
	require.Equal(t, "no-bodies", inv.Field)
	_, err = c.CreateRun(ctx, catalog.RunSpec{Kind: catalog.KindBackfill, AccountSID: acct, Source: catalog.SourceConversations,
		Since: start, Until: start.AddDate(0, 0, 1), NoBodies: true, Actor: "test"})
	require.ErrorContains(t, err, "--no-bodies is for the messaging source only")
}

// A message's first record stays: a later one given for it (another run
// listing it again) does not replace it.
func TestMessageRecordIsKeptOnce(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	const acct, sid = "AC0123456789abcdef0123456789abcdef", "SM0123456789abcdef0123456789abcdef"
	run, err := c.CreateRun(ctx, catalog.RunSpec{Kind: catalog.KindMessage, AccountSID: acct, MessageSID: sid, Actor: "test"})
	require.NoError(t, err)
	first := catalog.MessageRecordCopy{Key: "k1", Size: 2, SHA256: sha256.Sum256([]byte("{}"))}
	second := catalog.MessageRecordCopy{Key: "k2", Size: 3, SHA256: sha256.Sum256([]byte("{ }"))}
	for _, rec := range []catalog.MessageRecord{
		{SID: sid, AccountSID: acct, NumMediaKnown: true}, // no record yet
		{SID: sid, AccountSID: acct, NumMediaKnown: true, Record: &first, RecordNoBody: true},
		{SID: sid, AccountSID: acct, NumMediaKnown: true, Record: &second},
		{SID: sid, AccountSID: acct, NumMediaKnown: true},
	} {
		require.NoError(t, c.RecordMessages(ctx, run.ID, []catalog.MessageRecord{rec}, false))
	}
	got, err := c.MessageRecords(ctx, []string{sid, "SMffffffffffffffffffffffffffffffff"})
	require.NoError(t, err)
	require.Equal(t, map[string]catalog.ArchivedRecord{sid: {MessageRecordCopy: first, NoBody: true}}, got)
}
