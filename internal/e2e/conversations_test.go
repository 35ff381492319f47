package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httputil"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/internal/testenv"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// convRun is a conversations backfill over part of a generated dataset.
type convRun struct {
	id            string
	since, until  time.Time
	in, out       map[string]string // media SID → message SID, inside and outside the range
	inMessages    map[string]bool   // the messages with media in the range
	conversations int
}

// generateConversations adds about convs conversations of 3 messages with
// up to 2 small media each over six days from start, and returns the
// range of days two to five.
func generateConversations(t *testing.T, d *e2etest.Deployment, start time.Time, convs int) convRun {
	t.Helper()
	_, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Conversations: convs, ConversationMessages: 3, MaxConversationMedia: 2,
		Start: start, End: start.AddDate(0, 0, 6), MinMediaSize: 512, MaxMediaSize: 24 << 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := convRun{since: start.AddDate(0, 0, 1), until: start.AddDate(0, 0, 5), conversations: convs}
	r.in, r.out = d.ConversationMediaIn(r.since, r.until)
	r.inMessages = map[string]bool{}
	for _, msg := range r.in {
		r.inMessages[msg] = true
	}
	if len(r.in) < 100 || len(r.out) == 0 {
		t.Fatalf("dataset has %d Conversations media in range and %d outside: too few to test with", len(r.in), len(r.out))
	}
	return r
}

// backfillConversations runs enqueue backfill --source conversations over
// r's range with extra flags and returns the run id.
func backfillConversations(t *testing.T, d *e2etest.Deployment, r convRun, extra ...string) string {
	t.Helper()
	args := append([]string{"backfill", "--source", "conversations",
		"--since", r.since.Format(time.DateOnly), "--until", r.until.Format(time.DateOnly)}, extra...)
	code, stdout, stderr := d.Enqueue(t, time.Minute, args...)
	if code != 0 {
		t.Fatalf("enqueue %v exited %d: %s %s", args, code, stdout, stderr)
	}
	return strings.TrimSpace(stdout)
}

// waitRun follows a run to its end and returns its status; it fails t
// unless the run succeeded.
func waitRun(t *testing.T, d *e2etest.Deployment, id string, w *e2etest.Process, within time.Duration) string {
	t.Helper()
	code, stdout, stderr := d.Enqueue(t, within, "status", id, "--wait")
	if code != 0 {
		t.Fatalf("status --wait exited %d\nstdout:\n%s\nstderr:\n%s\nworker:\n%s", code, stdout, stderr, lastLines(w.Logs(), 60))
	}
	return stdout
}

// requireConversationsDeleted fails t unless the run archived every
// in-range media byte for byte and then deleted each in-range message
// exactly when all of its media (and its record) were in the bucket, and
// nothing outside the range was touched.
func requireConversationsDeleted(t *testing.T, d *e2etest.Deployment, r convRun, status string) {
	t.Helper()
	if got := e2etest.StatusValue(t, status, "media deleted"); got != fmt.Sprint(len(r.in)) {
		t.Fatalf("media deleted %s, want %d\n%s", got, len(r.in), status)
	}
	d.CheckConversationsArchived(t, r.in, "deleted")
	early, attempts := d.EarlyDeletes()
	for _, e := range early {
		t.Errorf("DELETE of a conversation message before its media and record were in S3: %s", e)
	}
	for msg := range r.inMessages {
		info, _ := d.Emu.ConversationMessage(msg)
		if !info.Deleted {
			t.Errorf("message %s, in range, was not deleted", msg)
		}
	}
	for media, msg := range r.out {
		if info, _ := d.Emu.ConversationMessage(msg); info.Deleted {
			t.Errorf("message %s (media %s), outside the range, was deleted", msg, media)
		}
	}
	if attempts < len(r.inMessages) {
		t.Errorf("%d DELETEs seen for %d messages", attempts, len(r.inMessages))
	}
	// Deleting lost nothing: each message's record names its media.
	ctx := context.Background()
	checked := 0
	for msg := range r.inMessages {
		if checked == 20 {
			break
		}
		checked++
		b, err := d.ConversationRecord(ctx, msg)
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			SID    string `json:"sid"`
			Author string `json:"author"`
			Media  []struct {
				SID string `json:"sid"`
			} `json:"media"`
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatalf("record of %s: %v\n%s", msg, err, b)
		}
		info, _ := d.Emu.ConversationMessage(msg)
		var sids []string
		for _, m := range rec.Media {
			sids = append(sids, m.SID)
		}
		if rec.SID != msg || rec.Author != info.Author || !slices.Equal(sids, info.MediaSIDs) {
			t.Fatalf("record of %s is %s; the message has author %q and media %v", msg, b, info.Author, info.MediaSIDs)
		}
	}
	var state string
	var open int
	err := d.Pool.QueryRow(ctx, `
		SELECT r.state,
			(SELECT count(*) FROM run_conversations WHERE run_id = r.id AND state <> 'done')
			+ (SELECT count(*) FROM run_messages WHERE run_id = r.id AND state <> 'listed')
			+ (SELECT count(*) FROM media WHERE delete_claimed_at IS NOT NULL AND deleted_at IS NULL)
		FROM runs r WHERE r.id = $1`, strings.TrimSpace(e2etest.StatusValue(t, status, "run"))).Scan(&state, &open)
	if err != nil {
		t.Fatalf("read the run's rows: %v", err)
	}
	if state != "succeeded" || open != 0 {
		t.Fatalf("run %s with %d rows not done", state, open)
	}
}

// A conversations backfill with --delete over a few hundred conversations,
// whose MCS temporary URLs live one second: every in-range media is
// archived byte for byte, each message is deleted only once all of its
// media and its record are in the bucket, and nothing else is. A second
// run over the same range reads only the messages added since: the
// conversations' progress stops each scan where the first run read.
func TestConversationsBackfillDeletesEachMessageAfterItsMedia(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{Emulator: twiliotest.Config{
		DirectURLTTL: time.Second,
		Faults:       twiliotest.Faults{Latency: 5 * time.Millisecond},
	}})
	start := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	r := generateConversations(t, d, start, 300)
	w := d.StartWorker(t)
	r.id = backfillConversations(t, d, r, "--delete")
	status := waitRun(t, d, r.id, w, 5*time.Minute)
	requireConversationsDeleted(t, d, r, status)
	// MCS temporary URLs are fetched without credentials, and no secret
	// reaches the worker's log.
	if n := d.Emu.Stats().SignedWithAuthorization; n != 0 {
		t.Fatalf("%d requests to the signed-URL host carried Authorization", n)
	}
	if strings.Contains(w.Logs(), d.Account.AuthToken) {
		t.Fatal("the auth token is in the worker's log")
	}
	t.Logf("%d conversations, %d messages, %d media; MCS: %d fetches, %d downloads, %d signed URLs refused",
		r.conversations, len(r.inMessages), len(r.in), d.Emu.Stats().ByRoute["mcs.fetch"],
		d.Emu.Stats().SignedRequests, d.Emu.Stats().SignedRejected)

	// New messages in a few conversations of the range, inside it.
	var convs []string
	for msg := range r.inMessages {
		info, _ := d.Emu.ConversationMessage(msg)
		if !slices.Contains(convs, info.ConversationSID) {
			convs = append(convs, info.ConversationSID)
		}
		if len(convs) == 5 {
			break
		}
	}
	added := map[string]bool{}
	for i, cv := range convs {
		m, err := d.Emu.AddConversationMessage(d.Account.SID, cv, twiliotest.ConversationMessageOptions{
			Author: "late", Body: fmt.Sprint("added ", i), DateCreated: r.until.Add(-time.Hour),
			Media: []twiliotest.MediaOptions{{ContentType: "image/png", Size: 2048}},
		})
		if err != nil {
			t.Fatal(err)
		}
		added[m.SID] = true
	}
	second := backfillConversations(t, d, r)
	waitRun(t, d, second, w, 3*time.Minute)
	rows, err := d.Pool.Query(context.Background(), `SELECT message_sid FROM run_messages WHERE run_id = $1`, second)
	if err != nil {
		t.Fatal(err)
	}
	var read []string
	for rows.Next() {
		var sid string
		if err := rows.Scan(&sid); err != nil {
			t.Fatal(err)
		}
		read = append(read, sid)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	if len(read) != len(added) {
		t.Fatalf("second run handled %d messages %v, want only the %d added since the first", len(read), read, len(added))
	}
	for _, sid := range read {
		if !added[sid] {
			t.Fatalf("second run handled message %s, which the first had archived", sid)
		}
	}
}

// Under faults (5xx answers, cut and reset bodies, temporary URLs that live
// one second), two workers sharing the run and one of them killed with
// SIGKILL as messages are being deleted, a conversations --delete run still
// ends with every guarantee: every in-range media archived byte for byte
// with one row, each message deleted only once all of its media and its
// record were in the bucket, nothing else touched, nothing half done.
func TestConversationsFaultsCrashAndFleetKeepGuarantees(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{Emulator: twiliotest.Config{
		DirectURLTTL: time.Second,
		Faults: twiliotest.Faults{
			Latency: 10 * time.Millisecond, ErrorRate: 0.08, CutRate: 0.1, ResetRate: 0.05,
		},
	}})
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	r := generateConversations(t, d, start, 150)
	workers := []*e2etest.Process{d.StartWorker(t), d.StartWorker(t)}
	r.id = backfillConversations(t, d, r, "--delete")

	// Kill one worker once a tenth of the messages are deleted.
	deletedSoFar := func() int {
		n := 0
		for msg := range r.inMessages {
			if info, _ := d.Emu.ConversationMessage(msg); info.Deleted {
				n++
			}
		}
		return n
	}
	testenv.WaitFor(t, 3*time.Minute, "deletes to begin", func() bool { return deletedSoFar() >= len(r.inMessages)/10 }, workerLog(workers[0].Logs))
	workers[0].Kill()
	t.Logf("killed a worker after %d of %d messages were deleted", deletedSoFar(), len(r.inMessages))
	workers = append(workers, d.StartWorker(t))

	status := waitRun(t, d, r.id, workers[2], 5*time.Minute)
	requireConversationsDeleted(t, d, r, status)
	st := d.Emu.Stats()
	t.Logf("%d messages, %d media; MCS: %d fetches; signed: %d requests, %d refused; %d 5xx injected",
		len(r.inMessages), len(r.in), st.ByRoute["mcs.fetch"], st.SignedRequests, st.SignedRejected, st.InjectedErrors)
}

// An MCS temporary URL that has expired (or is refused with a 4xx) when
// mediasync uses it: the first answer for each media carries one that
// expired long ago. Each media is fetched again for a fresh URL and
// archived byte for byte; nothing fails.
func TestConversationsExpiredTemporaryURLsAreFetchedAgain(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{})
	start := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	r := generateConversations(t, d, start, 80)
	var mu sync.Mutex
	tampered := map[string]bool{}
	mcsMedia := regexp.MustCompile(`^/v1/Services/IS[0-9a-f]{32}/Media/(ME[0-9a-f]{32})$`)
	expires := regexp.MustCompile(`Expires=[0-9]+`)
	p := d.ProxyTwilio(t, nil)
	modify := func(resp *http.Response) error {
		m := mcsMedia.FindStringSubmatch(resp.Request.URL.Path)
		if m == nil || resp.StatusCode != http.StatusOK {
			return nil
		}
		mu.Lock()
		first := !tampered[m[1]]
		tampered[m[1]] = true
		mu.Unlock()
		if !first {
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		b = expires.ReplaceAll(b, []byte("Expires=1000000000"))
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", fmt.Sprint(len(b)))
		return nil
	}
	p.Configure(func(rp *httputil.ReverseProxy) { rp.ModifyResponse = modify })
	w := d.StartWorker(t, "TWILIO_MCS_URL="+p.URL)
	r.id = backfillConversations(t, d, r)
	status := waitRun(t, d, r.id, w, 3*time.Minute)
	if got := e2etest.StatusValue(t, status, "media archived"); !strings.HasPrefix(got, fmt.Sprint(len(r.in))+" ") {
		t.Fatalf("media archived %s, want %d\n%s", got, len(r.in), status)
	}
	d.CheckConversationsArchived(t, r.in, "archived")
	st := d.Emu.Stats()
	if st.SignedRejected < int64(len(r.in)) {
		t.Fatalf("the signed host refused %d URLs; want at least one per media (%d): the expired URLs were not used", st.SignedRejected, len(r.in))
	}
	if got := st.ByRoute["mcs.fetch"]; got < 2*int64(len(r.in)) {
		t.Fatalf("%d MCS fetches for %d media: each should have been fetched again", got, len(r.in))
	}
	t.Logf("%d media: %d MCS fetches, %d expired URLs refused", len(r.in), st.ByRoute["mcs.fetch"], st.SignedRejected)
}

// A run with --delete after one that only archived: the second reads no
// conversation past where the first did, yet deletes every in-range
// message, each after proving its media (the catalog, not Twilio, says
// what was archived).
func TestConversationsDeleteAfterArchiveDeletesWhatWasArchived(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{})
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := generateConversations(t, d, start, 80)
	w := d.StartWorker(t)
	first := backfillConversations(t, d, r)
	waitRun(t, d, first, w, 3*time.Minute)
	d.CheckConversationsArchived(t, r.in, "archived")
	pagesBefore := d.Emu.Stats().ByRoute["service_conversation_messages.list"]

	r.id = backfillConversations(t, d, r, "--delete")
	status := waitRun(t, d, r.id, w, 3*time.Minute)
	requireConversationsDeleted(t, d, r, status)
	// One page per conversation: each scan stops at the first run's progress.
	if pages := d.Emu.Stats().ByRoute["service_conversation_messages.list"] - pagesBefore; pages > int64(r.conversations) {
		t.Fatalf("the second run read %d message pages for %d conversations: it read past the first run's progress", pages, r.conversations)
	}
}

// A retention policy of the conversations source archives every
// Conversations media from its watermark and deletes only the messages old
// enough, each after its media.
func TestConversationsPolicyArchivesAndDeletesOldEnough(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{})
	now := time.Now().UTC()
	start := now.Add(-10 * 24 * time.Hour).Truncate(24 * time.Hour)
	if _, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Conversations: 60, ConversationMessages: 3, MaxConversationMedia: 2,
		Start: start, End: now.Add(-time.Hour), MinMediaSize: 512, MaxMediaSize: 16 << 10,
	}); err != nil {
		t.Fatal(err)
	}
	deleteBefore := now.Add(-3 * 24 * time.Hour)
	in, _ := d.ConversationMediaIn(start, now)
	old, _ := d.ConversationMediaIn(start, deleteBefore)
	if code, _, stderr := d.Enqueue(t, time.Minute, "policy", "set", "chats", "--source", "conversations",
		"--schedule", "0 3 1 1 *", "--start", start.Format(time.DateOnly), "--delete-after", "3d"); code != 0 {
		t.Fatalf("policy set: %s", stderr)
	}
	w := d.StartWorker(t)
	code, stdout, stderr := d.Enqueue(t, 3*time.Minute, "policy", "run", "chats", "--wait")
	if code != 0 {
		t.Fatalf("policy run exited %d\n%s\n%s\nworker:\n%s", code, stdout, stderr, lastLines(w.Logs(), 40))
	}
	if early, _ := d.EarlyDeletes(); len(early) > 0 {
		t.Fatalf("DELETEs before the copy was in S3: %v", early)
	}
	young := map[string]string{}
	for sid, msg := range in {
		if _, ok := old[sid]; !ok {
			young[sid] = msg
		}
	}
	if len(old) == 0 || len(young) == 0 {
		t.Fatalf("%d old and %d young media: too few to test with", len(old), len(young))
	}
	d.CheckConversationsArchived(t, old, "deleted")
	d.CheckConversationsArchived(t, young, "archived")
	for _, msg := range young {
		if info, _ := d.Emu.ConversationMessage(msg); info.Deleted {
			t.Fatalf("message %s, younger than --delete-after, was deleted", msg)
		}
	}
}

// A worker killed with SIGKILL three times during a conversations --delete
// run (mid-archive, mid-delete, late in the run) loses nothing: the run
// completes once the dead workers' tasks are handed to a new one, every
// in-range media is archived byte for byte, each message was deleted only
// after its media and record were in the bucket, nothing is half done.
func TestConversationsKill9ThreeTimesLosesNothing(t *testing.T) {
	t.Parallel()
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	t.Logf("kill moments drawn with seed %d", seed)
	d := e2etest.New(t, e2etest.Options{Emulator: twiliotest.Config{
		Faults: twiliotest.Faults{Latency: 30 * time.Millisecond},
	}})
	r := generateConversations(t, d, time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), 120)
	w := d.StartWorker(t)
	r.id = backfillConversations(t, d, r, "--delete")
	n := len(r.inMessages)
	deleted := func() int {
		c := 0
		for msg := range r.inMessages {
			if info, _ := d.Emu.ConversationMessage(msg); info.Deleted {
				c++
			}
		}
		return c
	}
	downloads := func() int { return int(d.Emu.Stats().SignedRequests) }
	kills := []struct {
		what   string
		count  func() int
		of     int
		lo, hi float64
	}{
		{"mid-archive", downloads, len(r.in), 0.1, 0.3},
		{"mid-delete", deleted, n, 0.3, 0.5},
		{"late in the run", deleted, n, 0.6, 0.85},
	}
	for i, k := range kills {
		threshold := int(float64(k.of) * (k.lo + (k.hi-k.lo)*rng.Float64()))
		testenv.WaitFor(t, 3*time.Minute, "kill "+k.what, func() bool { return k.count() >= threshold }, workerLog(w.Logs))
		time.Sleep(time.Duration(rng.IntN(250)) * time.Millisecond)
		w.Kill()
		t.Logf("kill %d (%s): %d downloads, %d of %d messages deleted so far", i+1, k.what, downloads(), deleted(), n)
		w = d.StartWorker(t)
	}
	status := waitRun(t, d, r.id, w, 5*time.Minute)
	requireConversationsDeleted(t, d, r, status)
}

// A message one of whose media cannot be archived (Twilio gives its size
// one way in the message and another in MCS) stays on Twilio with all of
// its media, the others archived; every other message of the run is
// archived and deleted.
func TestConversationsMessageWithUnreadableMediaStays(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{})
	r := generateConversations(t, d, time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC), 60)
	var bad string // a message of the range with two media or more
	for msg := range r.inMessages {
		if info, _ := d.Emu.ConversationMessage(msg); len(info.MediaSIDs) >= 2 && (bad == "" || msg < bad) {
			bad = msg
		}
	}
	if bad == "" {
		t.Fatal("no message with two media in range")
	}
	badInfo, _ := d.Emu.ConversationMessage(bad)
	var p *e2etest.TwilioProxy
	p = d.ProxyTwilio(t, nil)
	modify := func(resp *http.Response) error {
		if !strings.HasPrefix(resp.Request.URL.Path, "/v1/") || resp.StatusCode != http.StatusOK {
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		// Next pages through this proxy, as the guard does for itself.
		b = bytes.ReplaceAll(b, []byte(d.GuardURL), []byte(p.URL))
		if strings.HasSuffix(resp.Request.URL.Path, "/Messages/"+bad) {
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				return err
			}
			media := m["media"].([]any)[0].(map[string]any)
			media["size"] = media["size"].(float64) + 1
			if b, err = json.Marshal(m); err != nil {
				return err
			}
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", fmt.Sprint(len(b)))
		return nil
	}
	p.Configure(func(rp *httputil.ReverseProxy) { rp.ModifyResponse = modify })
	w := d.StartWorker(t, "TWILIO_CONVERSATIONS_URL="+p.URL)
	r.id = backfillConversations(t, d, r, "--delete")
	code, status, stderr := d.Enqueue(t, 3*time.Minute, "status", r.id, "--wait")
	if code != 1 {
		t.Fatalf("status --wait exited %d, want 1 (a media failed)\n%s\n%s\nworker:\n%s", code, status, stderr, lastLines(w.Logs(), 40))
	}
	if got := e2etest.StatusValue(t, status, "media failed"); got != "1" {
		t.Fatalf("media failed %s, want 1\n%s", got, status)
	}
	if info, _ := d.Emu.ConversationMessage(bad); info.Deleted {
		t.Fatalf("message %s was deleted though its media %s could not be archived", bad, badInfo.MediaSIDs[0])
	}
	siblings := map[string]string{}
	for _, sid := range badInfo.MediaSIDs[1:] {
		siblings[sid] = bad
		delete(r.in, sid)
	}
	delete(r.in, badInfo.MediaSIDs[0])
	d.CheckConversationsArchived(t, siblings, "archived")
	d.CheckConversationsArchived(t, r.in, "deleted")
	if early, _ := d.EarlyDeletes(); len(early) > 0 {
		t.Fatalf("DELETEs before the copy was in S3: %v", early)
	}
}

// A legal hold on a Conversations message keeps it (and so its media) on
// Twilio through a --delete run: its media are archived and counted held;
// every other message is deleted.
func TestConversationsHeldMessageIsNotDeleted(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{})
	r := generateConversations(t, d, time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC), 50)
	var held string
	for msg := range r.inMessages {
		if held == "" || msg < held {
			held = msg
		}
	}
	if code, out, stderr := d.Enqueue(t, time.Minute, "hold", "add", "--reason", "litigation", "--message", held); code != 0 {
		t.Fatalf("hold add exited %d: %s %s", code, out, stderr)
	}
	w := d.StartWorker(t)
	r.id = backfillConversations(t, d, r, "--delete")
	code, status, stderr := d.Enqueue(t, 3*time.Minute, "status", r.id, "--wait")
	if code != 0 {
		t.Fatalf("status --wait exited %d\n%s\n%s\nworker:\n%s", code, status, stderr, lastLines(w.Logs(), 40))
	}
	info, _ := d.Emu.ConversationMessage(held)
	if info.Deleted {
		t.Fatalf("held message %s was deleted", held)
	}
	if got := e2etest.StatusValue(t, status, "media held"); !strings.HasPrefix(got, fmt.Sprint(len(info.MediaSIDs))+" ") {
		t.Fatalf("media held %s, want %d\n%s", got, len(info.MediaSIDs), status)
	}
	heldMedia := map[string]string{}
	for _, sid := range info.MediaSIDs {
		heldMedia[sid] = held
		delete(r.in, sid)
	}
	d.CheckConversationsArchived(t, heldMedia, "archived")
	d.CheckConversationsArchived(t, r.in, "deleted")
}

// --service names the services a run archives: two named services are
// archived, the default one and a third are not touched; a --dry-run of
// the default service counts its media and archives nothing.
func TestConversationsServicesAndDryRun(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{})
	start := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	var services []string
	for range 3 {
		svc, err := d.Emu.AddService(d.Account.SID)
		if err != nil {
			t.Fatal(err)
		}
		services = append(services, svc)
	}
	for _, svc := range append([]string{""}, services...) {
		if _, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
			Conversations: 15, ConversationMessages: 3, MaxConversationMedia: 2, ServiceSID: svc,
			Start: start, End: start.AddDate(0, 0, 6), MinMediaSize: 512, MaxMediaSize: 8 << 10,
		}); err != nil {
			t.Fatal(err)
		}
	}
	since, until := start.AddDate(0, 0, 1), start.AddDate(0, 0, 5)
	in, _ := d.ConversationMediaIn(since, until)
	wanted, other := map[string]string{}, 0
	for media, msg := range in {
		md, _ := d.Emu.Media(media)
		if md.ServiceSID == services[0] || md.ServiceSID == services[1] {
			wanted[media] = msg
		} else {
			other++
		}
	}
	if len(wanted) == 0 || other == 0 {
		t.Fatalf("%d media in the named services and %d elsewhere: too few to test with", len(wanted), other)
	}
	w := d.StartWorker(t)
	id := backfillConversations(t, d, convRun{since: since, until: until}, "--service", services[0], "--service", services[1])
	status := waitRun(t, d, id, w, 3*time.Minute)
	if got := e2etest.StatusValue(t, status, "media archived"); !strings.HasPrefix(got, fmt.Sprint(len(wanted))+" ") {
		t.Fatalf("media archived %s, want %d (the two services')\n%s", got, len(wanted), status)
	}
	d.CheckConversationsArchived(t, wanted, "archived")
	var rows int
	if err := d.Pool.QueryRow(t.Context(), `SELECT count(*) FROM media`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != len(wanted) {
		t.Fatalf("%d media rows, want only the %d of the two services", rows, len(wanted))
	}

	dry := backfillConversations(t, d, convRun{since: since, until: until}, "--dry-run")
	status = waitRun(t, d, dry, w, 3*time.Minute)
	listed, _ := strconv.Atoi(e2etest.StatusValue(t, status, "media listed"))
	if listed == 0 || !strings.HasPrefix(e2etest.StatusValue(t, status, "media archived"), "0 ") {
		t.Fatalf("dry run of the default service: %d listed; want some listed and none archived\n%s", listed, status)
	}
	if err := d.Pool.QueryRow(t.Context(), `SELECT count(*) FROM media`).Scan(&rows); err != nil || rows != len(wanted) {
		t.Fatalf("after the dry run %d media rows (%v), want still %d", rows, err, len(wanted))
	}
}

// A conversation whose next_page_url goes round (its last page pointing
// back at its first) fails its scan with the reason instead of being read
// for ever; the run ends, failed, saying so.
func TestConversationsCursorCycleFailsTheScan(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{})
	start := time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)
	cv, err := d.Emu.AddConversation(d.Account.SID, twiliotest.ConversationOptions{DateCreated: start})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 120 { // two pages of 100
		if _, err := d.Emu.AddConversationMessage(d.Account.SID, cv, twiliotest.ConversationMessageOptions{
			DateCreated: start.Add(time.Duration(i+1) * time.Minute),
			Media:       []twiliotest.MediaOptions{{ContentType: "image/png", Size: 1024}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	secondPage := regexp.MustCompile(`(^|&)Page=1(&|$)`)
	var p *e2etest.TwilioProxy
	p = d.ProxyTwilio(t, nil)
	modify := func(resp *http.Response) error {
		if !strings.HasPrefix(resp.Request.URL.Path, "/v1/") || resp.StatusCode != http.StatusOK {
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		b = bytes.ReplaceAll(b, []byte(d.GuardURL), []byte(p.URL))
		if strings.HasSuffix(resp.Request.URL.Path, "/Conversations/"+cv+"/Messages") && secondPage.MatchString(resp.Request.URL.RawQuery) {
			var page map[string]any
			if err := json.Unmarshal(b, &page); err != nil {
				return err
			}
			meta := page["meta"].(map[string]any)
			meta["next_page_url"] = meta["first_page_url"]
			if b, err = json.Marshal(page); err != nil {
				return err
			}
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", fmt.Sprint(len(b)))
		return nil
	}
	p.Configure(func(rp *httputil.ReverseProxy) { rp.ModifyResponse = modify })
	w := d.StartWorker(t, "TWILIO_CONVERSATIONS_URL="+p.URL)
	id := backfillConversations(t, d, convRun{since: start, until: start.AddDate(0, 0, 1)})
	code, status, stderr := d.Enqueue(t, 3*time.Minute, "status", id, "--wait")
	if code != 1 {
		t.Fatalf("status --wait exited %d, want 1 (the run failed)\n%s\n%s\nworker:\n%s", code, status, stderr, lastLines(w.Logs(), 40))
	}
	var state, reason string
	var pages int
	if err := d.Pool.QueryRow(t.Context(), `SELECT state, coalesce(error, ''), page FROM run_conversations WHERE run_id = $1`, id).
		Scan(&state, &reason, &pages); err != nil {
		t.Fatal(err)
	}
	if state != "failed" || !strings.Contains(reason, "cycle") || pages > 4 {
		t.Fatalf("scan %s after %d pages (%q); want failed on a cycle within 4 pages", state, pages, reason)
	}
	if got := e2etest.StatusValue(t, status, "state"); got != "failed" {
		t.Fatalf("run %s, want failed\n%s", got, status)
	}
}

// An export of archived Conversations media holds each byte for byte, its
// manifest naming the source, conversation, author and filename; an export
// by message takes an IM… SID.
func TestConversationsExportManifest(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{})
	r := generateConversations(t, d, time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC), 60)
	w := d.StartWorker(t)
	waitRun(t, d, backfillConversations(t, d, r), w, 3*time.Minute)
	var msg string
	for m := range r.inMessages {
		if msg == "" || m < msg {
			msg = m
		}
	}
	info, _ := d.Emu.ConversationMessage(msg)
	dir := t.TempDir()
	code, out, stderr := d.Enqueue(t, 2*time.Minute, "export", "--since", r.since.Format(time.DateOnly), "--until", r.until.Format(time.DateOnly),
		"--message", msg, "--out", "file://"+dir, "--wait")
	if code != 0 {
		t.Fatalf("export exited %d\n%s\n%s\nworker:\n%s", code, out, stderr, lastLines(w.Logs(), 40))
	}
	b, err := os.ReadFile(filepath.Join(dir, "manifest.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != len(info.MediaSIDs) {
		t.Fatalf("manifest has %d lines for message %s's %d media:\n%s", len(lines), msg, len(info.MediaSIDs), b)
	}
	for _, line := range lines {
		var l struct {
			MessageSID      string `json:"message_sid"`
			MediaSID        string `json:"media_sid"`
			SHA256          string `json:"sha256"`
			Path            string `json:"path"`
			Source          string `json:"source"`
			ConversationSID string `json:"conversation_sid"`
			Author          string `json:"author"`
			Filename        string `json:"filename"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		md, _ := d.Emu.Media(l.MediaSID)
		want, _ := d.Emu.SHA256(l.MediaSID)
		got, err := os.ReadFile(filepath.Join(dir, l.Path))
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(got); hex.EncodeToString(sum[:]) != want || l.SHA256 != want {
			t.Fatalf("exported %s differs from the media's bytes: file %d bytes sha %x, manifest %s, media %s (%d bytes)", l.Path, len(got), sha256.Sum256(got), l.SHA256, want, md.Size)
		}
		if l.Source != "conversations" || l.ConversationSID != info.ConversationSID || l.Author != info.Author || l.Filename != md.Filename || l.MessageSID != msg {
			t.Fatalf("manifest line %s; want source conversations, conversation %s, author %q, filename %q", line, info.ConversationSID, info.Author, md.Filename)
		}
	}
}
