package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/jobs"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// faultsStart is the first day of the fault tests' data.
var faultsStart = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

// faultsBackfill runs `enqueue backfill --delete --wait` over days days from
// faultsStart and returns its exit code and output.
func faultsBackfill(t *testing.T, d *e2etest.Deployment, days int) (code int, stdout, stderr string) {
	t.Helper()
	return d.Enqueue(t, 100*time.Second, "backfill", "--since", faultsStart.Format(time.DateOnly),
		"--until", faultsStart.AddDate(0, 0, days).Format(time.DateOnly), "--delete", "--wait")
}

// A --delete run through a Twilio that fails a fifth of its API answers
// (500, 503) and breaks a fifth of its downloads (cut short, reset) still
// copies every media byte for byte and deletes each only after its copy is
// in S3: transient faults cost retries, never data, never a failed media.
func TestTransientTwilioFaultsLoseNothing(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{Emulator: twiliotest.Config{Faults: twiliotest.Faults{
		ErrorRate: 0.2, CutRate: 0.1, ResetRate: 0.1,
	}}})
	_, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Messages: 60, Start: faultsStart, End: faultsStart.AddDate(0, 0, 3),
		MaxMediaPerMessage: 3, MaxMediaSize: 64 << 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	in, _ := d.MediaIn(faultsStart, faultsStart.AddDate(0, 0, 3))
	ws := []*e2etest.Process{d.StartWorker(t), d.StartWorker(t)}

	code, stdout, stderr := faultsBackfill(t, d, 3)
	if code != 0 {
		t.Fatalf("enqueue exited %d\nstdout:\n%s\nstderr:\n%s\n%s", code, stdout, stderr, fleetLogs(ws))
	}
	for name, want := range map[string]string{"media deleted": fmt.Sprint(len(in)), "media failed": "0", "media gone": "0"} {
		if got := e2etest.StatusValue(t, stdout, name); got != want {
			t.Fatalf("%s: %s, want %s\n%s", name, got, want, stdout)
		}
	}
	d.CheckArchived(t, in, "deleted")
	for sid := range in {
		if md, _ := d.Emu.Media(sid); !md.Deleted {
			t.Fatalf("media %s was archived but not deleted from Twilio", sid)
		}
	}
	early, attempts := d.EarlyDeletes()
	if len(early) > 0 {
		t.Fatalf("deleted before the copy was in S3: %v", early)
	}
	st := d.Emu.Stats()
	t.Logf("%d media; %d API requests, %d injected 5xx, %d downloads cut, %d reset; %d DELETEs",
		len(in), st.Requests, st.InjectedErrors, st.CutBodies, st.ResetBodies, attempts)
	// Otherwise the run proved nothing about faults.
	if st.InjectedErrors == 0 || st.CutBodies == 0 || st.ResetBodies == 0 {
		t.Fatalf("faults not exercised: %d injected errors, %d cut, %d reset", st.InjectedErrors, st.CutBodies, st.ResetBodies)
	}
}

// contentRequests counts the emulator's content downloads of a media: GETs
// of its URI without an extension.
func contentRequests(d *e2etest.Deployment, sid string) int {
	n := 0
	for _, r := range d.Emu.Requests() {
		if r.Host == "api" && r.Method == http.MethodGet && strings.HasSuffix(r.Path, "/Media/"+sid) {
			n++
		}
	}
	return n
}

// oneDayOfMedia gives the emulator a day of 20 messages with up to two
// small media each, and returns the media sent that day (media SID →
// message SID), the scope of a backfill of faultsStart.
func oneDayOfMedia(t *testing.T, d *e2etest.Deployment) map[string]string {
	t.Helper()
	_, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Messages: 20, Start: faultsStart, End: faultsStart.AddDate(0, 0, 1), MaxMediaPerMessage: 2, MaxMediaSize: 16 << 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	in, _ := d.MediaIn(faultsStart, faultsStart.AddDate(0, 0, 1))
	return in
}

// archivedDay is oneDayOfMedia archived by a backfill on a worker it
// starts (returned, still running).
func archivedDay(t *testing.T, d *e2etest.Deployment) (map[string]string, *e2etest.Process) {
	t.Helper()
	in := oneDayOfMedia(t, d)
	w := d.StartWorker(t)
	code, stdout, stderr := d.Enqueue(t, 100*time.Second, "backfill", "--since", faultsStart.Format(time.DateOnly),
		"--until", faultsStart.AddDate(0, 0, 1).Format(time.DateOnly), "--wait")
	if code != 0 {
		t.Fatalf("backfill exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	d.CheckArchived(t, in, catalog.MediaArchived)
	return in, w
}

// Content Twilio has lost (404 while the media is still listed) is
// recorded as gone after one request: the run ends without a failure, the
// media is not deleted (nothing of it is archived), the rest is.
func TestVanishedContentIsGoneNotRetried(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{})
	in := oneDayOfMedia(t, d)
	var vanished string
	for sid := range in {
		vanished = sid
		break
	}
	if err := d.Emu.VanishContent(vanished); err != nil {
		t.Fatal(err)
	}
	w := d.StartWorker(t)

	code, stdout, stderr := faultsBackfill(t, d, 1)
	if code != 0 {
		t.Fatalf("enqueue exited %d\nstdout:\n%s\nstderr:\n%s\nworker:\n%s", code, stdout, stderr, w.Logs())
	}
	for name, want := range map[string]string{"media gone": "1", "media failed": "0", "media deleted": fmt.Sprint(len(in) - 1)} {
		if got := e2etest.StatusValue(t, stdout, name); got != want {
			t.Fatalf("%s: %s, want %s\n%s", name, got, want, stdout)
		}
	}
	var state string
	if err := d.Pool.QueryRow(t.Context(), `SELECT state FROM media WHERE sid = $1`, vanished).Scan(&state); err != nil {
		t.Fatal(err)
	}
	if state != "gone" {
		t.Fatalf("vanished media is %s, want gone", state)
	}
	if md, _ := d.Emu.Media(vanished); md.Deleted {
		t.Fatalf("vanished media %s was deleted: nothing of it was archived", vanished)
	}
	if n := contentRequests(d, vanished); n != 1 {
		t.Fatalf("vanished media's content requested %d times, want once", n)
	}
	delete(in, vanished)
	d.CheckArchived(t, in, "deleted")
	if early, _ := d.EarlyDeletes(); len(early) > 0 {
		t.Fatalf("deleted before the copy was in S3: %v", early)
	}
}

// A message deleted from Twilio between the page that listed it and the
// listing of its media (its Media.json answers 404 / 20404, and Twilio
// deletes its media with it) is recorded as gone after one request: the
// run succeeds, `enqueue status` counts and names it with Twilio's code,
// nothing of it is retried or deleted by mediasync, and the rest of the run
// is archived and deleted as usual.
func TestVanishedMessageMediaListIsGoneNotRetried(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{})
	in := oneDayOfMedia(t, d)
	var vanished string // a message with media, sent in the run's range
	for _, msg := range in {
		if vanished == "" || msg < vanished {
			vanished = msg
		}
	}
	if vanished == "" {
		t.Fatal("the dataset has no media in range")
	}
	vanishedMedia := map[string]bool{}
	for media, msg := range in {
		if msg == vanished {
			vanishedMedia[media] = true
		}
	}
	mediaList := fmt.Sprintf("/2010-04-01/Accounts/%s/Messages/%s/Media.json", d.Account.SID, vanished)

	// A proxy in front of the guard deletes the message on Twilio (the
	// emulator) at the moment mediasync first asks for its media, then
	// passes the request on: the emulator answers as Twilio does.
	var once sync.Once
	var deleteErr error
	twilio := d.ProxyTwilio(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet && r.URL.Path == mediaList {
			once.Do(func() { deleteErr = deleteMessage(d, vanished) })
		}
		return false
	})
	w := d.StartWorker(t, "TWILIO_API_URL="+twilio.URL)

	exit, stdout, stderr := faultsBackfill(t, d, 1)
	once.Do(func() { deleteErr = errors.New("mediasync never asked for the message's media") })
	if deleteErr != nil {
		t.Fatalf("deleting message %s on the emulator: %v", vanished, deleteErr)
	}
	if exit != 0 {
		t.Fatalf("enqueue exited %d, want 0 (a message gone is not a failure)\nstdout:\n%s\nstderr:\n%s\nworker:\n%s", exit, stdout, stderr, w.Logs())
	}
	for name, want := range map[string]string{
		"state": "succeeded", "messages gone": "1", "media failed": "0", "media gone": "0", "media pending": "0",
		"media deleted": fmt.Sprint(len(in) - len(vanishedMedia)),
	} {
		if got := e2etest.StatusValue(t, stdout, name); got != want {
			t.Fatalf("%s: %s, want %s\n%s", name, got, want, stdout)
		}
	}
	named := false
	for _, l := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(l, "gone:") && strings.Contains(l, vanished) && strings.Contains(l, "20404") {
			named = true
		}
	}
	if !named {
		t.Fatalf("enqueue status does not name gone message %s with Twilio's code 20404:\n%s", vanished, stdout)
	}

	var state, reason string
	err := d.Pool.QueryRow(t.Context(), `SELECT state, coalesce(error, '') FROM run_messages WHERE message_sid = $1`, vanished).Scan(&state, &reason)
	if err != nil {
		t.Fatal(err)
	}
	if state != "gone" || !strings.Contains(reason, "20404") {
		t.Fatalf("vanished message is %s (%q), want gone with Twilio's code 20404", state, reason)
	}
	var rows int
	if err := d.Pool.QueryRow(t.Context(), `SELECT count(*) FROM media WHERE message_sid = $1`, vanished).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 0 {
		t.Fatalf("%d media rows for the vanished message, want none: its media were never listed", rows)
	}

	// One request, no retry: neither the client nor the task asked again.
	n := 0
	for _, r := range d.Emu.Requests() {
		if r.Host == "api" && r.Method == http.MethodGet && r.Path == mediaList {
			n++
			if r.Status != http.StatusNotFound {
				t.Fatalf("media list of the vanished message answered %d, want 404", r.Status)
			}
		}
	}
	if n != 1 {
		t.Fatalf("media list of the vanished message requested %d times, want once", n)
	}
	redisOpt, err := asynq.ParseRedisURI(d.Env["REDIS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspector(redisOpt)
	t.Cleanup(func() { _ = insp.Close() })
	qs := jobs.QueuesFor(d.Env["MEDIASYNC_NAMESPACE"])
	for _, q := range []string{qs.List, qs.Media} {
		archived, _ := insp.ListArchivedTasks(q)
		retry, _ := insp.ListRetryTasks(q)
		if len(archived)+len(retry) > 0 {
			t.Fatalf("queue %s: archived %v, retrying %v; want none", q, taskIDs(archived), taskIDs(retry))
		}
	}

	for media := range vanishedMedia {
		delete(in, media)
	}
	d.CheckArchived(t, in, "deleted")
	if early, _ := d.EarlyDeletes(); len(early) > 0 {
		t.Fatalf("deleted before the copy was in S3: %v", early)
	}
}

// deleteMessage deletes a message through the emulator's API, as another
// Twilio client would: Twilio deletes its media with it.
func deleteMessage(d *e2etest.Deployment, sid string) error {
	req, err := http.NewRequest(http.MethodDelete, fmt.Sprintf("%s/2010-04-01/Accounts/%s/Messages/%s.json", d.Emu.URL(), d.Account.SID, sid), nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(d.Account.SID, d.Account.AuthToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("DELETE message %s: %s", sid, resp.Status)
	}
	return nil
}

// Twilio refuses one media's content with a 4xx that carries a Twilio error
// code (here 400 / 21610): no retry can change that answer, so the media
// fails at once, with Twilio's code and message where an operator looks
// (the catalog, `enqueue status`, exit 1), its task is archived in Asynq
// after a single attempt, and the rest of the run completes.
func TestTwilioErrorCodeFailsFast(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{})
	in := oneDayOfMedia(t, d)
	var refused string
	for sid := range in {
		refused = sid
		break
	}
	const code, message = 21610, "Attempt to send to unsubscribed recipient"
	contentPath := fmt.Sprintf("/2010-04-01/Accounts/%s/Messages/%s/Media/%s", d.Account.SID, in[refused], refused)

	// A proxy in front of the guard answers that media's content as Twilio
	// would, and passes everything else on.
	var hits atomic.Int64
	twilio := d.ProxyTwilio(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet && r.URL.Path == contentPath {
			hits.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]any{
				"code": code, "message": message, "status": http.StatusBadRequest,
				"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code),
			})
			return true
		}
		return false
	})
	w := d.StartWorker(t, "TWILIO_API_URL="+twilio.URL)

	exit, stdout, stderr := faultsBackfill(t, d, 1)
	if exit != 1 {
		t.Fatalf("enqueue exited %d, want 1 (a media failed)\nstdout:\n%s\nstderr:\n%s\nworker:\n%s", exit, stdout, stderr, w.Logs())
	}
	for name, want := range map[string]string{"media failed": "1", "media deleted": fmt.Sprint(len(in) - 1), "media pending": "0"} {
		if got := e2etest.StatusValue(t, stdout, name); got != want {
			t.Fatalf("%s: %s, want %s\n%s", name, got, want, stdout)
		}
	}
	hasReason := func(where, s string) {
		t.Helper()
		if !strings.Contains(s, fmt.Sprint(code)) || !strings.Contains(s, message) {
			t.Fatalf("%s does not give Twilio's code %d and message %q:\n%s", where, code, message, s)
		}
	}

	var state, lastErr, runErr string
	err := d.Pool.QueryRow(t.Context(), `SELECT m.state, m.last_error, rm.error FROM media m JOIN run_media rm ON rm.media_sid = m.sid WHERE m.sid = $1`, refused).
		Scan(&state, &lastErr, &runErr)
	if err != nil {
		t.Fatal(err)
	}
	if state != "failed" {
		t.Fatalf("refused media is %s, want failed", state)
	}
	hasReason("media.last_error", lastErr)
	hasReason("run_media.error", runErr)

	runID := strings.TrimSpace(strings.SplitN(stdout, "\n", 2)[0])
	exit, status, stderr := d.Enqueue(t, 30*time.Second, "status", runID)
	if exit != 0 {
		t.Fatalf("enqueue status exited %d\n%s%s", exit, status, stderr)
	}
	var line string
	for _, l := range strings.Split(status, "\n") {
		if strings.HasPrefix(l, "failed:") && strings.Contains(l, refused) {
			line = l
		}
	}
	hasReason("enqueue status", line)

	// One attempt, then Asynq's archive: neither the client nor the task
	// retried an answer that cannot change.
	if n := hits.Load(); n != 1 {
		t.Fatalf("refused content requested %d times, want once", n)
	}
	redisOpt, err := asynq.ParseRedisURI(d.Env["REDIS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspector(redisOpt)
	t.Cleanup(func() { _ = insp.Close() })
	archived, err := insp.ListArchivedTasks(jobs.QueuesFor(d.Env["MEDIASYNC_NAMESPACE"]).Media)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ti := range archived {
		if ti.Type == jobs.TypeArchiveMessage && strings.Contains(string(ti.Payload), in[refused]) {
			found = true
			if ti.Retried != 0 {
				t.Fatalf("task %s retried %d times before it was archived, want 0", ti.ID, ti.Retried)
			}
			if !strings.Contains(ti.LastErr, fmt.Sprint(code)) {
				t.Fatalf("archived task's last error %q lacks Twilio's code", ti.LastErr)
			}
		}
	}
	if !found || len(archived) != 1 {
		t.Fatalf("archived tasks %v: want exactly the refused media's message's %s task", taskIDs(archived), jobs.TypeArchiveMessage)
	}
}

func taskIDs(ts []*asynq.TaskInfo) []string {
	ids := make([]string, len(ts))
	for i, ti := range ts {
		ids[i] = ti.Type + " " + ti.ID
	}
	return ids
}
