package webui_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/mediasync/mediasync/internal/devtools"
	"github.com/mediasync/mediasync/internal/e2etest"
	"github.com/mediasync/mediasync/internal/testenv"
	"github.com/mediasync/mediasync/twilio/twiliotest"
)

var screenshots = flag.String("screenshots", "", "write the runs page's and a run page's screenshots (runs-page.png, run-page.png) into this directory, e.g. ../../docs")

var day = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

// chromium starts a headless Chromium of the distribution's packages
// (scripts/install-tools.sh installs it; CHROMIUM names another) with a
// profile of the test's own, and returns a tab on it. The flags keep it
// from reaching for the network on its own (updates, sync, QUIC probes),
// which on a closed network makes it hang.
func chromium(t *testing.T) context.Context {
	t.Helper()
	bin := os.Getenv("CHROMIUM")
	if bin == "" {
		bin = "/usr/bin/chromium"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no Chromium at %s: run `make tools` (scripts/install-tools.sh installs the distribution's chromium) or set CHROMIUM", bin)
	}
	// A deadline for everything the browser waits on: a page that never
	// shows what a step waits for fails the test instead of hanging it.
	limit, cancelLimit := context.WithTimeout(context.Background(), 4*time.Minute)
	alloc, cancelAlloc := chromedp.NewExecAllocator(limit,
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
	)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc(); cancelLimit() })
	// The first action starts the browser; it lives as long as ctx.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// withAuth sends basic auth with every request of the tab, the page's
// own fetches included.
func withAuth(user, password string) chromedp.Action[chromedp.Void] {
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
			return chromedp.Void{}, err
		}
		_, err := cdp.Call(ctx, t, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
			Headers: network.Headers{"Authorization": auth},
		})
		return chromedp.Void{}, err
	}
}

// cancelAuthPrompts answers every basic-auth challenge of the tab with
// "cancel", as a user closing the login dialog does: headless Chromium
// otherwise waits on the dialog forever, and the page then sees the 401.
func cancelAuthPrompts() chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		paused := cdp.Events(ctx, t, fetch.RequestPaused)
		auth := cdp.Events(ctx, t, fetch.AuthRequired)
		go func() {
			for ev, err := range paused {
				if err != nil {
					return
				}
				_, _ = cdp.Call(ctx, t, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
			}
		}()
		go func() {
			for ev, err := range auth {
				if err != nil {
					return
				}
				_, _ = cdp.Call(ctx, t, fetch.ContinueWithAuth, fetch.ContinueWithAuthParams{RequestID: ev.RequestID,
					AuthChallengeResponse: &fetch.AuthChallengeResponse{Response: fetch.AuthChallengeResponseResponseCancelAuth}})
			}
		}()
		yes := true
		_, err := cdp.Call(ctx, t, fetch.Enable, fetch.EnableParams{HandleAuthRequests: &yes})
		return chromedp.Void{}, err
	}
}

// noOverflow fails the test if the page, or a table in it, is wider than
// the window: nothing an operator reads may be cut off.
func noOverflow(t *testing.T, ctx context.Context) {
	t.Helper()
	over := js[[]string](t, ctx, `[document.documentElement, ...document.querySelectorAll('.scroll, .card, table')]
		.filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.tagName + '.' + e.className + ' ' + e.scrollWidth + '>' + e.clientWidth)`)
	if len(over) > 0 {
		t.Errorf("wider than the window: %v", over)
	}
}

// js evaluates a JavaScript expression in the tab and decodes its value.
func js[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS("body")))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := *screenshots
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// An operator follows runs in a real browser: the runs list shows a run
// as it starts, the run's page shows its progress bar move while the run
// goes on (the page refreshes itself), and once it ends, the media Twilio
// refused with its SID and Twilio's reason. Without the token, nothing
// under /ui/ is served: 401 in the browser too.
func TestBrowserFollowsARunToItsFailure(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{Emulator: twiliotest.Config{Seed: 16, Faults: twiliotest.Faults{
		// Slow downloads: a run long enough for the page to see it move.
		Latency: 50 * time.Millisecond, BodyBytesPerSecond: 16 << 10,
	}}})
	if _, err := d.Emu.Generate(d.Account.SID, twiliotest.Dataset{
		Messages: 60, Start: day, End: day.AddDate(0, 0, 4), MaxMediaPerMessage: 3, MaxMediaSize: 32 << 10,
	}); err != nil {
		t.Fatal(err)
	}
	in, _ := d.MediaIn(day, day.AddDate(0, 0, 1))
	if len(in) < 10 {
		t.Fatalf("the first day has %d media; the test needs a few", len(in))
	}
	var refused string
	for sid := range in {
		if refused == "" || sid < refused {
			refused = sid
		}
	}
	// Twilio refuses that one media's content with an error code: it fails
	// at once, with Twilio's code and message as its reason.
	const code, message = 21610, "Attempt to send to unsubscribed recipient"
	contentPath := fmt.Sprintf("/2010-04-01/Accounts/%s/Messages/%s/Media/%s", d.Account.SID, in[refused], refused)
	proxy := d.ProxyTwilio(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || r.URL.Path != contentPath {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]any{"code": code, "message": message, "status": 400})
		return true
	})

	port, err := devtools.FreeLoopbackPort()
	if err != nil {
		t.Fatal(err)
	}
	const token = "s3cret-ui-token"
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	w := d.StartWorker(t, "TWILIO_API_URL="+proxy.URL, fmt.Sprintf("HTTP_ADDR=127.0.0.1:%d", port),
		"MEDIASYNC_UI_TOKEN="+token, "WORKER_CONCURRENCY=2")
	testenv.WaitFor(t, 60*time.Second, "the worker's /healthz", func() bool {
		return do(t, "GET", base+"/healthz", "", "") == http.StatusOK
	}, w.Logs)

	ctx := chromium(t) // started first: on a busy machine it takes a while
	exit, out, errOut := d.Enqueue(t, time.Minute, "backfill", "--since", day.Format(time.DateOnly),
		"--until", day.AddDate(0, 0, 1).Format(time.DateOnly))
	if exit != 0 {
		t.Fatalf("enqueue backfill exited %d\n%s%s", exit, out, errOut)
	}
	run := strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])

	if err := chromedp.Do(ctx, withAuth("operator", token), chromedp.Navigate(base+"/ui/")); err != nil {
		t.Fatal(err)
	}
	row := fmt.Sprintf(`tr[data-run=%q]`, run)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(row))); err != nil {
		t.Fatalf("the runs list does not show run %s: %v", run, err)
	}
	if got := js[string](t, ctx, `document.querySelector('`+row+` td:nth-child(2) .kind').textContent`); got != "backfill" {
		t.Fatalf("the run's kind reads %q, want backfill", got)
	}
	if got := js[string](t, ctx, `document.querySelector('`+row+` .source').textContent`); got != "messaging" {
		t.Fatalf("the run's source reads %q, want messaging", got)
	}
	if got := js[string](t, ctx, `document.querySelector('`+row+` .scope').textContent`); got != "2026-05-01 – 2026-05-02" {
		t.Fatalf("the run's range reads %q", got)
	}

	// Into the run's page, by its link, as an operator clicks.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(row+" a"))); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(".big progress"))); err != nil {
		t.Fatal(err)
	}
	// Read the bar as the page refreshes itself, without reloading it.
	type bar struct {
		Value float64 `json:"value"`
		Max   float64 `json:"max"`
		State string  `json:"state"`
	}
	read := func() bar {
		return js[bar](t, ctx, `(() => { const p = document.querySelector('.big progress');
			return {value: p.value, max: p.max, state: document.querySelector('.head .state').textContent}; })()`)
	}
	var seen []bar
	testenv.WaitFor(t, 90*time.Second, "the run's page to show it finished", func() bool {
		b := read()
		if len(seen) == 0 || b != seen[len(seen)-1] {
			seen = append(seen, b)
		}
		return b.State == "failed" || b.State == "succeeded"
	}, w.Logs, func() string { return fmt.Sprintf("bars seen: %+v", seen) })
	t.Logf("progress seen: %+v", seen)
	last := seen[len(seen)-1]
	if last.State != "failed" || last.Value != float64(len(in)) || last.Max != float64(len(in)) {
		t.Fatalf("the finished run reads %+v, want failed with %d of %d media done", last, len(in), len(in))
	}
	moved := false
	for i := 1; i < len(seen); i++ {
		if seen[i].Value < seen[i-1].Value {
			t.Fatalf("the progress bar went back: %+v", seen)
		}
		if seen[i-1].State == "running" && seen[i].Value > seen[i-1].Value {
			moved = true
		}
	}
	if !moved {
		t.Fatalf("the progress bar was never seen to move while the run was running: %+v", seen)
	}

	// The failure, with its SID and Twilio's reason.
	failures := js[[]string](t, ctx, `[...document.querySelectorAll('#failures tr.failure')].map(r => r.textContent)`)
	if len(failures) != 1 || !strings.Contains(failures[0], refused) ||
		!strings.Contains(failures[0], fmt.Sprint(code)) || !strings.Contains(failures[0], message) {
		t.Fatalf("the failures table reads %q; want the one media %s with Twilio's %d %q", failures, refused, code, message)
	}
	if got := js[string](t, ctx, `document.querySelector('.counters .bad b').textContent`); got != "1" {
		t.Fatalf("the failed counter reads %q, want 1", got)
	}
	noOverflow(t, ctx)
	screenshot(t, ctx, "run-page.png")

	// More runs for the list: a dry run of the same day, which succeeds,
	// and three days still going when the list is taken.
	if exit, out, errOut := d.Enqueue(t, time.Minute, "backfill", "--since", day.Format(time.DateOnly),
		"--until", day.AddDate(0, 0, 1).Format(time.DateOnly), "--dry-run", "--wait"); exit != 0 {
		t.Fatalf("dry run exited %d\n%s%s", exit, out, errOut)
	}
	if exit, out, errOut := d.Enqueue(t, time.Minute, "backfill", "--since", day.AddDate(0, 0, 1).Format(time.DateOnly),
		"--until", day.AddDate(0, 0, 4).Format(time.DateOnly), "--delete"); exit != 0 {
		t.Fatalf("backfill exited %d\n%s%s", exit, out, errOut)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ui/")); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "three runs listed, the newest running", func() bool {
		states := js[[]string](t, ctx, `[...document.querySelectorAll('table.runs tbody .state')].map(s => s.textContent)`)
		return len(states) == 3 && states[0] == "running" && states[1] == "succeeded" && states[2] == "failed"
	})
	testenv.WaitFor(t, 30*time.Second, "the running run to have archived some media", func() bool {
		return js[float64](t, ctx, `document.querySelector('table.runs tbody progress').value`) > 0
	})
	noOverflow(t, ctx)
	screenshot(t, ctx, "runs-page.png")

	// The queues, in asynqmon under /ui/ (its own script renders them).
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ui/queues/")); err != nil {
		t.Fatal(err)
	}
	media := d.Env["MEDIASYNC_NAMESPACE"]
	testenv.WaitFor(t, 30*time.Second, "asynqmon to list the media queue", func() bool {
		return strings.Contains(js[string](t, ctx, `document.body.innerText`), media)
	}, func() string { return js[string](t, ctx, `document.body.innerText`) })

	// A tab without the token: its page and its own requests get 401.
	bare, cancel := chromedp.NewContext(ctx)
	defer cancel()
	if err := chromedp.Do(bare, cancelAuthPrompts()); err != nil {
		t.Fatal(err)
	}
	resp, err := chromedp.Run(bare, chromedp.NavigateResponse(base+"/ui/runs/"+run))
	if err != nil || resp.Status != http.StatusUnauthorized {
		t.Fatalf("the run's page in a tab without the token: %v %v, want 401", resp, err)
	}
	if body := js[string](t, bare, `document.body.textContent`); strings.Contains(body, refused) {
		t.Fatalf("the 401 page shows the run: %s", body)
	}
	for _, auth := range []string{"operator:wrong", ":", "operator:" + token + "x"} {
		got := js[float64](t, bare, fmt.Sprintf(`fetch('/ui/', {headers: {Authorization: 'Basic ' + btoa(%q)}}).then(r => r.status)`, auth))
		if got != http.StatusUnauthorized {
			t.Fatalf("the browser's GET /ui/ as %q got %v, want 401", auth, got)
		}
	}

	// And from outside the browser: every path under /ui/ asks for the
	// token, any user name goes, and the queue UI is read-only.
	for _, c := range []struct {
		method, path, user, password string
		want                         int
	}{
		{"GET", "/ui/", "", "", http.StatusUnauthorized},
		{"GET", "/ui/", "operator", "s3cret-ui-toke", http.StatusUnauthorized},
		{"GET", "/ui/runs/" + run, "", "", http.StatusUnauthorized},
		{"GET", "/ui/static/style.css", "", "", http.StatusUnauthorized},
		{"GET", "/ui/queues/", "", "", http.StatusUnauthorized},
		{"GET", "/ui/queues/api/queues", token, "", http.StatusUnauthorized},
		{"GET", "/ui/", "anyone", token, http.StatusOK},
		{"GET", "/ui/runs/" + run, "", token, http.StatusOK},
		{"GET", "/ui/policies", "x", token, http.StatusOK},
		{"GET", "/ui/holds", "x", token, http.StatusOK},
		{"GET", "/ui/exports", "x", token, http.StatusOK},
		{"GET", "/ui/queues/", "x", token, http.StatusOK},
		{"GET", "/ui/queues/api/queues", "x", token, http.StatusOK},
		{"POST", "/ui/queues/api/queues/" + d.Env["MEDIASYNC_NAMESPACE"] + ":media:pause", "x", token, http.StatusMethodNotAllowed},
		{"DELETE", "/ui/queues/api/queues/" + d.Env["MEDIASYNC_NAMESPACE"] + ":media", "x", token, http.StatusMethodNotAllowed},
	} {
		if got := do(t, c.method, base+c.path, c.user, c.password); got != c.want {
			t.Errorf("%s %s as %q:%q: %d, want %d", c.method, c.path, c.user, c.password, got, c.want)
		}
	}
}

// Without MEDIASYNC_UI_TOKEN the worker serves no UI at all, and says so.
func TestNoTokenNoUI(t *testing.T) {
	t.Parallel()
	d := e2etest.New(t, e2etest.Options{})
	port, err := devtools.FreeLoopbackPort()
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	w := d.StartWorker(t, fmt.Sprintf("HTTP_ADDR=127.0.0.1:%d", port))
	testenv.WaitFor(t, 60*time.Second, "the worker's /healthz", func() bool {
		return do(t, "GET", base+"/healthz", "", "") == http.StatusOK
	}, w.Logs)
	for _, path := range []string{"/ui/", "/ui/queues/", "/ui/runs/x"} {
		if got := do(t, "GET", base+path, "x", "anything"); got != http.StatusNotFound {
			t.Errorf("GET %s without a token configured: %d, want 404", path, got)
		}
	}
	if !strings.Contains(w.Logs(), "MEDIASYNC_UI_TOKEN is not set") {
		t.Errorf("the worker's log does not say the UI is off:\n%s", w.Logs())
	}
}

// do sends a request (with basic auth when user or password is set) and
// returns the answer's status; 0 when nothing answers.
func do(t *testing.T, method, url, user, password string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" || password != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
