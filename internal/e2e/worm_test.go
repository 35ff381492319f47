package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/internal/testenv"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// WORM archiving: with ARCHIVE_OBJECT_LOCK and ARCHIVE_RETENTION every
// archived object is written with that Object Lock retention; the server
// then refuses to delete its version, and the retention read back matches
// the setting and the catalog row. (GOVERNANCE in tests: COMPLIANCE could
// not be cleaned up.)
func TestWORMArchiving(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{Bucket: []testenv.BucketOption{testenv.WithObjectLock()}})
	msg, err := d.Emu.AddMessage(d.Account.SID, twiliotest.MessageOptions{DateSent: time.Date(2026, 7, 1, 8, 0, 0, 0, time.UTC),
		Media: []twiliotest.MediaOptions{{Size: 4096}, {Size: 2048, ContentType: "image/png"}}})
	if err != nil {
		t.Fatal(err)
	}
	w := d.StartWorker(t, "ARCHIVE_OBJECT_LOCK=GOVERNANCE", "ARCHIVE_RETENTION=2d")
	before := time.Now().UTC()
	code, out, stderr := d.Enqueue(t, 2*time.Minute, "message", msg.SID, "--wait")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s\n%s", code, out, stderr, w.Logs())
	}
	for _, sid := range msg.MediaSIDs {
		key, _, err := d.ExpectedObject(msg.SID, sid)
		if err != nil {
			t.Fatal(err)
		}
		var mode string
		var until time.Time
		var version string
		if err := d.Pool.QueryRow(t.Context(), `SELECT lock_mode, retain_until, coalesce(version_id, '') FROM media WHERE sid = $1`, sid).
			Scan(&mode, &until, &version); err != nil {
			t.Fatal(err)
		}
		ret, err := d.S3Client.GetObjectRetention(t.Context(), &s3.GetObjectRetentionInput{Bucket: aws.String(d.Bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("retention of %s: %v", key, err)
		}
		if string(ret.Retention.Mode) != "GOVERNANCE" || mode != "GOVERNANCE" {
			t.Fatalf("%s: mode %s on S3, %s in the catalog", sid, ret.Retention.Mode, mode)
		}
		got := aws.ToTime(ret.Retention.RetainUntilDate)
		if !got.Equal(until) || got.Before(before.Add(47*time.Hour)) || got.After(time.Now().Add(49*time.Hour)) {
			t.Fatalf("%s: retain until %v on S3, %v in the catalog; want about 2 days from now", sid, got, until)
		}
		head, err := d.S3Client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(d.Bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = d.S3Client.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String(d.Bucket), Key: aws.String(key), VersionId: head.VersionId})
		if err == nil {
			t.Fatalf("deleting the locked version of %s was allowed", key)
		}
	}

	// An export's manifest shows each object's retention, as the catalog
	// recorded it.
	dir := t.TempDir()
	code, out, stderr = d.Enqueue(t, 2*time.Minute, "export", "--since", "2026-07-01", "--until", "2026-07-02",
		"--out", "file://"+dir, "--wait")
	if code != 0 {
		t.Fatalf("export: exit %d\n%s\n%s\n%s", code, out, stderr, w.Logs())
	}
	b, err := os.ReadFile(filepath.Join(dir, "manifest.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != len(msg.MediaSIDs) {
		t.Fatalf("manifest has %d lines, want %d:\n%s", len(lines), len(msg.MediaSIDs), b)
	}
	for _, l := range lines {
		var m struct {
			MediaSID      string    `json:"media_sid"`
			RetentionMode string    `json:"retention_mode"`
			RetainUntil   time.Time `json:"retain_until"`
		}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		var until time.Time
		if err := d.Pool.QueryRow(t.Context(), `SELECT retain_until FROM media WHERE sid = $1`, m.MediaSID).Scan(&until); err != nil {
			t.Fatal(err)
		}
		if m.RetentionMode != "GOVERNANCE" || !m.RetainUntil.Equal(until) {
			t.Fatalf("manifest line %s: retention %s until %v, catalog says GOVERNANCE until %v", m.MediaSID, m.RetentionMode, m.RetainUntil, until)
		}
	}
}

// Asking for WORM on a bucket without Object Lock is refused at start, in
// one clear line, rather than archiving objects that are not locked.
func TestWORMRefusedWithoutObjectLock(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{})
	w := d.StartWorker(t, "ARCHIVE_OBJECT_LOCK=COMPLIANCE", "ARCHIVE_RETENTION=2555d")
	testenv.WaitFor(t, 30*time.Second, "the worker to exit (it kept running without Object Lock)", w.Exited, w.Logs)
	if !strings.Contains(w.Logs(), "does not have S3 Object Lock enabled") {
		t.Fatalf("no clear reason in:\n%s", w.Logs())
	}
	if err := w.Stop(time.Second); err == nil {
		t.Fatal("worker exited 0")
	}
}
