package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/internal/testenv"
	"github.com/mediasync/mediasync/jobs"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// anchorKeys lists the audit anchors in the deployment's bucket.
func (d *deployment) anchorKeys(t *testing.T) []string {
	t.Helper()
	out, err := d.S3Client.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{
		Bucket: aws.String(d.Bucket), Prefix: aws.String(archive.AuditAnchorPrefix(d.Prefix, d.Account.SID)),
	})
	require.NoError(t, err)
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

// waitForAnchor waits until the bucket holds an anchor of the log's
// current head, and returns its key.
func (d *deployment) waitForAnchor(t *testing.T) string {
	t.Helper()
	var headID int64
	var headHash []byte
	require.NoError(t, d.Pool.QueryRow(t.Context(), `SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1`).Scan(&headID, &headHash))
	want := archive.AuditAnchorKey(d.Prefix, d.Account.SID, headID, headHash)
	// Anchors are at least jobs.AnchorMinGap apart: one asked for within
	// the gap after the last (the worker's at start may have caught the
	// run's first row) is written when the gap ends, still well before the
	// 5-minute tick.
	testenv.WaitFor(t, jobs.AnchorMinGap+30*time.Second, "an anchor of row "+fmt.Sprint(headID), func() bool {
		for _, k := range d.anchorKeys(t) {
			if k == want {
				return true
			}
		}
		return false
	})
	return want
}

// Deleting the newest audit rows leaves a chain that links perfectly; the
// anchor the worker wrote to the archive shows they existed, and `audit
// verify` says so and exits 1. Without an anchor it warns.
func TestAuditVerifyCatchesNewestRowsRemovedAfterAnchor(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	for i := range 3 {
		code, _, errOut := d.cli(t, "--actor", "ops", "hold", "add", "--reason", fmt.Sprint("case ", i), "--to", "+15550100123")
		require.Equal(t, 0, code, errOut)
	}
	code, out, errOut := d.cli(t, "audit", "verify")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "3 rows, chain intact")
	require.Contains(t, errOut, "warning: no audit anchor in the archive")

	d.startWorker(t) // anchors the log at start
	d.waitForAnchor(t)
	code, out, errOut = d.cli(t, "audit", "verify")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "consistent with 1 anchors in the archive (the latest at row 3)")
	require.NotContains(t, errOut, "warning")

	_, err := d.Pool.Exec(t.Context(), `ALTER TABLE audit_log DISABLE TRIGGER audit_log_immutable;
		DELETE FROM audit_log WHERE id >= 2;
		ALTER TABLE audit_log ENABLE TRIGGER audit_log_immutable`)
	require.NoError(t, err)
	code, out, errOut = d.cli(t, "audit", "verify")
	require.Equal(t, 1, code, out)
	require.Contains(t, errOut, "audit log broken at row 3: the log ends at row 1, but the archive anchored row 3")
	require.Contains(t, errOut, "rows were removed from the end of the log")
}

// Once a run ends its record is anchored at once; under WORM the anchor
// carries the archive's Object Lock retention, so nobody can remove it.
func TestAuditAnchorAfterRunIsObjectLocked(t *testing.T) {
	t.Parallel()
	d := &deployment{Deployment: e2etest.New(t, e2etest.Options{Bucket: []testenv.BucketOption{testenv.WithObjectLock()}}), logs: &e2etest.LogBuffer{}}
	d.Env["ARCHIVE_OBJECT_LOCK"] = "GOVERNANCE"
	d.Env["ARCHIVE_RETENTION"] = "2d"
	msg, err := d.Emu.AddMessage(d.Account.SID, twiliotest.MessageOptions{DateSent: time.Date(2026, 7, 1, 8, 0, 0, 0, time.UTC),
		Media: []twiliotest.MediaOptions{{Size: 2048}}})
	require.NoError(t, err)
	d.startWorker(t)
	code, out, errOut := d.cli(t, "message", msg.SID, "--wait")
	require.Equal(t, 0, code, "%s\n%s", out, errOut)
	var finished int64
	require.NoError(t, d.Pool.QueryRow(t.Context(), `SELECT max(id) FROM audit_log WHERE action = 'run.finished'`).Scan(&finished))

	// This anchor is the one the run's end asked for (within the gap after
	// the worker's anchor at start), not the next 5-minute tick.
	key := d.waitForAnchor(t)
	require.Contains(t, key, fmt.Sprintf("/%020d-", finished))
	ret, err := d.S3Client.GetObjectRetention(t.Context(), &s3.GetObjectRetentionInput{Bucket: aws.String(d.Bucket), Key: aws.String(key)})
	require.NoError(t, err)
	require.Equal(t, "GOVERNANCE", string(ret.Retention.Mode))
	until := aws.ToTime(ret.Retention.RetainUntilDate)
	require.WithinDuration(t, time.Now().Add(48*time.Hour), until, 5*time.Minute)

	code, out, errOut = d.cli(t, "audit", "verify")
	require.Equal(t, 0, code, errOut)
	require.True(t, strings.Contains(out, "consistent with"), out)
}
