package jobs

import (
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/catalog"
)

// Stale work goes back under the task it was queued in: a batch's messages
// under their batch's first message's ID (so a batch still queued or
// running is not queued twice), each other message on its own, and never
// more than a task holds.
func TestStaleTasksKeepTheirBatch(t *testing.T) {
	run := uuid.New()
	sid := func(i int) string { return fmt.Sprintf("MM%032x", i) }
	work := catalog.StaleWork{
		Messages: []string{sid(2), sid(3), sid(9), sid(1)},
		Tasks:    []string{sid(1), sid(1), "", ""},
	}
	got := staleTasks(run, work)
	require.Equal(t, []ArchiveMessagePayload{
		{RunID: run, MessageSID: sid(1), More: []string{sid(2), sid(3)}},
		{RunID: run, MessageSID: sid(9)},
	}, got)
	for _, p := range got {
		_, err := NewArchiveMessageTask(Queues{Media: "m", List: "l"}, p)
		require.NoError(t, err)
	}

	// More than a batch naming one task: the rest go on their own.
	work = catalog.StaleWork{}
	for i := range maxMessagesPerTask + 1 {
		work.Messages, work.Tasks = append(work.Messages, sid(100+i)), append(work.Tasks, sid(1))
	}
	got = staleTasks(run, work)
	require.Len(t, got, 3)
	require.Equal(t, sid(1), got[0].MessageSID)
	require.Len(t, got[0].More, maxMessagesPerTask-1)
	require.Equal(t, []string{sid(100 + maxMessagesPerTask - 1), sid(100 + maxMessagesPerTask)},
		[]string{got[1].MessageSID, got[2].MessageSID})
}
