package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// Issue #17, end to end: `backfill --no-bodies --delete` archives every
// message's record without its body beside its media in S3 (its SHA-256
// the catalog's), deletes the media and keeps the records, says
// --no-bodies in `runs`, and an export's manifest says the bodies were
// dropped, naming each record.
func TestNoBodiesRecordsSurviveDeletesAndTheManifestSaysSo(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	_, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Messages: 40, Start: start, End: start.AddDate(0, 0, 2),
		MaxMediaPerMessage: 2, MinMediaSize: 200, MaxMediaSize: 4 << 10,
	})
	require.NoError(t, err)
	d.startWorker(t)
	code, out, errOut := d.cli(t, "backfill", "--since", "2026-03-01", "--until", "2026-03-03", "--no-bodies", "--delete", "--wait")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Contains(t, e2etest.StatusValue(t, out, "mode"), "without their body (--no-bodies)")
	code, out, errOut = d.cli(t, "runs")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "--no-bodies")

	ctx := t.Context()
	records := map[string]string{} // message SID → record SHA-256
	for m := range d.Emu.Messages(d.Account.SID) {
		var key, sha string
		var size int64
		var noBody bool
		require.NoError(t, d.Pool.QueryRow(ctx, `SELECT record_key, record_size, record_sha256, record_no_body FROM messages WHERE sid = $1`, m.SID).
			Scan(&key, &size, &sha, &noBody), "message %s has its record", m.SID)
		require.True(t, noBody)
		obj, err := d.S3Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(d.Bucket), Key: aws.String(key)})
		require.NoError(t, err, "record of %s in S3", m.SID)
		b, err := io.ReadAll(obj.Body)
		require.NoError(t, err)
		_ = obj.Body.Close()
		sum := sha256.Sum256(b)
		require.Equal(t, sha, hex.EncodeToString(sum[:]), "%s: the catalog's SHA-256 is the object's", m.SID)
		require.EqualValues(t, size, len(b))
		var rec map[string]any
		require.NoError(t, json.Unmarshal(b, &rec))
		require.NotContains(t, rec, "body", "%s: --no-bodies", m.SID)
		require.Equal(t, m.SID, rec["sid"])
		require.Equal(t, m.From, rec["from"])
		for _, f := range []string{"to", "direction", "status", "date_sent", "date_created", "num_media", "price", "price_unit"} {
			require.Contains(t, rec, f, "%s: Twilio's record", m.SID)
		}
		require.True(t, strings.Contains(key, "/"+m.SID+"/"), "beside its media: %s", key)
		for _, sid := range m.MediaSIDs {
			md, _ := d.Emu.Media(sid)
			require.True(t, md.Deleted, "media %s deleted", sid)
		}
		records[m.SID] = sha
	}
	require.NotEmpty(t, records)

	dir := t.TempDir()
	code, out, errOut = d.cli(t, "export", "--since", "2026-03-01", "--until", "2026-03-03", "--out", "file://"+dir, "--wait")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Equal(t, "succeeded", e2etest.StatusValue(t, out, "state"))
	mf, err := os.Open(filepath.Join(dir, "manifest.jsonl"))
	require.NoError(t, err)
	defer mf.Close()
	dec := json.NewDecoder(mf)
	lines := 0
	for dec.More() {
		var l struct {
			MessageSID   string `json:"message_sid"`
			RecordSHA256 string `json:"message_record_sha256"`
			RecordBody   string `json:"message_record_body"`
		}
		require.NoError(t, dec.Decode(&l))
		require.Equal(t, "dropped", l.RecordBody)
		require.Equal(t, records[l.MessageSID], l.RecordSHA256)
		lines++
	}
	require.Positive(t, lines)
}
