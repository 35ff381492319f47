package catalog_test

import (
	"sync"
	"testing"
	"time"

	"github.com/mediasync/mediasync/catalog"
	"github.com/stretchr/testify/require"
)

// Two accounts setting the same policy name at once: one creates it, the
// other is refused, and the policy stays whole with the first one's
// settings, however often they race.
func TestSetPolicyRefusesAnotherAccountsPolicy(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	const other = "AC00000000000000000000000000000002"
	for i := range 20 {
		name := "race-" + string(rune('a'+i))
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j, account := range []string{acct, other} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[j] = c.SetPolicy(ctx, catalog.Policy{Name: name, AccountSID: account, Schedule: "@every " + []string{"1h", "2h"}[j]}, "test")
			}()
		}
		wg.Wait()
		var accountErr *catalog.PolicyAccountError
		winner := -1
		for j, err := range errs {
			if err == nil {
				require.Equal(t, -1, winner, "both accounts set policy %s", name)
				winner = j
				continue
			}
			require.ErrorAs(t, err, &accountErr)
		}
		require.NotEqual(t, -1, winner, "neither account set policy %s: %v", name, errs)
		p := policy(t, c, name)
		require.Equal(t, []string{acct, other}[winner], p.AccountSID)
		require.Equal(t, "@every "+[]string{"1h", "2h"}[winner], p.Schedule, "the loser changed nothing")
		require.Equal(t, []string{acct, other}[winner], accountErr.Owner)
	}

	// The owner may update it; the other account still may not.
	_, err := c.SetPolicy(ctx, catalog.Policy{Name: "mine", AccountSID: acct, Schedule: "@every 1h"}, "test")
	require.NoError(t, err)
	created, err := c.SetPolicy(ctx, catalog.Policy{Name: "mine", AccountSID: acct, Schedule: "@every 3h"}, "test")
	require.NoError(t, err)
	require.False(t, created)
	_, err = c.SetPolicy(ctx, catalog.Policy{Name: "mine", AccountSID: other, Schedule: "@every 1h"}, "test")
	require.ErrorContains(t, err, "policy mine belongs to account "+acct+", not "+other)
}

// policy returns the policy called name.
func policy(t *testing.T, c *catalog.Catalog, name string) catalog.Policy {
	t.Helper()
	ps, err := c.Policies(t.Context(), "")
	require.NoError(t, err)
	for _, p := range ps {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no policy %s", name)
	return catalog.Policy{}
}

// Validate names the field at fault and the value given.
func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	ok := catalog.Policy{Name: "p1", Schedule: "@every 1h"}
	require.NoError(t, ok.Validate())
	for _, tc := range []struct {
		p     catalog.Policy
		field string
		want  string
	}{
		{catalog.Policy{Name: "no spaces", Schedule: "@every 1h"}, "name", `name "no spaces" is not valid`},
		{catalog.Policy{Name: "p1", Schedule: "every night"}, "schedule", `schedule: schedule "every night"`},
		{catalog.Policy{Name: "p1", Schedule: "@every 1h", ArchiveAfter: 48 * time.Hour, Delete: true, DeleteAfter: 24 * time.Hour}, "delete-after", `delete-after "1d" is shorter than archive-after 2d`},
		{catalog.Policy{Name: "p1", Schedule: "@every 1h", To: "5550100"}, "to", `to "5550100" is not a phone number`},
	} {
		err := tc.p.Validate()
		var ie *catalog.InvalidError
		require.ErrorAs(t, err, &ie)
		require.Equal(t, tc.field, ie.Field)
		require.ErrorContains(t, err, tc.want)
	}
}

// Hold.Validate names the selector at fault.
func TestHoldValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, catalog.Hold{Reason: "case 1", From: "+15550100123"}.Validate())
	require.NoError(t, catalog.Hold{Reason: "case 1", MessageSIDs: []string{msg1}}.Validate())
	for _, tc := range []struct {
		h    catalog.Hold
		want string
	}{
		{catalog.Hold{Reason: " ", From: "+15550100123"}, "reason is required"},
		{catalog.Hold{Reason: "x"}, "give exactly one of message, from or to"},
		{catalog.Hold{Reason: "x", From: "+15550100123", To: "+15550100124"}, "give exactly one of"},
		{catalog.Hold{Reason: "x", MessageSIDs: []string{"MM1"}}, `message "MM1" is not a message SID`},
		{catalog.Hold{Reason: "x", To: "0100"}, `to "0100" is not a phone number`},
		{catalog.Hold{Reason: "x", To: "+15550100124", Since: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)}, "since 2026-02-01 must be before until 2026-02-01"},
	} {
		var ie *catalog.InvalidError
		err := tc.h.Validate()
		require.ErrorAs(t, err, &ie)
		require.ErrorContains(t, err, tc.want)
	}
}

// ExportSpec.Validate names the field at fault.
func TestExportSpecValidate(t *testing.T) {
	t.Parallel()
	ok := catalog.ExportSpec{Out: "s3://bkt/x", Format: catalog.ExportZip, Presign: time.Hour, MessageSIDs: []string{msg1}}
	require.NoError(t, ok.Validate())
	for _, tc := range []struct {
		edit func(*catalog.ExportSpec)
		want string
	}{
		{func(s *catalog.ExportSpec) { s.Format = "tar" }, `format "tar" is not dir, zip or rsmf`},
		{func(s *catalog.ExportSpec) { s.RSMFMaxEvents = 5 }, `rsmf-max-events "5" is for --format rsmf, 1 or more`},
		{func(s *catalog.ExportSpec) { s.Out = "" }, "out is required"},
		{func(s *catalog.ExportSpec) { s.Out = "ftp://host/x" }, "out: "},
		{func(s *catalog.ExportSpec) { s.Out = "file:///tmp/x" }, "presign needs an s3:// out"},
		{func(s *catalog.ExportSpec) { s.Presign = 8 * 24 * time.Hour }, `presign "8d" is out of range: a presigned URL is valid for 1s to 7d`},
		{func(s *catalog.ExportSpec) { s.Number = "0100" }, `number "0100" is not a phone number`},
		{func(s *catalog.ExportSpec) { s.MessageSIDs = []string{"SM12"} }, `message "SM12" is not a message SID`},
		{func(s *catalog.ExportSpec) {
			s.Since, s.Until = time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		}, "since 2026-04-01 must be before until 2026-03-01"},
	} {
		s := ok
		tc.edit(&s)
		var ie *catalog.InvalidError
		err := s.Validate()
		require.ErrorAs(t, err, &ie)
		require.ErrorContains(t, err, tc.want)
	}
}

// A new policy without a watermark starts at the oldest day Twilio keeps
// (Lookback, TWILIO_RETENTION_DAYS at the CLI; 400 days if unset), and an
// update keeps the watermark it has whatever its Lookback.
func TestSetPolicyStartsAtItsLookback(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	ctx := t.Context()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	for _, tc := range []struct {
		name     string
		lookback time.Duration
		wantDays int
	}{
		{"default", 0, 400},
		{"thirty", 30 * 24 * time.Hour, 30},
	} {
		_, err := c.SetPolicy(ctx, catalog.Policy{Name: tc.name, AccountSID: acct, Schedule: "@every 1h", Lookback: tc.lookback}, "test")
		require.NoError(t, err)
		got := policy(t, c, tc.name).Watermark.UTC()
		require.Equal(t, today.AddDate(0, 0, -tc.wantDays), got, "policy %s's first watermark", tc.name)

		_, err = c.SetPolicy(ctx, catalog.Policy{Name: tc.name, AccountSID: acct, Schedule: "@every 2h", Lookback: 7 * 24 * time.Hour}, "test")
		require.NoError(t, err)
		require.Equal(t, got, policy(t, c, tc.name).Watermark.UTC(), "an update moved policy %s's watermark", tc.name)
	}
}
