package main

import (
	"encoding/json"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/mediasync/mediasync/catalog"
)

// --json: each command writes one JSON document, an object, with
// snake_case field names that stay stable (README.md, "JSON output"): a
// field may be added, none renamed or removed. Times are RFC 3339 in UTC;
// a time or text not set is left out.

// writeJSON writes v as one indented JSON document.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// jsonTime is a time that is left out when zero.
func jsonTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func jsonUUID(id uuid.UUID) string {
	if id == uuid.Nil {
		return ""
	}
	return id.String()
}

// runJSON is a run as runs, status and the lists print it.
type runJSON struct {
	ID         string `json:"id"`
	Kind       string `json:"kind"`
	State      string `json:"state"`
	AccountSID string `json:"account_sid"`
	Source     string `json:"source"` // messaging or conversations
	// Services are the Conversations services a conversations run lists
	// ("" is the account's default service).
	Services     []string   `json:"services,omitempty"`
	Since        *time.Time `json:"since,omitempty"`
	Until        *time.Time `json:"until,omitempty"`
	MessageSID   string     `json:"message_sid,omitempty"`
	From         string     `json:"from,omitempty"`
	To           string     `json:"to,omitempty"`
	Delete       bool       `json:"delete"`
	DryRun       bool       `json:"dry_run"`
	NoBodies     bool       `json:"no_bodies,omitempty"`
	Actor        string     `json:"actor"`
	Error        string     `json:"error,omitempty"`
	Policy       string     `json:"policy,omitempty"`
	Tick         *time.Time `json:"tick,omitempty"`
	DeleteBefore *time.Time `json:"delete_before,omitempty"`
	RetryOf      string     `json:"retry_of,omitempty"`
	VerifySample float64    `json:"verify_sample,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	StartedAt    *time.Time `json:"started_at,omitempty"`
	FinishedAt   *time.Time `json:"finished_at,omitempty"`
}

func toRunJSON(r catalog.Run) runJSON {
	return runJSON{
		ID: r.ID.String(), Kind: r.Kind, State: string(r.State), AccountSID: r.AccountSID,
		Source: r.Source, Services: r.Services,
		Since: jsonTime(r.Since), Until: jsonTime(r.Until), MessageSID: r.MessageSID, From: r.From, To: r.To,
		Delete: r.Delete, DryRun: r.DryRun, NoBodies: r.NoBodies, Actor: r.Actor, Error: r.Error, Policy: r.PolicyName,
		Tick: jsonTime(r.Tick), DeleteBefore: jsonTime(r.DeleteBefore), RetryOf: jsonUUID(r.RetryOf),
		VerifySample: r.VerifySample, CreatedAt: r.CreatedAt.UTC(), StartedAt: jsonTime(r.StartedAt),
		FinishedAt: jsonTime(r.FinishedAt),
	}
}

// failureJSON is one failed item.
type failureJSON struct {
	Kind   string `json:"kind"`
	SID    string `json:"sid"`
	Reason string `json:"reason"`
}

// statusJSON is status --json: the run, its counts, and the first
// failures (all of them: enqueue failures).
type statusJSON struct {
	Run      runJSON       `json:"run"`
	Counts   countsJSON    `json:"counts"`
	Waiting  *waitingJSON  `json:"waiting,omitempty"`
	Export   *exportJSON   `json:"export,omitempty"`
	Verify   *verifyJSON   `json:"verify,omitempty"`
	Failures []failureJSON `json:"failures"`
	// FailuresTotal counts every failed item by kind; Failures holds at
	// most statusFailures of each.
	FailuresTotal map[string]int `json:"failures_total"`
	// TwilioPurgedBefore is set when the run's range reaches past
	// Twilio's retention window (TWILIO_RETENTION_DAYS): media sent
	// before it are purged.
	TwilioPurgedBefore *time.Time `json:"twilio_purged_before,omitempty"`
}

type countsJSON struct {
	WindowsTotal    int   `json:"windows_total"`
	WindowsDone     int   `json:"windows_done"`
	PagesFetched    int   `json:"pages_fetched"`
	MessagesSeen    int   `json:"messages_seen"`
	MessagesPending int   `json:"messages_pending"`
	MessagesGone    int   `json:"messages_gone"`
	MediaFound      int   `json:"media_found"`
	MediaListed     int   `json:"media_listed"`
	MediaArchived   int   `json:"media_archived"`
	MediaReused     int   `json:"media_reused"`
	MediaDeleted    int   `json:"media_deleted"`
	MediaGone       int   `json:"media_gone"`
	MediaFailed     int   `json:"media_failed"`
	MediaPending    int   `json:"media_pending"`
	MediaHeld       int   `json:"media_held"`
	MediaSuspect    int   `json:"media_suspect"`
	BytesArchived   int64 `json:"bytes_archived"`
}

type waitingJSON struct {
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
}

type exportJSON struct {
	Out            string `json:"out"`
	Format         string `json:"format"`
	MediaSelected  int    `json:"media_selected"`
	MediaExported  int    `json:"media_exported"`
	MediaFailed    int    `json:"media_failed"`
	MediaPending   int    `json:"media_pending"`
	NotArchived    int    `json:"not_archived"`
	BytesExported  int64  `json:"bytes_exported"`
	OutputKey      string `json:"output_key,omitempty"`
	ManifestSHA256 string `json:"manifest_sha256,omitempty"`
	SumsSHA256     string `json:"sums_sha256,omitempty"`
}

type verifyJSON struct {
	Selected int   `json:"selected"`
	OK       int   `json:"ok"`
	Mismatch int   `json:"mismatch"`
	Missing  int   `json:"missing"`
	Error    int   `json:"error"`
	Pending  int   `json:"pending"`
	Bytes    int64 `json:"bytes_read"`
}

func toStatusJSON(st catalog.Status, totals map[string]int) statusJSON {
	out := statusJSON{
		Run: toRunJSON(st.Run),
		Counts: countsJSON{
			WindowsTotal: st.WindowsTotal, WindowsDone: st.WindowsDone, PagesFetched: st.PagesFetched,
			MessagesSeen: st.MessagesSeen, MessagesPending: st.MessagesPending, MessagesGone: st.MessagesGone,
			MediaFound: st.MediaFound, MediaListed: st.MediaListed, MediaArchived: st.MediaArchived,
			MediaReused: st.MediaReused, MediaDeleted: st.MediaDeleted, MediaGone: st.MediaGone,
			MediaFailed: st.MediaFailed, MediaPending: st.MediaPending, MediaHeld: st.MediaHeld,
			MediaSuspect: st.MediaSuspect, BytesArchived: st.BytesArchived,
		},
		Failures:      []failureJSON{},
		FailuresTotal: totals,
	}
	if st.Waiting != "" {
		out.Waiting = &waitingJSON{Reason: st.Waiting, Since: st.WaitingSince.UTC()}
	}
	if e := st.Export; e != nil {
		out.Export = &exportJSON{
			Out: e.Out, Format: e.Format, MediaSelected: st.Exports.Total, MediaExported: st.Exports.Exported,
			MediaFailed: st.Exports.Failed, MediaPending: st.Exports.Pending, NotArchived: e.NotArchived,
			BytesExported: st.Exports.Bytes, OutputKey: e.OutputKey, ManifestSHA256: e.ManifestSHA256, SumsSHA256: e.SumsSHA256,
		}
	}
	if v := st.Verify; v != nil {
		out.Verify = &verifyJSON{Selected: v.Total, OK: v.OK, Mismatch: v.Mismatch, Missing: v.Missing,
			Error: v.Error, Pending: v.Pending, Bytes: v.Bytes}
	}
	for _, f := range st.Failures {
		out.Failures = append(out.Failures, failureJSON{Kind: f.Kind, SID: f.SID, Reason: f.Reason})
	}
	for _, f := range st.Suspects {
		out.Failures = append(out.Failures, failureJSON{Kind: catalog.FailureSuspect, SID: f.SID, Reason: f.Reason})
	}
	return out
}
