package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/internal/testenv"
	"github.com/mediasync/mediasync/twilio"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// A restore of a run into a second Conversations service reproduces every
// file the run archived: each is uploaded once, and downloading each new
// Media from MCS gives the SHA-256 of the media Twilio first held. The
// restore manifest in the archive maps old to new SIDs, and its SHA-256 is
// the one the status prints.
func TestRestoreOfARunIntoASecondServiceReproducesEveryFile(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	_, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Messages: 40, Start: exportStart, End: exportStart.AddDate(0, 0, 2),
		MaxMediaPerMessage: 3, MinMediaSize: 200, MaxMediaSize: 20 << 10,
	})
	require.NoError(t, err)
	d.startWorker(t)
	code, out, errOut := d.cli(t, "backfill", "--since", "2026-03-01", "--until", "2026-03-03", "--wait")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	runID := exportID.FindString(out)
	require.NotEmpty(t, runID)
	d.requireRestoreReproduces(t, runID)
}

// A restore of a Conversations backfill run reproduces every file as the
// Messaging one does, and each new Media carries the archived filename and
// content type; the manifest and restore_media name the old and new SIDs.
func TestRestoreOfAConversationsRunReproducesEveryFile(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	sum, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Conversations: 12, ConversationMessages: 3, MaxConversationMedia: 3,
		Start: exportStart, End: exportStart.AddDate(0, 0, 2), MinMediaSize: 200, MaxMediaSize: 20 << 10,
	})
	require.NoError(t, err)
	require.NotZero(t, sum.ConversationMedia)
	d.startWorker(t)
	code, out, errOut := d.cli(t, "backfill", "--source", "conversations", "--since", "2026-03-01", "--until", "2026-03-03", "--wait")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	runID := exportID.FindString(out)
	require.NotEmpty(t, runID)
	var archived int
	require.NoError(t, d.Pool.QueryRow(t.Context(), `SELECT count(*) FROM run_media WHERE run_id = $1 AND state = 'archived'`, runID).Scan(&archived))
	require.Equal(t, sum.ConversationMedia, archived, "the run archived every Conversations media")

	restored := d.requireRestoreReproduces(t, runID)
	for old, neu := range restored {
		was, ok := d.Emu.Media(old)
		require.True(t, ok)
		now, ok := d.Emu.Media(neu)
		require.True(t, ok)
		require.True(t, was.Conversation, "media %s is a Conversations media", old)
		require.NotEmpty(t, was.Filename, "media %s has a filename", old)
		require.Equal(t, was.Filename, now.Filename, "media %s restored as %s", old, neu)
		require.Equal(t, was.ContentType, now.ContentType, "media %s restored as %s", old, neu)
		require.Equal(t, was.Size, now.Size, "media %s restored as %s", old, neu)
	}
}

// requireRestoreReproduces restores what run runID archived into a new
// service of the account and fails t unless every file is uploaded once,
// downloading each new Media from MCS gives the SHA-256 of the media Twilio
// first held, and restore_media and the manifest (whose SHA-256 the status
// prints) map each old SID to its new one, with no secret anywhere. It
// returns old → new Media SIDs.
func (d *deployment) requireRestoreReproduces(t *testing.T, runID string) map[string]string {
	t.Helper()
	ctx := t.Context()
	want := map[string]string{} // media SID → SHA-256 of Twilio's bytes
	rows, err := d.Pool.Query(ctx, `SELECT media_sid FROM run_media WHERE run_id = $1 AND state = 'archived'`, runID)
	require.NoError(t, err)
	for rows.Next() {
		var sid string
		require.NoError(t, rows.Scan(&sid))
		want[sid], err = d.Emu.SHA256(sid)
		require.NoError(t, err)
	}
	require.NoError(t, rows.Err())
	require.NotEmpty(t, want)

	svc, err := d.Emu.AddService(d.Account.SID)
	require.NoError(t, err)
	code, out, errOut := d.cli(t, "restore", "--run", runID, "--service", svc, "--wait")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	restoreID := exportID.FindString(out)
	require.NotEmpty(t, restoreID)
	require.Contains(t, out, "state:           succeeded")

	uploads := 0
	for _, r := range d.Emu.Requests() {
		if r.Route == "mcs.upload" && r.Status == 201 {
			uploads++
		}
	}
	require.Equal(t, len(want), uploads, "each media uploaded once")

	tw, err := twilio.New(d.Account.SID, twilio.WithAuthToken(d.Account.AuthToken), twilio.WithBaseURL(d.Emu.URL()), twilio.WithMCSURL(d.Emu.URL()))
	require.NoError(t, err)
	newSIDs := map[string]string{}
	rows, err = d.Pool.Query(ctx, `SELECT media_sid, new_media_sid FROM restore_media WHERE run_id = $1 AND state = 'restored' AND service_sid = $2`, restoreID, svc)
	require.NoError(t, err)
	for rows.Next() {
		var old, neu string
		require.NoError(t, rows.Scan(&old, &neu))
		newSIDs[old] = neu
	}
	require.NoError(t, rows.Err())
	require.Len(t, newSIDs, len(want))
	for old, neu := range newSIDs {
		c, err := tw.MCS.Open(ctx, svc, neu)
		require.NoError(t, err)
		h := sha256.New()
		_, err = io.Copy(h, c.Body)
		require.NoError(t, c.Body.Close())
		require.NoError(t, err)
		require.Equal(t, want[old], hex.EncodeToString(h.Sum(nil)), "media %s restored as %s", old, neu)
	}

	// The manifest, read back from the archive.
	sumLine := regexp.MustCompile(`(?m)^manifest sha256: ([0-9a-f]{64})$`).FindStringSubmatch(out)
	require.NotNil(t, sumLine, out)
	key := archive.RestoreManifestKey(d.Prefix, d.Account.SID, uuid.MustParse(restoreID))
	obj, err := d.S3Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(d.Bucket), Key: aws.String(key)})
	require.NoError(t, err)
	m, err := io.ReadAll(obj.Body)
	require.NoError(t, obj.Body.Close())
	require.NoError(t, err)
	sum := sha256.Sum256(m)
	require.Equal(t, sumLine[1], hex.EncodeToString(sum[:]))
	dec := json.NewDecoder(bytes.NewReader(m))
	lines := 0
	for dec.More() {
		var l struct {
			MediaSID    string `json:"media_sid"`
			NewMediaSID string `json:"new_media_sid"`
			SHA256      string `json:"sha256"`
			ServiceSID  string `json:"service_sid"`
			State       string `json:"state"`
			Source      string `json:"source"`
			Filename    string `json:"filename"`
			ContentType string `json:"content_type"`
		}
		require.NoError(t, dec.Decode(&l))
		require.Equal(t, "restored", l.State)
		require.Equal(t, svc, l.ServiceSID)
		require.Equal(t, newSIDs[l.MediaSID], l.NewMediaSID)
		require.Equal(t, want[l.MediaSID], l.SHA256)
		was, ok := d.Emu.Media(l.MediaSID)
		require.True(t, ok)
		require.Equal(t, was.ContentType, l.ContentType, "media %s", l.MediaSID)
		if was.Conversation {
			require.Equal(t, "conversations", l.Source, "media %s", l.MediaSID)
			require.Equal(t, was.Filename, l.Filename, "media %s", l.MediaSID)
		} else {
			require.Equal(t, "messaging", l.Source, "media %s", l.MediaSID)
		}
		lines++
	}
	require.Equal(t, len(want), lines)
	// No secret in the manifest, the worker's logs or the restore's rows.
	require.NotContains(t, string(m), d.Account.AuthToken)
	require.Contains(t, d.logs.String(), restoreID, "the worker logged the restore")
	require.NotContains(t, d.logs.String(), d.Account.AuthToken)
	var leaked int
	require.NoError(t, d.Pool.QueryRow(ctx, `
		SELECT count(*) FROM restore_media x JOIN runs r ON r.id = x.run_id
		WHERE strpos(coalesce(x.error, '') || r.params::text, $1) > 0`, d.Account.AuthToken).Scan(&leaked))
	require.Zero(t, leaked)
	return newSIDs
}

// Bad restore input gets one line naming the flag and value, exit code 2,
// and nothing enqueued or recorded.
func TestRestoreBadInputExitsTwo(t *testing.T) {
	t.Parallel()
	db := testenv.NewDatabase(t)
	rds := testenv.NewRedis(t)
	env := map[string]string{
		"TWILIO_ACCOUNT_SID":  "AC0123456789abcdef0123456789abcdef",
		"DATABASE_URL":        db.URL,
		"REDIS_URL":           rds.URL,
		"MEDIASYNC_NAMESPACE": rds.Namespace,
	}
	const svc = "IS0123456789abcdef0123456789abcdef"
	const run = "0190a2b4-0000-7000-8000-000000000001"
	cases := []struct {
		desc string
		args []string
		want string
	}{
		{"no scope", []string{"restore", "--service", svc}, "give exactly one of --run, --message, or --since with --until"},
		{"two scopes", []string{"restore", "--run", run, "--message", "SM0123456789abcdef0123456789abcdef", "--service", svc}, "exactly one of"},
		{"no service", []string{"restore", "--run", run}, `"service" not set`},
		{"bad run id", []string{"restore", "--run", "yesterday", "--service", svc}, `--run "yesterday" is not a run id`},
		{"unknown run", []string{"restore", "--run", run, "--service", svc}, `--run "` + run + `" is not a recorded run`},
		{"bad message", []string{"restore", "--message", "SM12", "--service", svc}, `--message "SM12" is not a message SID`},
		{"media SID as message", []string{"restore", "--message", "ME0123456789abcdef0123456789abcdef", "--service", svc}, `--message "ME0123456789abcdef0123456789abcdef"`},
		{"bad service", []string{"restore", "--run", run, "--service", "IS12"}, `--service "IS12" is not a Conversations service SID`},
		{"channel as service", []string{"restore", "--run", run, "--service", "CH0123456789abcdef0123456789abcdef"}, `--service "CH0123456789abcdef0123456789abcdef"`},
		{"service twice", []string{"restore", "--run", run, "--service", svc + "," + svc}, "is given twice"},
		{"since without until", []string{"restore", "--since", "2026-03-01", "--service", svc}, "--until is required"},
		{"since after until", []string{"restore", "--since", "2026-03-02", "--until", "2026-03-01", "--service", svc}, `--since "2026-03-02" must be before --until`},
		{"bad date", []string{"restore", "--since", "2026-03-32", "--until", "2026-04-01", "--service", svc}, `--since "2026-03-32" is not a date`},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			code := Main(t.Context(), tc.args, &out, &errb, func(k string) string { return env[k] })
			require.Equal(t, 2, code, "stderr: %s", errb.String())
			require.Contains(t, errb.String(), tc.want)
			require.Equal(t, 1, strings.Count(errb.String(), "\n"), "one line: %q", errb.String())
			require.Empty(t, out.String())
		})
	}
	t.Cleanup(func() {
		ctx := context.Background()
		keys, err := rds.Client.Keys(ctx, "asynq:{"+rds.Namespace+"*").Result()
		if err != nil || len(keys) != 0 {
			t.Errorf("tasks were enqueued: %v %v", keys, err)
		}
		var n int
		if err := db.Pool(t).QueryRow(ctx, `SELECT count(*) FROM runs`).Scan(&n); err == nil && n != 0 {
			t.Errorf("%d runs recorded", n)
		}
	})
}
