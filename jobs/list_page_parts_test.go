package jobs

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/catalog"
)

// A page is queued a part at a time; a task whose messages spanned two
// parts would start before its last messages were recorded (their state
// unknown to it), so parts must end on a task's boundary, cover the page
// in order and keep every message, media or not.
func TestPageParts(t *testing.T) {
	// m: a message with media, s: an SMS (no media).
	page := func(shape string) []catalog.MessageRecord {
		recs := make([]catalog.MessageRecord, len(shape))
		for i, c := range shape {
			recs[i] = catalog.MessageRecord{NumMediaKnown: true, NumMedia: map[rune]int{'m': 2, 's': 0}[c]}
		}
		return recs
	}
	cases := []struct {
		shape   string
		perPart int
		want    [][2]int
	}{
		{"", 2, nil},
		{"sss", 2, [][2]int{{0, 3}}},
		{"mm", 2, [][2]int{{0, 2}}},
		{"mmm", 2, [][2]int{{0, 2}, {2, 3}}},
		{"smsmsms", 2, [][2]int{{0, 4}, {4, 7}}},
		{"mmmmss", 2, [][2]int{{0, 2}, {2, 4}, {4, 6}}},
	}
	for _, c := range cases {
		t.Run(c.shape, func(t *testing.T) {
			require.Equal(t, c.want, pageParts(page(c.shape), c.perPart))
		})
	}

	// A real page's shape: every part but the last holds whole tasks.
	shape := ""
	for i := range 1000 {
		shape += string("msm"[i%3])
	}
	recs := page(shape)
	per := messagesPerTask(len(recs))
	require.Equal(t, maxMessagesPerTask, per, "a full page's tasks hold the most")
	parts := pageParts(recs, pagePartTasks*per)
	require.Greater(t, len(parts), 1)
	next := 0
	for i, p := range parts {
		require.Equal(t, next, p[0], "parts cover the page in order")
		next = p[1]
		withMedia := slices.IndexFunc(recs[p[0]:p[1]], catalog.MessageRecord.HasMedia)
		require.GreaterOrEqual(t, withMedia, 0)
		if i < len(parts)-1 {
			n := 0
			for _, r := range recs[p[0]:p[1]] {
				if r.HasMedia() {
					n++
				}
			}
			require.Zero(t, n%per, "part %d ends inside a task", i)
		}
	}
	require.Equal(t, len(recs), next)
}

func TestMessagesPerTaskSpreadsAShortPage(t *testing.T) {
	for _, c := range []struct{ withMedia, want int }{
		{0, 1}, {1, 1}, {minPageTasks, 1}, {2*minPageTasks - 1, 1}, {2 * minPageTasks, 2},
		{4*minPageTasks + 5, 4}, {1000, maxMessagesPerTask},
	} {
		got := messagesPerTask(c.withMedia)
		require.Equal(t, c.want, got, "%d messages with media", c.withMedia)
		tasks := (c.withMedia + got - 1) / got
		require.True(t, got == maxMessagesPerTask || tasks >= min(c.withMedia, minPageTasks),
			"%d messages in %d tasks", c.withMedia, tasks)
	}
}
