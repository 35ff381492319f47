package catalog

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// A verify run re-reads archived objects and checks each one's size and
// SHA-256 against its row, as `restic check --read-data` does: the media
// it reads are chosen once, at its start (run_verify, numbered by seq), and
// each one's result is recorded on its run row and on the media row
// (last_verified_at, verify_result).

// Verify results.
const (
	VerifyOK       = "ok"
	VerifyMismatch = "mismatch" // the object's size or SHA-256 is not the row's
	VerifyMissing  = "missing"  // no object at the row's key
	VerifyError    = "error"    // it could not be checked (another archive, …)
)

// VerifySpec is a request to verify the archive.
type VerifySpec struct {
	AccountSID   string
	Since, Until time.Time // messages sent in [Since, Until); zero: no bound
	Sample       float64   // share of the media in range to read, in (0, 1]
	Actor        string
}

// CreateVerifyRun records a verify run in state queued.
func (c *Catalog) CreateVerifyRun(ctx context.Context, s VerifySpec) (Run, error) {
	if !(s.Sample > 0 && s.Sample <= 1) {
		return Run{}, &InvalidError{Field: "sample", Value: fmt.Sprint(s.Sample), Reason: "is not in (0, 1]"}
	}
	if !s.Since.IsZero() && !s.Until.IsZero() && !s.Since.Before(s.Until) {
		return Run{}, &InvalidError{Field: "since", Value: s.Since.Format(time.DateOnly), Reason: "is not before {until} " + s.Until.Format(time.DateOnly)}
	}
	var id uuid.UUID
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		var err error
		id, err = insertVerifyRun(ctx, tx, s, nil, nil)
		return err
	})
	if err != nil {
		return Run{}, fmt.Errorf("create verify run: %w", err)
	}
	return c.GetRun(ctx, id)
}

// insertVerifyRun records a verify run: no windows (it lists nothing), its
// range and sample on the run's row.
func insertVerifyRun(ctx context.Context, tx pgx.Tx, s VerifySpec, policy *string, tick *time.Time) (uuid.UUID, error) {
	id, err := insertRun(ctx, tx, RunSpec{Kind: KindVerify, AccountSID: s.AccountSID, Actor: s.Actor}, policy, tick, nil)
	if err != nil {
		return id, err
	}
	_, err = tx.Exec(ctx, `UPDATE runs SET since = $2, until = $3, verify_sample = $4 WHERE id = $1`,
		id, nullTime(s.Since), nullTime(s.Until), s.Sample)
	return id, err
}

// SelectVerifyMedia chooses, once, the media a verify run reads: every
// media of its account with an archived copy (archived or deleted from
// Twilio), of messages sent in its range, each kept with probability
// sample. One statement, whatever the archive's size. It returns how many.
func (c *Catalog) SelectVerifyMedia(ctx context.Context, run Run) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		var selected *time.Time
		if err := tx.QueryRow(ctx, `SELECT verify_selected_at FROM runs WHERE id = $1 FOR UPDATE`, run.ID).Scan(&selected); err != nil {
			return err
		}
		if selected == nil {
			if _, err := tx.Exec(ctx, `
				INSERT INTO run_verify (run_id, seq, media_sid)
				SELECT $1, (row_number() OVER (ORDER BY m.sid))::int - 1, m.sid
				FROM media m JOIN messages g ON g.sid = m.message_sid
				WHERE m.account_sid = $2 AND m.state IN ('archived', 'deleted')
				  AND ($3::timestamptz IS NULL OR coalesce(g.date_sent, g.date_created) >= $3)
				  AND ($4::timestamptz IS NULL OR coalesce(g.date_sent, g.date_created) < $4)
				  AND ($5 >= 1 OR random() < $5)`,
				run.ID, run.AccountSID, nullTime(run.Since), nullTime(run.Until), run.VerifySample); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE runs SET verify_selected_at = now() WHERE id = $1`, run.ID); err != nil {
				return err
			}
		}
		return tx.QueryRow(ctx, `SELECT coalesce(max(seq) + 1, 0) FROM run_verify WHERE run_id = $1`, run.ID).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("select media to verify for run %s: %w", run.ID, err)
	}
	return n, nil
}

// VerifyItem is one media a verify run reads, with its archived copy.
type VerifyItem struct {
	Seq    int
	State  string
	SID    string
	Copy   CopyAt
	Size   int64
	SHA256 [32]byte
	// MessageSID is the media's message; Record, for a Conversations
	// media, its message's archived record (nil when none is recorded):
	// deleting the message loses what the record holds, so a verify reads
	// it with the media.
	MessageSID string
	Record     *MessageRecordCopy
}

// VerifyItems returns a verify run's media with seq in [from, to), still
// pending.
func (c *Catalog) VerifyItems(ctx context.Context, run uuid.UUID, from, to int) ([]VerifyItem, error) {
	rows, err := c.pool.Query(ctx, `
		SELECT v.seq, v.state, m.sid, coalesce(m.store, ''), coalesce(m.bucket, ''), coalesce(m.object_key, ''),
			coalesce(m.size_bytes, 0), coalesce(m.sha256, ''), m.message_sid,
			coalesce(g.record_key, ''), coalesce(g.record_size, 0), coalesce(g.record_sha256, '')
		FROM run_verify v JOIN media m ON m.sid = v.media_sid JOIN messages g ON g.sid = m.message_sid
		WHERE v.run_id = $1 AND v.seq >= $2 AND v.seq < $3 AND v.state = 'pending'
		ORDER BY v.seq`, run, from, to)
	if err != nil {
		return nil, fmt.Errorf("verify items of run %s: %w", run, err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (VerifyItem, error) {
		var it VerifyItem
		var sha, recKey, recSHA string
		var recSize int64
		if err := r.Scan(&it.Seq, &it.State, &it.SID, &it.Copy.Store, &it.Copy.Bucket, &it.Copy.Key, &it.Size, &sha,
			&it.MessageSID, &recKey, &recSize, &recSHA); err != nil {
			return it, err
		}
		if _, err := hex.Decode(it.SHA256[:], []byte(sha)); err != nil {
			return it, fmt.Errorf("media %s: sha256 %q: %w", it.SID, sha, err)
		}
		if recKey != "" {
			it.Record = &MessageRecordCopy{Key: recKey, Size: recSize}
			if _, err := hex.Decode(it.Record.SHA256[:], []byte(recSHA)); err != nil {
				return it, fmt.Errorf("message %s: record sha256 %q: %w", it.MessageSID, recSHA, err)
			}
		}
		return it, nil
	})
	if err != nil {
		return nil, fmt.Errorf("verify items of run %s: %w", run, err)
	}
	return items, nil
}

// RecordVerify records what reading a media's object found, on the run's
// row and the media's, in one statement; an object that matched is also
// the media's latest proof (verified_at). A result already recorded for
// the run is kept: a task run twice records once.
func (c *Catalog) RecordVerify(ctx context.Context, run uuid.UUID, sid, result, reason string) error {
	switch result {
	case VerifyOK, VerifyMismatch, VerifyMissing, VerifyError:
	default:
		return fmt.Errorf("record verify of %s: unknown result %q", sid, result)
	}
	_, err := c.pool.Exec(ctx, `
		WITH v AS (
			UPDATE run_verify SET state = $3, error = $4, updated_at = now()
			WHERE run_id = $1 AND media_sid = $2 AND state = 'pending' RETURNING media_sid
		)
		UPDATE media SET last_verified_at = now(), verify_result = $3, verify_error = $4,
			verified_at = CASE WHEN $3 = 'ok' THEN now() ELSE verified_at END
		WHERE sid = (SELECT media_sid FROM v)`, run, sid, result, nullString(reason))
	if err != nil {
		return fmt.Errorf("record verify of %s: %w", sid, err)
	}
	return nil
}

// VerifyCounts is a verify run's progress.
type VerifyCounts struct {
	Total, OK, Mismatch, Missing, Error, Pending int
	Bytes                                        int64 // of the media read
}

// VerifyCounts counts a verify run's results.
func (c *Catalog) VerifyCounts(ctx context.Context, run uuid.UUID) (VerifyCounts, error) {
	var n VerifyCounts
	err := c.pool.QueryRow(ctx, `
		SELECT count(*), count(*) FILTER (WHERE v.state = 'ok'), count(*) FILTER (WHERE v.state = 'mismatch'),
			count(*) FILTER (WHERE v.state = 'missing'), count(*) FILTER (WHERE v.state = 'error'),
			count(*) FILTER (WHERE v.state = 'pending'),
			coalesce(sum(m.size_bytes) FILTER (WHERE v.state <> 'pending'), 0)
		FROM run_verify v JOIN media m ON m.sid = v.media_sid WHERE v.run_id = $1`, run).
		Scan(&n.Total, &n.OK, &n.Mismatch, &n.Missing, &n.Error, &n.Pending, &n.Bytes)
	if err != nil {
		return n, fmt.Errorf("verify counts of run %s: %w", run, err)
	}
	return n, nil
}

// StaleVerifySeqs returns the seqs of a verify run's media still pending
// whose row has not moved since before cutoff, up to limit, for the
// reconciler.
func (c *Catalog) StaleVerifySeqs(ctx context.Context, run uuid.UUID, cutoff time.Time, limit int) ([]int, error) {
	rows, err := c.pool.Query(ctx, `SELECT seq FROM run_verify
		WHERE run_id = $1 AND state = 'pending' AND updated_at < $2 ORDER BY seq LIMIT $3`, run, cutoff, limit)
	if err != nil {
		return nil, fmt.Errorf("stale verify items of run %s: %w", run, err)
	}
	seqs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return nil, fmt.Errorf("stale verify items of run %s: %w", run, err)
	}
	return seqs, nil
}
