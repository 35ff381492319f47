package twiliotest_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// admin calls an admin endpoint and decodes its JSON answer into v.
func (b *testBundle) admin(t *testing.T, method, path, body string, want int, v any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, b.srv.URL()+"/_emulator/"+path, strings.NewReader(body))
	require.NoError(t, err)
	resp, raw := b.send(t, req)
	require.Equal(t, want, resp.StatusCode, "%s /_emulator/%s: %s", method, path, raw)
	if v != nil {
		require.NoError(t, json.Unmarshal(raw, v), "%s", raw)
	}
}

func TestAdminEndpoints(t *testing.T) {
	t.Parallel()
	b := setup(t, twiliotest.Config{})

	var sum twiliotest.DatasetSummary
	b.admin(t, "POST", "accounts/"+b.acct.SID+"/generate", `{"messages": 12, "no_media_share": -1, "max_media_size": 2048, "start": "2025-01-01T00:00:00Z", "end": "2025-02-01T00:00:00Z"}`, 201, &sum)
	require.Equal(t, 12, sum.Messages)
	b.admin(t, "POST", "accounts/"+b.acct.SID+"/generate", `{"messages": -1}`, 400, nil)
	b.admin(t, "POST", "accounts/AC"+strings.Repeat("0", 32)+"/generate", `{"messages": 1}`, 404, nil)

	var msg twiliotest.MessageInfo
	b.admin(t, "POST", "accounts/"+b.acct.SID+"/messages", `{"body": "hi", "media": [{"content_type": "text/plain", "filename": "a.txt", "content": "aGVsbG8="}]}`, 201, &msg)
	require.Equal(t, 1, msg.NumMedia)
	var info struct {
		twiliotest.MediaInfo
		SHA256 string `json:"sha256"`
	}
	b.admin(t, "GET", "media/"+msg.MediaSIDs[0]+"?sha256=1", "", 200, &info)
	want := sha256.Sum256([]byte("hello"))
	require.Equal(t, hex.EncodeToString(want[:]), info.SHA256)
	require.Equal(t, "a.txt", info.Filename)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, b.srv.URL()+"/_emulator/media/"+msg.MediaSIDs[0]+"/content", nil)
	require.NoError(t, err)
	resp, raw := b.send(t, req)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "hello", string(raw))

	// Stats count API calls only; reset zeroes them.
	b.getJSON(t, b.messagesPath(), &messagePage{})
	var st twiliotest.Stats
	b.admin(t, "GET", "stats", "", 200, &st)
	require.Equal(t, int64(1), st.Requests)
	require.Equal(t, int64(1), st.ByStatus[200])
	b.admin(t, "POST", "stats/reset", "", 204, nil)
	b.admin(t, "GET", "stats", "", 200, &st)
	require.Zero(t, st.Requests)
	var log []twiliotest.Request
	b.admin(t, "GET", "requests", "", 200, &log)
	require.Empty(t, log)

	// Faults change field by field.
	var f map[string]any
	b.admin(t, "POST", "faults", `{"max_in_flight": 4, "latency": "20ms", "retry_after": "1s"}`, 200, &f)
	require.Equal(t, float64(4), f["max_in_flight"])
	require.Equal(t, "20ms", f["latency"])
	b.admin(t, "POST", "faults", `{"error_rate": 0.25}`, 200, &f)
	require.Equal(t, twiliotest.Faults{MaxInFlight: 4, Latency: 20 * time.Millisecond, RetryAfter: time.Second, ErrorRate: 0.25}, b.srv.Faults())
	b.admin(t, "POST", "faults", `{"error_rate": 2}`, 400, nil)
	b.admin(t, "POST", "faults", `{"latency": "soon"}`, 400, nil)
	b.admin(t, "POST", "faults", `{"max_inflight": 1}`, 400, nil)
	b.admin(t, "GET", "faults", "", 200, &f)
	require.Equal(t, 0.25, f["error_rate"])
	require.NoError(t, b.srv.SetFaults(twiliotest.Faults{}))

	// The clock.
	var clock struct {
		Now time.Time `json:"now"`
	}
	b.admin(t, "POST", "clock", `{"now": "2030-01-01T00:00:00Z"}`, 200, &clock)
	require.Equal(t, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), clock.Now.UTC())
	b.admin(t, "POST", "clock", `{"advance": "5h"}`, 200, &clock)
	require.Equal(t, time.Date(2030, 1, 1, 5, 0, 0, 0, time.UTC), b.srv.Now().UTC())
	b.admin(t, "POST", "clock", `{"reset": true}`, 200, &clock)
	require.Equal(t, fixedNow, b.srv.Now())

	// Deletes, read incrementally.
	for _, sid := range msg.MediaSIDs {
		resp, _ := b.request(t, http.MethodDelete, b.mediaPath(msg.SID, sid, ".json"), true)
		require.Equal(t, http.StatusNoContent, resp.StatusCode)
	}
	var dl struct {
		Deletes []twiliotest.Delete `json:"deletes"`
		Next    int                 `json:"next"`
	}
	b.admin(t, "GET", "deletes", "", 200, &dl)
	require.Len(t, dl.Deletes, 1)
	require.Equal(t, msg.MediaSIDs[0], dl.Deletes[0].MediaSID)
	b.admin(t, "GET", "deletes?from=1", "", 200, &dl)
	require.Empty(t, dl.Deletes)
	require.Equal(t, 1, dl.Next)

	// Accounts and the media-auth switch.
	var created twiliotest.Account
	b.admin(t, "POST", "accounts", `{"auth_token": "abc123"}`, 201, &created)
	require.Equal(t, "abc123", created.AuthToken)
	b.admin(t, "POST", "accounts", `{"auth_token": "not-alnum"}`, 400, nil)
	var accounts []twiliotest.Account
	b.admin(t, "GET", "accounts", "", 200, &accounts)
	require.Equal(t, []twiliotest.Account{b.acct, created}, accounts)
	b.admin(t, "POST", "accounts/"+b.acct.SID+"/media-auth", `{"enabled": false}`, 200, nil)
	b.admin(t, "POST", "accounts/"+b.acct.SID+"/media-auth", `{}`, 400, nil)

	// Vanish, and unknown endpoints.
	var some twiliotest.MessageInfo
	for some = range b.srv.Messages(b.acct.SID) {
		if len(some.MediaSIDs) > 0 {
			break
		}
	}
	b.admin(t, "POST", "media/"+some.MediaSIDs[0]+"/vanish", "", 200, nil)
	mi, _ := b.srv.Media(some.MediaSIDs[0])
	require.True(t, mi.Vanished)
	b.admin(t, "GET", "media/ME"+strings.Repeat("1", 32), "", 404, nil)
	b.admin(t, "GET", "nothing", "", 404, nil)

	b.admin(t, "GET", "stats", "", 200, &st)
	require.Equal(t, int64(1), st.Requests, "admin calls are not counted")
}
