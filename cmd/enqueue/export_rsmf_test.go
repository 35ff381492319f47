package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// rsmfSchema is Relativity's published schema of rsmf_manifest.json 2.0.0.
func rsmfSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	// A copy of relativitydev/rsmf-validator-samples' (BSD, LICENSE beside it).
	f, err := os.Open(filepath.Join("testdata", "rsmf", "rsmf_schema_2_0_0.json"))
	require.NoError(t, err)
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	require.NoError(t, c.AddResource("rsmf_schema_2_0_0.json", doc))
	s, err := c.Compile("rsmf_schema_2_0_0.json")
	require.NoError(t, err)
	return s
}

// rsmfManifest is what the test reads of rsmf_manifest.json.
type rsmfManifest struct {
	Participants []struct {
		ID, Display string
	}
	Conversations []struct {
		ID, Platform string
		Participants []string
	}
	Events []struct {
		ID, Type, Participant, Conversation, Timestamp, Direction string
		Body                                                      *string
		Attachments                                               []struct {
			ID   string
			Size int64
		}
	}
}

// An RSMF export of a run's range writes .rsmf files a reviewer's platform
// takes: each an RFC 5322 message with the X-RSMF-* headers, whose single
// rsmf.zip holds a manifest valid against Relativity's schema and the media
// with their archived bytes; events carry the bodies of the archived
// records; a conversation-day past the (lowered) event limit is split; and
// SHA256SUMS covers the files.
func TestExportRSMF(t *testing.T) {
	t.Parallel()
	schema := rsmfSchema(t)
	d := newDeployment(t)
	// Few customers, so conversation-days hold several messages.
	_, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Messages: 40, Start: exportStart, End: exportStart.AddDate(0, 0, 2), Customers: 2,
		MaxMediaPerMessage: 2, MinMediaSize: 200, MaxMediaSize: 8 << 10,
	})
	require.NoError(t, err)
	d.startWorker(t)
	code, out, errOut := d.cli(t, "backfill", "--since", "2026-03-01", "--until", "2026-03-03", "--wait")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)

	// Records: every message's as archived (until Messaging writes them,
	// the test stores them), one kept without its body, as --no-bodies does.
	type conv struct{ key, day string }
	perDay := map[conv]int{}
	bodies := map[string]*string{}
	msgs := 0
	noBody := ""
	for m := range d.Emu.Messages(d.Account.SID) {
		msgs++
		a, b := m.From, m.To
		if b < a {
			a, b = b, a
		}
		perDay[conv{a + "_" + b, m.DateSent.UTC().Format("2006-01-02")}]++
		rec := map[string]any{"sid": m.SID, "from": m.From, "to": m.To, "body": m.Body}
		if noBody == "" {
			noBody = m.SID
			delete(rec, "body")
		} else {
			body := m.Body
			bodies[m.SID] = &body
		}
		raw, err := json.Marshal(rec)
		require.NoError(t, err)
		key := path.Join(d.Prefix, "test-records", m.SID+".json")
		_, err = d.S3Client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(d.Bucket), Key: aws.String(key), Body: bytes.NewReader(raw)})
		require.NoError(t, err)
		sum := sha256.Sum256(raw)
		_, err = d.Pool.Exec(t.Context(), `UPDATE messages SET record_key = $2, record_size = $3, record_sha256 = $4 WHERE sid = $1`,
			m.SID, key, len(raw), hex.EncodeToString(sum[:]))
		require.NoError(t, err)
	}
	const limit = 3
	split := false
	for _, n := range perDay {
		split = split || n > limit
	}
	require.True(t, split, "some conversation-day has more than %d messages: %v", limit, perDay)
	want := d.expectedExport(t, exportStart, exportStart.AddDate(0, 0, 2), "")
	require.NotEmpty(t, want)

	dir := t.TempDir()
	code, out, errOut = d.cli(t, "export", "--since", "2026-03-01", "--until", "2026-03-03", "--format", "rsmf",
		"--rsmf-max-events", strconv.Itoa(limit), "--out", "file://"+dir, "--wait")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Equal(t, "succeeded", e2etest.StatusValue(t, out, "state"))

	cmd := exec.Command("sha256sum", "--strict", "-c", "SHA256SUMS")
	cmd.Dir = dir
	sumOut, err := cmd.CombinedOutput()
	require.NoError(t, err, "sha256sum -c SHA256SUMS:\n%s", sumOut)

	files, err := filepath.Glob(filepath.Join(dir, "*", "*.rsmf"))
	require.NoError(t, err)
	listed := map[string]bool{}
	f, err := os.Open(filepath.Join(dir, "SHA256SUMS"))
	require.NoError(t, err)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		listed[strings.SplitN(sc.Text(), "  ", 2)[1]] = true
	}
	f.Close()

	gotMedia := map[string]string{}
	events, parts := 0, map[conv]int{}
	for _, file := range files {
		rel, _ := filepath.Rel(dir, file)
		require.True(t, listed[rel], "SHA256SUMS lists %s", rel)
		m := readRSMF(t, file)
		require.Equal(t, "2.0.0", m.header.Get("X-RSMF-Version"), rel)
		require.NotEmpty(t, m.header.Get("X-RSMF-Generator"))
		require.NotEmpty(t, m.header.Get("X-RSMF-Participants"))
		require.NotEmpty(t, m.header.Get("X-RSMF-BeginDate"))

		var doc any
		require.NoError(t, json.Unmarshal(m.manifest, &doc))
		require.NoError(t, schema.Validate(doc), "%s: rsmf_manifest.json against the schema", rel)
		var man rsmfManifest
		require.NoError(t, json.Unmarshal(m.manifest, &man))
		require.Equal(t, strconv.Itoa(len(man.Events)), m.header.Get("X-RSMF-EventCount"), rel)
		require.LessOrEqual(t, len(man.Events), limit, rel)
		require.Len(t, man.Conversations, 1)
		require.Equal(t, "sms", man.Conversations[0].Platform)
		pids := map[string]bool{}
		for _, p := range man.Participants {
			pids[p.ID] = true
		}
		attachments := 0
		for _, ev := range man.Events {
			events++
			require.True(t, pids[ev.Participant], "%s: event %s's participant %q is declared", rel, ev.ID, ev.Participant)
			require.Contains(t, []string{"incoming", "outgoing"}, ev.Direction)
			if ev.ID == noBody {
				require.Nil(t, ev.Body, "a record without a body gives an event without one")
			} else {
				require.NotNil(t, ev.Body, ev.ID)
				require.Equal(t, *bodies[ev.ID], *ev.Body, "event %s's body is its record's", ev.ID)
			}
			for _, a := range ev.Attachments {
				attachments++
				b, ok := m.files[a.ID]
				require.True(t, ok, "%s: attachment %s is in rsmf.zip", rel, a.ID)
				require.EqualValues(t, len(b), a.Size)
				sum := sha256.Sum256(b)
				gotMedia[strings.TrimSuffix(a.ID, path.Ext(a.ID))] = hex.EncodeToString(sum[:])
			}
		}
		require.Equal(t, strconv.Itoa(attachments), m.header.Get("X-RSMF-AttachmentCount"), rel)
		require.Len(t, m.files, attachments, "%s: rsmf.zip holds the manifest and the attachments only", rel)
		name := filepath.Base(file)
		parts[conv{strings.SplitN(name, ".", 2)[0], filepath.Base(filepath.Dir(file))}]++
	}
	t.Logf("%d .rsmf files, %d events, %d media, conversation-days %v", len(files), events, len(gotMedia), perDay)
	require.Equal(t, msgs, events, "every message is an event, with media or not")
	require.Equal(t, want, gotMedia, "every media, with its archived bytes")
	for c, n := range perDay {
		require.Equal(t, (n+limit-1)/limit, parts[c], "conversation-day %v of %d messages is split into files of %d", c, n, limit)
	}

	// A pass that runs again (a worker died after the .rsmf files and the
	// manifests, before export.json and the end: the reconciler queues the
	// export's task again) writes the same bytes, finds its own create-only
	// files and ends as the first did. (started_at is moved back to make
	// the run stale, so export.json, which states it, is the crash's.)
	id := exportID.FindString(out)
	require.NotEmpty(t, id)
	require.NoError(t, os.Remove(filepath.Join(dir, "export.json")))
	_, err = d.Pool.Exec(t.Context(), `UPDATE runs SET state = 'running', finished_at = NULL, started_at = now() - interval '1 hour' WHERE id = $1`, id)
	require.NoError(t, err)
	var state string
	require.Eventually(t, func() bool {
		require.NoError(t, d.Pool.QueryRow(t.Context(), `SELECT state FROM runs WHERE id = $1`, id).Scan(&state))
		return state != "running"
	}, 90*time.Second, 200*time.Millisecond, "the reconciler runs the export again")
	var finished int
	require.NoError(t, d.Pool.QueryRow(t.Context(), `SELECT count(*) FROM audit_log WHERE action = 'export.finished' AND details->>'state' = 'succeeded'`).Scan(&finished))
	var runErr string
	require.NoError(t, d.Pool.QueryRow(t.Context(), `SELECT coalesce(error, '') FROM runs WHERE id = $1`, id).Scan(&runErr))
	require.Equal(t, "succeeded", state, "a second pass conflicts with none of the first's files: %v", runErr)
	require.Equal(t, 2, finished, "the export ran twice")
	again, err := filepath.Glob(filepath.Join(dir, "*", "*.rsmf"))
	require.NoError(t, err)
	require.Equal(t, files, again)
	sumOut, err = sha256sumCheck(dir).CombinedOutput()
	require.NoError(t, err, "sha256sum -c SHA256SUMS:\n%s", sumOut)
}

// sha256sumCheck is `sha256sum --strict -c SHA256SUMS` in dir.
func sha256sumCheck(dir string) *exec.Cmd {
	c := exec.Command("sha256sum", "--strict", "-c", "SHA256SUMS")
	c.Dir = dir
	return c
}

// rsmfFile is an .rsmf file as read: its headers, rsmf_manifest.json, and
// the other files of its rsmf.zip.
type rsmfRead struct {
	header   mail.Header
	manifest []byte
	files    map[string][]byte
}

// readRSMF parses an .rsmf file as a reviewer's platform does: an RFC 5322
// message, multipart/mixed, with exactly one attachment, rsmf.zip.
func readRSMF(t *testing.T, file string) rsmfRead {
	t.Helper()
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	msg, err := mail.ReadMessage(f)
	require.NoError(t, err, file)
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	require.NoError(t, err)
	require.Equal(t, "multipart/mixed", mt)
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var zipped []byte
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		if p.FileName() == "" {
			continue
		}
		require.Equal(t, "rsmf.zip", p.FileName(), "the only attachment is rsmf.zip")
		require.Nil(t, zipped, "one rsmf.zip")
		require.Equal(t, "base64", p.Header.Get("Content-Transfer-Encoding"))
		zipped, err = io.ReadAll(base64.NewDecoder(base64.StdEncoding, p))
		require.NoError(t, err)
	}
	require.NotNil(t, zipped, "%s has rsmf.zip", file)
	zr, err := zip.NewReader(bytes.NewReader(zipped), int64(len(zipped)))
	require.NoError(t, err)
	r := rsmfRead{header: msg.Header, files: map[string][]byte{}}
	for _, zf := range zr.File {
		rc, err := zf.Open()
		require.NoError(t, err)
		b, err := io.ReadAll(rc)
		rc.Close()
		require.NoError(t, err)
		if zf.Name == "rsmf_manifest.json" {
			r.manifest = b
			continue
		}
		r.files[zf.Name] = b
	}
	require.NotNil(t, r.manifest, "%s: rsmf.zip holds rsmf_manifest.json", file)
	return r
}

// A Conversations export's .rsmf files are one per CH… conversation per
// day: participants are the authors, and each event's body is the one
// its archived record (written by the Conversations source) holds.
func TestExportRSMFConversations(t *testing.T) {
	t.Parallel()
	schema := rsmfSchema(t)
	d := newDeployment(t)
	_, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Start: exportStart, End: exportStart.AddDate(0, 0, 1), MinMediaSize: 200, MaxMediaSize: 8 << 10,
		Conversations: 3, ConversationMessages: 4, MaxConversationMedia: 2,
	})
	require.NoError(t, err)
	// A message with a body and a photo, in a conversation of its own.
	ch, err := d.Emu.AddConversation(d.Account.SID, twiliotest.ConversationOptions{DateCreated: exportStart.Add(time.Hour)})
	require.NoError(t, err)
	_, err = d.Emu.AddConversationMessage(d.Account.SID, ch, twiliotest.ConversationMessageOptions{
		Author: "ana", Body: "the signed contract", DateCreated: exportStart.Add(2 * time.Hour),
		Media: []twiliotest.MediaOptions{{ContentType: "image/png", Filename: "contract.png", Size: 900}},
	})
	require.NoError(t, err)
	d.startWorker(t)
	code, out, errOut := d.cli(t, "backfill", "--source", "conversations", "--since", "2026-03-01", "--until", "2026-03-03", "--wait")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)

	dir := t.TempDir()
	code, out, errOut = d.cli(t, "export", "--since", "2026-03-01", "--until", "2026-03-03", "--format", "rsmf", "--out", "file://"+dir, "--wait")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	files, err := filepath.Glob(filepath.Join(dir, "*", "*.rsmf"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	events, withBody := 0, 0
	for _, file := range files {
		require.True(t, strings.HasPrefix(filepath.Base(file), "CH"), "%s is named by its conversation", file)
		m := readRSMF(t, file)
		require.Equal(t, "Twilio Conversations", m.header.Get("X-RSMF-Application"))
		var doc any
		require.NoError(t, json.Unmarshal(m.manifest, &doc))
		require.NoError(t, schema.Validate(doc), "%s: rsmf_manifest.json against the schema", file)
		var man rsmfManifest
		require.NoError(t, json.Unmarshal(m.manifest, &man))
		require.Equal(t, "channel", func() string {
			var c struct{ Conversations []struct{ Type string } }
			require.NoError(t, json.Unmarshal(m.manifest, &c))
			return c.Conversations[0].Type
		}())
		authors := map[string]string{}
		for _, p := range man.Participants {
			authors[p.ID] = p.Display
		}
		for _, ev := range man.Events {
			events++
			msg, ok := d.Emu.ConversationMessage(ev.ID)
			require.True(t, ok, ev.ID)
			require.Equal(t, msg.Author, authors[ev.Participant], "event %s's participant is its author", ev.ID)
			require.True(t, strings.HasPrefix(filepath.Base(file), msg.ConversationSID))
			raw, err := d.ConversationRecord(t.Context(), ev.ID)
			require.NoError(t, err)
			var rec struct{ Body *string }
			require.NoError(t, json.Unmarshal(raw, &rec))
			require.Equal(t, rec.Body, ev.Body, "event %s's body is its record's", ev.ID)
			if ev.Body != nil && *ev.Body != "" {
				withBody++
			}
			for _, a := range ev.Attachments {
				b := m.files[a.ID]
				sum := sha256.Sum256(b)
				want, err := d.Emu.SHA256(strings.TrimSuffix(a.ID, path.Ext(a.ID)))
				require.NoError(t, err)
				require.Equal(t, want, hex.EncodeToString(sum[:]), a.ID)
			}
		}
	}
	var msgs int
	require.NoError(t, d.Pool.QueryRow(t.Context(), `SELECT count(*) FROM messages WHERE source = 'conversations'`).Scan(&msgs))
	require.Equal(t, msgs, events)
	require.NotZero(t, withBody, "events carry their bodies")
	require.FileExists(t, filepath.Join(dir, "2026-03-01", ch+".1.rsmf"), "one file for the conversation-day")
}
