package catalog_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/catalog"
)

// Gauges reports for every policy what PolicyHealth does for one (its
// number filters applied), and the runs by kind and state, in one call.
func TestGaugesAgreeWithPolicyHealth(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	seedMedia(t, c, false) // two unarchived media of a message from +15550100
	for _, p := range []catalog.Policy{
		{Name: "all", AccountSID: acct, Schedule: "@every 1h", Watermark: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Name: "theirs", AccountSID: acct, Schedule: "@every 1h", From: "+15550111"},
		{Name: "ours", AccountSID: acct, Schedule: "@every 1h", From: "+15550100"},
		{Name: "chats", AccountSID: acct, Schedule: "@every 1h", Source: catalog.SourceConversations},
	} {
		_, err := c.SetPolicy(ctx, p, "test")
		require.NoError(t, err)
	}
	g, err := c.Gauges(ctx, acct)
	require.NoError(t, err)
	policies, err := c.Policies(ctx, acct)
	require.NoError(t, err)
	require.Len(t, g.Policies, len(policies))
	for i, p := range policies {
		h, err := c.PolicyHealth(ctx, p, time.Now())
		require.NoError(t, err)
		got := g.Policies[i]
		require.Equal(t, p.Name, got.Name)
		require.True(t, p.Watermark.Equal(got.Watermark), "%s watermark", p.Name)
		require.True(t, h.OldestUnsaved.Equal(got.OldestUnsaved), "%s oldest unarchived: %v, PolicyHealth %v", p.Name, got.OldestUnsaved, h.OldestUnsaved)
		require.Equal(t, h.OldestUnsavedN, got.OldestUnsavedN, "%s unarchived", p.Name)
	}
	// By name: all, chats, ours, theirs.
	require.Equal(t, []int{2, 0, 2, 0}, []int{g.Policies[0].OldestUnsavedN, g.Policies[1].OldestUnsavedN, g.Policies[2].OldestUnsavedN, g.Policies[3].OldestUnsavedN},
		"policy theirs: another number's media are not its own; policy chats: Messaging media are not a Conversations policy's")
	require.Equal(t, []catalog.RunCount{{Kind: catalog.KindMessage, State: catalog.RunRunning, N: 1}}, g.Runs)

	other, err := c.Gauges(ctx, "AC00000000000000000000000000000009")
	require.NoError(t, err)
	require.Empty(t, other.Policies)
	require.Empty(t, other.Runs)
}
