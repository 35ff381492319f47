package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/internal/e2etest"
)

// The same catalog read under TWILIO_RETENTION_DAYS=30 and under the
// default 400: policy list warns, status names the purged part of a
// backfill, and backfill warns at start, only where the window says
// Twilio no longer keeps the media; a policy that would archive after the
// purge is refused, exit 2, naming the flag, the value and the window.
func TestRetentionWindowChangesWarningsAndStatus(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	day := func(daysAgo int) string { return time.Now().UTC().AddDate(0, 0, -daysAgo).Format(time.DateOnly) }
	keep := func(days string) { d.Env["TWILIO_RETENTION_DAYS"] = days }

	keep("400")
	code, out, errOut := d.cli(t, "policy", "set", "monthly", "--schedule", "0 3 1 * *", "--start", day(25))
	require.Equal(t, 0, code, "%s%s", out, errOut)
	code, out, errOut = d.cli(t, "backfill", "--since", day(40), "--until", day(35))
	require.Equal(t, 0, code, errOut)
	require.NotContains(t, errOut, "warning", "40 days back is inside 400")
	run := strings.TrimSpace(out)

	for _, tc := range []struct {
		days   string
		warned bool
	}{{"400", false}, {"30", true}} {
		keep(tc.days)
		code, out, errOut := d.cli(t, "policy", "list")
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, "Twilio keeps messages and media "+tc.days+" days (TWILIO_RETENTION_DAYS)")
		require.Equal(t, tc.warned, strings.Contains(out, "WARNING: Twilio purges at 30 days"),
			"TWILIO_RETENTION_DAYS=%s: a 25-day-old watermark:\n%s", tc.days, out)
		var pl struct {
			Policies []policyJSON `json:"policies"`
		}
		d.cliJSON(t, &pl, "policy", "list")
		require.Len(t, pl.Policies, 1)
		require.Equal(t, tc.days, strconv.Itoa(pl.Policies[0].TwilioRetentionDays))

		code, out, errOut = d.cli(t, "status", run)
		require.Equal(t, 0, code, errOut)
		purged := "media sent before " + day(30) + " (Twilio keeps 30 days, TWILIO_RETENTION_DAYS)"
		if tc.warned {
			require.Contains(t, e2etest.StatusValue(t, out, "twilio purged"), purged, out)
		} else {
			require.NotContains(t, out, "twilio purged", out)
		}
		var st statusJSON
		d.cliJSON(t, &st, "status", run)
		require.Equal(t, tc.warned, st.TwilioPurgedBefore != nil)
	}

	// Under 30 days, a backfill 40 days back warns, naming the flag, and
	// still starts; one reaching into the window names where it begins.
	keep("30")
	code, out, errOut = d.cli(t, "backfill", "--since", day(40), "--until", day(35))
	require.Equal(t, 0, code, errOut)
	require.NotEmpty(t, strings.TrimSpace(out), "the run id: the backfill runs")
	require.Contains(t, errOut, "enqueue: warning: --since "+day(40)+": media of the whole range are older than Twilio keeps them (30 days, TWILIO_RETENTION_DAYS=30): Twilio will not serve them")
	code, _, errOut = d.cli(t, "backfill", "--since", day(40), "--until", day(1))
	require.Equal(t, 0, code, errOut)
	require.Contains(t, errOut, "media sent before "+day(30)+" are older than Twilio keeps them")

	// Archiving at 30 days, or later, archives after the purge.
	for _, after := range []string{"30d", "31d", "1000h"} {
		code, _, errOut = d.cli(t, "policy", "set", "late", "--schedule", "@daily", "--archive-after", after)
		require.Equal(t, 2, code, after)
		require.Contains(t, errOut, "--archive-after "+after+": Twilio purges messages and media after 30 days (TWILIO_RETENTION_DAYS=30)")
	}
	code, _, errOut = d.cli(t, "policy", "set", "late", "--schedule", "@daily", "--archive-after", "29d")
	require.Equal(t, 0, code, errOut)
	keep("400")
	code, _, errOut = d.cli(t, "policy", "set", "late", "--schedule", "@daily", "--archive-after", "31d")
	require.Equal(t, 0, code, "31 days is inside 400: %s", errOut)
}
