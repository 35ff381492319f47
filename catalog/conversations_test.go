package catalog_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/catalog"
)

const (
	testConv    = "CH0123456789abcdef0123456789abcdef"
	testService = "IS0123456789abcdef0123456789abcdef"
)

// conversationsRun creates a conversations backfill of [since, until).
func conversationsRun(t *testing.T, c *catalog.Catalog, since, until time.Time, dryRun bool) catalog.Run {
	t.Helper()
	run, err := c.CreateRun(t.Context(), catalog.RunSpec{
		Kind: catalog.KindBackfill, Source: catalog.SourceConversations, AccountSID: "AC0123456789abcdef0123456789abcdef",
		Since: since, Until: until, Actor: "test", DryRun: dryRun,
	})
	require.NoError(t, err)
	return run
}

// scan records the conversation for run and ends its scan at top, and
// returns the stop index the scan started with.
func scan(t *testing.T, c *catalog.Catalog, run catalog.Run, top int64, reachedStart bool) int64 {
	t.Helper()
	added, err := c.AddConversations(t.Context(), run.ID, []catalog.ConversationRef{{SID: testConv, ServiceSID: testService}})
	require.NoError(t, err)
	require.Len(t, added, 1)
	ok, err := c.AdvanceConversation(t.Context(), run, testConv, 0, "", top, reachedStart)
	require.NoError(t, err)
	require.True(t, ok)
	return added[0].StopIndex
}

// A conversation's progress lets a later run stop where an earlier one
// read, only when the earlier reading covers the later run's since; a dry
// run never moves it, and a run that read less never lowers it.
func TestConversationProgressStopsOnlyWhatIsCovered(t *testing.T) {
	t.Parallel()
	c := newCatalog(t)
	day := func(d int) time.Time { return time.Date(2026, 4, d, 0, 0, 0, 0, time.UTC) }

	run := conversationsRun(t, c, day(10), day(20), false)
	require.Equal(t, []string{""}, run.Services, "the default service")
	require.Equal(t, int64(-1), scan(t, c, run, 40, false), "nothing read before")

	later := conversationsRun(t, c, day(10), day(25), false)
	require.Equal(t, int64(40), scan(t, c, later, 55, false), "covered from the same since: stop at 40")

	earlier := conversationsRun(t, c, day(5), day(25), false)
	require.Equal(t, int64(-1), scan(t, c, earlier, 55, false), "since before what was covered: read it all")

	dry := conversationsRun(t, c, day(5), day(30), true)
	require.Equal(t, int64(55), scan(t, c, dry, 70, false), "covered since day 5 now")

	narrow := conversationsRun(t, c, day(6), day(8), false)
	require.Equal(t, int64(55), scan(t, c, narrow, 20, false))

	next := conversationsRun(t, c, day(5), day(30), false)
	require.Equal(t, int64(55), scan(t, c, next, 60, false),
		"neither the dry run nor the narrower one moved the progress")

	all := conversationsRun(t, c, day(1), day(30), false)
	require.Equal(t, int64(-1), scan(t, c, all, 60, true), "since before what was covered: read it all, to the first message")
	any := conversationsRun(t, c, day(1), day(30), false)
	require.Equal(t, int64(60), scan(t, c, any, 61, false), "read to the first message: covered from any since")
}
