package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// A copy archived before copies were judged plausibly the media (its row
// was archived when migration 00013 added plausible_at, so it is NULL) is
// read back and judged before any delete. Here one such copy holds what a
// re-encoding proxy made of the media (faithfully stored: size and SHA-256
// verify) and another the real bytes. A --delete run deletes the good one,
// after recording it plausible; the mangled one is never DELETEd on Twilio,
// and the run names it failed with the reason.
func TestLegacyCopyIsJudgedBeforeDelete(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	when := time.Date(2026, 2, 5, 10, 0, 0, 0, time.UTC)
	msg, err := d.Emu.AddMessage(d.Account.SID, twiliotest.MessageOptions{DateSent: when, Media: []twiliotest.MediaOptions{
		{ContentType: "image/jpeg", Size: 20 << 10},
		{ContentType: "image/png", Size: 30 << 10},
	}})
	require.NoError(t, err)
	bad, good := msg.MediaSIDs[0], msg.MediaSIDs[1]
	mediaPath := func(media string) string {
		return fmt.Sprintf("/2010-04-01/Accounts/%s/Messages/%s/Media/%s.json", d.Account.SID, msg.SID, media)
	}

	var mu sync.Mutex
	deletes := map[string]int{}
	proxy := d.ProxyTwilio(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodDelete {
			for _, media := range msg.MediaSIDs {
				if r.URL.Path == mediaPath(media) {
					mu.Lock()
					deletes[media]++
					mu.Unlock()
				}
			}
		}
		return false
	})
	d.Env["TWILIO_API_URL"] = proxy.URL
	d.startWorker(t)

	// "Archive now, delete later": both archived, nothing deleted.
	code, out, errOut := d.cli(t, "message", msg.SID, "--wait")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Equal(t, "2 (already archived before: 0)", e2etest.StatusValue(t, out, "media archived"), out)

	// As if archived through a re-encoding proxy before the upgrade: the
	// stored object and its row are what the proxy handed back (each
	// invalid byte → U+FFFD), verified by size and SHA-256; and no row says
	// its copy was judged.
	ctx := t.Context()
	var key string
	require.NoError(t, d.Pool.QueryRow(ctx, `SELECT object_key FROM media WHERE sid = $1`, bad).Scan(&key))
	obj, err := d.S3Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(d.Bucket), Key: aws.String(key)})
	require.NoError(t, err)
	real, err := io.ReadAll(obj.Body)
	require.NoError(t, obj.Body.Close())
	require.NoError(t, err)
	var b strings.Builder
	for _, r := range string(real) {
		b.WriteRune(r)
	}
	mangled := []byte(b.String())
	require.NotEqual(t, real, mangled)
	legacyKey := strings.TrimSuffix(key, ".jpg") + "-legacy.jpg"
	_, err = d.S3Client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(d.Bucket), Key: aws.String(legacyKey), Body: bytes.NewReader(mangled),
		ContentType: aws.String("image/jpeg"), ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
	})
	require.NoError(t, err)
	sum := sha256.Sum256(mangled)
	_, err = d.Pool.Exec(ctx, `UPDATE media SET object_key = $2, size_bytes = $3, sha256 = $4, version_id = NULL WHERE sid = $1`,
		bad, legacyKey, len(mangled), hex.EncodeToString(sum[:]))
	require.NoError(t, err)
	_, err = d.Pool.Exec(ctx, `UPDATE media SET plausible_at = NULL WHERE message_sid = $1`, msg.SID)
	require.NoError(t, err)

	code, out, errOut = d.cli(t, "message", msg.SID, "--delete", "--wait")
	require.Equal(t, 1, code, "a media failed: stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Equal(t, "1", e2etest.StatusValue(t, out, "media deleted"), out)
	require.Equal(t, "1", e2etest.StatusValue(t, out, "media failed"), out)
	require.Contains(t, out, bad, "the failed media is named")
	require.Contains(t, out, "not plausibly the media", "with the reason")

	mu.Lock()
	require.Zero(t, deletes[bad], "no DELETE of the mangled copy's media reached Twilio")
	require.Equal(t, 1, deletes[good])
	mu.Unlock()
	for media, want := range map[string]int{bad: http.StatusOK, good: http.StatusNotFound} {
		req, err := http.NewRequest(http.MethodGet, d.Emu.URL()+mediaPath(media), nil)
		require.NoError(t, err)
		req.SetBasicAuth(d.Account.SID, d.Account.AuthToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, want, resp.StatusCode, "media %s on Twilio", media)
	}
	var state string
	var judged bool
	require.NoError(t, d.Pool.QueryRow(ctx, `SELECT state, plausible_at IS NOT NULL FROM media WHERE sid = $1`, bad).Scan(&state, &judged))
	require.Equal(t, "archived", state)
	require.False(t, judged, "the mangled copy is not recorded plausible")
	require.NoError(t, d.Pool.QueryRow(ctx, `SELECT state, plausible_at IS NOT NULL FROM media WHERE sid = $1`, good).Scan(&state, &judged))
	require.Equal(t, "deleted", state)
	require.True(t, judged, "the good copy was judged and recorded plausible")
	require.Contains(t, d.logs.String(), "media NOT deleted from Twilio")
}
