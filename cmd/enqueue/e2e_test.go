package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/internal/config"
	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/internal/logging"
	"github.com/mediasync/mediasync/internal/testenv"
	"github.com/mediasync/mediasync/internal/worker"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

func TestMain(m *testing.M) {
	logging.Setup() // before any in-process worker logs
	// The worker reads S3 credentials through the AWS SDK's default chain,
	// which reads the process environment; every test uses the same test
	// gateway, so they are set once here.
	os.Setenv("AWS_ACCESS_KEY_ID", testenv.S3AccessKey)
	os.Setenv("AWS_SECRET_ACCESS_KEY", testenv.S3SecretKey)
	os.Setenv("AWS_REGION", testenv.S3Region)
	os.Exit(m.Run())
}

// deployment is the e2etest harness with the worker run in-process and
// the CLI called as a function, so these tests see the worker's logs and
// cover cmd/enqueue itself.
type deployment struct {
	*e2etest.Deployment
	logs *e2etest.LogBuffer
}

func (d *deployment) getenv(k string) string { return d.Env[k] }

func newDeployment(t *testing.T) *deployment {
	t.Helper()
	return &deployment{Deployment: e2etest.New(t, e2etest.Options{Emulator: twiliotest.Config{Seed: 7}}), logs: &e2etest.LogBuffer{}}
}

// startWorker runs a worker in-process until the test ends, or until the
// stop it returns is called.
func (d *deployment) startWorker(t *testing.T) (stop func()) {
	t.Helper()
	cfg, err := config.Load(d.getenv, config.Need{TwilioCredentials: true, Archive: true})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- worker.Run(ctx, cfg, logging.New(d.logs, "json", cfg.LogLevel)) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("worker: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("worker did not stop within 30s")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// cli runs the enqueue command as an operator would and returns its exit
// code, stdout and stderr.
func (d *deployment) cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code := Main(ctx, args, &out, &errb, d.getenv)
	return code, out.String(), errb.String()
}

// The product, end to end: a few hundred messages in the emulator; a
// backfill of part of their range archives every in-range media into S3
// with the right SHA-256 and one row each; with --delete, each is deleted
// from Twilio only after its object exists; media outside the range are
// untouched; a repeated run downloads nothing again.
func TestBackfillArchivesThenDeletesEndToEnd(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sum, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Messages: 300, Start: start, End: start.AddDate(0, 0, 10),
		MaxMediaPerMessage: 4, MinMediaSize: 512, MaxMediaSize: 48 << 10,
	})
	require.NoError(t, err)
	require.Greater(t, sum.Media, 200)
	d.startWorker(t)

	since, until := start.AddDate(0, 0, 2), start.AddDate(0, 0, 7)
	inRange := map[string]string{} // media SID → message SID
	outOfRange := map[string]bool{}
	for m := range d.Emu.Messages(d.Account.SID) {
		for _, sid := range m.MediaSIDs {
			if !m.DateSent.Before(since) && m.DateSent.Before(until) {
				inRange[sid] = m.SID
			} else {
				outOfRange[sid] = true
			}
		}
	}
	require.NotEmpty(t, inRange)
	require.NotEmpty(t, outOfRange)

	// 1. Archive only.
	code, out, errOut := d.cli(t, "backfill", "--since", "2026-01-03", "--until", "2026-01-08", "--wait")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Equal(t, "succeeded", e2etest.StatusValue(t, out, "state"))
	require.Equal(t, fmt.Sprint(len(inRange)), strings.Fields(e2etest.StatusValue(t, out, "media archived"))[0])
	for sid := range inRange {
		md, _ := d.Emu.Media(sid)
		require.False(t, md.Deleted, "archive-only run deleted %s", sid)
	}
	downloads := d.Emu.Stats().ByRoute["media.content"]
	require.Equal(t, int64(len(inRange)), downloads, "each in-range media downloaded once")

	// 2. The same range with --delete: nothing is downloaded again, each
	// media is deleted, and only after its object is in S3.
	code, out, errOut = d.cli(t, "backfill", "--since", "2026-01-03", "--until", "2026-01-08", "--delete", "--wait")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Equal(t, downloads, d.Emu.Stats().ByRoute["media.content"], "a repeated run must not download again")
	require.Equal(t, fmt.Sprint(len(inRange)), e2etest.StatusValue(t, out, "media deleted"))
	early, attempts := d.EarlyDeletes()
	require.Empty(t, early, "deleted from Twilio before the copy was in S3")
	require.Equal(t, len(inRange), attempts)

	for sid := range inRange {
		md, ok := d.Emu.Media(sid)
		require.True(t, ok)
		require.True(t, md.Deleted, "media %s in range was not deleted", sid)
	}
	d.CheckArchived(t, inRange, "deleted")
	for sid := range outOfRange {
		md, _ := d.Emu.Media(sid)
		require.False(t, md.Deleted, "media %s outside the range was deleted", sid)
	}
	var outside int
	require.NoError(t, d.Pool.QueryRow(t.Context(), `SELECT count(*) FROM media WHERE sid = ANY($1)`, keys(outOfRange)).Scan(&outside))
	require.Zero(t, outside, "media outside the range got rows")

	// 3. Once more: nothing to download, nothing to delete.
	deletes := len(d.Emu.Deletes(0))
	code, out, errOut = d.cli(t, "backfill", "--since", "2026-01-03", "--until", "2026-01-08", "--delete", "--wait")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Equal(t, downloads, d.Emu.Stats().ByRoute["media.content"])
	require.Len(t, d.Emu.Deletes(0), deletes)

	// Credentials never followed the redirect, and never reached the logs.
	require.Zero(t, d.Emu.Stats().SignedWithAuthorization)
	require.NotContains(t, d.logs.String(), d.Account.AuthToken)
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// A dry run lists and counts, and writes and deletes nothing: no download,
// no object, no media row.
func TestDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	_, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Messages: 60, Start: start, End: start.AddDate(0, 0, 3), MaxMediaPerMessage: 3, MaxMediaSize: 8 << 10,
	})
	require.NoError(t, err)
	want := 0
	for m := range d.Emu.Messages(d.Account.SID) {
		want += len(m.MediaSIDs)
	}
	d.startWorker(t)

	code, out, errOut := d.cli(t, "backfill", "--since", "2026-01-01", "--until", "2026-01-04", "--dry-run", "--wait")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Equal(t, fmt.Sprint(want), e2etest.StatusValue(t, out, "media listed"))
	require.Equal(t, fmt.Sprint(want), e2etest.StatusValue(t, out, "media found"))
	require.Zero(t, d.Emu.Stats().ByRoute["media.content"], "a dry run downloaded media")
	require.Empty(t, d.Emu.Deletes(0))
	var rows int
	require.NoError(t, d.Pool.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM media) + (SELECT count(*) FROM messages)`).Scan(&rows))
	require.Zero(t, rows, "a dry run wrote catalog rows")
	// The run's own record is anchored (under _audit/): no media object.
	objs, err := d.S3Client.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String(d.Bucket), Prefix: aws.String(d.Prefix + "/" + d.Account.SID + "/")})
	require.NoError(t, err)
	require.Empty(t, objs.Contents, "a dry run wrote objects")
}

// `enqueue message` archives and deletes one message's media, and only
// those; media whose content Twilio no longer has is recorded as gone, not
// failed, and never retried forever.
func TestMessageRunAndGoneMedia(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	when := time.Date(2026, 2, 3, 10, 0, 0, 0, time.UTC)
	target, err := d.Emu.AddMessage(d.Account.SID, twiliotest.MessageOptions{DateSent: when, Media: []twiliotest.MediaOptions{
		{ContentType: "image/jpeg", Size: 20 << 10},
		{ContentType: "video/mp4", Size: 300 << 10},
		{ContentType: "text/vcard", Content: []byte("BEGIN:VCARD\nFN:Ada\nEND:VCARD\n")},
	}})
	require.NoError(t, err)
	other, err := d.Emu.AddMessage(d.Account.SID, twiliotest.MessageOptions{DateSent: when, Media: []twiliotest.MediaOptions{{Size: 1000}}})
	require.NoError(t, err)
	vanished := target.MediaSIDs[2]
	require.NoError(t, d.Emu.VanishContent(vanished))
	d.startWorker(t)

	code, out, errOut := d.cli(t, "message", target.SID, "--delete", "--wait")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Equal(t, "2", e2etest.StatusValue(t, out, "media deleted"))
	require.Equal(t, "1", e2etest.StatusValue(t, out, "media gone"))
	require.Equal(t, "0", e2etest.StatusValue(t, out, "media failed"))
	for _, sid := range target.MediaSIDs[:2] {
		md, _ := d.Emu.Media(sid)
		require.True(t, md.Deleted, "%s not deleted", sid)
		key, want, err := d.ExpectedObject(target.SID, sid)
		require.NoError(t, err)
		head, err := d.S3Client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(d.Bucket), Key: aws.String(key)})
		require.NoError(t, err, "object of %s", sid)
		require.Equal(t, want, head.Metadata["sha256"])
		require.Equal(t, target.SID, head.Metadata["message-sid"])
	}
	var state string
	require.NoError(t, d.Pool.QueryRow(t.Context(), `SELECT state FROM media WHERE sid = $1`, vanished).Scan(&state))
	require.Equal(t, "gone", state)
	md, _ := d.Emu.Media(vanished)
	require.False(t, md.Deleted, "gone media must not be deleted: nothing of it was archived")
	md, _ = d.Emu.Media(other.MediaSIDs[0])
	require.False(t, md.Deleted, "another message's media was deleted")
	early, _ := d.EarlyDeletes()
	require.Empty(t, early)
}
