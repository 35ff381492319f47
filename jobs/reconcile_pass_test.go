package jobs

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/testenv"
	"github.com/mediasync/mediasync/twilio"
)

// Every reconcile pass with an unfinished run says, in one info line, what
// it found and what it did with each task: a run that stops moving is
// never silent about why.
func TestReconcilePassLogsWhatItFound(t *testing.T) {
	t.Parallel()
	pool := testenv.Postgres(t)
	_, err := catalog.Migrate(t.Context(), pool)
	require.NoError(t, err)
	r := testenv.NewRedis(t)
	tw, err := twilio.New(testAccount, twilio.WithAuthToken("unused"))
	require.NoError(t, err)
	var logs bytes.Buffer
	q := QueuesFor(r.Namespace)
	h, err := NewHandlers(Deps{Catalog: catalog.NewCatalog(pool), Twilio: tw, Store: &flakyHolds{},
		Queues: q, Enqueuer: NewEnqueuer(r.Client, q), Log: zerolog.New(&logs).Level(zerolog.InfoLevel)})
	require.NoError(t, err)
	cat := catalog.NewCatalog(pool)
	run, err := cat.CreateRun(t.Context(), catalog.RunSpec{Kind: catalog.KindBackfill, AccountSID: testAccount,
		Since: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 1, 4, 0, 0, 0, 0, time.UTC), Actor: "test"})
	require.NoError(t, err)
	_, err = cat.StartRun(t.Context(), run.ID)
	require.NoError(t, err)

	pass := func() map[string]any {
		logs.Reset()
		require.NoError(t, h.Reconcile(t.Context(), time.Minute))
		lines := bytes.Split(bytes.TrimSpace(logs.Bytes()), []byte("\n"))
		require.Len(t, lines, 1, "one line per pass:\n%s", logs.String())
		var line map[string]any
		require.NoError(t, json.Unmarshal(lines[0], &line))
		require.Equal(t, "reconcile pass", line["message"])
		require.Equal(t, "info", line["level"])
		return line
	}
	first := pass()
	require.EqualValues(t, 1, first["runs"])
	require.Positive(t, first["tasks_queued"], "the released days' page tasks were not in Redis: %v", first)
	again := pass()
	require.Equal(t, first["tasks_queued"], again["tasks_waiting"], "queued by the first pass, waiting at the second: %v", again)
	require.EqualValues(t, 0, again["tasks_queued"])
}
