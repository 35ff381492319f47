package catalog

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The reads of the web UI (internal/webui): a page of runs with their
// progress, and a run's failures and windows a page at a time. Each page
// starts after a cursor (the last row of the previous page), never at an
// offset, so the thousandth page costs what the first does.

// RunSummary is a run as the runs list shows it: the run and how far it
// has come.
type RunSummary struct {
	Run
	Source                    string // messaging, conversations…
	WindowsTotal, WindowsDone int
	MediaFound                int
	MediaDone                 int // in a final state (with --delete, archived is not final)
	MediaFailed               int // failed or suspect
}

// RunsPageFilter selects a page of runs: newest first, after the run
// Before (uuid.Nil: from the newest), only in State when set.
type RunsPageFilter struct {
	State  RunState
	Before uuid.UUID
	Limit  int
}

// RunsPage returns a page of runs, newest first, with their progress. The
// counts read each run's rows through the (run_id, state) indexes, so a
// page costs its runs' sizes, not the catalog's.
func (c *Catalog) RunsPage(ctx context.Context, f RunsPageFilter) ([]RunSummary, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	var before *uuid.UUID
	if f.Before != uuid.Nil {
		before = &f.Before
	}
	rows, err := c.pool.Query(ctx, `
		SELECT `+runColumns+`, r.source, w.total, w.done,
			CASE WHEN r.kind = 'export' THEN x.found ELSE m.found END,
			CASE WHEN r.kind = 'export' THEN x.done ELSE m.done END,
			CASE WHEN r.kind = 'export' THEN x.failed ELSE m.failed END
		FROM (
			SELECT * FROM runs
			WHERE ($1::text = '' OR state = $1)
			  AND ($2::uuid IS NULL OR (created_at, id) < (SELECT created_at, id FROM runs WHERE id = $2))
			ORDER BY created_at DESC, id DESC LIMIT $3) r
		CROSS JOIN LATERAL (
			SELECT count(*) AS total, count(*) FILTER (WHERE state <> 'pending') AS done
			FROM run_windows WHERE run_id = r.id) w
		CROSS JOIN LATERAL (
			SELECT count(*) AS found,
				count(*) FILTER (WHERE NOT (state = 'pending' OR (delete_wanted AND state = 'archived'))) AS done,
				count(*) FILTER (WHERE state IN ('failed', 'suspect')) AS failed
			FROM run_media WHERE run_id = r.id) m
		CROSS JOIN LATERAL ( -- an export's media are its own rows
			SELECT count(*) AS found, count(*) FILTER (WHERE state <> 'pending') AS done,
				count(*) FILTER (WHERE state = 'failed') AS failed
			FROM export_media WHERE run_id = r.id) x
		ORDER BY r.created_at DESC, r.id DESC`, string(f.State), before, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("runs page: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (RunSummary, error) {
		var s RunSummary
		var err error
		s.Run, err = scanRun(row, &s.Source, &s.WindowsTotal, &s.WindowsDone, &s.MediaFound, &s.MediaDone, &s.MediaFailed)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("runs page: %w", err)
	}
	return out, nil
}

// RunWindow is one of a run's windows as its page lists them.
type RunWindow struct {
	Seq              int
	StartsAt, EndsAt time.Time
	State            WindowState
	Pages            int
	Released         bool // its page task is (or was) queued
	Error            string
}

// RunWindowsPage returns up to limit windows of a run with seq > after
// (-1 for the first page), in order.
func (c *Catalog) RunWindowsPage(ctx context.Context, id uuid.UUID, after, limit int) ([]RunWindow, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := c.pool.Query(ctx, `
		SELECT seq, starts_at, ends_at, state, page, released_at IS NOT NULL, coalesce(error, '')
		FROM run_windows WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, id, after, limit)
	if err != nil {
		return nil, fmt.Errorf("run %s windows: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RunWindow, error) {
		var w RunWindow
		err := r.Scan(&w.Seq, &w.StartsAt, &w.EndsAt, &w.State, &w.Pages, &w.Released, &w.Error)
		w.StartsAt, w.EndsAt = w.StartsAt.UTC(), w.EndsAt.UTC()
		return w, err
	})
	if err != nil {
		return nil, fmt.Errorf("run %s windows: %w", id, err)
	}
	return out, nil
}

// Listing says what a running run's listing is doing: what it waits on
// and since when, or how many days it lists at a time. `enqueue status`
// and the web UI both show it.
func (s Status) Listing(now time.Time) string {
	if s.Waiting != "" {
		return fmt.Sprintf("waiting since %s (%s): %s", s.WaitingSince.Format(time.RFC3339),
			now.Sub(s.WaitingSince).Round(time.Second), s.Waiting)
	}
	return fmt.Sprintf("%d days at a time, in order", s.WindowsListing)
}

// MediaDone is how many of the media found are in a final state: neither
// pending nor, with --delete, archived and still to delete.
func (s Status) MediaDone() int {
	done := s.MediaFound - s.MediaPending
	if s.Delete {
		done -= s.MediaArchived - s.MediaDeleted // archived, not yet deleted
	}
	return done
}
