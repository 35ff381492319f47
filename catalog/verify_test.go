package catalog_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/catalog"
)

// A verify policy starts one verify run per tick, of its sample, with no
// range; a tick while its last run still reads starts none; and it is
// refused with a delete or a sample outside (0, 1].
func TestVerifyPolicyRuns(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	for _, p := range []catalog.Policy{
		{Name: "v", AccountSID: acct, Schedule: "@every 1h", Kind: catalog.PolicyVerify, VerifySample: 1.5},
		{Name: "v", AccountSID: acct, Schedule: "@every 1h", Kind: catalog.PolicyVerify},
		{Name: "v", AccountSID: acct, Schedule: "@every 1h", Kind: catalog.PolicyVerify, VerifySample: 0.5, Delete: true, DeleteAfter: time.Hour},
		{Name: "v", AccountSID: acct, Schedule: "@every 1h", VerifySample: 0.5},
		{Name: "v", AccountSID: acct, Schedule: "@every 1h", Kind: "purge"},
	} {
		_, err := c.SetPolicy(ctx, p, "test")
		var ie *catalog.InvalidError
		require.True(t, errors.As(err, &ie), "%+v: %v", p, err)
	}
	_, err := c.SetPolicy(ctx, catalog.Policy{Name: "v", AccountSID: acct, Schedule: "@every 1h", Kind: catalog.PolicyVerify, VerifySample: 0.25}, "test")
	require.NoError(t, err)
	ps, err := c.Policies(ctx, acct)
	require.NoError(t, err)
	require.Equal(t, catalog.PolicyVerify, ps[0].Kind)
	require.Equal(t, 0.25, ps[0].VerifySample)

	tick := time.Now().UTC().Truncate(time.Hour)
	run, created, err := c.StartPolicyRun(ctx, "v", tick, false, "policy:v")
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, catalog.KindVerify, run.Kind)
	require.Equal(t, 0.25, run.VerifySample)
	require.Equal(t, "v", run.PolicyName)
	require.True(t, run.Since.IsZero() && run.Until.IsZero())

	_, created, err = c.StartPolicyRun(ctx, "v", tick.Add(time.Hour), false, "policy:v")
	require.NoError(t, err)
	require.False(t, created, "the last verify still reads")
	_, created, err = c.StartPolicyRun(ctx, "v", tick.Add(time.Hour), false, "policy:v")
	require.NoError(t, err)
	require.False(t, created, "that tick is spent")

	_, _, err = c.CancelRun(ctx, run.ID, "op")
	require.NoError(t, err)
	next, created, err := c.StartPolicyRun(ctx, "v", tick.Add(2*time.Hour), false, "policy:v")
	require.NoError(t, err)
	require.True(t, created)
	n, err := c.SelectVerifyMedia(ctx, next)
	require.NoError(t, err)
	require.Zero(t, n, "nothing archived yet")
}
