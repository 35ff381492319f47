package jobs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/archive"
	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/testenv"
	"github.com/mediasync/mediasync/twilio"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// pageRecorder keeps each message object of the Messages list pages the
// emulator returned, byte for byte, by SID, as first listed: what an
// archived record must be.
type pageRecorder struct {
	mu    sync.Mutex
	sent  map[string][]byte
	pages int
}

func (p *pageRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || !strings.HasSuffix(r.URL.Path, "/Messages.json") || resp.StatusCode != 200 {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var page struct {
		Messages []json.RawMessage `json:"messages"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.pages++
	for _, m := range page.Messages {
		var id struct {
			SID string `json:"sid"`
		}
		if err := json.Unmarshal(m, &id); err != nil {
			return nil, err
		}
		if _, ok := p.sent[id.SID]; !ok { // the first: a record is stored once
			p.sent[id.SID] = bytes.Clone(m)
		}
	}
	p.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

type recordsBundle struct {
	h     *Handlers
	cat   *catalog.Catalog
	store *archive.FileStore
	emu   *twiliotest.Server
	acct  twiliotest.Account
	rec   *pageRecorder
	msgs  []twiliotest.MessageInfo
	since time.Time
}

// recordsSetup is an account of 13 messages over two days, some with media
// and some without, listed five to a page.
func recordsSetup(t *testing.T) *recordsBundle {
	t.Helper()
	ctx := t.Context()
	db := testenv.NewDatabase(t)
	pool := db.Pool(t)
	_, err := catalog.Migrate(ctx, pool)
	require.NoError(t, err)
	store, err := archive.NewFileStore(t.TempDir())
	require.NoError(t, err)
	emu := twiliotest.NewTestServer(t, twiliotest.Config{})
	acct, err := emu.AddAccount(twiliotest.AccountOptions{})
	require.NoError(t, err)
	b := &recordsBundle{cat: catalog.NewCatalog(pool), store: store, emu: emu, acct: acct,
		rec: &pageRecorder{sent: map[string][]byte{}}, since: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	for i := range 13 {
		o := twiliotest.MessageOptions{DateSent: b.since.Add(time.Duration(i) * 3 * time.Hour),
			Body: fmt.Sprintf("secret body %d: \"quoted\" café", i), Outbound: i%3 == 0}
		if i%2 == 0 {
			o.Media = []twiliotest.MediaOptions{{ContentType: "image/jpeg", Size: int64(2048 + i)}}
		}
		m, err := emu.AddMessage(acct.SID, o)
		require.NoError(t, err)
		b.msgs = append(b.msgs, m)
	}
	tw, err := twilio.New(acct.SID, twilio.WithAuthToken(acct.AuthToken), twilio.WithBaseURL(emu.URL()),
		twilio.WithHTTPClient(&http.Client{Transport: b.rec}))
	require.NoError(t, err)
	rds := testenv.NewRedis(t)
	q := QueuesFor(rds.Namespace)
	b.h = &Handlers{catalog: b.cat, twilio: tw, store: store, prefix: "archive", log: zerolog.Nop(), requeueBatch: 1000,
		queues: q, enqueuer: NewEnqueuer(rds.Client, q), spoolDir: t.TempDir(), maxBacklog: 1000, pageSize: 5,
		windowsReleased: 2, now: time.Now, passTimeout: time.Minute}
	return b
}

// run creates and starts a backfill over the two days and runs every task
// it queues until none is left, as workers would, each once.
func (b *recordsBundle) run(t *testing.T, spec catalog.RunSpec) catalog.Run {
	t.Helper()
	spec.Kind, spec.AccountSID, spec.Actor = catalog.KindBackfill, b.acct.SID, "test"
	spec.Since, spec.Until = b.since, b.since.Add(48*time.Hour)
	r, err := b.cat.CreateRun(t.Context(), spec)
	require.NoError(t, err)
	task, err := NewStartRunTask(b.h.queues, r.ID)
	require.NoError(t, err)
	require.NoError(t, b.h.StartRun(t.Context(), task))
	b.drain(t)
	return r
}

// drain runs the pending tasks of the run's queues until none is left.
func (b *recordsBundle) drain(t *testing.T) {
	t.Helper()
	ins := asynq.NewInspectorFromRedisClient(b.h.enqueuer.rdb)
	handlers := map[string]func(context.Context, *asynq.Task) error{
		TypeListPage: b.h.ListPage, TypeArchiveMessage: b.h.ArchiveMessage, TypeStartRun: b.h.StartRun,
	}
	for range 200 {
		ran := false
		for _, q := range []string{b.h.queues.Media, b.h.queues.List} {
			tasks, err := ins.ListPendingTasks(q)
			if err != nil && strings.Contains(err.Error(), "not found") {
				continue
			}
			require.NoError(t, err)
			for _, ti := range tasks {
				if f := handlers[ti.Type]; f != nil {
					require.NoError(t, f(t.Context(), asynq.NewTask(ti.Type, ti.Payload)), "%s %s", ti.Type, ti.Payload)
				}
				require.NoError(t, ins.DeleteTask(q, ti.ID))
				ran = true
			}
		}
		if !ran {
			return
		}
	}
	t.Fatal("tasks still queued after 200 rounds")
}

// replayPages lists every window of run again from its first page, as
// after a try that died before its cursor moved, and runs what it queues.
func (b *recordsBundle) replayPages(t *testing.T, run uuid.UUID) {
	t.Helper()
	ctx := t.Context()
	_, err := b.cat.Pool().Exec(ctx, `UPDATE run_windows SET state = 'pending', page = 0, next_page_uri = NULL WHERE run_id = $1`, run)
	require.NoError(t, err)
	_, err = b.cat.Pool().Exec(ctx, `UPDATE runs SET state = 'running', finished_at = NULL WHERE id = $1`, run)
	require.NoError(t, err)
	for seq := range 2 {
		task, err := NewListPageTask(b.h.queues, ListPagePayload{RunID: run, Window: seq})
		require.NoError(t, err)
		require.NoError(t, b.h.ListPage(ctx, task))
	}
	b.drain(t)
}

// records returns every archived message record's key in the store.
func (b *recordsBundle) records(t *testing.T) []string {
	t.Helper()
	var keys []string
	for k, err := range b.store.List(t.Context(), "archive/") {
		require.NoError(t, err)
		if strings.HasSuffix(k, ".json") {
			keys = append(keys, k)
		}
	}
	return keys
}

// checkRecords asserts every message of the account has its record in the
// archive, beside its media, as the catalog names it: the object Twilio's
// list sent (without "body" if noBodies), its size and SHA-256 the
// catalog's.
func (b *recordsBundle) checkRecords(t *testing.T, noBodies bool) {
	t.Helper()
	ctx := t.Context()
	sids := make([]string, len(b.msgs))
	for i, m := range b.msgs {
		sids[i] = m.SID
	}
	got, err := b.cat.MessageRecords(ctx, sids)
	require.NoError(t, err)
	require.Len(t, got, len(b.msgs), "every message, with media or not, has its record")
	for _, m := range b.msgs {
		rc := got[m.SID]
		sent, ok := b.rec.sent[m.SID]
		require.True(t, ok, "the emulator listed %s", m.SID)
		rd, err := b.store.Open(ctx, rc.Key)
		require.NoError(t, err, m.SID)
		stored, err := io.ReadAll(rd)
		require.NoError(t, err)
		require.NoError(t, rd.Close())
		require.Equal(t, rc.SHA256, sha256.Sum256(stored), "%s: the catalog's SHA-256 is the object's", m.SID)
		require.Equal(t, rc.Size, int64(len(stored)))
		require.Equal(t, noBodies, rc.NoBody)
		require.Equal(t, archive.MessageRecordKey("archive", archive.KeyInfo{AccountSID: b.acct.SID, MessageSID: m.SID, DateSent: m.DateSent}, rc.SHA256), rc.Key,
			"beside its media")
		if !noBodies {
			require.Equal(t, string(sent), string(stored), "%s: byte for byte what Twilio sent", m.SID)
			require.Contains(t, string(stored), "secret body")
			continue
		}
		require.NotContains(t, string(stored), "secret body", m.SID)
		var want, have map[string]any
		require.NoError(t, json.Unmarshal(sent, &want))
		require.NoError(t, json.Unmarshal(stored, &have))
		require.Contains(t, want, "body")
		delete(want, "body")
		require.Equal(t, want, have, "%s: what Twilio sent, but the body", m.SID)
	}
}

// A --delete run archives every message's record, byte for byte what
// Twilio's list sent, beside its media, with its SHA-256 in the catalog;
// deleting the media from Twilio leaves every record in place; a replay of
// the pages, and a second run, store nothing again.
func TestMessageRecordsArchivedOnceAndKeptByDeletes(t *testing.T) {
	t.Parallel()
	b := recordsSetup(t)
	r := b.run(t, catalog.RunSpec{Delete: true})
	b.checkRecords(t, false)
	for _, m := range b.msgs {
		for _, sid := range m.MediaSIDs {
			md, _ := b.emu.Media(sid)
			require.True(t, md.Deleted, "media %s deleted from Twilio", sid)
		}
	}
	keys := b.records(t)
	require.Len(t, keys, len(b.msgs), "one record per message")

	// A replay of every page (each window listed again from its start, as
	// after a try that died before its cursor moved).
	pages := b.rec.pages
	b.replayPages(t, r.ID)
	require.Greater(t, b.rec.pages, pages, "the pages were listed again")
	require.ElementsMatch(t, keys, b.records(t), "a replay stores nothing twice")

	pages = b.rec.pages
	b.run(t, catalog.RunSpec{}) // and another run over the same days
	require.Greater(t, b.rec.pages, pages)
	require.ElementsMatch(t, keys, b.records(t), "nothing stored twice")
	b.checkRecords(t, false)
}

// --no-bodies archives each record as Twilio sent it without its "body",
// and says so in the run and the catalog.
func TestMessageRecordsWithoutBodies(t *testing.T) {
	t.Parallel()
	b := recordsSetup(t)
	ctx := t.Context()
	r := b.run(t, catalog.RunSpec{NoBodies: true})
	got, err := b.cat.GetRun(ctx, r.ID)
	require.NoError(t, err)
	require.True(t, got.NoBodies)
	b.checkRecords(t, true)
	require.Len(t, b.records(t), len(b.msgs))

	// A try that died after its PUTs and before its commit (its media
	// tasks not queued, so nothing of its messages deleted): the replay's
	// PUT finds each object (the same key), verifies it and records it.
	keys := b.records(t)
	_, err = b.cat.Pool().Exec(ctx, `UPDATE messages SET record_key = NULL, record_size = NULL, record_sha256 = NULL`)
	require.NoError(t, err)
	b.replayPages(t, r.ID)
	require.ElementsMatch(t, keys, b.records(t), "nothing stored twice")
	b.checkRecords(t, true)
}

func TestWithoutMember(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{`{"a": 1, "body": "x", "c": 2}`, `{"a": 1, "c": 2}`},
		{`{"body": "x", "c": 2}`, `{ "c": 2}`},
		{`{"body":"x"}`, `{}`},
		{`{ "body" : "x" , "body": "y",  "c":[1,{"body":3}]}`, `{  "c":[1,{"body":3}]}`},
		{`{"a": {"body": 1}, "body": null}`, `{"a": {"body": 1}}`},
		{`{"a": 1}`, `{"a": 1}`},
		{`{}`, `{}`},
		{"{\n  \"a\": \"b\\\"body\\\"\",\n  \"body\": \"\\u00e9\"\n}", "{\n  \"a\": \"b\\\"body\\\"\"\n}"},
	}
	for _, c := range cases {
		got, err := withoutMember([]byte(c.in), "body")
		require.NoError(t, err, c.in)
		require.Equal(t, c.want, string(got), c.in)
		require.True(t, json.Valid(got))
	}
	for _, bad := range []string{``, `[]`, `"x"`, `{"a":`, `{"a" 1}`, `null`} {
		_, err := withoutMember([]byte(bad), "body")
		require.Error(t, err, bad)
	}
}

// Whatever object Twilio sends, the record without "body" is valid JSON
// holding every other member as it was.
func FuzzWithoutMember(f *testing.F) {
	f.Add([]byte(`{"a": 1, "body": "x", "c": 2}`))
	f.Add([]byte(`{"body": "x"}`))
	f.Add([]byte(`{"body":1,"body":2,"b":{"body":3}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var want map[string]json.RawMessage
		if json.Unmarshal(in, &want) != nil || want == nil {
			return
		}
		out, err := withoutMember(in, "body")
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		var got map[string]json.RawMessage
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%q → %q: %v", in, out, err)
		}
		delete(want, "body")
		if len(got) != len(want) {
			t.Fatalf("%q → %q: %d members, want %d", in, out, len(got), len(want))
		}
		for k, v := range want {
			if !bytes.Equal(got[k], v) {
				t.Fatalf("%q → %q: member %q changed", in, out, k)
			}
		}
	})
}

// A message run (enqueue message) archives its message's record too, from
// Twilio's fetch of it: without its body with --no-bodies.
func TestMessageRunArchivesTheRecord(t *testing.T) {
	t.Parallel()
	b := recordsSetup(t)
	ctx := t.Context()
	for _, c := range []struct {
		noBodies bool
		msg      int // a message with media, another each time
	}{{true, 2}, {false, 4}} {
		m, noBodies := b.msgs[c.msg], c.noBodies
		r, err := b.cat.CreateRun(ctx, catalog.RunSpec{Kind: catalog.KindMessage, AccountSID: b.acct.SID, MessageSID: m.SID,
			NoBodies: noBodies, Actor: "test"})
		require.NoError(t, err)
		task, err := NewStartRunTask(b.h.queues, r.ID)
		require.NoError(t, err)
		require.NoError(t, b.h.StartRun(ctx, task))
		b.drain(t)
		got, err := b.cat.MessageRecords(ctx, []string{m.SID})
		require.NoError(t, err)
		rc, ok := got[m.SID]
		require.True(t, ok, "the message's record is archived")
		require.Equal(t, noBodies, rc.NoBody)
		rd, err := b.store.Open(ctx, rc.Key)
		require.NoError(t, err)
		stored, err := io.ReadAll(rd)
		require.NoError(t, err)
		require.NoError(t, rd.Close())
		require.Equal(t, rc.SHA256, sha256.Sum256(stored))
		var rec map[string]any
		require.NoError(t, json.Unmarshal(stored, &rec))
		require.Equal(t, m.SID, rec["sid"])
		_, hasBody := rec["body"]
		require.Equal(t, !noBodies, hasBody)
	}
}
