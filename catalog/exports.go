package catalog

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mediasync/mediasync/internal/objects"
	"github.com/mediasync/mediasync/internal/redact"
	"github.com/mediasync/mediasync/internal/schedule"
	"github.com/mediasync/mediasync/internal/sids"
)

// KindExport is the run kind of a compliance export.
const KindExport = "export"

// Export formats.
const (
	ExportDir = "dir" // one file per media, beside the manifests
	ExportZip = "zip" // one zip holding everything, streamed
	// ExportRSMF is one .rsmf file (Relativity Short Message Format) per
	// conversation per UTC day, beside the manifests.
	ExportRSMF = "rsmf"
)

// ExportState is where a media of an export is (export_media.state).
type ExportState string

// Export media states.
const (
	ExportPending  ExportState = "pending"
	ExportExported ExportState = "exported"
	ExportFailed   ExportState = "failed"
)

// Audit actions of exports (a run.started row records the start).
const AuditExportFinished = "export.finished"

// ExportSpec is a request to export, as the CLI makes it. Filters combine
// with AND; Number matches either side of a message.
type ExportSpec struct {
	AccountSID  string
	Since       time.Time // inclusive, UTC
	Until       time.Time // exclusive, UTC
	From, To    string
	Number      string
	MessageSIDs []string
	Out         string // destination URL (s3://… or file:///…), without credentials
	Format      string // ExportDir or ExportZip
	Presign     time.Duration
	Actor       string
	// RSMFMaxEvents, when set, lowers the events an .rsmf file holds below
	// Relativity's 10 000 (tests use it to see a conversation-day split).
	RSMFMaxEvents int `json:",omitempty"`
}

// Validate returns an *InvalidError unless s is an export CreateExport
// may record whose filters can match: numbers in E.164 form, valid message
// SIDs, a format of dir or zip, a destination URL, since before until, and
// presigned URLs only to S3 and for 1s to MaxPresign.
func (s ExportSpec) Validate() error {
	if err := checkNumbers("from", s.From, "to", s.To, "number", s.Number); err != nil {
		return err
	}
	for _, sid := range s.MessageSIDs {
		if !sids.ValidMessage(sid) && !sids.ValidConversationMessage(sid) {
			return &InvalidError{Field: "message", Value: sid, Reason: "is not a message SID (SM, MM or, for Conversations, IM followed by 32 hex digits)"}
		}
	}
	return s.check()
}

// check is what CreateExport refuses to record: the rules of Validate
// but those of the filters, which only fail to match.
func (s ExportSpec) check() error {
	if !s.Since.IsZero() && !s.Until.IsZero() && !s.Since.Before(s.Until) {
		return &InvalidError{Field: "since", Reason: s.Since.Format(time.DateOnly) + " must be before {until} " + s.Until.Format(time.DateOnly) + " (until is exclusive)"}
	}
	if s.Format != ExportDir && s.Format != ExportZip && s.Format != ExportRSMF {
		return &InvalidError{Field: "format", Value: s.Format, Reason: "is not dir, zip or rsmf"}
	}
	if s.RSMFMaxEvents < 0 || (s.RSMFMaxEvents > 0 && s.Format != ExportRSMF) {
		return &InvalidError{Field: "rsmf-max-events", Value: fmt.Sprint(s.RSMFMaxEvents), Reason: "is for --format rsmf, 1 or more"}
	}
	if s.Out == "" {
		return &InvalidError{Field: "out", Reason: "is required (s3://bucket/prefix or file:///dir)"}
	}
	// Only the scheme is the catalog's rule; the rest of the URL is the
	// store's (archive.ParseURL), checked where the store is opened.
	dest, err := redact.ParseURL(s.Out)
	if err != nil {
		return &InvalidError{Field: "out", Err: err}
	}
	if dest.Scheme != objects.LocationS3 && dest.Scheme != objects.LocationFile {
		return &InvalidError{Field: "out", Err: fmt.Errorf("scheme %q is neither s3 nor file (s3://bucket/prefix or file:///dir)", dest.Scheme)}
	}
	switch {
	case s.Presign == 0:
	case dest.Scheme != objects.LocationS3:
		return &InvalidError{Field: "presign", Reason: "needs an s3:// {out} (a file:// export has no URLs to sign)"}
	case s.Presign < 0 || s.Presign > objects.MaxPresign:
		return &InvalidError{Field: "presign", Value: schedule.FormatDuration(s.Presign), Reason: "is out of range: a presigned URL is valid for 1s to 7d"}
	}
	return nil
}

// Export is an export run as recorded.
type Export struct {
	Run
	Out            string
	Format         string
	MessageSIDs    []string
	Number         string
	Presign        time.Duration
	SelectedAt     time.Time
	NotArchived    int
	EndedAt        time.Time
	OutputKey      string
	ManifestSHA256 string
	SumsSHA256     string
	RSMFMaxEvents  int // 0: Relativity's limit
}

// ExportItem is one media of an export, with what its manifest line says.
type ExportItem struct {
	Seq         int
	State       ExportState
	Path        string // inside the export, once exported
	Error       string
	Holds       []int64   // active legal holds when it was verified
	DeletedAt   time.Time // deleted from Twilio, as of verification
	MediaSID    string
	MessageSID  string
	AccountSID  string
	DateSent    time.Time
	From, To    string
	ContentType string
	Size        int64
	SHA256      [32]byte
	Store       string
	Bucket      string
	Key         string
	VersionID   string
	ArchivedAt  time.Time
	LockMode    string
	RetainUntil time.Time
	// Source is SourceMessaging or SourceConversations; a Conversations
	// media also has its conversation, its message's author and its
	// filename.
	Source                            string
	ConversationSID, Author, Filename string
	// The message's archived record (issue #17), if any: its key, SHA-256
	// and whether it was stored without its body.
	RecordKey    string
	RecordSHA256 string
	RecordNoBody bool
}

// ExportCounts is an export's progress.
type ExportCounts struct {
	Total, Pending, Exported, Failed int
	Bytes                            int64 // of exported media
}

// CreateExport records an export run in state queued.
func (c *Catalog) CreateExport(ctx context.Context, s ExportSpec) (Export, error) {
	if err := s.check(); err != nil {
		return Export{}, fmt.Errorf("create export: %w", err)
	}
	if err := checkRange(s.Since, s.Until); err != nil {
		return Export{}, fmt.Errorf("create export: %w", err)
	}
	var id uuid.UUID
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		var err error
		if id, err = uuid.NewV7(); err != nil {
			return err
		}
		// No run_windows: an export reads Postgres, not Twilio's lists.
		if _, err := tx.Exec(ctx, `
			INSERT INTO runs (id, kind, account_sid, since, until, from_number, to_number, actor, params)
			VALUES ($1, 'export', $2, $3, $4, $5, $6, $7, $8)`,
			id, s.AccountSID, nullTime(s.Since), nullTime(s.Until), nullString(s.From), nullString(s.To), s.Actor, s); err != nil {
			return err
		}
		var presign *time.Duration
		if s.Presign > 0 {
			presign = &s.Presign
		}
		var sids []string
		if len(s.MessageSIDs) > 0 {
			sids = s.MessageSIDs
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO exports (run_id, out_url, format, message_sids, any_number, presign)
			VALUES ($1, $2, $3, $4, $5, $6)`, id, s.Out, s.Format, sids, nullString(s.Number), presign)
		return err
	})
	if err != nil {
		return Export{}, fmt.Errorf("create export: %w", err)
	}
	return c.GetExport(ctx, id)
}

// GetExport returns an export, or ErrRunNotFound.
func (c *Catalog) GetExport(ctx context.Context, id uuid.UUID) (Export, error) {
	run, err := c.GetRun(ctx, id)
	if err != nil {
		return Export{}, err
	}
	e := Export{Run: run}
	var number, outputKey, manifest, sums *string
	var presign *time.Duration
	var selected, ended *time.Time
	var notArchived *int32
	err = c.pool.QueryRow(ctx, `
		SELECT out_url, format, coalesce(message_sids, '{}'), any_number, presign, selected_at,
			not_archived, ended_at, output_key, manifest_sha256, sums_sha256,
			coalesce((SELECT (params->>'RSMFMaxEvents')::int FROM runs WHERE id = $1), 0)
		FROM exports WHERE run_id = $1`, id).Scan(&e.Out, &e.Format, &e.MessageSIDs, &number, &presign,
		&selected, &notArchived, &ended, &outputKey, &manifest, &sums, &e.RSMFMaxEvents)
	if errors.Is(err, pgx.ErrNoRows) {
		return Export{}, fmt.Errorf("export %s: %w", id, ErrRunNotFound)
	}
	if err != nil {
		return Export{}, fmt.Errorf("export %s: %w", id, err)
	}
	e.Number, e.OutputKey, e.ManifestSHA256, e.SumsSHA256 = str(number), str(outputKey), str(manifest), str(sums)
	e.SelectedAt, e.EndedAt = deref(selected), deref(ended)
	if presign != nil {
		e.Presign = *presign
	}
	if notArchived != nil {
		e.NotArchived = int(*notArchived)
	}
	return e, nil
}

// exportScope returns the query that selects, for export id, every media
// of its account and filters, archived or not, with what the manifest
// needs; its arguments start at $2 ($1 is left to the caller, for id).
// The filters are read first and written into the query as plain
// predicates, so Postgres can use messages_sent (and the number indexes)
// instead of scanning the account's every media (1.8 s at 1 000 000).
func exportScope(ctx context.Context, tx pgx.Tx, id uuid.UUID) (string, []any, error) {
	where, args, err := exportFilters(ctx, tx, id)
	if err != nil {
		return "", nil, err
	}
	return `
		SELECT m.sid, m.state, ` + exportSent + ` AS sent, m.message_sid
		FROM messages g JOIN media m ON m.message_sid = g.sid
		WHERE m.account_sid = $2 AND ` + where, args, nil
}

// exportSent is when a message (messages g) was sent.
const exportSent = "coalesce(g.date_sent, g.date_created)"

// exportFilters returns export id's filters as a predicate on messages g,
// its arguments starting at $2 ($2 is the account).
func exportFilters(ctx context.Context, tx pgx.Tx, id uuid.UUID) (string, []any, error) {
	var (
		account             string
		since, until        *time.Time
		from, to, anyNumber *string
		messageSIDs         []string
	)
	err := tx.QueryRow(ctx, `
		SELECT r.account_sid, r.since, r.until, r.from_number, r.to_number, e.any_number, e.message_sids
		FROM runs r JOIN exports e ON e.run_id = r.id WHERE r.id = $1`, id).
		Scan(&account, &since, &until, &from, &to, &anyNumber, &messageSIDs)
	if err != nil {
		return "", nil, fmt.Errorf("export %s filters: %w", id, err)
	}
	args := []any{account}
	where := []string{"g.account_sid = $2"}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args)+1)
	}
	const sent = exportSent
	if since != nil {
		where = append(where, sent+" >= "+arg(*since))
	}
	if until != nil {
		where = append(where, sent+" < "+arg(*until))
	}
	if from != nil {
		where = append(where, "g.from_number = "+arg(*from))
	}
	if to != nil {
		where = append(where, "g.to_number = "+arg(*to))
	}
	if anyNumber != nil {
		n := arg(*anyNumber)
		where = append(where, "(g.from_number = "+n+" OR g.to_number = "+n+")")
	}
	if messageSIDs != nil {
		where = append(where, "g.sid = ANY ("+arg(messageSIDs)+")")
	}
	return strings.Join(where, " AND "), args, nil
}

// SelectExportMedia fixes, once, which media an export covers: every
// archived media (archived, or since deleted from Twilio) matching its
// filters, in the manifest's order (date sent, message, media). In-range
// media with no archived copy are counted, not exported. It returns the
// number selected; a second call changes nothing.
func (c *Catalog) SelectExportMedia(ctx context.Context, id uuid.UUID) (int, error) {
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		var selected *time.Time
		if err := tx.QueryRow(ctx, `SELECT selected_at FROM exports WHERE run_id = $1 FOR UPDATE`, id).Scan(&selected); err != nil {
			return err
		}
		if selected != nil {
			return nil
		}
		scope, args, err := exportScope(ctx, tx, id)
		if err != nil {
			return err
		}
		args = append([]any{id}, args...)
		if _, err := tx.Exec(ctx, `
			INSERT INTO export_media (run_id, seq, media_sid)
			SELECT $1, (row_number() OVER (ORDER BY s.sent, s.message_sid, s.sid))::int - 1, s.sid
			FROM (`+scope+`) s
			WHERE s.state IN ('archived', 'deleted')`, args...); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
			UPDATE exports SET selected_at = now(),
				not_archived = (SELECT count(*) FROM (`+scope+`) s WHERE s.state NOT IN ('archived', 'deleted'))
			WHERE run_id = $1`, args...)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("select export media %s: %w", id, err)
	}
	counts, err := c.ExportCounts(ctx, id)
	return counts.Total, err
}

// ExportCounts counts an export's media by state.
func (c *Catalog) ExportCounts(ctx context.Context, id uuid.UUID) (ExportCounts, error) {
	var n ExportCounts
	err := c.pool.QueryRow(ctx, `
		SELECT count(*), count(*) FILTER (WHERE x.state = 'pending'),
			count(*) FILTER (WHERE x.state = 'exported'), count(*) FILTER (WHERE x.state = 'failed'),
			coalesce(sum(m.size_bytes) FILTER (WHERE x.state = 'exported'), 0)::bigint
		FROM export_media x JOIN media m ON m.sid = x.media_sid
		WHERE x.run_id = $1`, id).Scan(&n.Total, &n.Pending, &n.Exported, &n.Failed, &n.Bytes)
	if err != nil {
		return n, fmt.Errorf("export counts %s: %w", id, err)
	}
	return n, nil
}

const exportItemColumns = `x.seq, x.state, coalesce(x.path, ''), coalesce(x.error, ''), coalesce(x.holds, '{}'), x.deleted_at,
	m.sid, m.message_sid, m.account_sid, coalesce(g.date_sent, g.date_created), coalesce(g.from_number, ''),
	coalesce(g.to_number, ''), coalesce(m.content_type, ''), m.size_bytes, m.sha256, coalesce(m.store, ''),
	coalesce(m.bucket, ''), m.object_key, coalesce(m.version_id, ''), m.archived_at, coalesce(m.lock_mode, ''), m.retain_until,
	m.source, coalesce(m.conversation_sid, ''), coalesce(m.author, ''), coalesce(m.filename, ''),
	coalesce(g.record_key, ''), coalesce(g.record_sha256, ''), g.record_no_body`

func scanExportItem(row pgx.Row) (ExportItem, error) {
	var it ExportItem
	var sha string
	var deleted, sent, retain *time.Time
	err := row.Scan(&it.Seq, &it.State, &it.Path, &it.Error, &it.Holds, &deleted,
		&it.MediaSID, &it.MessageSID, &it.AccountSID, &sent, &it.From,
		&it.To, &it.ContentType, &it.Size, &sha, &it.Store,
		&it.Bucket, &it.Key, &it.VersionID, &it.ArchivedAt, &it.LockMode, &retain,
		&it.Source, &it.ConversationSID, &it.Author, &it.Filename,
		&it.RecordKey, &it.RecordSHA256, &it.RecordNoBody)
	if err != nil {
		return it, err
	}
	it.DeletedAt, it.DateSent, it.RetainUntil = deref(deleted), deref(sent), deref(retain)
	if _, err := hex.Decode(it.SHA256[:], []byte(sha)); err != nil {
		return it, fmt.Errorf("media %s: stored sha256: %w", it.MediaSID, err)
	}
	return it, nil
}

// ExportItems yields an export's media with seq in [from, to), in order,
// reading a page at a time so an export of any size is never in memory.
// With pendingOnly, only media still to export.
func (c *Catalog) ExportItems(ctx context.Context, id uuid.UUID, from, to int, pendingOnly bool) iter.Seq2[ExportItem, error] {
	const page = 500
	return func(yield func(ExportItem, error) bool) {
		next := from
		for next < to {
			rows, err := c.pool.Query(ctx, `
				SELECT `+exportItemColumns+`
				FROM export_media x
				JOIN media m ON m.sid = x.media_sid
				JOIN messages g ON g.sid = m.message_sid
				WHERE x.run_id = $1 AND x.seq >= $2 AND x.seq < $3 AND (NOT $4 OR x.state = 'pending')
				ORDER BY x.seq LIMIT $5`, id, next, to, pendingOnly, page)
			if err != nil {
				yield(ExportItem{}, fmt.Errorf("export %s items: %w", id, err))
				return
			}
			items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ExportItem, error) { return scanExportItem(r) })
			if err != nil {
				yield(ExportItem{}, fmt.Errorf("export %s items: %w", id, err))
				return
			}
			for _, it := range items {
				if !yield(it, nil) {
					return
				}
			}
			if len(items) < page {
				return
			}
			next = items[len(items)-1].Seq + 1
		}
	}
}

// MarkExported records that a media's archived copy was read back, matched
// its row, and was written into the export at path. The Twilio delete and
// the holds are captured now, so the manifest is the same on every write.
func (c *Catalog) MarkExported(ctx context.Context, id uuid.UUID, seq int, path string) error {
	_, err := c.pool.Exec(ctx, `
		UPDATE export_media x SET state = 'exported', path = $3, error = NULL, updated_at = now(),
			deleted_at = m.deleted_at,
			holds = holds_covering(g.sid, g.from_number, g.to_number, coalesce(g.date_sent, g.date_created))
		FROM media m JOIN messages g ON g.sid = m.message_sid
		WHERE x.run_id = $1 AND x.seq = $2 AND x.state = 'pending' AND m.sid = x.media_sid`, id, seq, path)
	if err != nil {
		return fmt.Errorf("mark exported %s/%d: %w", id, seq, err)
	}
	return nil
}

// FailExportMedia records why a media could not be exported.
func (c *Catalog) FailExportMedia(ctx context.Context, id uuid.UUID, seq int, reason string) error {
	_, err := c.pool.Exec(ctx, `
		UPDATE export_media SET state = 'failed', error = $3, updated_at = now()
		WHERE run_id = $1 AND seq = $2 AND state = 'pending'`, id, seq, reason)
	if err != nil {
		return fmt.Errorf("fail export media %s/%d: %w", id, seq, err)
	}
	return nil
}

// RestartExport puts every media of an unfinished export back to pending:
// a zip is written in one pass, so an interrupted pass starts over.
func (c *Catalog) RestartExport(ctx context.Context, id uuid.UUID) error {
	_, err := c.pool.Exec(ctx, `
		UPDATE export_media x SET state = 'pending', error = NULL, updated_at = now()
		FROM runs r WHERE r.id = x.run_id AND x.run_id = $1 AND x.state <> 'pending' AND r.state = 'running'`, id)
	if err != nil {
		return fmt.Errorf("restart export %s: %w", id, err)
	}
	return nil
}

// ExportEnd returns the end time written into export.json, fixing it at the
// first call so that every attempt writes the same bytes.
func (c *Catalog) ExportEnd(ctx context.Context, id uuid.UUID) (time.Time, error) {
	var t time.Time
	err := c.pool.QueryRow(ctx, `
		UPDATE exports SET ended_at = coalesce(ended_at, date_trunc('second', now()))
		WHERE run_id = $1 RETURNING ended_at`, id).Scan(&t)
	if err != nil {
		return t, fmt.Errorf("export end %s: %w", id, err)
	}
	return t.UTC(), nil
}

// ExportOutput is what an export wrote, for its row and its audit entry.
type ExportOutput struct {
	Key            string // the zip, or export.json
	ManifestSHA256 [32]byte
	SumsSHA256     [32]byte
}

// RecordExportOutput records the export's package before it is published:
// an attempt that finds the package already there (its predecessor
// published it and died) finishes from this record.
func (c *Catalog) RecordExportOutput(ctx context.Context, id uuid.UUID, out ExportOutput) error {
	_, err := c.pool.Exec(ctx, `
		UPDATE exports SET output_key = $2, manifest_sha256 = $3, sums_sha256 = $4 WHERE run_id = $1`,
		id, out.Key, hex.EncodeToString(out.ManifestSHA256[:]), hex.EncodeToString(out.SumsSHA256[:]))
	if err != nil {
		return fmt.Errorf("record export output %s: %w", id, err)
	}
	return nil
}

// finishOwnRun ends a running run of a kind that ends itself (an export, a
// restore): succeeded when ok, failed otherwise with reason. Its audit
// entry (action, with what details returns for the finished run) commits
// with the state. It reports whether this call finished it.
func (c *Catalog) finishOwnRun(ctx context.Context, id uuid.UUID, kind string, ok bool, reason, action string,
	details func(pgx.Tx, Run) (any, error)) (bool, error) {
	finished := false
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		state := RunFailed
		if ok {
			state = RunSucceeded
		}
		r, err := scanRun(tx.QueryRow(ctx, `
			UPDATE runs SET state = $2, error = $3, finished_at = now()
			WHERE id = $1 AND kind = $4 AND state = 'running'
			RETURNING `+runColumns, id, state, nullString(reason), kind))
		if errors.Is(err, ErrRunNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		finished = true
		d, err := details(tx, r)
		if err != nil {
			return err
		}
		return audit(ctx, tx, r.Actor, action, r.ID.String(), d)
	})
	return finished, err
}

// FinishExport ends a running export: succeeded when every media was
// exported and the package written (ok), failed otherwise, with reason.
// The audit entry commits with the state. It reports whether this call
// finished it.
func (c *Catalog) FinishExport(ctx context.Context, id uuid.UUID, ok bool, reason string) (bool, error) {
	finished, err := c.finishOwnRun(ctx, id, KindExport, ok, reason, AuditExportFinished, func(tx pgx.Tx, r Run) (any, error) {
		var d struct {
			Out            string   `json:"out"`
			Format         string   `json:"format"`
			OutputKey      string   `json:"output_key,omitempty"`
			ManifestSHA256 string   `json:"manifest_sha256,omitempty"`
			SumsSHA256     string   `json:"sha256sums_sha256,omitempty"`
			Media          int      `json:"media"`
			Exported       int      `json:"exported"`
			Failed         int      `json:"failed"`
			Bytes          int64    `json:"bytes"`
			State          RunState `json:"state"`
			Error          string   `json:"error,omitempty"`
		}
		if err := tx.QueryRow(ctx, `
			SELECT e.out_url, e.format, coalesce(e.output_key, ''), coalesce(e.manifest_sha256, ''), coalesce(e.sums_sha256, ''),
				count(x.seq), count(x.seq) FILTER (WHERE x.state = 'exported'), count(x.seq) FILTER (WHERE x.state = 'failed'),
				coalesce(sum(m.size_bytes) FILTER (WHERE x.state = 'exported'), 0)::bigint
			FROM exports e LEFT JOIN export_media x ON x.run_id = e.run_id LEFT JOIN media m ON m.sid = x.media_sid
			WHERE e.run_id = $1 GROUP BY e.run_id`, id).Scan(&d.Out, &d.Format, &d.OutputKey, &d.ManifestSHA256,
			&d.SumsSHA256, &d.Media, &d.Exported, &d.Failed, &d.Bytes); err != nil {
			return nil, err
		}
		d.State, d.Error = r.State, reason
		return d, nil
	})
	if err != nil {
		return false, fmt.Errorf("finish export %s: %w", id, err)
	}
	return finished, nil
}

// ExportFailures returns up to limit failed media of an export, by SID.
func (c *Catalog) ExportFailures(ctx context.Context, id uuid.UUID, limit int) ([]Failure, error) {
	rows, err := c.pool.Query(ctx, `
		SELECT media_sid, coalesce(error, '') FROM export_media
		WHERE run_id = $1 AND state = 'failed' ORDER BY media_sid LIMIT $2`, id, limit)
	if err != nil {
		return nil, fmt.Errorf("export failures %s: %w", id, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Failure, error) {
		f := Failure{Kind: FailureExport}
		return f, r.Scan(&f.SID, &f.Reason)
	})
}

// PendingExportSeqs returns the seqs of media still to export whose row has
// not moved since before cutoff, up to limit, for the reconciler.
func (c *Catalog) PendingExportSeqs(ctx context.Context, id uuid.UUID, cutoff time.Time, limit int) ([]int, error) {
	rows, err := c.pool.Query(ctx, `
		SELECT seq FROM export_media WHERE run_id = $1 AND state = 'pending' AND updated_at < $2
		ORDER BY seq LIMIT $3`, id, cutoff, limit)
	if err != nil {
		return nil, fmt.Errorf("pending export media %s: %w", id, err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[int])
}

// ListExports returns the newest exports first.
func (c *Catalog) ListExports(ctx context.Context, limit int) ([]Export, error) {
	rows, err := c.pool.Query(ctx, `SELECT id FROM runs WHERE kind = 'export' ORDER BY created_at DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list exports: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("list exports: %w", err)
	}
	out := make([]Export, 0, len(ids))
	for _, id := range ids {
		e, err := c.GetExport(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}
