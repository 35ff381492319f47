package twilio

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// convMedia adds a conversation message with one media of size bytes and
// returns the media's SID.
func (b *emuBundle) convMedia(t *testing.T, size int64, filename string) string {
	t.Helper()
	ch := b.addConversations(t, emuNow.Add(-time.Hour))[0]
	m, err := b.srv.AddConversationMessage(b.acct.SID, ch, twiliotest.ConversationMessageOptions{
		Media: []twiliotest.MediaOptions{{ContentType: "video/mp4", Size: size, Filename: filename}}})
	require.NoError(t, err)
	return m.MediaSIDs[0]
}

func (b *emuBundle) wantSHA(t *testing.T, sid string) string {
	t.Helper()
	sum, err := b.srv.SHA256(sid)
	require.NoError(t, err)
	return sum
}

func readSHA(t *testing.T, c *MCSContent) (string, int64) {
	t.Helper()
	h := sha256.New()
	n, err := io.Copy(h, c.Body)
	require.NoError(t, err)
	require.NoError(t, c.Body.Close())
	return hex.EncodeToString(h.Sum(nil)), n
}

func TestMCSGetAndOpenThroughTheDirectURL(t *testing.T) {
	t.Parallel()
	b := setupEmu(t, twiliotest.Config{})
	sid := b.convMedia(t, 300_000, "clip.mp4")
	ctx := t.Context()

	m, err := b.client.MCS.Get(ctx, b.acct.ServiceSID, sid)
	require.NoError(t, err)
	require.Equal(t, sid, m.SID)
	require.Equal(t, b.acct.ServiceSID, m.ServiceSID)
	require.Equal(t, int64(300_000), m.Size)
	require.Equal(t, "clip.mp4", m.Filename)
	require.Equal(t, "video/mp4", m.ContentType)
	require.True(t, ValidConversationSID(m.ChannelSID))
	require.True(t, ValidConversationMessageSID(m.MessageSID))
	require.Equal(t, "/v1/Services/"+b.acct.ServiceSID+"/Media/"+sid+"/Content", m.Links.Content)
	require.True(t, strings.HasPrefix(m.Links.ContentDirectTemporary, b.srv.SignedURLBase()+"/"))
	require.False(t, m.DateCreated.IsZero())

	content, err := b.client.MCS.Open(ctx, b.acct.ServiceSID, sid)
	require.NoError(t, err)
	require.True(t, content.Direct)
	require.Zero(t, content.Refetches)
	require.Equal(t, int64(300_000), content.Size)
	require.Equal(t, "clip.mp4", content.Filename)
	sum, n := readSHA(t, content)
	require.Equal(t, int64(300_000), n)
	require.Equal(t, b.wantSHA(t, sid), sum)
	acquired, inFlight := b.limiter.held()
	require.Zero(t, inFlight)
	require.Equal(t, 2, acquired, "the two resource fetches hold a slot; the signed URL does not")
	require.Equal(t, int64(1), b.srv.Stats().SignedRequests)
}

func TestMCSOpenFetchesAgainWhenTheDirectURLExpires(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc string
		// expireAfter is how many resource fetches are followed by a
		// clock jump past the direct URL's lifetime.
		expireAfter   int
		wantDirect    bool
		wantRefetches int
	}{
		{"the first URL expires, the second works", 1, true, 1},
		{"every URL expires: links.content with credentials", 100, false, maxMCSRefetches},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			clock := emuNow
			var mu atomic.Int64
			b := setupEmu(t, twiliotest.Config{DirectURLTTL: time.Second, Now: func() time.Time {
				return clock.Add(time.Duration(mu.Load()))
			}})
			sid := b.convMedia(t, 5000, "a.mp4")
			var fetches atomic.Int32
			b.hosts.after = func(req *http.Request) {
				if req.URL.Path == "/v1/Services/"+b.acct.ServiceSID+"/Media/"+sid && int(fetches.Add(1)) <= tc.expireAfter {
					mu.Add(int64(2 * time.Second)) // the URL just handed out has expired
				}
			}
			content, err := b.client.MCS.Open(t.Context(), b.acct.ServiceSID, sid)
			require.NoError(t, err)
			require.Equal(t, tc.wantDirect, content.Direct)
			require.Equal(t, tc.wantRefetches, content.Refetches)
			sum, _ := readSHA(t, content)
			require.Equal(t, b.wantSHA(t, sid), sum)
			st := b.srv.Stats()
			tried := int64(tc.wantRefetches)
			if !tc.wantDirect {
				tried++ // the last URL too, before links.content
			}
			require.Equal(t, tried, st.SignedRejected, "each expired URL was tried once")
		})
	}
}

func TestMCSOpenMediaSkipsAURLItKnowsHasExpired(t *testing.T) {
	t.Parallel()
	b := setupEmu(t, twiliotest.Config{DirectURLTTL: time.Minute})
	sid := b.convMedia(t, 100, "")
	ctx := t.Context()
	m, err := b.client.MCS.Get(ctx, b.acct.ServiceSID, sid)
	require.NoError(t, err)
	b.clock.mu.Lock()
	b.clock.now = b.clock.now.Add(2 * time.Minute) // the client knows the held URL has expired
	b.clock.mu.Unlock()
	b.srv.AdvanceClock(2 * time.Minute)

	content, err := b.client.MCS.OpenMedia(ctx, m)
	require.NoError(t, err)
	require.True(t, content.Direct)
	require.Equal(t, 1, content.Refetches)
	_, n := readSHA(t, content)
	require.Equal(t, int64(100), n)
	require.Zero(t, b.srv.Stats().SignedRejected, "the expired URL was never sent")
}

func TestMCSOpenWithoutADirectURLUsesContent(t *testing.T) {
	t.Parallel()
	b := setupEmu(t, twiliotest.Config{RedirectHops: 2})
	sid := b.convMedia(t, 4321, "x.mp4")
	ctx := t.Context()
	m, err := b.client.MCS.Get(ctx, b.acct.ServiceSID, sid)
	require.NoError(t, err)
	m.Links.ContentDirectTemporary = ""
	content, err := b.client.MCS.OpenMedia(ctx, m)
	require.NoError(t, err)
	require.False(t, content.Direct)
	sum, _ := readSHA(t, content)
	require.Equal(t, b.wantSHA(t, sid), sum)

	require.NoError(t, b.srv.VanishContent(sid))
	_, err = b.client.MCS.Open(ctx, b.acct.ServiceSID, sid)
	require.ErrorIs(t, err, ErrContentUnavailable)
	require.False(t, IsGone(err), "content lost while the resource stands is not gone: %v", err)
}

// slowReader hands out its bytes a few at a time, so nothing can take the
// body as a whole.
type slowReader struct {
	data []byte
	off  int
}

func (r *slowReader) Read(p []byte) (int, error) {
	if r.off == len(r.data) {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 4096)], r.data[r.off:])
	r.off += n
	return n, nil
}

func TestMCSUploadStreamsARawBody(t *testing.T) {
	t.Parallel()
	b := setupEmu(t, twiliotest.Config{})
	data := bytes.Repeat([]byte("\x89PNG\r\n\x1a\nbody"), 40_000)
	ctx := t.Context()
	m, err := b.client.MCS.Upload(ctx, b.acct.ServiceSID, MCSUploadParams{
		ContentType: "image/png", Filename: "scan 1.png", Body: &slowReader{data: data}, Size: int64(len(data))})
	require.NoError(t, err)
	require.True(t, ValidMediaSID(m.SID))
	require.Equal(t, b.acct.ServiceSID, m.ServiceSID)
	require.Equal(t, int64(len(data)), m.Size)
	require.Equal(t, "image/png", m.ContentType)
	require.Equal(t, "scan 1.png", m.Filename)
	require.Empty(t, m.MessageSID)
	sum := sha256.Sum256(data)
	require.Equal(t, hex.EncodeToString(sum[:]), b.wantSHA(t, m.SID))

	b.hosts.mu.Lock()
	var post *http.Request
	for _, r := range b.hosts.reqs {
		if r.Method == http.MethodPost {
			post = r
		}
	}
	b.hosts.mu.Unlock()
	require.NotNil(t, post)
	require.Equal(t, int64(len(data)), post.ContentLength, "a known length, not chunked")
	require.Equal(t, "image/png", post.Header.Get("Content-Type"))
	require.Equal(t, "Filename=scan+1.png", post.URL.RawQuery)

	content, err := b.client.MCS.Open(ctx, b.acct.ServiceSID, m.SID)
	require.NoError(t, err)
	got, n := readSHA(t, content)
	require.Equal(t, int64(len(data)), n)
	require.Equal(t, hex.EncodeToString(sum[:]), got)

	empty, err := b.client.MCS.Upload(ctx, b.acct.ServiceSID, MCSUploadParams{ContentType: "text/plain", Body: strings.NewReader(""), Size: 0})
	require.NoError(t, err)
	require.Zero(t, empty.Size)
}

func TestMCSUploadRefusesBadParams(t *testing.T) {
	t.Parallel()
	b := setupEmu(t, twiliotest.Config{})
	ctx := t.Context()
	body := strings.NewReader("x")
	for _, tc := range []struct {
		desc string
		svc  string
		p    MCSUploadParams
		want string
	}{
		{"bad service", "IS1", MCSUploadParams{ContentType: "text/plain", Body: body, Size: 1}, "service SID"},
		{"no type", b.acct.ServiceSID, MCSUploadParams{Body: body, Size: 1}, "ContentType is empty"},
		{"multipart", b.acct.ServiceSID, MCSUploadParams{ContentType: "multipart/form-data; boundary=x", Body: body, Size: 1}, "multipart"},
		{"no body", b.acct.ServiceSID, MCSUploadParams{ContentType: "text/plain", Size: 1}, "Body is nil"},
		{"negative size", b.acct.ServiceSID, MCSUploadParams{ContentType: "text/plain", Body: body, Size: -1}, "Size is -1"},
		{"control in name", b.acct.ServiceSID, MCSUploadParams{ContentType: "text/plain", Body: body, Size: 1, Filename: "a\nb"}, "Filename"},
	} {
		_, err := b.client.MCS.Upload(ctx, tc.svc, tc.p)
		require.ErrorContains(t, err, tc.want, tc.desc)
	}
	require.Empty(t, b.hosts.paths(), "nothing was sent")

	_, err := b.client.MCS.Upload(ctx, b.acct.ServiceSID, MCSUploadParams{ContentType: "text/plain", Body: strings.NewReader("short"), Size: 10})
	require.Error(t, err, "a body shorter than Size fails")
	var e *Error
	require.False(t, errors.As(err, &e) && e.Status == http.StatusCreated)
}

func TestMCSOpenTriesAFreshURLWhateverTheLocalClockSays(t *testing.T) {
	t.Parallel()
	b := setupEmu(t, twiliotest.Config{DirectURLTTL: time.Minute})
	sid := b.convMedia(t, 64, "")
	b.clock.mu.Lock()
	b.clock.now = b.clock.now.Add(24 * time.Hour) // this machine's clock runs a day ahead of Twilio's
	b.clock.mu.Unlock()
	content, err := b.client.MCS.Open(t.Context(), b.acct.ServiceSID, sid)
	require.NoError(t, err)
	require.True(t, content.Direct)
	require.Zero(t, content.Refetches, "a URL fetched within the call is tried, not judged by a skewed clock")
	_, n := readSHA(t, content)
	require.Equal(t, int64(64), n)
}
