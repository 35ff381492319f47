package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

// cliJSON runs a command with --json, wants exit 0, and decodes its one
// document into v; a second document, or trailing text, fails the test.
func (d *deployment) cliJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	code, out, errOut := d.cli(t, append(args, "--json")...)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(v), out)
	require.False(t, dec.More(), "more than one JSON document:\n%s", out)
}

// runID is the last non-empty line of a command's stdout: the run id
// backfill, retry and verify print.
func runID(t *testing.T, out string) string {
	t.Helper()
	lines := strings.Fields(out)
	require.NotEmpty(t, lines)
	return lines[0]
}

type runsDoc struct {
	Runs []runJSON `json:"runs"`
}

type failuresDoc struct {
	RunID    string        `json:"run_id"`
	Failures []failureJSON `json:"failures"`
	Total    int           `json:"total"`
}

// A run with more failures than status names: status shows 20 and says
// how many more and where to see them; failures lists every one (text and
// JSON); runs lists the run; retry, asked twice, makes one new run that
// archives exactly the failed media, and names the run it retries.
func TestFailuresRunsAndRetry(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	when := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	type media struct{ msg, sid string }
	var all []media
	for i := range 25 {
		m, err := d.Emu.AddMessage(d.Account.SID, twiliotest.MessageOptions{DateSent: when.Add(time.Duration(i) * time.Minute),
			Media: []twiliotest.MediaOptions{{ContentType: "image/jpeg", Size: 2 << 10}}})
		require.NoError(t, err)
		all = append(all, media{m.SID, m.MediaSIDs[0]})
	}
	failing := map[string]bool{}
	contentPath := map[string]string{}
	for _, m := range all[:22] {
		failing[m.sid] = true
		contentPath[fmt.Sprintf("/2010-04-01/Accounts/%s/Messages/%s/Media/%s", d.Account.SID, m.msg, m.sid)] = m.sid
	}
	// The failing media's content answers a Twilio 400 (no retry fixes
	// it) until the test lets it through.
	var refuse atomic.Bool
	refuse.Store(true)
	var mu sync.Mutex
	downloads := map[string]int{}
	proxy := d.ProxyTwilio(t, func(w http.ResponseWriter, r *http.Request) bool {
		sid, ok := contentPath[r.URL.Path]
		if !ok || r.Method != http.MethodGet {
			return false
		}
		mu.Lock()
		downloads[sid]++
		mu.Unlock()
		if !refuse.Load() {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = fmt.Fprint(w, `{"code": 20001, "message": "refused for the test", "more_info": "https://www.twilio.com/docs/errors/20001", "status": 400}`)
		return true
	})
	d.Env["TWILIO_API_URL"] = proxy.URL
	stop := d.startWorker(t)

	code, out, errOut := d.cli(t, "backfill", "--since", "2026-03-02", "--until", "2026-03-03", "--wait")
	require.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	id := e2etest.StatusValue(t, out, "run")
	require.Equal(t, "22", e2etest.StatusValue(t, out, "media failed"), out)
	require.Equal(t, 20, strings.Count(out, "\nfailed:"), "status names 20 failures of a kind:\n%s", out)
	require.Equal(t, "2 not shown above: enqueue failures "+id, e2etest.StatusValue(t, out, "more failures"), out)

	// status --json: the same counts, the first 20, every one counted.
	var st statusJSON
	d.cliJSON(t, &st, "status", id)
	require.Equal(t, id, st.Run.ID)
	require.Equal(t, "failed", st.Run.State)
	require.Equal(t, "backfill", st.Run.Kind)
	require.Equal(t, 22, st.Counts.MediaFailed)
	require.Equal(t, 3, st.Counts.MediaArchived)
	require.Equal(t, 25, st.Counts.MediaFound)
	require.Len(t, st.Failures, 20)
	require.Equal(t, map[string]int{"media": 22}, st.FailuresTotal)

	// failures: every one, text and JSON.
	code, out, errOut = d.cli(t, "failures", id)
	require.Equal(t, 0, code, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 22, out)
	for _, l := range lines {
		f := strings.SplitN(l, "\t", 3)
		require.Len(t, f, 3, l)
		require.Equal(t, "media", f[0])
		require.True(t, failing[f[1]], "not a failing media: %s", l)
		require.Contains(t, f[2], "refused for the test")
	}
	var fd failuresDoc
	d.cliJSON(t, &fd, "failures", id)
	require.Equal(t, id, fd.RunID)
	require.Equal(t, 22, fd.Total)
	require.Len(t, fd.Failures, 22)
	seen := map[string]bool{}
	for _, f := range fd.Failures {
		require.True(t, failing[f.SID], f.SID)
		seen[f.SID] = true
	}
	require.Len(t, seen, 22)

	// runs: newest first, filtered by state; bad input exits 2 naming it.
	var rd runsDoc
	d.cliJSON(t, &rd, "runs", "--state", "failed")
	require.Len(t, rd.Runs, 1)
	require.Equal(t, id, rd.Runs[0].ID)
	require.Equal(t, "2026-03-02T00:00:00Z", rd.Runs[0].Since.Format(time.RFC3339))
	code, _, errOut = d.cli(t, "runs", "--state", "bogus")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `--state "bogus"`)
	d.cliJSON(t, &rd, "runs", "--kind", "retry")
	require.Empty(t, rd.Runs)
	code, _, errOut = d.cli(t, "runs", "--kind", "purge")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `--kind "purge"`)
	code, _, errOut = d.cli(t, "runs", "--limit", "0")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "--limit 0")
	code, _, errOut = d.cli(t, "failures", "not-a-run")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `"not-a-run"`)

	// retry, with no worker: asked twice, one run.
	stop()
	refuse.Store(false)
	code, out, errOut = d.cli(t, "retry", id)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	retry := runID(t, out)
	code, out, errOut = d.cli(t, "retry", id)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Equal(t, retry, runID(t, out), "a second retry while the first is queued is the same run")
	require.Contains(t, errOut, "already queued")
	code, _, errOut = d.cli(t, "retry", retry)
	require.Equal(t, 2, code, "a run not finished cannot be retried")
	require.Contains(t, errOut, "has not finished")

	mu.Lock()
	before := map[string]int{}
	for k, v := range downloads {
		before[k] = v
	}
	mu.Unlock()
	d.startWorker(t)
	code, out, errOut = d.cli(t, "status", retry, "--wait")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Equal(t, "22 (already archived before: 0)", e2etest.StatusValue(t, out, "media archived"), out)
	require.Equal(t, "retry of run "+id, e2etest.StatusValue(t, out, "kind"))
	mu.Lock()
	for sid := range failing {
		require.Equal(t, before[sid]+1, downloads[sid], "media %s downloaded once by the retry", sid)
	}
	mu.Unlock()
	var archived int
	require.NoError(t, d.Pool.QueryRow(t.Context(), `SELECT count(*) FROM media WHERE state = 'archived'`).Scan(&archived))
	require.Equal(t, 25, archived)

	code, _, errOut = d.cli(t, "retry", retry)
	require.Equal(t, 2, code, "nothing of the retry failed")
	require.Contains(t, errOut, "nothing to retry")

	d.cliJSON(t, &rd, "runs")
	require.Len(t, rd.Runs, 2)
	require.Equal(t, retry, rd.Runs[0].ID, "newest first")
	require.Equal(t, "retry", rd.Runs[0].Kind)
	require.Equal(t, id, rd.Runs[0].RetryOf)
	require.Equal(t, "succeeded", rd.Runs[0].State)
	code, out, _ = d.cli(t, "runs")
	require.Equal(t, 0, code)
	require.Contains(t, out, "retry of "+id)
}

// `enqueue cancel` in the middle of a backfill --delete: once it returns,
// Twilio receives no DELETE of the run, and listing and downloads stop
// (tasks in flight end); the run ends cancelled, audited; the backfill's
// own --wait exits 1 saying it was cancelled; cancelling again changes
// nothing, and a finished run cannot be cancelled.
func TestCancelMidRun(t *testing.T) {
	t.Parallel()
	d := &deployment{Deployment: e2etest.New(t, e2etest.Options{Emulator: twiliotest.Config{Seed: 7, Faults: twiliotest.Faults{
		DeleteLatency: 200 * time.Millisecond,
	}}}), logs: &e2etest.LogBuffer{}}
	start := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	_, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Messages: 120, Start: start, End: start.AddDate(0, 0, 4),
		NoMediaShare: -1, MaxMediaPerMessage: 1, MaxMediaSize: 2 << 10,
	})
	require.NoError(t, err)
	// One request at a time: the run is still deleting when it is cancelled.
	d.Env["TWILIO_MAX_CONCURRENCY"] = "1"
	d.startWorker(t)

	type result struct {
		code     int
		out, err string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errOut := d.cli(t, "backfill", "--since", "2026-03-10", "--until", "2026-03-14", "--delete", "--wait")
		done <- result{code, out, errOut}
	}()
	require.Eventually(t, func() bool { return len(d.Emu.Deletes(0)) >= 3 }, time.Minute, 20*time.Millisecond)
	var rd runsDoc
	d.cliJSON(t, &rd, "runs", "--state", "running")
	require.Len(t, rd.Runs, 1)
	id := rd.Runs[0].ID

	code, out, errOut := d.cli(t, "cancel", id)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Equal(t, "run "+id+" cancelled\n", out)
	returned := time.Now()
	deletes := len(d.Emu.Deletes(0))

	res := <-done
	require.Equal(t, 1, res.code, "stdout:\n%s\nstderr:\n%s", res.out, res.err)
	require.Contains(t, res.err, "run "+id+" was cancelled")
	require.Equal(t, "cancelled", e2etest.StatusValue(t, res.out, "state"))

	// Whatever was in flight has ended well within this; nothing new starts.
	time.Sleep(3 * time.Second)
	requests := d.Emu.Stats().Requests
	time.Sleep(2 * time.Second)
	require.Equal(t, requests, d.Emu.Stats().Requests, "the cancelled run still talks to Twilio")
	after := d.Emu.Deletes(0)
	for _, del := range after {
		require.False(t, del.Time.After(returned), "DELETE of %s at %s, after cancel returned at %s", del.MediaSID, del.Time, returned)
	}
	require.Equal(t, deletes, len(after))
	require.Less(t, len(after), 120, "the run was cancelled before it deleted everything")
	// What the catalog says deleted is what Twilio deleted, no more.
	var rowsDeleted int
	require.NoError(t, d.Pool.QueryRow(t.Context(), `SELECT count(*) FROM media WHERE state = 'deleted'`).Scan(&rowsDeleted))
	require.LessOrEqual(t, rowsDeleted, len(after))

	var st statusJSON
	d.cliJSON(t, &st, "status", id)
	require.Equal(t, "cancelled", st.Run.State)
	require.NotNil(t, st.Run.FinishedAt)
	require.Contains(t, st.Run.Error, "cancelled by")

	code, out, errOut = d.cli(t, "audit", "--json")
	require.Equal(t, 0, code, errOut)
	var found bool
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var e struct{ Action, Subject string }
		require.NoError(t, json.Unmarshal([]byte(l), &e))
		if e.Action == "run.cancelled" && e.Subject == id {
			found = true
		}
	}
	require.True(t, found, "no run.cancelled audit row:\n%s", out)

	code, out, _ = d.cli(t, "cancel", id)
	require.Equal(t, 0, code)
	require.Equal(t, "run "+id+" was already cancelled\n", out)
	code, _, errOut = d.cli(t, "status", id, "--wait")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "was cancelled")

	code, out, errOut = d.cli(t, "message", after[0].MessageSID, "--wait")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	code, _, errOut = d.cli(t, "cancel", e2etest.StatusValue(t, out, "run"))
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "already finished: succeeded")
}
