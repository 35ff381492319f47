// Package webui is the operator's web UI under /ui/ on the worker's
// HTTP_ADDR: runs newest first with their progress, one run's counters,
// failures, windows and what it waits on, policies against Twilio's purge,
// legal holds and exports with their files; asynqmon (read-only) for the
// queues under /ui/queues/.
//
// Pages are rendered on the server with html/template (which escapes every
// value) from templates and a stylesheet embedded in the binary: no build
// step, nothing fetched from elsewhere. A small script re-reads the page's
// live part while a run goes on. Everything under /ui/ asks for HTTP basic
// auth with the token as the password.
package webui

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/mediasync/mediasync/catalog"
	"github.com/mediasync/mediasync/internal/retention"
)

// Reads are the catalog reads the UI needs; *catalog.Catalog has them.
type Reads interface {
	RunsPage(ctx context.Context, f catalog.RunsPageFilter) ([]catalog.RunSummary, error)
	RunStatus(ctx context.Context, id uuid.UUID) (catalog.Status, error)
	RunFailures(ctx context.Context, id uuid.UUID, after catalog.FailureCursor, limit int) ([]catalog.RunFailure, error)
	RunWindowsPage(ctx context.Context, id uuid.UUID, after, limit int) ([]catalog.RunWindow, error)
	Policies(ctx context.Context, account string) ([]catalog.Policy, error)
	PolicyHealth(ctx context.Context, p catalog.Policy, now time.Time) (catalog.PolicyHealth, error)
	Holds(ctx context.Context, all bool) ([]catalog.Hold, error)
	ListExports(ctx context.Context, limit int) ([]catalog.Export, error)
	ExportCounts(ctx context.Context, id uuid.UUID) (catalog.ExportCounts, error)
	ExportItems(ctx context.Context, id uuid.UUID, from, to int, pendingOnly bool) iter.Seq2[catalog.ExportItem, error]
}

// Options configure the UI.
type Options struct {
	Reads   Reads
	Account string // the worker's Twilio account: its policies are shown
	// Token is the basic-auth password of every page; it must not be "".
	Token string
	// Queues, when set, is served under /ui/queues/ (asynqmon, rooted there).
	Queues http.Handler
	Now    func() time.Time // defaults to time.Now
	Log    zerolog.Logger
	// TwilioRetention is how long Twilio keeps the account's media
	// (TWILIO_RETENTION_DAYS); defaults to retention.Default.
	TwilioRetention retention.Window
}

// Page sizes: a page is one screen an operator reads, and one bounded query.
const (
	runsPerPage     = 50
	failuresPerPage = 100
	windowsPerPage  = 100
	filesPerPage    = 100
	exportsListed   = 50
)

//go:embed templates/*.html static/*
var assets embed.FS

// New returns the UI's handler, for the paths under /ui/.
func New(o Options) (http.Handler, error) {
	if o.Token == "" {
		return nil, errors.New("webui: no token: the UI must not be served without one")
	}
	o.TwilioRetention = cmp.Or(o.TwilioRetention, retention.Default)
	if o.Now == nil {
		o.Now = time.Now
	}
	pages := map[string]*template.Template{}
	for _, name := range []string{"runs", "run", "policies", "holds", "exports"} {
		t, err := template.New("layout.html").Funcs(funcs(o.Now)).ParseFS(assets, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("webui: template %s: %w", name, err)
		}
		pages[name] = t
	}
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, err
	}
	u := &ui{Options: o, pages: pages}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ui/{$}", u.runs)
	mux.HandleFunc("GET /ui/runs/{id}", u.run)
	mux.HandleFunc("GET /ui/policies", u.policies)
	mux.HandleFunc("GET /ui/holds", u.holds)
	mux.HandleFunc("GET /ui/exports", u.exports)
	mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", cacheFor(time.Hour, http.FileServerFS(static))))
	if o.Queues != nil {
		mux.Handle("GET /ui/queues/", o.Queues) // GET only: asynqmon is also ReadOnly
		mux.Handle("GET /ui/queues", http.RedirectHandler("/ui/queues/", http.StatusMovedPermanently))
	}
	return requireToken(o.Token, mux), nil
}

// requireToken answers 401 unless the request carries the token as its
// basic-auth password (any user name). Both sides are hashed first, so the
// constant-time compare also hides the token's length.
func requireToken(token string, next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pass, ok := r.BasicAuth()
		got := sha256.Sum256([]byte(pass))
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="mediasync", charset="UTF-8"`)
			http.Error(w, "401 unauthorized: the password is MEDIASYNC_UI_TOKEN", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func cacheFor(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", fmt.Sprintf("private, max-age=%d", int(d.Seconds())))
		next.ServeHTTP(w, r)
	})
}

type ui struct {
	Options
	pages map[string]*template.Template
}

// render writes a page whole, or an error page: the template runs into a
// buffer first, so a failure half-way never sends half a page.
func (u *ui) render(w http.ResponseWriter, r *http.Request, name string, data map[string]any) {
	data["Nav"] = name
	data["Now"] = u.Now()
	var b bytes.Buffer
	if err := u.pages[name].Execute(&b, data); err != nil {
		u.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// Only this origin's stylesheet and script; no frames, no forms elsewhere.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	_, _ = w.Write(b.Bytes())
}

func (u *ui) fail(w http.ResponseWriter, r *http.Request, err error) {
	var inv *catalog.InvalidError
	switch {
	case errors.As(err, &inv):
		http.Error(w, inv.Error(), http.StatusBadRequest)
	case errors.Is(err, catalog.ErrRunNotFound):
		http.Error(w, "no such run", http.StatusNotFound)
	default:
		u.Log.Error().Err(err).Str("path", r.URL.Path).Msg("web UI")
		http.Error(w, "the catalog could not be read; the worker's log says why", http.StatusInternalServerError)
	}
}

func badParam(name, value, reason string) error {
	return &catalog.InvalidError{Field: name, Value: value, Reason: reason}
}

func (u *ui) runs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := catalog.RunsPageFilter{State: catalog.RunState(q.Get("state")), Limit: runsPerPage + 1}
	switch f.State {
	case "", catalog.RunQueued, catalog.RunRunning, catalog.RunSucceeded, catalog.RunFailed:
	default:
		u.fail(w, r, badParam("state", q.Get("state"), "is not queued, running, succeeded or failed"))
		return
	}
	if v := q.Get("before"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			u.fail(w, r, badParam("before", v, "is not a run id"))
			return
		}
		f.Before = id
	}
	runs, err := u.Reads.RunsPage(r.Context(), f)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	data := map[string]any{"State": string(f.State), "First": f.Before == uuid.Nil}
	if len(runs) > runsPerPage {
		runs = runs[:runsPerPage]
		data["Next"] = pageURL(r, "before", runs[len(runs)-1].ID.String())
	}
	live := false
	for _, s := range runs {
		live = live || !s.Finished()
	}
	data["Runs"], data["Live"] = runs, live
	u.render(w, r, "runs", data)
}

func (u *ui) run(w http.ResponseWriter, r *http.Request) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		http.Error(w, "no such run", http.StatusNotFound)
		return
	}
	ctx, q := r.Context(), r.URL.Query()
	st, err := u.Reads.RunStatus(ctx, id)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	data := map[string]any{"S": st, "Live": !st.Finished()}
	if st.Kind == catalog.KindBackfill || st.Kind == catalog.KindPolicy {
		if d, past := u.TwilioRetention.PurgedBefore(st.Since, u.Now()); past {
			data["PurgedBefore"], data["RetentionDays"] = d, u.TwilioRetention.Days()
		}
	}
	switch {
	case st.State == catalog.RunQueued:
		// As enqueue status --wait warns: a run nobody starts waits on a worker.
		data["Listing"] = fmt.Sprintf("queued %s ago: waiting for a worker (on the same REDIS_URL and MEDIASYNC_NAMESPACE) to start it",
			human(u.Now().Sub(st.CreatedAt)))
	case st.State == catalog.RunRunning && st.WindowsTotal > st.WindowsDone:
		data["Listing"] = st.Listing(u.Now())
	}

	after, err := catalog.ParseFailureCursor(q.Get("failures_after"))
	if err != nil {
		u.fail(w, r, err)
		return
	}
	failures, err := u.Reads.RunFailures(ctx, id, after, failuresPerPage+1)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	if len(failures) > failuresPerPage {
		failures = failures[:failuresPerPage]
		data["FailuresNext"] = pageURL(r, "failures_after", failures[len(failures)-1].Cursor().String()) + "#failures"
	}
	data["Failures"], data["FailuresPaged"] = failures, after != catalog.FailureCursor{}

	windowsAfter := -1
	if v := q.Get("windows_after"); v != "" {
		if windowsAfter, err = strconv.Atoi(v); err != nil || windowsAfter < -1 {
			u.fail(w, r, badParam("windows_after", v, "is not a window number"))
			return
		}
	}
	windows, err := u.Reads.RunWindowsPage(ctx, id, windowsAfter, windowsPerPage+1)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	if len(windows) > windowsPerPage {
		windows = windows[:windowsPerPage]
		data["WindowsNext"] = pageURL(r, "windows_after", strconv.Itoa(windows[len(windows)-1].Seq)) + "#windows"
	}
	data["Windows"], data["WindowsPaged"] = windows, windowsAfter >= 0

	if st.Export != nil {
		from := 0
		if v := q.Get("files_from"); v != "" {
			if from, err = strconv.Atoi(v); err != nil || from < 0 {
				u.fail(w, r, badParam("files_from", v, "is not a file number"))
				return
			}
		}
		var files []catalog.ExportItem
		for it, err := range u.Reads.ExportItems(ctx, id, from, from+filesPerPage+1, false) {
			if err != nil {
				u.fail(w, r, err)
				return
			}
			files = append(files, it)
		}
		if len(files) > filesPerPage {
			files = files[:filesPerPage]
			data["FilesNext"] = pageURL(r, "files_from", strconv.Itoa(files[len(files)-1].Seq+1)) + "#files"
		}
		data["Files"], data["FilesPaged"] = files, from > 0
	}
	u.render(w, r, "run", data)
}

type policyRow struct {
	catalog.PolicyHealth
	PurgeAt time.Time // when Twilio purges the oldest unarchived media; zero if none
	PurgeIn string    // "in 40d", or "passed 3d ago"
	Danger  bool
}

func (u *ui) policies(w http.ResponseWriter, r *http.Request) {
	ctx, now := r.Context(), u.Now()
	ps, err := u.Reads.Policies(ctx, u.Account)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	rows := make([]policyRow, 0, len(ps))
	for _, p := range ps {
		h, err := u.Reads.PolicyHealth(ctx, p, now)
		if err != nil {
			u.fail(w, r, err)
			return
		}
		row := policyRow{PolicyHealth: h}
		if !h.OldestUnsaved.IsZero() {
			// In danger from the age the worker warns at.
			w := u.TwilioRetention
			row.PurgeAt = w.PurgeAt(h.OldestUnsaved)
			left := row.PurgeAt.Sub(now)
			row.PurgeIn, row.Danger = "in "+human(left), now.Sub(h.OldestUnsaved) > w.Warning()
			if left < 0 {
				row.PurgeIn = "passed " + human(-left) + " ago"
			}
		}
		rows = append(rows, row)
	}
	u.render(w, r, "policies", map[string]any{"Policies": rows, "Account": u.Account, "RetentionDays": u.TwilioRetention.Days()})
}

func (u *ui) holds(w http.ResponseWriter, r *http.Request) {
	all := r.URL.Query().Get("all") == "1"
	hs, err := u.Reads.Holds(r.Context(), all)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.render(w, r, "holds", map[string]any{"Holds": hs, "All": all})
}

type exportRow struct {
	catalog.Export
	Counts catalog.ExportCounts
}

func (u *ui) exports(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	es, err := u.Reads.ListExports(ctx, exportsListed)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	rows := make([]exportRow, 0, len(es))
	for _, e := range es {
		c, err := u.Reads.ExportCounts(ctx, e.ID)
		if err != nil {
			u.fail(w, r, err)
			return
		}
		rows = append(rows, exportRow{Export: e, Counts: c})
	}
	u.render(w, r, "exports", map[string]any{"Exports": rows, "Limit": exportsListed})
}

// pageURL is the request's URL with one query parameter set, for the link
// to the next page.
func pageURL(r *http.Request, key, value string) string {
	q := r.URL.Query()
	q.Set(key, value)
	return (&url.URL{Path: r.URL.Path, RawQuery: q.Encode()}).String()
}
