package catalog

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mediasync/mediasync/internal/sids"
)

// KindRestore is the run kind of a restore: archived media uploaded into a
// Media Content Service (MCS) service.
const KindRestore = "restore"

// RestoreState is where one (media, service) of a restore is
// (restore_media.state).
type RestoreState string

// Restore media states (see migrations/00025_restores.sql).
const (
	RestorePending     RestoreState = "pending"
	RestoreUploading   RestoreState = "uploading"
	RestoreRestored    RestoreState = "restored"
	RestoreUnconfirmed RestoreState = "unconfirmed"
	RestoreFailed      RestoreState = "failed"
)

// AuditRestoreFinished is the audit action of a restore's end (a
// run.started row records its start).
const AuditRestoreFinished = "restore.finished"

// RestoreSpec is a request to restore, as the CLI makes it: exactly one
// scope (FromRun, MessageSIDs, or Since and Until), and one or more target
// services.
type RestoreSpec struct {
	AccountSID  string
	FromRun     uuid.UUID // the media this run archived
	MessageSIDs []string  // the media of these messages (SM…, MM… or IM…)
	Since       time.Time // inclusive, UTC: media of messages sent from then
	Until       time.Time // exclusive, UTC
	ServiceSIDs []string  // target MCS services (IS…)
	Actor       string
}

// Validate returns an *InvalidError unless s names exactly one scope and
// valid services and message SIDs.
func (s RestoreSpec) Validate() error {
	scopes := 0
	if s.FromRun != uuid.Nil {
		scopes++
	}
	if len(s.MessageSIDs) > 0 {
		scopes++
	}
	if !s.Since.IsZero() || !s.Until.IsZero() {
		scopes++
		if s.Since.IsZero() || s.Until.IsZero() {
			return &InvalidError{Field: "since", Reason: "and {until} go together"}
		}
		if !s.Since.Before(s.Until) {
			return &InvalidError{Field: "since", Value: s.Since.Format(time.DateOnly), Reason: "must be before {until} " + s.Until.Format(time.DateOnly) + " (until is exclusive)"}
		}
	}
	if scopes != 1 {
		return &InvalidError{Reason: "give exactly one of {run}, {message}, or {since} with {until}"}
	}
	for _, sid := range s.MessageSIDs {
		if !sids.ValidMessage(sid) && !sids.ValidConversationMessage(sid) {
			return &InvalidError{Field: "message", Value: sid, Reason: "is not a message SID (SM, MM or IM followed by 32 hex digits)"}
		}
	}
	if len(s.ServiceSIDs) == 0 {
		return &InvalidError{Field: "service", Reason: "is required: the Conversations service (IS…) to upload into"}
	}
	for i, sid := range s.ServiceSIDs {
		if !sids.ValidService(sid) {
			return &InvalidError{Field: "service", Value: sid, Reason: "is not a Conversations service SID (IS followed by 32 hex digits)"}
		}
		if slices.Contains(s.ServiceSIDs[:i], sid) {
			return &InvalidError{Field: "service", Value: sid, Reason: "is given twice"}
		}
	}
	return nil
}

// Restore is a restore run as recorded.
type Restore struct {
	Run
	ServiceSIDs    []string
	FromRun        uuid.UUID
	MessageSIDs    []string
	SelectedAt     time.Time
	NotArchived    int
	EndedAt        time.Time
	ManifestKey    string
	ManifestSHA256 string
	ManifestSize   int64
}

// RestoreItem is one (media, target service) of a restore, with what the
// upload and the manifest need.
type RestoreItem struct {
	Seq         int
	State       RestoreState
	ServiceSID  string
	Attempts    int
	NewMediaSID string
	NewSize     int64
	RestoredAt  time.Time
	Error       string
	MediaSID    string
	MessageSID  string
	AccountSID  string
	Source      string
	ContentType string
	Filename    string // the row's filename, else the archived object's name
	Size        int64
	SHA256      [32]byte
	Store       string
	Bucket      string
	Key         string
}

// RestoreCounts is a restore's progress.
type RestoreCounts struct {
	Total, Pending, Uploading, Restored, Unconfirmed, Failed int
	Bytes                                                    int64 // of restored media
}

// Open is how many are still to upload or being uploaded.
func (n RestoreCounts) Open() int { return n.Pending + n.Uploading }

// CreateRestore records a restore run in state queued. A --run scope must
// name a run of the same account.
func (c *Catalog) CreateRestore(ctx context.Context, s RestoreSpec) (Restore, error) {
	if err := s.Validate(); err != nil {
		return Restore{}, fmt.Errorf("create restore: %w", err)
	}
	if err := checkRange(s.Since, s.Until); err != nil {
		return Restore{}, fmt.Errorf("create restore: %w", err)
	}
	var id uuid.UUID
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		var fromRun *uuid.UUID
		if s.FromRun != uuid.Nil {
			var account, kind string
			err := tx.QueryRow(ctx, `SELECT account_sid, kind FROM runs WHERE id = $1`, s.FromRun).Scan(&account, &kind)
			if errors.Is(err, pgx.ErrNoRows) {
				return &InvalidError{Field: "run", Value: s.FromRun.String(), Reason: "is not a recorded run"}
			}
			if err != nil {
				return err
			}
			if account != s.AccountSID {
				return &InvalidError{Field: "run", Value: s.FromRun.String(), Reason: "is a run of another account (" + account + ")"}
			}
			if kind == KindExport || kind == KindRestore {
				return &InvalidError{Field: "run", Value: s.FromRun.String(), Reason: "is " + kind + " run: it archived nothing; give a backfill, message or policy run"}
			}
			fromRun = &s.FromRun
		}
		var err error
		if id, err = uuid.NewV7(); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO runs (id, kind, account_sid, since, until, actor, params)
			VALUES ($1, 'restore', $2, $3, $4, $5, $6)`,
			id, s.AccountSID, nullTime(s.Since), nullTime(s.Until), s.Actor, s); err != nil {
			return err
		}
		var msgs []string
		if len(s.MessageSIDs) > 0 {
			msgs = s.MessageSIDs
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO restores (run_id, service_sids, from_run, message_sids) VALUES ($1, $2, $3, $4)`,
			id, s.ServiceSIDs, fromRun, msgs)
		return err
	})
	if err != nil {
		return Restore{}, fmt.Errorf("create restore: %w", err)
	}
	return c.GetRestore(ctx, id)
}

// GetRestore returns a restore, or ErrRunNotFound.
func (c *Catalog) GetRestore(ctx context.Context, id uuid.UUID) (Restore, error) {
	run, err := c.GetRun(ctx, id)
	if err != nil {
		return Restore{}, err
	}
	r := Restore{Run: run}
	var fromRun *uuid.UUID
	var selected, ended *time.Time
	var notArchived *int32
	var key, sha *string
	var size *int64
	err = c.pool.QueryRow(ctx, `
		SELECT service_sids, from_run, coalesce(message_sids, '{}'), selected_at, not_archived, ended_at,
			manifest_key, manifest_sha256, manifest_size
		FROM restores WHERE run_id = $1`, id).Scan(&r.ServiceSIDs, &fromRun, &r.MessageSIDs, &selected, &notArchived,
		&ended, &key, &sha, &size)
	if errors.Is(err, pgx.ErrNoRows) {
		return Restore{}, fmt.Errorf("restore %s: %w", id, ErrRunNotFound)
	}
	if err != nil {
		return Restore{}, fmt.Errorf("restore %s: %w", id, err)
	}
	if fromRun != nil {
		r.FromRun = *fromRun
	}
	if notArchived != nil {
		r.NotArchived = int(*notArchived)
	}
	if size != nil {
		r.ManifestSize = *size
	}
	r.SelectedAt, r.EndedAt, r.ManifestKey, r.ManifestSHA256 = deref(selected), deref(ended), str(key), str(sha)
	return r, nil
}

// restoreScope is the query selecting restore id's media (its $1), each
// with its message's sent date, whatever their state.
func restoreScope(ctx context.Context, tx pgx.Tx, id uuid.UUID) (string, []any, error) {
	var (
		account      string
		since, until *time.Time
		fromRun      *uuid.UUID
		messageSIDs  []string
	)
	err := tx.QueryRow(ctx, `
		SELECT r.account_sid, r.since, r.until, x.from_run, x.message_sids
		FROM runs r JOIN restores x ON x.run_id = r.id WHERE r.id = $1`, id).
		Scan(&account, &since, &until, &fromRun, &messageSIDs)
	if err != nil {
		return "", nil, fmt.Errorf("restore %s scope: %w", id, err)
	}
	args := []any{account}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args)+1)
	}
	// Every media row has its message's row (a foreign key); the date is
	// the expression messages_sent indexes, so a range scope reads the
	// index, not the account's every media.
	const sent = "coalesce(g.date_sent, g.date_created)"
	where := []string{"m.account_sid = $2", "g.account_sid = $2"}
	from := "media m JOIN messages g ON g.sid = m.message_sid"
	switch {
	case fromRun != nil:
		from += " JOIN run_media d ON d.media_sid = m.sid AND d.run_id = " + arg(*fromRun)
	case messageSIDs != nil:
		where = append(where, "m.message_sid = ANY ("+arg(messageSIDs)+")")
	default:
		where = append(where, sent+" >= "+arg(*since), sent+" < "+arg(*until))
	}
	return `SELECT m.sid, m.state, m.message_sid, ` + sent + ` AS sent FROM ` + from +
		` WHERE ` + strings.Join(where, " AND "), args, nil
}

// SelectRestoreMedia fixes, once, what a restore uploads: every archived
// media in its scope (archived, or since deleted from Twilio), once per
// target service, in order (date sent, message, media, service). Media in
// scope without an archived copy are counted, not restored. It returns how
// many were selected; a second call changes nothing.
func (c *Catalog) SelectRestoreMedia(ctx context.Context, id uuid.UUID) (int, error) {
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		var selected *time.Time
		if err := tx.QueryRow(ctx, `SELECT selected_at FROM restores WHERE run_id = $1 FOR UPDATE`, id).Scan(&selected); err != nil {
			return err
		}
		if selected != nil {
			return nil
		}
		scope, args, err := restoreScope(ctx, tx, id)
		if err != nil {
			return err
		}
		args = append([]any{id}, args...)
		if _, err := tx.Exec(ctx, `
			INSERT INTO restore_media (run_id, seq, media_sid, service_sid)
			SELECT $1, (row_number() OVER (ORDER BY s.sent, s.message_sid, s.sid, v.n))::int - 1, s.sid, v.svc
			FROM (`+scope+`) s
			CROSS JOIN (SELECT svc, n FROM restores x, unnest(x.service_sids) WITH ORDINALITY AS u(svc, n) WHERE x.run_id = $1) v
			WHERE s.state IN ('archived', 'deleted')`, args...); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
			UPDATE restores SET selected_at = now(),
				not_archived = (SELECT count(*) FROM (`+scope+`) s WHERE s.state NOT IN ('archived', 'deleted'))
			WHERE run_id = $1`, args...)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("select restore media %s: %w", id, err)
	}
	n, err := c.RestoreCounts(ctx, id)
	return n.Total, err
}

// RestoreCounts counts a restore's media by state.
func (c *Catalog) RestoreCounts(ctx context.Context, id uuid.UUID) (RestoreCounts, error) {
	var n RestoreCounts
	err := c.pool.QueryRow(ctx, `
		SELECT count(*), count(*) FILTER (WHERE x.state = 'pending'), count(*) FILTER (WHERE x.state = 'uploading'),
			count(*) FILTER (WHERE x.state = 'restored'), count(*) FILTER (WHERE x.state = 'unconfirmed'),
			count(*) FILTER (WHERE x.state = 'failed'),
			coalesce(sum(m.size_bytes) FILTER (WHERE x.state = 'restored'), 0)::bigint
		FROM restore_media x JOIN media m ON m.sid = x.media_sid
		WHERE x.run_id = $1`, id).Scan(&n.Total, &n.Pending, &n.Uploading, &n.Restored, &n.Unconfirmed, &n.Failed, &n.Bytes)
	if err != nil {
		return n, fmt.Errorf("restore counts %s: %w", id, err)
	}
	return n, nil
}

const restoreItemColumns = `x.seq, x.state, x.service_sid, x.attempts, coalesce(x.new_media_sid, ''), coalesce(x.new_size, -1),
	x.restored_at, coalesce(x.error, ''), m.sid, m.message_sid, m.account_sid, m.source, coalesce(m.content_type, ''),
	coalesce(m.filename, ''), m.size_bytes, m.sha256, coalesce(m.store, ''), coalesce(m.bucket, ''), m.object_key`

func scanRestoreItem(row pgx.Row) (RestoreItem, error) {
	var it RestoreItem
	var sha string
	var restored *time.Time
	err := row.Scan(&it.Seq, &it.State, &it.ServiceSID, &it.Attempts, &it.NewMediaSID, &it.NewSize,
		&restored, &it.Error, &it.MediaSID, &it.MessageSID, &it.AccountSID, &it.Source, &it.ContentType,
		&it.Filename, &it.Size, &sha, &it.Store, &it.Bucket, &it.Key)
	if err != nil {
		return it, err
	}
	it.RestoredAt = deref(restored)
	if it.Filename == "" {
		// Messaging media have no filename: the archived object's name
		// ({MediaSid}{.ext}) keeps the type's extension.
		it.Filename = path.Base(it.Key)
	}
	if _, err := hex.Decode(it.SHA256[:], []byte(sha)); err != nil {
		return it, fmt.Errorf("media %s: stored sha256: %w", it.MediaSID, err)
	}
	return it, nil
}

// RestoreItems yields a restore's items with seq in [from, to), in order,
// a page at a time. With openOnly, only those pending or uploading.
func (c *Catalog) RestoreItems(ctx context.Context, id uuid.UUID, from, to int, openOnly bool) iter.Seq2[RestoreItem, error] {
	const page = 500
	return func(yield func(RestoreItem, error) bool) {
		next := from
		for next < to {
			rows, err := c.pool.Query(ctx, `
				SELECT `+restoreItemColumns+`
				FROM restore_media x JOIN media m ON m.sid = x.media_sid
				WHERE x.run_id = $1 AND x.seq >= $2 AND x.seq < $3 AND (NOT $4 OR x.state IN ('pending', 'uploading'))
				ORDER BY x.seq LIMIT $5`, id, next, to, openOnly, page)
			if err != nil {
				yield(RestoreItem{}, fmt.Errorf("restore %s items: %w", id, err))
				return
			}
			items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RestoreItem, error) { return scanRestoreItem(r) })
			if err != nil {
				yield(RestoreItem{}, fmt.Errorf("restore %s items: %w", id, err))
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

// ClaimRestore takes the right to upload one pending item for lease: only
// one attempt at a time, across the fleet, holds it. It returns the claim,
// or ok=false when the item is not pending (another attempt holds it, or
// it is done).
func (c *Catalog) ClaimRestore(ctx context.Context, id uuid.UUID, seq int, lease time.Duration) (claim uuid.UUID, ok bool, err error) {
	claim = uuid.New()
	tag, err := c.pool.Exec(ctx, `
		UPDATE restore_media SET state = 'uploading', claim = $3, lease_until = now() + $4::interval,
			attempts = attempts + 1, error = NULL, updated_at = now()
		WHERE run_id = $1 AND seq = $2 AND state = 'pending'`, id, seq, claim, lease)
	if err != nil {
		return uuid.Nil, false, fmt.Errorf("claim restore %s/%d: %w", id, seq, err)
	}
	return claim, tag.RowsAffected() == 1, nil
}

// ReleaseRestore gives a claim back, the item pending again, when its
// upload is known not to have reached Twilio whole (reason says why).
func (c *Catalog) ReleaseRestore(ctx context.Context, id uuid.UUID, seq int, claim uuid.UUID, reason string) error {
	_, err := c.pool.Exec(ctx, `
		UPDATE restore_media SET state = 'pending', claim = NULL, lease_until = NULL, error = $4, updated_at = now()
		WHERE run_id = $1 AND seq = $2 AND claim = $3 AND state = 'uploading'`, id, seq, claim, reason)
	if err != nil {
		return fmt.Errorf("release restore %s/%d: %w", id, seq, err)
	}
	return nil
}

// CompleteRestore records the Media an upload created. The claim alone
// decides: an item marked unconfirmed while its upload was still under way
// (its lease ran out) is restored all the same once the answer comes.
func (c *Catalog) CompleteRestore(ctx context.Context, id uuid.UUID, seq int, claim uuid.UUID, newSID string, newSize int64) error {
	_, err := c.pool.Exec(ctx, `
		UPDATE restore_media SET state = 'restored', new_media_sid = $4, new_size = $5, restored_at = date_trunc('second', now()),
			error = NULL, lease_until = NULL, updated_at = now()
		WHERE run_id = $1 AND seq = $2 AND claim = $3 AND state IN ('uploading', 'unconfirmed')`, id, seq, claim, newSID, newSize)
	if err != nil {
		return fmt.Errorf("complete restore %s/%d: %w", id, seq, err)
	}
	return nil
}

// FailRestore records why an item cannot be restored. With a claim, only
// that attempt's item changes; without (uuid.Nil), only a pending one.
// newSID, when not "", is a Media Twilio created that failed its check.
func (c *Catalog) FailRestore(ctx context.Context, id uuid.UUID, seq int, claim uuid.UUID, newSID, reason string) error {
	_, err := c.pool.Exec(ctx, `
		UPDATE restore_media SET state = 'failed', new_media_sid = coalesce($4, new_media_sid), error = $5,
			lease_until = NULL, updated_at = now()
		WHERE run_id = $1 AND seq = $2
		  AND CASE WHEN $3::uuid IS NULL THEN state = 'pending' ELSE claim = $3 AND state IN ('uploading', 'unconfirmed') END`,
		id, seq, nullUUID(claim), nullString(newSID), reason)
	if err != nil {
		return fmt.Errorf("fail restore %s/%d: %w", id, seq, err)
	}
	return nil
}

// UnconfirmRestore records that an attempt sent its whole file and got no
// answer that says whether Twilio created a Media.
func (c *Catalog) UnconfirmRestore(ctx context.Context, id uuid.UUID, seq int, claim uuid.UUID, reason string) error {
	_, err := c.pool.Exec(ctx, `
		UPDATE restore_media SET state = 'unconfirmed', error = $4, lease_until = NULL, updated_at = now()
		WHERE run_id = $1 AND seq = $2 AND claim = $3 AND state = 'uploading'`, id, seq, claim, reason)
	if err != nil {
		return fmt.Errorf("unconfirm restore %s/%d: %w", id, seq, err)
	}
	return nil
}

// ExpireRestoreClaims marks unconfirmed the items of a restore with seq in
// [from, to) whose claim's lease has run out: their worker died, or lost
// Postgres, after it may have sent the file. It returns how many.
func (c *Catalog) ExpireRestoreClaims(ctx context.Context, id uuid.UUID, from, to int) (int, error) {
	tag, err := c.pool.Exec(ctx, `
		UPDATE restore_media SET state = 'unconfirmed', updated_at = now(),
			error = 'the upload''s worker stopped before it recorded Twilio''s answer: a Media may exist in the service; not uploaded again by this restore'
		WHERE run_id = $1 AND seq >= $2 AND seq < $3 AND state = 'uploading' AND lease_until < now()`, id, from, to)
	if err != nil {
		return 0, fmt.Errorf("expire restore claims %s: %w", id, err)
	}
	return int(tag.RowsAffected()), nil
}

// OpenRestoreSeqs returns, for the reconciler, the seqs of items still to
// do whose row has not moved since before cutoff, or whose claim expired,
// up to limit.
func (c *Catalog) OpenRestoreSeqs(ctx context.Context, id uuid.UUID, cutoff time.Time, limit int) ([]int, error) {
	rows, err := c.pool.Query(ctx, `
		SELECT seq FROM restore_media
		WHERE run_id = $1 AND ((state = 'pending' AND updated_at < $2) OR (state = 'uploading' AND lease_until < now()))
		ORDER BY seq LIMIT $3`, id, cutoff, limit)
	if err != nil {
		return nil, fmt.Errorf("open restore media %s: %w", id, err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[int])
}

// RestoreEnd returns the end time the manifest records, fixed at the first
// call so every attempt writes the same bytes.
func (c *Catalog) RestoreEnd(ctx context.Context, id uuid.UUID) (time.Time, error) {
	var t time.Time
	err := c.pool.QueryRow(ctx, `
		UPDATE restores SET ended_at = coalesce(ended_at, date_trunc('second', now()))
		WHERE run_id = $1 RETURNING ended_at`, id).Scan(&t)
	if err != nil {
		return t, fmt.Errorf("restore end %s: %w", id, err)
	}
	return t.UTC(), nil
}

// RecordRestoreManifest records the manifest before it is written, so the
// restore's row and audit entry name it.
func (c *Catalog) RecordRestoreManifest(ctx context.Context, id uuid.UUID, key string, sha [32]byte, size int64) error {
	_, err := c.pool.Exec(ctx, `
		UPDATE restores SET manifest_key = $2, manifest_sha256 = $3, manifest_size = $4 WHERE run_id = $1`,
		id, key, hex.EncodeToString(sha[:]), size)
	if err != nil {
		return fmt.Errorf("record restore manifest %s: %w", id, err)
	}
	return nil
}

// FinishRestore ends a running restore: succeeded when every item was
// restored and the manifest written (ok), failed otherwise, with reason.
// The audit entry commits with the state. It reports whether this call
// finished it.
func (c *Catalog) FinishRestore(ctx context.Context, id uuid.UUID, ok bool, reason string) (bool, error) {
	finished, err := c.finishOwnRun(ctx, id, KindRestore, ok, reason, AuditRestoreFinished, func(tx pgx.Tx, r Run) (any, error) {
		var d struct {
			Services       []string `json:"services"`
			ManifestKey    string   `json:"manifest_key,omitempty"`
			ManifestSHA256 string   `json:"manifest_sha256,omitempty"`
			Media          int      `json:"media"`
			Restored       int      `json:"restored"`
			Unconfirmed    int      `json:"unconfirmed"`
			Failed         int      `json:"failed"`
			Bytes          int64    `json:"bytes"`
			State          RunState `json:"state"`
			Error          string   `json:"error,omitempty"`
		}
		if err := tx.QueryRow(ctx, `
			SELECT e.service_sids, coalesce(e.manifest_key, ''), coalesce(e.manifest_sha256, ''),
				count(x.seq), count(x.seq) FILTER (WHERE x.state = 'restored'),
				count(x.seq) FILTER (WHERE x.state = 'unconfirmed'), count(x.seq) FILTER (WHERE x.state = 'failed'),
				coalesce(sum(m.size_bytes) FILTER (WHERE x.state = 'restored'), 0)::bigint
			FROM restores e LEFT JOIN restore_media x ON x.run_id = e.run_id LEFT JOIN media m ON m.sid = x.media_sid
			WHERE e.run_id = $1 GROUP BY e.run_id`, id).Scan(&d.Services, &d.ManifestKey, &d.ManifestSHA256,
			&d.Media, &d.Restored, &d.Unconfirmed, &d.Failed, &d.Bytes); err != nil {
			return nil, err
		}
		d.State, d.Error = r.State, reason
		return d, nil
	})
	if err != nil {
		return false, fmt.Errorf("finish restore %s: %w", id, err)
	}
	return finished, nil
}

// RestoreFailures returns up to limit items of a restore that failed or
// are unconfirmed, by seq, as "MediaSid → ServiceSid" with the reason.
func (c *Catalog) RestoreFailures(ctx context.Context, id uuid.UUID, limit int) ([]Failure, error) {
	rows, err := c.pool.Query(ctx, `
		SELECT media_sid || ' → ' || service_sid, state || ': ' || coalesce(error, '') FROM restore_media
		WHERE run_id = $1 AND state IN ('failed', 'unconfirmed') ORDER BY seq LIMIT $2`, id, limit)
	if err != nil {
		return nil, fmt.Errorf("restore failures %s: %w", id, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Failure, error) {
		var f Failure
		return f, r.Scan(&f.SID, &f.Reason)
	})
}

// restoreStatus is RunStatus for a restore.
func (c *Catalog) restoreStatus(ctx context.Context, s Status) (Status, error) {
	r, err := c.GetRestore(ctx, s.ID)
	if err != nil {
		return Status{}, err
	}
	s.Restore = &r
	if s.Restores, err = c.RestoreCounts(ctx, s.ID); err != nil {
		return Status{}, err
	}
	s.MediaFound, s.MediaPending = s.Restores.Total, s.Restores.Open()
	s.MediaFailed = s.Restores.Failed + s.Restores.Unconfirmed
	if s.Failures, err = c.RestoreFailures(ctx, s.ID, 20); err != nil {
		return Status{}, err
	}
	return s, nil
}

func nullUUID(u uuid.UUID) *uuid.UUID {
	if u == uuid.Nil {
		return nil
	}
	return &u
}
