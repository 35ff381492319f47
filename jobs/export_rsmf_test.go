package jobs

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/catalog"
)

// The splitter gives one file per conversation per UTC day, and a further
// part when the next message would pass the event or the byte limit (a
// message alone over the byte limit still gets its own file: an event is
// never cut).
func TestRSMFSplitter(t *testing.T) {
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	msg := func(from, to string, at time.Duration, media int64) catalog.RSMFMessage {
		return catalog.RSMFMessage{SID: from + at.String(), From: from, To: to, Sent: day.Add(at), MediaBytes: media}
	}
	ch := func(sid string, at time.Duration) catalog.RSMFMessage {
		return catalog.RSMFMessage{SID: sid + at.String(), ConversationSID: sid, Sent: day.Add(at)}
	}
	withRecord := func(m catalog.RSMFMessage, size int64) catalog.RSMFMessage {
		m.Record = &catalog.MessageRecordCopy{Key: "r", Size: size}
		return m
	}
	const mb = 1 << 20
	for _, tc := range []struct {
		name      string
		maxEvents int
		maxBytes  int64
		msgs      []catalog.RSMFMessage
		want      []string // file: events
	}{
		{"a pair, either way round, is one conversation", 10, 200 * mb,
			[]catalog.RSMFMessage{msg("+1", "+2", time.Hour, 0), msg("+2", "+1", 2*time.Hour, 0)},
			[]string{"2026-03-01/+1_+2.1.rsmf:2"}},
		{"a UTC day is a file", 10, 200 * mb,
			[]catalog.RSMFMessage{msg("+1", "+2", 23*time.Hour, 0), msg("+1", "+2", 25*time.Hour, 0)},
			[]string{"2026-03-01/+1_+2.1.rsmf:1", "2026-03-02/+1_+2.1.rsmf:1"}},
		{"the event limit splits a day", 2, 200 * mb,
			[]catalog.RSMFMessage{msg("+1", "+2", 1, 0), msg("+1", "+2", 2, 0), msg("+1", "+2", 3, 0), msg("+1", "+3", 4, 0)},
			[]string{"2026-03-01/+1_+2.1.rsmf:2", "2026-03-01/+1_+2.2.rsmf:1", "2026-03-01/+1_+3.1.rsmf:1"}},
		{"the byte limit splits a day, base64 counted", 100, 200 * mb,
			[]catalog.RSMFMessage{msg("+1", "+2", 1, 100*mb), msg("+1", "+2", 2, 100*mb), msg("+1", "+2", 3, 300*mb), msg("+1", "+2", 4, 0)},
			[]string{"2026-03-01/+1_+2.1.rsmf:1", "2026-03-01/+1_+2.2.rsmf:1", "2026-03-01/+1_+2.3.rsmf:1", "2026-03-01/+1_+2.4.rsmf:1"}},
		{"a long body counts towards the byte limit", 100, 100 << 10,
			[]catalog.RSMFMessage{withRecord(msg("+1", "+2", 1, 0), 40<<10), withRecord(msg("+1", "+2", 2, 0), 40<<10)},
			[]string{"2026-03-01/+1_+2.1.rsmf:1", "2026-03-01/+1_+2.2.rsmf:1"}},
		{"a Conversations message goes by its CH…", 10, 200 * mb,
			[]catalog.RSMFMessage{ch("CHa", 1), ch("CHa", 2), ch("CHb", 3)},
			[]string{"2026-03-01/CHa.1.rsmf:2", "2026-03-01/CHb.1.rsmf:1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := rsmfSplitter{maxEvents: tc.maxEvents, maxBytes: tc.maxBytes}
			var got []string
			note := func(f rsmfFile) { got = append(got, f.name()+":"+strconv.Itoa(len(f.msgs))) }
			for _, m := range tc.msgs {
				if f, ok := s.add(m); ok {
					note(f)
				}
			}
			if f, ok := s.end(); ok {
				note(f)
			}
			require.Equal(t, tc.want, got)
		})
	}
}
