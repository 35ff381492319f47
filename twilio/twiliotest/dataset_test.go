package twiliotest_test

import (
	"bytes"
	"io"
	"path"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/twilio/twiliotest"
)

func generate(t *testing.T, seed int64, d twiliotest.Dataset) (*twiliotest.Server, twiliotest.Account) {
	t.Helper()
	srv := twiliotest.NewTestServer(t, twiliotest.Config{Seed: seed, Now: func() time.Time { return fixedNow }})
	acct, err := srv.AddAccount(twiliotest.AccountOptions{})
	require.NoError(t, err)
	_, err = srv.Generate(acct.SID, d)
	require.NoError(t, err)
	return srv, acct
}

func snapshot(t *testing.T, srv *twiliotest.Server, acct string) ([]twiliotest.MessageInfo, []twiliotest.MediaInfo) {
	t.Helper()
	var msgs []twiliotest.MessageInfo
	for m := range srv.Messages(acct) {
		msgs = append(msgs, m)
	}
	var media []twiliotest.MediaInfo
	for m := range srv.AllMedia(acct) {
		media = append(media, m)
	}
	return msgs, media
}

func TestDatasetIsDeterministic(t *testing.T) {
	t.Parallel()
	d := twiliotest.Dataset{Messages: 200, Conversations: 4, ConversationMessages: 5, MaxMediaSize: 8192}
	a, acctA := generate(t, 11, d)
	b, acctB := generate(t, 11, d)
	c, acctC := generate(t, 12, d)
	require.Equal(t, acctA, acctB, "credentials follow the seed")
	require.NotEqual(t, acctA.SID, acctC.SID)

	msgsA, mediaA := snapshot(t, a, acctA.SID)
	msgsB, mediaB := snapshot(t, b, acctB.SID)
	msgsC, _ := snapshot(t, c, acctC.SID)
	require.Equal(t, msgsA, msgsB)
	require.Equal(t, mediaA, mediaB)
	require.NotEqual(t, msgsA[0].SID, msgsC[0].SID)
	for _, m := range mediaA[:20] {
		sumA, err := a.SHA256(m.SID)
		require.NoError(t, err)
		sumB, err := b.SHA256(m.SID)
		require.NoError(t, err)
		require.Equal(t, sumA, sumB, "content of %s", m.SID)
	}
}

func TestDatasetRespectsTwilioLimits(t *testing.T) {
	t.Parallel()
	start, end := fixedNow.Add(-90*24*time.Hour), fixedNow.Add(-30*24*time.Hour)
	srv, acct := generate(t, 3, twiliotest.Dataset{Messages: 400, Start: start, End: end, MaxMediaSize: 5 << 20, MinMediaSize: 1 << 20})
	msgs, _ := snapshot(t, srv, acct.SID)
	require.Len(t, msgs, 400)
	types, counts := map[string]bool{}, map[int]bool{}
	withoutMedia := 0
	for i, m := range msgs {
		require.False(t, m.DateSent.Before(start) || !m.DateSent.Before(end), "date_sent %s outside the range", m.DateSent)
		if i > 0 {
			require.False(t, m.DateSent.After(msgs[i-1].DateSent), "newest first")
		}
		require.LessOrEqual(t, len(m.MediaSIDs), twiliotest.MaxMediaPerMessage)
		counts[len(m.MediaSIDs)] = true
		if len(m.MediaSIDs) == 0 {
			withoutMedia++
			require.True(t, strings.HasPrefix(m.SID, "SM"))
			continue
		}
		require.True(t, strings.HasPrefix(m.SID, "MM"))
		var total int64
		for _, sid := range m.MediaSIDs {
			info, ok := srv.Media(sid)
			require.True(t, ok)
			total += info.Size
			types[info.ContentType] = true
			require.Equal(t, m.SID, info.MessageSID)
			require.NotEmpty(t, path.Ext(info.Filename))
			require.Equal(t, m.DateCreated, info.DateCreated)
		}
		require.LessOrEqual(t, total, int64(twiliotest.MaxMessageMediaBytes), "message %s carries %d bytes", m.SID, total)
	}
	require.Greater(t, withoutMedia, 20)
	require.GreaterOrEqual(t, len(types), 6, "mixed MIME types: %v", types)
	require.GreaterOrEqual(t, len(counts), 8, "media counts spread over 0..10: %v", counts)

	// A second call later adds newer messages: catch-up over time.
	_, err := srv.Generate(acct.SID, twiliotest.Dataset{Messages: 10, Start: end, End: fixedNow})
	require.NoError(t, err)
	newer, _ := snapshot(t, srv, acct.SID)
	require.Len(t, newer, 410)
	require.Equal(t, msgs, newer[10:])
}

func TestGeneratedContent(t *testing.T) {
	t.Parallel()
	srv, acct := generate(t, 5, twiliotest.Dataset{Messages: 60, NoMediaShare: -1, MaxMediaSize: 300_000})
	seen := map[string]bool{}
	for m := range srv.AllMedia(acct.SID) {
		if seen[m.ContentType] {
			continue
		}
		seen[m.ContentType] = true
		whole := expected(t, srv, m.SID)
		require.Len(t, whole, int(m.Size))
		rc, err := srv.Content(m.SID)
		require.NoError(t, err)
		// Read in odd chunks: the stream must not depend on read sizes.
		chunked, err := io.ReadAll(iotest.OneByteReader(io.LimitReader(rc, 1000)))
		require.NoError(t, err)
		rest, err := io.ReadAll(io.MultiReader(bytes.NewReader(chunked), rc))
		require.NoError(t, err)
		rc.Close()
		require.Equal(t, whole, rest)
		switch m.ContentType {
		case "image/jpeg", "image/png", "image/gif", "application/pdf", "video/mp4", "audio/mpeg":
			require.Equal(t, m.ContentType, strings.Split(sniff(whole), ";")[0], "bytes of %s sniff as its type", m.SID)
		case "text/plain":
			require.True(t, strings.HasPrefix(sniff(whole), "text/plain"))
		}
	}
	require.GreaterOrEqual(t, len(seen), 6)
}

// TestMillionMediaFitInMemory builds a million-media dataset and bounds the
// heap it takes (a size bound, not a timing).
func TestMillionMediaFitInMemory(t *testing.T) {
	t.Parallel()
	srv := twiliotest.NewTestServer(t, twiliotest.Config{RequestLogSize: -1})
	acct, err := srv.AddAccount(twiliotest.AccountOptions{})
	require.NoError(t, err)
	before := heap()
	sum, err := srv.Generate(acct.SID, twiliotest.Dataset{Messages: 100_000, NoMediaShare: -1, MinMediaPerMessage: 10, MaxMediaPerMessage: 10})
	require.NoError(t, err)
	after := heap()
	require.Equal(t, 1_000_000, sum.Media)
	grown := int64(after) - int64(before)
	t.Logf("a million media take %d MB of heap", grown>>20)
	require.Less(t, grown, int64(300<<20))
	runtime.KeepAlive(srv)

	// The biggest account still answers: the newest page and a deep token.
	n := 0
	for m := range srv.Messages(acct.SID) {
		if n++; n == 99_999 {
			info, ok := srv.Media(m.MediaSIDs[9])
			require.True(t, ok)
			require.Equal(t, m.SID, info.MessageSID)
			break
		}
	}
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
