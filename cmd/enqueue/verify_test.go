package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// verify re-reads the archive: an object overwritten in S3 with other
// bytes of the same size, and one deleted, are found, named, recorded on
// their rows, and make verify --wait exit 1; the others are recorded ok.
// A verify policy does the same on its schedule (here: policy run).
func TestVerifyFindsCorruptedObject(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	when := time.Date(2026, 4, 2, 10, 0, 0, 0, time.UTC)
	msg, err := d.Emu.AddMessage(d.Account.SID, twiliotest.MessageOptions{DateSent: when, Media: []twiliotest.MediaOptions{
		{ContentType: "image/jpeg", Size: 20 << 10},
		{ContentType: "image/png", Size: 300 << 10},
		{ContentType: "image/gif", Size: 5 << 10},
		{ContentType: "image/jpeg", Size: 7 << 10},
	}})
	require.NoError(t, err)
	corrupt, missing := msg.MediaSIDs[1], msg.MediaSIDs[2]
	d.startWorker(t)

	code, out, errOut := d.cli(t, "message", msg.SID, "--wait")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)

	// All intact: verify succeeds and records each.
	code, out, errOut = d.cli(t, "verify", "--wait")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Equal(t, "4", e2etest.StatusValue(t, out, "objects ok"), out)
	require.Equal(t, "0", e2etest.StatusValue(t, out, "mismatch"), out)

	ctx := t.Context()
	key := func(sid string) string {
		var k string
		require.NoError(t, d.Pool.QueryRow(ctx, `SELECT object_key FROM media WHERE sid = $1`, sid).Scan(&k))
		return k
	}
	obj, err := d.S3Client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(d.Bucket), Key: aws.String(key(corrupt))})
	require.NoError(t, err)
	other := bytes.Repeat([]byte{0xA5}, int(aws.ToInt64(obj.ContentLength)))
	_, err = d.S3Client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(d.Bucket), Key: aws.String(key(corrupt)), Body: bytes.NewReader(other),
		ContentType: aws.String("image/png"), ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
	})
	require.NoError(t, err)
	_, err = d.S3Client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(d.Bucket), Key: aws.String(key(missing))})
	require.NoError(t, err)

	code, out, errOut = d.cli(t, "verify", "--since", "2026-04-02", "--until", "2026-04-03", "--wait")
	require.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Equal(t, "2", e2etest.StatusValue(t, out, "objects ok"), out)
	require.Equal(t, "1", e2etest.StatusValue(t, out, "mismatch"), out)
	require.Equal(t, "1", e2etest.StatusValue(t, out, "missing"), out)
	require.Equal(t, "failed", e2etest.StatusValue(t, out, "state"), out)
	require.Contains(t, errOut, "does not match: "+corrupt+": mismatch: archived object "+key(corrupt)+" was altered")
	require.Contains(t, errOut, "does not match: "+missing+": missing: archived object "+key(missing)+" is missing")
	require.Contains(t, errOut, "2 objects do not match the catalog")
	id := e2etest.StatusValue(t, out, "run")

	rows, err := d.Pool.Query(ctx, `SELECT sid, verify_result, last_verified_at IS NOT NULL FROM media WHERE message_sid = $1`, msg.SID)
	require.NoError(t, err)
	results := map[string]string{}
	for rows.Next() {
		var sid, res string
		var when bool
		require.NoError(t, rows.Scan(&sid, &res, &when))
		require.True(t, when, "no last_verified_at on %s", sid)
		results[sid] = res
	}
	require.NoError(t, rows.Err())
	require.Equal(t, map[string]string{msg.MediaSIDs[0]: "ok", corrupt: "mismatch", missing: "missing", msg.MediaSIDs[3]: "ok"}, results)

	var st statusJSON
	d.cliJSON(t, &st, "status", id)
	require.Equal(t, "verify", st.Run.Kind)
	require.Equal(t, 1.0, st.Run.VerifySample)
	require.NotNil(t, st.Verify)
	require.Equal(t, verifyJSON{Selected: 4, OK: 2, Mismatch: 1, Missing: 1, Bytes: (20 + 300 + 5 + 7) << 10}, *st.Verify)
	require.Equal(t, map[string]int{"verify": 2}, st.FailuresTotal)
	var fd failuresDoc
	d.cliJSON(t, &fd, "failures", id)
	require.Equal(t, 2, fd.Total)
	for _, f := range fd.Failures {
		require.Equal(t, "verify", f.Kind)
		require.Contains(t, []string{corrupt, missing}, f.SID)
	}

	// A share: validated, exit 2 naming the flag and the value.
	for _, bad := range []string{"0", "1.5", "150%", "0%", "half", "-0.1"} {
		code, _, errOut = d.cli(t, "verify", "--sample", bad)
		require.Equal(t, 2, code, bad)
		require.Contains(t, errOut, fmt.Sprintf("--sample %q", bad))
	}
	code, out, errOut = d.cli(t, "verify", "--sample", "50%", "--wait")
	require.Contains(t, []int{0, 1}, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	d.cliJSON(t, &st, "status", e2etest.StatusValue(t, out, "run"))
	require.Equal(t, 0.5, st.Run.VerifySample)
	require.LessOrEqual(t, st.Verify.Selected, 4)

	// The same as a policy.
	code, out, errOut = d.cli(t, "policy", "set", "weekly-check", "--schedule", "@every 168h", "--kind", "verify", "--sample", "100%")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	code, _, errOut = d.cli(t, "policy", "set", "bad-check", "--schedule", "@every 1h", "--kind", "verify", "--delete-after", "30d")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "--delete-after")
	code, _, errOut = d.cli(t, "policy", "set", "bad-kind", "--schedule", "@every 1h", "--kind", "purge")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `--kind "purge"`)
	code, out, errOut = d.cli(t, "policy", "run", "weekly-check", "--wait")
	require.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Equal(t, "1", e2etest.StatusValue(t, out, "mismatch"), out)
	require.Contains(t, errOut, "does not match: "+corrupt)

	var pd struct {
		Policies []policyJSON `json:"policies"`
	}
	d.cliJSON(t, &pd, "policy", "list")
	require.Len(t, pd.Policies, 1)
	p := pd.Policies[0]
	require.Equal(t, "weekly-check", p.Name)
	require.Equal(t, "verify", p.Kind)
	require.Equal(t, 1.0, p.VerifySample)
	require.Equal(t, "@every 168h", p.Schedule)
	require.NotNil(t, p.LastRun)
	require.Equal(t, "failed", p.LastRun.State)
	require.Equal(t, "verify", p.LastRun.Kind)
	code, out, _ = d.cli(t, "policy", "list")
	require.Equal(t, 0, code)
	require.True(t, strings.Contains(out, "verify, sample 1"), out)
}
