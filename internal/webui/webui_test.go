package webui_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/retention"
	"github.com/mediasync/mediasync/internal/webui"
)

// fakeReads is a catalog of a few runs, for the pages' rendering; the
// queries themselves are tested against Postgres in catalog.
type fakeReads struct {
	runs     []catalog.RunSummary
	status   map[uuid.UUID]catalog.Status
	failures []catalog.RunFailure
	policies []catalog.PolicyHealth
	holds    []catalog.Hold
	exports  []catalog.Export
	files    []catalog.ExportItem
	err      error

	gotFilter catalog.RunsPageFilter
	gotAfter  string
}

func (f *fakeReads) RunsPage(_ context.Context, p catalog.RunsPageFilter) ([]catalog.RunSummary, error) {
	f.gotFilter = p
	var out []catalog.RunSummary
	for _, r := range f.runs {
		if (p.Before == uuid.Nil || r.ID.String() < p.Before.String()) && len(out) < p.Limit {
			out = append(out, r)
		}
	}
	return out, f.err
}

func (f *fakeReads) RunStatus(_ context.Context, id uuid.UUID) (catalog.Status, error) {
	s, ok := f.status[id]
	if !ok {
		return s, catalog.ErrRunNotFound
	}
	return s, nil
}

func (f *fakeReads) RunFailures(_ context.Context, _ uuid.UUID, after catalog.FailureCursor, limit int) ([]catalog.RunFailure, error) {
	f.gotAfter = after.String()
	var out []catalog.RunFailure
	for _, x := range f.failures {
		if x.Cursor().String() > after.String() && len(out) < limit {
			out = append(out, x)
		}
	}
	return out, nil
}

func (f *fakeReads) RunWindowsPage(context.Context, uuid.UUID, int, int) ([]catalog.RunWindow, error) {
	return []catalog.RunWindow{{Seq: 0, StartsAt: day, EndsAt: day.AddDate(0, 0, 1), State: catalog.WindowPending, Released: true}}, nil
}

func (f *fakeReads) Policies(context.Context, string) ([]catalog.Policy, error) {
	var out []catalog.Policy
	for _, h := range f.policies {
		out = append(out, h.Policy)
	}
	return out, f.err
}

func (f *fakeReads) PolicyHealth(_ context.Context, p catalog.Policy, _ time.Time) (catalog.PolicyHealth, error) {
	for _, h := range f.policies {
		if h.Name == p.Name {
			return h, nil
		}
	}
	return catalog.PolicyHealth{}, errors.New("unknown policy")
}

func (f *fakeReads) Holds(context.Context, bool) ([]catalog.Hold, error) { return f.holds, f.err }

func (f *fakeReads) ListExports(context.Context, int) ([]catalog.Export, error) {
	return f.exports, f.err
}

func (f *fakeReads) ExportCounts(context.Context, uuid.UUID) (catalog.ExportCounts, error) {
	return catalog.ExportCounts{Total: 3, Exported: 2, Failed: 1, Bytes: 2048}, nil
}

func (f *fakeReads) ExportItems(_ context.Context, _ uuid.UUID, from, to int, _ bool) iter.Seq2[catalog.ExportItem, error] {
	return func(yield func(catalog.ExportItem, error) bool) {
		for _, it := range f.files {
			if it.Seq >= from && it.Seq < to && !yield(it, nil) {
				return
			}
		}
	}
}

const evil = `<script>alert("x")</script>`

var now = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

func newUI(t *testing.T, f *fakeReads) http.Handler {
	t.Helper()
	h, err := webui.New(webui.Options{Reads: f, Account: "AC1", Token: "tok", Now: func() time.Time { return now }, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.SetBasicAuth("", "tok")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b)
}

func run(i int, state catalog.RunState) catalog.RunSummary {
	id := uuid.MustParse(fmt.Sprintf("01900000-0000-7000-8000-%012d", i))
	return catalog.RunSummary{Run: catalog.Run{ID: id, Kind: catalog.KindBackfill, State: state, Actor: evil,
		Since: day, Until: day.AddDate(0, 0, 1), From: evil, CreatedAt: now.Add(-time.Hour)},
		Source: "messaging", MediaFound: 10, MediaDone: 4}
}

func TestNewRefusesNoToken(t *testing.T) {
	if _, err := webui.New(webui.Options{Reads: &fakeReads{}}); err == nil {
		t.Fatal("New served a UI without a token")
	}
}

// What Twilio, a caller or an operator wrote (reasons, numbers, names)
// is shown as text, never run as markup.
func TestPagesEscapeWhatTheyShow(t *testing.T) {
	r := run(1, catalog.RunRunning)
	f := &fakeReads{
		runs:     []catalog.RunSummary{r},
		status:   map[uuid.UUID]catalog.Status{r.ID: {Run: r.Run, MediaFound: 10, Waiting: evil, WindowsTotal: 2, WaitingSince: now.Add(-time.Minute)}},
		failures: []catalog.RunFailure{{Kind: "media", SID: "ME1", Reason: evil, Key: "ME1"}},
		policies: []catalog.PolicyHealth{{Policy: catalog.Policy{Name: "p", From: evil, Schedule: "@daily"}}},
		holds:    []catalog.Hold{{ID: 1, Reason: evil, MessageSIDs: []string{"MM1"}}},
		exports:  []catalog.Export{{Run: catalog.Run{ID: r.ID, State: catalog.RunRunning, Kind: catalog.KindExport}, Out: evil}},
	}
	for _, path := range []string{"/ui/", "/ui/runs/" + r.ID.String(), "/ui/policies", "/ui/holds", "/ui/exports"} {
		code, body := get(t, newUI(t, f), path)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d\n%s", path, code, body)
		}
		if strings.Contains(body, evil) || !strings.Contains(body, "&lt;script&gt;") {
			t.Errorf("GET %s does not escape %s:\n%s", path, evil, body)
		}
	}
}

// The runs list pages by cursor: a full page links to the next, which
// asks for the runs before the last one shown.
func TestRunsListPagesByCursor(t *testing.T) {
	f := &fakeReads{}
	for i := 60; i > 0; i-- {
		f.runs = append(f.runs, run(i, catalog.RunSucceeded))
	}
	h := newUI(t, f)
	code, body := get(t, h, "/ui/?state=succeeded")
	if code != http.StatusOK || strings.Count(body, "<tr data-run=") != 50 {
		t.Fatalf("first page: %d, %d rows", code, strings.Count(body, "<tr data-run="))
	}
	if strings.Contains(body, `data-refresh`) {
		t.Error("a page of finished runs refreshes itself")
	}
	i := strings.Index(body, `href="/ui/?before=`)
	if i < 0 {
		t.Fatalf("no link to older runs:\n%s", body)
	}
	link := body[i+len(`href="`):]
	link = strings.ReplaceAll(link[:strings.IndexByte(link, '"')], "&amp;", "&")
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	if u.Query().Get("state") != "succeeded" || u.Query().Get("before") != f.runs[49].ID.String() {
		t.Fatalf("next page link %s, want before=%s with the state kept", link, f.runs[49].ID)
	}
	code, body = get(t, h, link)
	if code != http.StatusOK || strings.Count(body, "<tr data-run=") != 10 || strings.Contains(body, `?before=`) {
		t.Fatalf("second page: %d, %d rows", code, strings.Count(body, "<tr data-run="))
	}
	if f.gotFilter.Before != f.runs[49].ID || f.gotFilter.State != catalog.RunSucceeded {
		t.Fatalf("second page asked for %+v", f.gotFilter)
	}
}

// Bad query parameters are the caller's error, named; an unknown run is
// 404; a catalog that fails is 500 without its error on the page.
func TestBadRequests(t *testing.T) {
	r := run(1, catalog.RunFailed)
	f := &fakeReads{runs: []catalog.RunSummary{r}, status: map[uuid.UUID]catalog.Status{r.ID: {Run: r.Run}}}
	h := newUI(t, f)
	for _, c := range []struct {
		path string
		code int
		says string
	}{
		{"/ui/?state=bogus", http.StatusBadRequest, "state"},
		{"/ui/?before=nope", http.StatusBadRequest, "before"},
		{"/ui/runs/" + r.ID.String() + "?windows_after=x", http.StatusBadRequest, "windows_after"},
		{"/ui/runs/" + r.ID.String() + "?files_from=-2", http.StatusOK, ""}, // not an export: no files
		{"/ui/runs/not-a-uuid", http.StatusNotFound, "no such run"},
		{"/ui/runs/" + uuid.NewString(), http.StatusNotFound, "no such run"},
		{"/ui/nothing-here", http.StatusNotFound, ""},
	} {
		code, body := get(t, h, c.path)
		if code != c.code || !strings.Contains(body, c.says) {
			t.Errorf("GET %s: %d %q, want %d naming %q", c.path, code, body, c.code, c.says)
		}
	}
	f.err = errors.New("password=hunter2 connection refused")
	code, body := get(t, h, "/ui/")
	if code != http.StatusInternalServerError || strings.Contains(body, "hunter2") {
		t.Errorf("a failing catalog: %d %q", code, body)
	}
}

// A run's page: the live part refreshes while the run goes on, shows what
// its listing waits on, pages its failures by cursor; an export's page
// lists its files.
func TestRunPage(t *testing.T) {
	r := run(1, catalog.RunRunning)
	e := run(2, catalog.RunSucceeded)
	e.Kind = catalog.KindExport
	f := &fakeReads{status: map[uuid.UUID]catalog.Status{
		r.ID: {Run: r.Run, MediaFound: 10, MediaPending: 6, WindowsTotal: 3, WindowsDone: 1,
			Waiting: "the media queue holds 5000 tasks", WaitingSince: now.Add(-90 * time.Second)},
		e.ID: {Run: e.Run, Export: &catalog.Export{Run: e.Run, Format: "zip", Out: "s3://b/p", OutputKey: "p/export.zip"},
			Exports: catalog.ExportCounts{Total: 2, Exported: 2}},
	}}
	for i := range 150 {
		sid := "ME" + strings.Repeat("0", 29) + string(rune('a'+i/100)) + string(rune('a'+i/10%10)) + string(rune('a'+i%10))
		f.failures = append(f.failures, catalog.RunFailure{Kind: "media", SID: sid, Reason: "broke", Key: sid})
	}
	f.files = []catalog.ExportItem{{Seq: 0, Path: "media/2026/05/01/ME1.jpg", MediaSID: "ME1", Size: 1024, State: "exported"}}
	h := newUI(t, f)

	code, body := get(t, h, "/ui/runs/"+r.ID.String())
	if code != http.StatusOK {
		t.Fatalf("%d\n%s", code, body)
	}
	for _, want := range []string{`data-refresh="2"`, `<progress max="10" value="4">`,
		"waiting since 2026-12-02T11:58:30Z (1m30s): the media queue holds 5000 tasks", `failures_after=media%2F`} {
		if !strings.Contains(body, want) {
			t.Errorf("the running run's page lacks %q", want)
		}
	}
	if strings.Contains(body, "Twilio purged") {
		t.Error("a backfill inside the default window says Twilio purged part of it")
	}
	// The same run under a 30-day window: its day is past it.
	short, err := webui.New(webui.Options{Reads: f, Account: "AC1", Token: "tok", Now: func() time.Time { return now },
		Log: zerolog.Nop(), TwilioRetention: retention.Days(30)})
	if err != nil {
		t.Fatal(err)
	}
	if _, sb := get(t, short, "/ui/runs/"+r.ID.String()); !strings.Contains(sb, "media sent before 2026-11-02 (Twilio keeps 30 days, TWILIO_RETENTION_DAYS)") {
		t.Errorf("the run page under a 30-day window does not say what Twilio purged:\n%s", sb)
	}
	if n := strings.Count(body, `<tr class="failure">`); n != 100 {
		t.Errorf("%d failures on the first page, want 100", n)
	}
	code, body = get(t, h, "/ui/runs/"+r.ID.String()+"?failures_after="+url.QueryEscape(f.failures[99].Cursor().String()))
	if n := strings.Count(body, `<tr class="failure">`); code != http.StatusOK || n != 50 || f.gotAfter != f.failures[99].Cursor().String() {
		t.Errorf("second page of failures: %d, %d rows, asked after %q", code, n, f.gotAfter)
	}

	q := run(3, catalog.RunQueued)
	f.status[q.ID] = catalog.Status{Run: q.Run}
	if code, body := get(t, h, "/ui/runs/"+q.ID.String()); code != http.StatusOK || !strings.Contains(body, "queued 1h ago: waiting for a worker") {
		t.Errorf("a queued run's page does not say it waits on a worker: %d\n%s", code, body)
	}

	code, body = get(t, h, "/ui/runs/"+e.ID.String())
	for _, want := range []string{"media/2026/05/01/ME1.jpg", "p/export.zip", "s3://b/p"} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("the export's page (%d) lacks %q", code, want)
		}
	}
	if strings.Contains(body, "data-refresh") {
		t.Error("a finished export's page refreshes itself")
	}
}

// The policies page says when Twilio purges the oldest media not yet
// archived, in red from the age the worker warns at, counting from
// TWILIO_RETENTION_DAYS: the same policies under 400 days and under 30.
func TestPoliciesShowThePurge(t *testing.T) {
	f := &fakeReads{policies: []catalog.PolicyHealth{
		{Policy: catalog.Policy{Name: "near", Schedule: "@daily"}, OldestUnsaved: now.AddDate(0, 0, -390), OldestUnsavedN: 3},
		{Policy: catalog.Policy{Name: "far", Schedule: "@daily"}, OldestUnsaved: now.AddDate(0, 0, -35), OldestUnsavedN: 1},
		{Policy: catalog.Policy{Name: "done", Schedule: "@daily"}},
	}}
	for _, tc := range []struct {
		window retention.Window
		want   []string
	}{
		{0, []string{`<span class="state state-failed">in 10d</span>`, `<span class="state state-succeeded">in 365d</span>`, "deletes messages and media 400 days after"}},
		{retention.Days(30), []string{`<span class="state state-failed">passed 360d ago</span>`, `<span class="state state-failed">passed 5d ago</span>`, "deletes messages and media 30 days after"}},
	} {
		h, err := webui.New(webui.Options{Reads: f, Account: "AC1", Token: "tok", Now: func() time.Time { return now }, Log: zerolog.Nop(), TwilioRetention: tc.window})
		if err != nil {
			t.Fatal(err)
		}
		code, body := get(t, h, "/ui/policies")
		if code != http.StatusOK {
			t.Fatal(code)
		}
		for _, want := range tc.want {
			if !strings.Contains(body, want) {
				t.Errorf("window %v: policies page lacks %q:\n%s", tc.window, want, body)
			}
		}
	}
}

// A Conversations run reads as one on the runs list and its page: its
// source named, its windows counted as the services they list, not days.
func TestConversationsRunShowsItsSource(t *testing.T) {
	r := run(1, catalog.RunRunning)
	r.Source, r.Run.Source, r.Run.Services = catalog.SourceConversations, catalog.SourceConversations, []string{"", "IS1"}
	r.WindowsTotal, r.WindowsDone = 2, 1
	f := &fakeReads{runs: []catalog.RunSummary{r}, status: map[uuid.UUID]catalog.Status{
		r.ID: {Run: r.Run, MediaFound: 10, WindowsTotal: 2, WindowsDone: 1},
	}}
	h := newUI(t, f)
	code, body := get(t, h, "/ui/")
	if code != http.StatusOK || !strings.Contains(body, `<div class="sub source">conversations</div>`) || !strings.Contains(body, "services 1 / 2") {
		t.Errorf("the runs list (%d) does not show a conversations run as one:\n%s", code, body)
	}
	code, body = get(t, h, "/ui/runs/"+r.ID.String())
	if code != http.StatusOK || !strings.Contains(body, "services listed") || strings.Contains(body, "days listed") {
		t.Errorf("the run's page (%d) counts a conversations run's windows as days:\n%s", code, body)
	}
}
