package e2e

import (
	"archive/zip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/internal/testenv"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// A worker killed with SIGKILL in the middle of two exports, a folder and
// a zip streamed to S3, leaves nothing half-done: once a new worker takes
// the tasks back, both exports complete, hold every expected media once,
// and pass sha256sum -c.
func TestExportSurvivesKill9(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{})
	start := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	sum, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Messages: 500, Start: start, End: start.AddDate(0, 0, 3), MaxMediaPerMessage: 4, MinMediaSize: 1 << 10, MaxMediaSize: 16 << 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	w := d.StartWorker(t)
	if code, out, errOut := d.Enqueue(t, 4*time.Minute, "backfill", "--since", "2026-04-01", "--until", "2026-04-04", "--wait"); code != 0 {
		t.Fatalf("backfill: exit %d\n%s\n%s", code, out, errOut)
	}

	dir := t.TempDir()
	s3URL := fmt.Sprintf("s3://%s/exports?%s", d.Bucket, d.S3.URLParams())
	ids := map[string]string{}
	for format, out := range map[string]string{"dir": "file://" + dir, "zip": s3URL} {
		code, stdout, stderr := d.Enqueue(t, time.Minute, "export", "--since", "2026-04-01", "--until", "2026-04-04",
			"--out", out, "--format", format)
		if code != 0 {
			t.Fatalf("export %s: exit %d\n%s\n%s", format, code, stdout, stderr)
		}
		ids[format] = strings.TrimSpace(stdout)
	}
	// Kill once both exports are under way and neither is done.
	progress := func(id string) (done, total int) {
		_ = d.Pool.QueryRow(t.Context(), `SELECT count(*) FILTER (WHERE state <> 'pending'), count(*) FROM export_media WHERE run_id = $1`, id).Scan(&done, &total)
		return done, total
	}
	testenv.WaitFor(t, 2*time.Minute, "both exports under way", func() bool {
		dd, _ := progress(ids["dir"])
		zd, _ := progress(ids["zip"])
		return dd > 0 && zd > 0
	}, workerLog(w.Logs))
	w.Kill()
	for format, id := range ids {
		done, total := progress(id)
		t.Logf("killed with %s export at %d/%d", format, done, total)
		if done == total {
			t.Logf("%s export had finished its media before the kill", format)
		}
	}
	w = d.StartWorker(t)
	for format, id := range ids {
		code, stdout, stderr := d.Enqueue(t, 5*time.Minute, "status", id, "--wait")
		if code != 0 {
			t.Fatalf("%s export after the kill: exit %d\n%s\n%s\n%s", format, code, stdout, stderr, lastLines(w.Logs(), 40))
		}
		if got := e2etest.StatusValue(t, stdout, "media exported"); !strings.HasPrefix(got, fmt.Sprint(sum.Media)+" ") {
			t.Fatalf("%s export: media exported %q, want %d", format, got, sum.Media)
		}
	}

	// The zip: the one object, complete; no upload left behind.
	zipFile := filepath.Join(t.TempDir(), "export.zip")
	f, err := os.Create(zipFile)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := d.S3Client.GetObject(t.Context(), &s3.GetObjectInput{
		Bucket: aws.String(d.Bucket), Key: aws.String("exports/mediasync-export-" + ids["zip"] + ".zip")})
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(f, obj.Body)
	obj.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(f, n)
	if err != nil {
		t.Fatal(err)
	}
	unzipped := t.TempDir()
	for _, zf := range zr.File {
		p := filepath.Join(unzipped, filepath.FromSlash(zf.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("zip entry %s: %v", zf.Name, err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	uploads, err := d.S3Client.ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String(d.Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(uploads.Uploads) != 0 {
		t.Fatalf("%d multipart uploads of the killed attempt remain", len(uploads.Uploads))
	}
	mediaLine := regexp.MustCompile(`^[0-9a-f]{64}  \d{4}-\d\d-\d\d/[A-Z]{2}[0-9a-f]{32}/ME[0-9a-f]{32}`)
	for format, root := range map[string]string{"dir": dir, "zip": unzipped} {
		cmd := exec.Command("sha256sum", "--strict", "-c", "SHA256SUMS")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s export: sha256sum -c: %v\n%s", format, err, lastLines(string(out), 20))
		}
		b, err := os.ReadFile(filepath.Join(root, "SHA256SUMS"))
		if err != nil {
			t.Fatal(err)
		}
		media := 0
		for _, l := range strings.Split(string(b), "\n") {
			if mediaLine.MatchString(l) {
				media++
			}
		}
		if media != sum.Media {
			t.Fatalf("%s export lists %d media, want %d", format, media, sum.Media)
		}
	}
}
