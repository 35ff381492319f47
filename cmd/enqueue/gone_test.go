package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// A 404 is "gone" only when the API says so for the media. A proxy in
// front of Twilio (the emulator) answers each media's first download in its
// own way, then lets the download through:
//   - signed: redirected to a signed-URL host that answers 404 NoSuchKey
//     (an expired or not yet replicated object); Twilio still has the media;
//   - plain: the API host answers 404 without Twilio's code (an edge);
//   - deleted: redirected to the failing signed host, and the media is
//     deleted on Twilio meanwhile, so fetching it again answers 404 / 20404.
//
// The first two are retried and archived byte-exact; only the third is
// recorded gone.
func TestContent404IsGoneOnlyWhenTheAPISaysSo(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	when := time.Date(2026, 2, 3, 10, 0, 0, 0, time.UTC)
	msg, err := d.Emu.AddMessage(d.Account.SID, twiliotest.MessageOptions{DateSent: when, Media: []twiliotest.MediaOptions{
		{ContentType: "image/jpeg", Size: 20 << 10},
		{ContentType: "image/png", Size: 30 << 10},
		{ContentType: "image/gif", Size: 10 << 10},
	}})
	require.NoError(t, err)
	signed, plain, deleted := msg.MediaSIDs[0], msg.MediaSIDs[1], msg.MediaSIDs[2]
	contentPath := func(media string) string {
		return fmt.Sprintf("/2010-04-01/Accounts/%s/Messages/%s/Media/%s", d.Account.SID, msg.SID, media)
	}

	storage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Empty(t, r.Header.Get("Authorization"), "credentials followed the redirect")
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusNotFound)
		_, _ = fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>`)
	}))
	t.Cleanup(storage.Close)
	signedURL := storage.URL + "/" + d.Account.SID + "/0123456789abcdef0123456789abcdef?Expires=1&Signature=sig&Key-Pair-Id=K"

	var mu sync.Mutex
	downloads := map[string]int{}
	var deleteErr error
	proxy := d.ProxyTwilio(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet {
			for _, media := range msg.MediaSIDs {
				if r.URL.Path != contentPath(media) {
					continue
				}
				mu.Lock()
				downloads[media]++
				first := downloads[media] == 1
				if first && media == deleted {
					deleteErr = deleteMedia(d, msg.SID, media)
				}
				mu.Unlock()
				switch {
				case !first:
				case media == plain:
					w.Header().Set("Content-Type", "text/html")
					w.WriteHeader(http.StatusNotFound)
					_, _ = fmt.Fprint(w, "<html><body>Not Found</body></html>")
					return true
				default:
					http.Redirect(w, r, signedURL, http.StatusFound)
					return true
				}
			}
		}
		return false
	})
	d.Env["TWILIO_API_URL"] = proxy.URL
	d.startWorker(t)

	code, out, errOut := d.cli(t, "message", msg.SID, "--wait")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.NoError(t, deleteErr)
	require.Equal(t, "2 (already archived before: 0)", e2etest.StatusValue(t, out, "media archived"), out)
	require.Equal(t, "1", e2etest.StatusValue(t, out, "media gone"), out)
	require.Equal(t, "0", e2etest.StatusValue(t, out, "media failed"), out)

	for _, media := range []string{signed, plain} {
		var state string
		require.NoError(t, d.Pool.QueryRow(t.Context(), `SELECT state FROM media WHERE sid = $1`, media).Scan(&state))
		require.Equal(t, "archived", state, "media %s, which Twilio still had", media)
		key, want, err := d.ExpectedObject(msg.SID, media)
		require.NoError(t, err)
		head, err := d.S3Client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(d.Bucket), Key: aws.String(key)})
		require.NoError(t, err, "object of %s", media)
		require.Equal(t, want, head.Metadata["sha256"])
		mu.Lock()
		require.GreaterOrEqual(t, downloads[media], 2, "media %s was not downloaded again", media)
		mu.Unlock()
	}
	var state string
	require.NoError(t, d.Pool.QueryRow(t.Context(), `SELECT state FROM media WHERE sid = $1`, deleted).Scan(&state))
	require.Equal(t, "gone", state, "the API answered 404 / 20404 for the media")
	mu.Lock()
	require.Equal(t, 1, downloads[deleted], "a media the API says is gone is not downloaded again")
	mu.Unlock()
}

// deleteMedia deletes a media on the emulator directly, as something other
// than mediasync would on Twilio.
func deleteMedia(d *deployment, msgSID, mediaSID string) error {
	req, err := http.NewRequest(http.MethodDelete, fmt.Sprintf("%s/2010-04-01/Accounts/%s/Messages/%s/Media/%s.json", d.Emu.URL(), d.Account.SID, msgSID, mediaSID), nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(d.Account.SID, d.Account.AuthToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("DELETE media %s: %s", mediaSID, resp.Status)
	}
	return nil
}

// A DELETE answered 404 is a delete done only when the API says so for the
// media (404 / 20404). A proxy in front of Twilio answers one media's first
// DELETE with a bare 404 and drops it: the media is still on Twilio, so
// recording it deleted would leave it there with nothing to delete it. It is
// fetched again, found, and deleted by the retry.
func TestDelete404IsDoneOnlyWhenTheAPISaysSo(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	when := time.Date(2026, 2, 4, 10, 0, 0, 0, time.UTC)
	msg, err := d.Emu.AddMessage(d.Account.SID, twiliotest.MessageOptions{DateSent: when, Media: []twiliotest.MediaOptions{
		{ContentType: "image/jpeg", Size: 20 << 10},
		{ContentType: "image/png", Size: 30 << 10},
	}})
	require.NoError(t, err)
	dropped := msg.MediaSIDs[0]
	mediaPath := func(media string) string {
		return fmt.Sprintf("/2010-04-01/Accounts/%s/Messages/%s/Media/%s.json", d.Account.SID, msg.SID, media)
	}

	var mu sync.Mutex
	deletes := 0
	proxy := d.ProxyTwilio(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodDelete && r.URL.Path == mediaPath(dropped) {
			mu.Lock()
			deletes++
			first := deletes == 1
			mu.Unlock()
			if first {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusNotFound)
				_, _ = fmt.Fprint(w, "<html><body>Not Found</body></html>")
				return true
			}
		}
		return false
	})
	d.Env["TWILIO_API_URL"] = proxy.URL
	d.startWorker(t)

	code, out, errOut := d.cli(t, "message", msg.SID, "--delete", "--wait")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Equal(t, "2", e2etest.StatusValue(t, out, "media deleted"), out)
	for _, media := range msg.MediaSIDs {
		req, err := http.NewRequest(http.MethodGet, d.Emu.URL()+mediaPath(media), nil)
		require.NoError(t, err)
		req.SetBasicAuth(d.Account.SID, d.Account.AuthToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusNotFound, resp.StatusCode, "media %s is recorded deleted but Twilio still has it", media)
	}
	mu.Lock()
	require.Equal(t, 2, deletes, "the dropped DELETE was sent again")
	mu.Unlock()
}
