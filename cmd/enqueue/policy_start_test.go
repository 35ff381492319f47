package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A policy set without --start begins at the oldest day Twilio keeps for
// the account (TWILIO_RETENTION_DAYS), not 400 days back whatever the
// account's window: an account that keeps 30 days has nothing older to
// list, and its first run would page 370 empty days.
func TestPolicySetStartsAtTwilioRetention(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	today := time.Now().UTC().Truncate(24 * time.Hour)
	for _, tc := range []struct {
		days, wantDays string
		want           time.Time
	}{
		{"", "400", today.AddDate(0, 0, -400)},
		{"30", "30", today.AddDate(0, 0, -30)},
	} {
		d.Env["TWILIO_RETENTION_DAYS"] = tc.days
		name := "nightly-" + tc.wantDays
		code, out, errOut := d.cli(t, "policy", "set", name, "--schedule", "@every 24h")
		require.Equal(t, 0, code, "TWILIO_RETENTION_DAYS=%q\nstdout:\n%s\nstderr:\n%s", tc.days, out, errOut)
		var pd struct {
			Policies []policyJSON `json:"policies"`
		}
		d.cliJSON(t, &pd, "policy", "list")
		var got *policyJSON
		for i := range pd.Policies {
			if pd.Policies[i].Name == name {
				got = &pd.Policies[i]
			}
		}
		require.NotNil(t, got, "policy %s not listed", name)
		require.Equal(t, tc.want, got.Watermark, "TWILIO_RETENTION_DAYS=%q: the new policy's watermark", tc.days)
	}
}
