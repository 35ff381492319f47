package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// A SID from Twilio that does not match its pattern is refused where it
// enters: the run finishes, failed with a bounded reason, and no row holds
// it (recorded, it would be queued and re-queued forever). A proxy in front
// of Twilio (the emulator) swaps one SID in a message page and one in a
// media list for a hostile one.
func TestBadMessageSIDFromTwilioFailsTheWindow(t *testing.T) {
	t.Parallel()
	d, _, _ := badSIDDeployment(t)

	code, out, errOut := d.cli(t, "backfill", "--since", "2026-02-03", "--until", "2026-02-04", "--wait")
	require.NotEqual(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	var state, reason string
	require.NoError(t, d.Pool.QueryRow(t.Context(), `SELECT state, coalesce(error, '') FROM run_windows`).Scan(&state, &reason))
	require.Equal(t, "failed", state)
	require.Contains(t, reason, "message SID")
	require.Contains(t, reason, "is not valid")
	require.Less(t, len(reason), 512, "the reason quotes the SID cut short: %q", reason)
	require.NotContains(t, out+errOut, strings.Repeat("Z", 100))
	d.checkNoBadSIDs(t)
}

func TestBadMediaSIDFromTwilioFailsTheMessage(t *testing.T) {
	t.Parallel()
	d, badMedia, _ := badSIDDeployment(t)

	code, out, errOut := d.cli(t, "message", badMedia.SID, "--wait")
	require.NotEqual(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	var state, reason string
	require.NoError(t, d.Pool.QueryRow(t.Context(), `SELECT state, coalesce(error, '') FROM run_messages WHERE message_sid = $1`, badMedia.SID).Scan(&state, &reason))
	require.Equal(t, "failed", state)
	require.Contains(t, reason, "media SID")
	require.Contains(t, reason, "is not valid")
	require.Less(t, len(reason), 512, "the reason quotes the SID cut short: %q", reason)
	var left int
	require.NoError(t, d.Pool.QueryRow(t.Context(), `SELECT count(*) FROM media WHERE message_sid = $1 AND state <> 'archived'`, badMedia.SID).Scan(&left))
	require.Zero(t, left, "a media listed before the bad one was left unarchived")
	d.checkNoBadSIDs(t)
}

// A message run whose message Twilio answers with a bad SID fails that
// message with the reason.
func TestBadSIDInAMessageRunFailsTheMessage(t *testing.T) {
	t.Parallel()
	d, _, badMsg := badSIDDeployment(t)

	code, out, errOut := d.cli(t, "message", badMsg.SID, "--wait")
	require.NotEqual(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	var state, reason string
	require.NoError(t, d.Pool.QueryRow(t.Context(), `SELECT state, coalesce(error, '') FROM run_messages WHERE message_sid = $1`, badMsg.SID).Scan(&state, &reason))
	require.Equal(t, "failed", state)
	require.Contains(t, reason, "message SID")
	require.Contains(t, reason, "is not valid")
	require.Less(t, len(reason), 512, "the reason quotes the SID cut short: %q", reason)
	d.checkNoBadSIDs(t)
}

// badSIDDeployment runs a worker behind the SID-swapping proxy, with two
// messages on 2026-02-03 (one, badMsg, listed and fetched with a hostile
// SID) and, days later, badMedia, whose media list names one media with a
// hostile SID.
func badSIDDeployment(t *testing.T) (d *deployment, badMedia, badMsg twiliotest.MessageInfo) {
	t.Helper()
	d = newDeployment(t)
	day := time.Date(2026, 2, 3, 10, 0, 0, 0, time.UTC)
	media := []twiliotest.MediaOptions{{ContentType: "image/jpeg", Size: 2 << 10}, {ContentType: "image/png", Size: 3 << 10}}
	var err error
	badMsg, err = d.Emu.AddMessage(d.Account.SID, twiliotest.MessageOptions{DateSent: day, Media: media})
	require.NoError(t, err)
	_, err = d.Emu.AddMessage(d.Account.SID, twiliotest.MessageOptions{DateSent: day, Media: media})
	require.NoError(t, err)
	badMedia, err = d.Emu.AddMessage(d.Account.SID, twiliotest.MessageOptions{DateSent: day.AddDate(0, 0, 5), Media: media})
	require.NoError(t, err)

	// Long, with a quote, a newline and a NUL: nothing of it may reach a
	// row, a payload or a log line whole.
	hostile := `MM` + strings.Repeat("Z", 2000) + `\"\n\u0000`
	swap := func(body []byte, sid, with string) []byte {
		re := regexp.MustCompile(`"sid"\s*:\s*"` + sid + `"`)
		return re.ReplaceAll(body, []byte(`"sid": "`+with+`"`))
	}
	messagesPath := fmt.Sprintf("/2010-04-01/Accounts/%s/Messages.json", d.Account.SID)
	messagePath := fmt.Sprintf("/2010-04-01/Accounts/%s/Messages/%s.json", d.Account.SID, badMsg.SID)
	mediaListPath := fmt.Sprintf("/2010-04-01/Accounts/%s/Messages/%s/Media.json", d.Account.SID, badMedia.SID)
	proxy := d.ProxyTwilio(t, nil)
	modify := func(resp *http.Response) error {
		var with []byte
		switch resp.Request.URL.Path {
		case messagesPath, messagePath:
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				return err
			}
			with = swap(b, badMsg.SID, hostile)
		case mediaListPath:
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				return err
			}
			with = swap(b, badMedia.MediaSIDs[1], "ME/../../"+strings.Repeat("x", 3000))
		default:
			return nil
		}
		resp.Body = io.NopCloser(bytes.NewReader(with))
		resp.ContentLength = int64(len(with))
		resp.Header.Set("Content-Length", strconv.Itoa(len(with)))
		return nil
	}
	proxy.Configure(func(rp *httputil.ReverseProxy) { rp.ModifyResponse = modify })
	d.Env["TWILIO_API_URL"] = proxy.URL
	d.startWorker(t)

	return d, badMedia, badMsg
}

// checkNoBadSIDs fails t if any row or log line holds a SID that is not
// valid, or the hostile SIDs whole.
func (d *deployment) checkNoBadSIDs(t *testing.T) {
	t.Helper()
	for _, c := range []struct{ table, column, pattern string }{
		{"messages", "sid", `^(SM|MM)[0-9a-fA-F]{32}$`},
		{"run_messages", "message_sid", `^(SM|MM)[0-9a-fA-F]{32}$`},
		{"media", "sid", `^ME[0-9a-fA-F]{32}$`},
		{"run_media", "media_sid", `^ME[0-9a-fA-F]{32}$`},
	} {
		var bad int
		require.NoError(t, d.Pool.QueryRow(t.Context(),
			fmt.Sprintf(`SELECT count(*) FROM %s WHERE %s !~ $1`, c.table, c.column), c.pattern).Scan(&bad))
		require.Zero(t, bad, "%s.%s holds a SID that is not valid", c.table, c.column)
	}
	require.NotContains(t, d.logs.String(), strings.Repeat("Z", 100), "a log line carries the hostile SID whole")
	require.NotContains(t, d.logs.String(), strings.Repeat("x", 100), "a log line carries the hostile SID whole")
}
