package main

import (
	"archive/zip"
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/internal/version"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

var exportStart = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// archivedDeployment is a deployment whose worker has archived every media
// of six days of messages.
func archivedDeployment(t *testing.T) *deployment {
	t.Helper()
	d := newDeployment(t)
	_, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Messages: 120, Start: exportStart, End: exportStart.AddDate(0, 0, 6),
		MaxMediaPerMessage: 3, MinMediaSize: 200, MaxMediaSize: 20 << 10,
	})
	require.NoError(t, err)
	d.startWorker(t)
	code, out, errOut := d.cli(t, "backfill", "--since", "2026-03-01", "--until", "2026-03-07", "--wait")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	return d
}

// expectedExport is the emulator's media of messages sent in [since,
// until) from or to number (any number when empty), as media SID → SHA-256.
func (d *deployment) expectedExport(t *testing.T, since, until time.Time, number string) map[string]string {
	t.Helper()
	want := map[string]string{}
	for m := range d.Emu.Messages(d.Account.SID) {
		if m.DateSent.Before(since) || !m.DateSent.Before(until) || (number != "" && m.From != number && m.To != number) {
			continue
		}
		for _, sid := range m.MediaSIDs {
			sha, err := d.Emu.SHA256(sid)
			require.NoError(t, err)
			want[sid] = sha
		}
	}
	return want
}

var exportID = regexp.MustCompile(`(?m)^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// checkExportDir checks an unpacked export as a reviewer would: the system
// sha256sum accepts SHA256SUMS, the files are exactly the expected media
// with the emulator's bytes, and the manifests and export.json agree.
func checkExportDir(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	cmd := exec.Command("sha256sum", "--strict", "-c", "SHA256SUMS")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "sha256sum -c SHA256SUMS:\n%s", out)

	got := map[string]string{}
	f, err := os.Open(filepath.Join(dir, "SHA256SUMS"))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, path, ok := strings.Cut(sc.Text(), "  ")
		require.True(t, ok, "SHA256SUMS line %q", sc.Text())
		if path == "manifest.jsonl" || path == "manifest.csv" {
			continue
		}
		// {yyyy-mm-dd}/{MessageSid}/{MediaSid}{.ext}
		parts := strings.Split(path, "/")
		require.Len(t, parts, 3, "path %q", path)
		sid, _, _ := strings.Cut(parts[2], ".")
		got[sid] = sum
	}
	require.Equal(t, want, got, "the export holds exactly the expected media, byte-exact")

	lines := 0
	mf, err := os.Open(filepath.Join(dir, "manifest.jsonl"))
	require.NoError(t, err)
	defer mf.Close()
	dec := json.NewDecoder(mf)
	for dec.More() {
		var l struct {
			MediaSID string `json:"media_sid"`
			SHA256   string `json:"sha256"`
			Path     string `json:"path"`
			Size     int64  `json:"size"`
		}
		require.NoError(t, dec.Decode(&l))
		require.Equal(t, want[l.MediaSID], l.SHA256)
		info, err := os.Stat(filepath.Join(dir, filepath.FromSlash(l.Path)))
		require.NoError(t, err)
		require.Equal(t, l.Size, info.Size())
		lines++
	}
	require.Equal(t, len(want), lines)

	var summary struct {
		State            string `json:"state"`
		Media            int    `json:"media"`
		ManifestSHA256   string `json:"manifest_sha256"`
		SHA256SUMSSHA256 string `json:"sha256sums_sha256"`
		MediasyncVersion string `json:"mediasync_version"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "export.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &summary))
	require.Equal(t, "complete", summary.State)
	require.Equal(t, len(want), summary.Media)
	require.Equal(t, fileSHA256(t, filepath.Join(dir, "manifest.jsonl")), summary.ManifestSHA256)
	require.Equal(t, fileSHA256(t, filepath.Join(dir, "SHA256SUMS")), summary.SHA256SUMSSHA256)
	// The version of the worker that wrote it (in process here): never
	// the toolchain's "(devel)".
	require.Equal(t, version.String(), summary.MediasyncVersion)
	require.NotContains(t, summary.MediasyncVersion, "(devel)")
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("sha256sum", path).Output()
	require.NoError(t, err)
	return strings.Fields(string(out))[0]
}

// unzip extracts a zip into a new directory.
func unzip(t *testing.T, r io.ReaderAt, size int64) string {
	t.Helper()
	zr, err := zip.NewReader(r, size)
	require.NoError(t, err)
	dir := t.TempDir()
	for _, f := range zr.File {
		require.True(t, filepath.IsLocal(f.Name), "zip entry %q", f.Name)
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		rc, err := f.Open()
		require.NoError(t, err)
		b, err := io.ReadAll(rc)
		require.NoError(t, err, "entry %s", f.Name)
		rc.Close()
		require.NoError(t, os.WriteFile(p, b, 0o644))
	}
	return dir
}

// An export by date range (dir, to a folder) and by number (zip, to S3,
// with a presigned URL) holds exactly the expected media, and the system's
// sha256sum accepts it; both are listed, and audited.
func TestExportDirAndZipPassSHA256Sum(t *testing.T) {
	t.Parallel()
	d := archivedDeployment(t)
	since, until := exportStart.AddDate(0, 0, 1), exportStart.AddDate(0, 0, 4)

	// By date range, as a folder.
	dir := t.TempDir()
	code, out, errOut := d.cli(t, "export", "--since", "2026-03-02", "--until", "2026-03-05", "--out", "file://"+dir, "--wait")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Equal(t, "succeeded", e2etest.StatusValue(t, out, "state"))
	want := d.expectedExport(t, since, until, "")
	require.NotEmpty(t, want)
	checkExportDir(t, dir, want)

	// A second export into the same folder cannot overwrite the first: it
	// fails, saying why, instead of waiting forever.
	code, out, errOut = d.cli(t, "export", "--since", "2026-03-02", "--until", "2026-03-03", "--out", "file://"+dir, "--wait")
	require.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Equal(t, "failed", e2etest.StatusValue(t, out, "state"))
	require.Contains(t, e2etest.StatusValue(t, out, "error"), "already holds a different manifest.jsonl")
	checkExportDir(t, dir, want) // the first export is intact

	// By number, as a zip streamed to S3, with a presigned URL.
	var number string
	for m := range d.Emu.Messages(d.Account.SID) {
		if !m.DateSent.Before(since) && m.DateSent.Before(until) && len(m.MediaSIDs) > 0 {
			number = m.From
			break
		}
	}
	byNumber := d.expectedExport(t, since, until, number)
	require.NotEmpty(t, byNumber)
	require.Less(t, len(byNumber), len(want), "the number filter selects a subset")
	out2 := fmt.Sprintf("s3://%s/exports/by-number?%s", d.Bucket, d.S3.URLParams())
	code, out, errOut = d.cli(t, "export", "--since", "2026-03-02", "--until", "2026-03-05", "--number", number,
		"--out", out2, "--format", "zip", "--presign", "1h", "--wait")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	id := exportID.FindString(out)
	require.NotEmpty(t, id)
	key := "exports/by-number/mediasync-export-" + id + ".zip"
	obj, err := d.S3Client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(d.Bucket), Key: aws.String(key)})
	require.NoError(t, err)
	zipFile := filepath.Join(t.TempDir(), "export.zip")
	f, err := os.Create(zipFile)
	require.NoError(t, err)
	size, err := io.Copy(f, obj.Body)
	obj.Body.Close()
	require.NoError(t, err)
	checkExportDir(t, unzip(t, f, size), byNumber)
	f.Close()

	// The presigned URL serves the zip to anyone holding it.
	m := regexp.MustCompile(`presigned:\s+\S+\.zip \(valid 1h0m0s\) (\S+)`).FindStringSubmatch(out)
	require.NotNil(t, m, "no presigned URL in:\n%s", out)
	resp, err := d.S3.HTTPClient().Get(m[1]) // the gateway's certificate trusted
	require.NoError(t, err)
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, size, n)

	code, out, _ = d.cli(t, "export", "list")
	require.Equal(t, 0, code)
	require.Equal(t, 4, strings.Count(out, "\n"), "header and three exports:\n%s", out)
	require.Contains(t, out, id)

	var audited int
	require.NoError(t, d.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM audit_log WHERE action = 'export.finished' AND details->>'state' = 'succeeded'`).Scan(&audited))
	require.Equal(t, 2, audited)
}

// Altering one archived object's bytes on the S3 server's disk, and
// deleting another, fails the export (exit 1) naming both; a zip export is
// then not published at all.
func TestExportFailsNamingAlteredAndMissingMedia(t *testing.T) {
	t.Parallel()
	d := archivedDeployment(t)
	want := d.expectedExport(t, exportStart, exportStart.AddDate(0, 0, 6), "")
	var altered, missing string
	for m := range d.Emu.Messages(d.Account.SID) {
		for _, sid := range m.MediaSIDs {
			key, _, err := d.ExpectedObject(m.SID, sid)
			require.NoError(t, err)
			switch {
			case altered == "":
				altered = sid
				// Bit rot: same length, one byte changed, in place.
				f, err := os.OpenFile(filepath.Join(d.S3.DataDir, d.Bucket, filepath.FromSlash(key)), os.O_RDWR, 0)
				require.NoError(t, err)
				b := make([]byte, 1)
				_, err = f.ReadAt(b, 0)
				require.NoError(t, err)
				_, err = f.WriteAt([]byte{b[0] ^ 0xff}, 0)
				require.NoError(t, err)
				require.NoError(t, f.Close())
			case missing == "":
				missing = sid
				_, err := d.S3Client.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String(d.Bucket), Key: aws.String(key)})
				require.NoError(t, err)
			}
		}
	}
	require.Contains(t, want, altered)
	require.Contains(t, want, missing)

	for _, format := range []string{"dir", "zip", "rsmf"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			code, out, errOut := d.cli(t, "export", "--since", "2026-03-01", "--until", "2026-03-07",
				"--out", "file://"+dir, "--format", format, "--wait")
			require.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
			require.Equal(t, "failed", e2etest.StatusValue(t, out, "state"))
			require.Equal(t, "2", e2etest.StatusValue(t, out, "media failed"))
			require.Regexp(t, `failed:\s+`+altered+`: archived object \S+ was altered`, out)
			require.Regexp(t, `failed:\s+`+missing+`: archived object \S+ is missing`, out)
			if format == "zip" {
				zips, _ := filepath.Glob(filepath.Join(dir, "*.zip"))
				require.Empty(t, zips, "a failed zip export publishes nothing")
			} else {
				if format == "rsmf" {
					files, _ := filepath.Glob(filepath.Join(dir, "*", "*.rsmf"))
					require.NotEmpty(t, files, "the files whose media checked out")
					for _, f := range files {
						for name := range readRSMF(t, f).files {
							require.NotContains(t, name, altered, "no .rsmf holds a media that failed its check")
						}
					}
				}
				_, err := os.Stat(filepath.Join(dir, "SHA256SUMS"))
				require.ErrorIs(t, err, os.ErrNotExist, "a failed dir export writes no SHA256SUMS")
				b, err := os.ReadFile(filepath.Join(dir, "export.json"))
				require.NoError(t, err)
				require.Contains(t, string(b), `"state": "failed"`)
				require.Contains(t, string(b), altered)
			}
		})
	}
}
