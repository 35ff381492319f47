package jobs

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/retention"
	"github.com/mediasync/mediasync/internal/testenv"
	"github.com/mediasync/mediasync/twilio"
)

// The worker's purge warning counts from TWILIO_RETENTION_DAYS: a policy
// whose watermark is 25 days old is warned of under a 30-day window (its
// warning age is 22.5 days), not under the default 400 days.
func TestPurgeWarningFollowsTheRetentionWindow(t *testing.T) {
	t.Parallel()
	pool := testenv.Postgres(t)
	_, err := catalog.Migrate(t.Context(), pool)
	require.NoError(t, err)
	cat := catalog.NewCatalog(pool)
	now := time.Now().UTC()
	_, err = cat.SetPolicy(t.Context(), catalog.Policy{Name: "monthly", AccountSID: testAccount, Schedule: "@daily",
		Watermark: now.AddDate(0, 0, -25).Truncate(24 * time.Hour)}, "test")
	require.NoError(t, err)
	r := testenv.NewRedis(t)
	tw, err := twilio.New(testAccount, twilio.WithAuthToken("unused"))
	require.NoError(t, err)

	for _, tc := range []struct {
		window retention.Window
		warned bool
	}{{retention.Default, false}, {retention.Days(30), true}} {
		var logs bytes.Buffer
		h, err := NewHandlers(Deps{Catalog: cat, Twilio: tw, Store: &flakyHolds{},
			Queues: QueuesFor(r.Namespace), Enqueuer: NewEnqueuer(r.Client, QueuesFor(r.Namespace)),
			Log: zerolog.New(&logs), TwilioRetention: tc.window})
		require.NoError(t, err)
		h.checkPurge(t.Context(), now, map[string]bool{})
		want := "Twilio deletes messages and media after " + tc.window.String()
		require.Equal(t, tc.warned, strings.Contains(logs.String(), want), "window %v: %s", tc.window, logs.String())
		if tc.warned {
			require.Contains(t, logs.String(), `"twilio_retention_days":30`)
		}
	}
}
