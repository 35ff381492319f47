package catalog

import (
	"context"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Reads for operators (enqueue runs / failures, the /ui/ pages): each is
// bounded by a limit or paged, so a run of millions of media costs the same
// to look at as a small one.

// RunFilter selects runs for ListRuns.
type RunFilter struct {
	State   RunState // "" for every state
	Kind    string   // "" for every kind
	Account string   // "" for every account
	Before  time.Time
	Limit   int // at most MaxRunsListed; 0 means DefaultRunsListed
}

// DefaultRunsListed and MaxRunsListed bound ListRuns.
const (
	DefaultRunsListed = 50
	MaxRunsListed     = 1000
)

// ValidRunState reports whether s names a run state.
func ValidRunState(s string) bool {
	switch RunState(s) {
	case RunQueued, RunRunning, RunSucceeded, RunFailed, RunCancelled:
		return true
	}
	return false
}

// ValidRunKind reports whether s names a run kind.
func ValidRunKind(s string) bool {
	switch s {
	case KindBackfill, KindMessage, KindPolicy, KindExport, KindRetry, KindVerify, KindRestore:
		return true
	}
	return false
}

// ListRuns returns runs newest first, as f selects; Before pages on from the
// creation time of the last run of the previous page.
func (c *Catalog) ListRuns(ctx context.Context, f RunFilter) ([]Run, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultRunsListed
	}
	limit = min(limit, MaxRunsListed)
	rows, err := c.pool.Query(ctx, `SELECT `+runColumns+` FROM runs
		WHERE ($1 = '' OR state = $1) AND ($2 = '' OR kind = $2) AND ($3 = '' OR account_sid = $3)
		  AND ($4::timestamptz IS NULL OR created_at < $4)
		ORDER BY created_at DESC, id DESC LIMIT $5`,
		string(f.State), f.Kind, f.Account, nullTime(f.Before), limit)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	runs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Run, error) { return scanRun(r) })
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return runs, nil
}

// Failure kinds, in the order RunFailures lists them.
const (
	FailureExport  = "export"  // an export's media that could not be exported
	FailureMedia   = "media"   // a media that failed
	FailureMessage = "message" // a message whose media could not be listed
	FailureSuspect = "suspect" // a media whose download was not plausibly it
	FailureVerify  = "verify"  // a verify run's object that did not match
	FailureWindow  = "window"  // a day whose listing failed
	// FailureConversation is a conversation whose scan failed (a
	// Conversations run): its messages were not all listed.
	FailureConversation = "conversation"
)

// RunFailure is one failed item of a run. Key orders items within a kind
// and, with Kind, is the cursor of the next page.
type RunFailure struct {
	Kind   string `json:"kind"`
	SID    string `json:"sid"` // media or message SID; "window N" for a window
	Reason string `json:"reason"`
	Key    string `json:"-"`
}

// FailureCursor is where a page of RunFailures starts: after this item.
// The zero value starts at the first.
type FailureCursor struct{ Kind, Key string }

// Cursor is where the page after f starts.
func (f RunFailure) Cursor() FailureCursor { return FailureCursor{Kind: f.Kind, Key: f.Key} }

// String is the cursor as text, kind/key (for a URL); ParseFailureCursor
// reads it back.
func (c FailureCursor) String() string {
	if c.Kind == "" {
		return ""
	}
	return c.Kind + "/" + c.Key
}

// ParseFailureCursor reads a FailureCursor's String; "" is the first page.
func ParseFailureCursor(s string) (FailureCursor, error) {
	if s == "" {
		return FailureCursor{}, nil
	}
	kind, key, ok := strings.Cut(s, "/")
	if ok {
		for _, k := range failureKinds {
			if k.kind == kind {
				return FailureCursor{Kind: kind, Key: key}, nil
			}
		}
	}
	return FailureCursor{}, &InvalidError{Field: "after", Value: s, Reason: "is not a failures cursor"}
}

// failureKinds are the queries of each kind of failed item, in the order
// RunFailures lists them: each pages on its own partial index (migration
// 00029), so a page costs the same however many failed or succeeded.
var failureKinds = []struct {
	kind, query string
}{
	{FailureExport, `SELECT media_sid, media_sid, coalesce(error, '') FROM export_media
		WHERE run_id = $1 AND state = 'failed' AND media_sid > $2 ORDER BY media_sid LIMIT $3`},
	{FailureMedia, `SELECT media_sid, media_sid, coalesce(error, '') FROM run_media
		WHERE run_id = $1 AND state = 'failed' AND media_sid > $2 ORDER BY media_sid LIMIT $3`},
	{FailureMessage, `SELECT message_sid, message_sid, coalesce(error, '') FROM run_messages
		WHERE run_id = $1 AND state = 'failed' AND message_sid > $2 ORDER BY message_sid LIMIT $3`},
	{FailureSuspect, `SELECT media_sid, media_sid, coalesce(error, '') FROM run_media
		WHERE run_id = $1 AND state = 'suspect' AND media_sid > $2 ORDER BY media_sid LIMIT $3`},
	{FailureVerify, `SELECT media_sid, media_sid, state || ': ' || coalesce(error, '') FROM run_verify
		WHERE run_id = $1 AND state NOT IN ('pending', 'ok') AND media_sid > $2 ORDER BY media_sid LIMIT $3`},
	// The key of a window is its number, zero-padded so it orders as text.
	{FailureWindow, `SELECT lpad(seq::text, 10, '0'),
			'window ' || seq || ' (' || to_char(starts_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') || ')', coalesce(error, '')
		FROM run_windows WHERE run_id = $1 AND state = 'failed' AND lpad(seq::text, 10, '0') > $2 ORDER BY seq LIMIT $3`},
	// Pages on the primary key (run_id, conversation_sid): a run's failed
	// scans are few, and its conversations are read past, not sorted.
	{FailureConversation, `SELECT conversation_sid, conversation_sid, coalesce(error, '') FROM run_conversations
		WHERE run_id = $1 AND state = 'failed' AND conversation_sid > $2 ORDER BY conversation_sid LIMIT $3`},
}

// RunFailures returns up to limit failed items of a run after the cursor,
// ordered by kind (as failureKinds) then SID (windows by number).
func (c *Catalog) RunFailures(ctx context.Context, runID uuid.UUID, after FailureCursor, limit int) ([]RunFailure, error) {
	var out []RunFailure
	started := after.Kind == ""
	for _, k := range failureKinds {
		if !started {
			if k.kind != after.Kind {
				continue
			}
			started = true
		}
		if len(out) >= limit {
			break
		}
		key := ""
		if k.kind == after.Kind {
			key = after.Key
		}
		rows, err := c.pool.Query(ctx, k.query, runID, key, limit-len(out))
		if err != nil {
			return nil, fmt.Errorf("failures of run %s: %w", runID, err)
		}
		fs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RunFailure, error) {
			f := RunFailure{Kind: k.kind}
			return f, r.Scan(&f.Key, &f.SID, &f.Reason)
		})
		if err != nil {
			return nil, fmt.Errorf("failures of run %s: %w", runID, err)
		}
		out = append(out, fs...)
	}
	return out, nil
}

// failuresPage is how many failures AllRunFailures reads per query.
const failuresPage = 500

// AllRunFailures yields every failed item of a run, a page at a time:
// memory holds one page, however many failed.
func (c *Catalog) AllRunFailures(ctx context.Context, runID uuid.UUID) iter.Seq2[RunFailure, error] {
	return func(yield func(RunFailure, error) bool) {
		var cur FailureCursor
		for {
			page, err := c.RunFailures(ctx, runID, cur, failuresPage)
			if err != nil {
				yield(RunFailure{}, err)
				return
			}
			for _, f := range page {
				if !yield(f, nil) {
					return
				}
			}
			if len(page) < failuresPage {
				return
			}
			last := page[len(page)-1]
			cur = FailureCursor{Kind: last.Kind, Key: last.Key}
		}
	}
}

// FailureCounts counts a run's failed items by kind; kinds with none are
// left out.
func (c *Catalog) FailureCounts(ctx context.Context, runID uuid.UUID) (map[string]int, error) {
	var n [7]int
	err := c.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM export_media WHERE run_id = $1 AND state = 'failed'),
		(SELECT count(*) FROM run_media WHERE run_id = $1 AND state = 'failed'),
		(SELECT count(*) FROM run_messages WHERE run_id = $1 AND state = 'failed'),
		(SELECT count(*) FROM run_media WHERE run_id = $1 AND state = 'suspect'),
		(SELECT count(*) FROM run_verify WHERE run_id = $1 AND state NOT IN ('pending', 'ok')),
		(SELECT count(*) FROM run_windows WHERE run_id = $1 AND state = 'failed'),
		(SELECT count(*) FROM run_conversations WHERE run_id = $1 AND state = 'failed')`, runID).
		Scan(&n[0], &n[1], &n[2], &n[3], &n[4], &n[5], &n[6])
	if err != nil {
		return nil, fmt.Errorf("failure counts of run %s: %w", runID, err)
	}
	out := map[string]int{}
	for i, k := range failureKinds {
		if n[i] > 0 {
			out[k.kind] = n[i]
		}
	}
	return out, nil
}
