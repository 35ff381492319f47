package catalog

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// RunMediaItem is a media a run still has work on: to archive (RunState
// pending) or, archived, to delete (DeleteWanted).
type RunMediaItem struct {
	MediaItem
	RunState     MediaState // run_media.state
	DeleteWanted bool
}

// MessageWork returns what a run still has to do with one message's media,
// up to limit media with SIDs after `after` (keyset paging: "" starts),
// in SID order: media to archive, and archived media to delete. Postgres
// decides: what a task committed before it died is not returned again.
// The read goes through an index of only the rows still to do.
func (c *Catalog) MessageWork(ctx context.Context, run uuid.UUID, message, after string, limit int) ([]RunMediaItem, error) {
	q, args := messageWorkSQL(run, message, after, limit)
	rows, err := c.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("work on message %s of run %s: %w", message, run, err)
	}
	items, err := collectWork(rows)
	if err != nil {
		return nil, fmt.Errorf("work on message %s of run %s: %w", message, run, err)
	}
	return items, nil
}

// MessagesWork is MessageWork for several messages of a run at once: up
// to limit media after (afterMessage, afterMedia), in (message, media)
// SID order ("" starts).
func (c *Catalog) MessagesWork(ctx context.Context, run uuid.UUID, messages []string, afterMessage, afterMedia string, limit int) ([]RunMediaItem, error) {
	q, args := messagesWorkSQL(run, messages, afterMessage, afterMedia, limit)
	rows, err := c.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("work on %d messages of run %s: %w", len(messages), run, err)
	}
	items, err := collectWork(rows)
	if err != nil {
		return nil, fmt.Errorf("work on %d messages of run %s: %w", len(messages), run, err)
	}
	return items, nil
}

func messagesWorkSQL(run uuid.UUID, messages []string, afterMessage, afterMedia string, limit int) (string, []any) {
	return `SELECT ` + mediaItemColumns + `, d.state, d.delete_wanted
		FROM run_media d JOIN media m ON m.sid = d.media_sid JOIN messages g ON g.sid = m.message_sid
		WHERE d.run_id = $1 AND d.message_sid = ANY($2) AND (d.message_sid, d.media_sid) > ($3, $4)
		  AND (d.state = 'pending' OR (d.delete_wanted AND d.state = 'archived'))
		ORDER BY d.message_sid, d.media_sid LIMIT $5`, []any{run, messages, afterMessage, afterMedia, limit}
}

// messageWorkSQL is MessageWork's query.
func messageWorkSQL(run uuid.UUID, message, after string, limit int) (string, []any) {
	return `SELECT ` + mediaItemColumns + `, d.state, d.delete_wanted
		FROM run_media d JOIN media m ON m.sid = d.media_sid JOIN messages g ON g.sid = m.message_sid
		WHERE d.run_id = $1 AND d.message_sid = $2 AND d.media_sid > $3
		  AND (d.state = 'pending' OR (d.delete_wanted AND d.state = 'archived'))
		ORDER BY d.media_sid LIMIT $4`, []any{run, message, after, limit}
}

func collectWork(rows pgx.Rows) ([]RunMediaItem, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (RunMediaItem, error) {
		var it RunMediaItem
		var err error
		it.MediaItem, err = scanMediaItem(r, &it.RunState, &it.DeleteWanted)
		return it, err
	})
}

// ArchivedMedia is one media's archived copy, to commit (CommitMessage).
type ArchivedMedia struct {
	SID  string
	Copy ArchivedCopy
}

// RunOutcome is a media's outcome within a run that its media row already
// holds (a copy reused from an earlier run, a delete or a gone recorded
// before), to commit (CommitMessage).
type RunOutcome struct {
	SID    string
	State  MediaState
	Reused bool
}

// CommitMessage records, in one statement (one transaction, one round
// trip), the archived copies of a message's media and the run's outcome
// for each, with the outcomes whose media rows already hold them. It
// returns the media whose rows this call's copies became (committed) and
// the media the run deletes from Twilio next (deleteWanted). As
// MarkArchived does for one: only a pending, failed or suspect row moves
// to archived, so a second archiving of the same media leaves the first
// proof in place, and each row records that the caller judged its bytes
// plausibly the media (plausible_at), which ClaimDelete requires. A media
// in deleteWanted but not in committed keeps the copy another commit
// recorded: the caller reads that row (GetMedia) and proves that copy,
// never its own. Only a run row still pending changes (MessageWork reads
// only those as work): an outcome a concurrent task recorded meanwhile
// (deleted, held, failed) is never reverted to archived.
//
// The S3 legal hold of a committed copy whose PUT created its object
// (ArchivedCopy.Created: a PUT sets no legal hold) is recorded off where
// no active hold covers its media: no S3 request is needed for it. The
// others' state is unknown (holdUnknown, a subset of committed): the
// caller sets them, or the reconciler's sweep does (UnknownLegalHolds).
// The statement runs under the shared holds lock, ordered with AddHold's
// commit: a hold committed before it is seen, and its media are left
// unknown; one committed after finds these rows confirmed off, which its
// hold:apply pass turns on (a hold not yet applied wants every object it
// covers confirmed on).
func (c *Catalog) CommitMessage(ctx context.Context, run uuid.UUID, archived []ArchivedMedia, outcomes []RunOutcome) (committed, deleteWanted, holdUnknown []string, err error) {
	if len(archived) == 0 && len(outcomes) == 0 {
		return nil, nil, nil, nil
	}
	n := len(archived)
	var (
		sids                        = make([]string, n)
		filenames, versions, locks  = make([]*string, n), make([]*string, n), make([]*string, n)
		sizes                       = make([]int64, n)
		shas, stores, buckets, keys = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		retain                      = make([]*time.Time, n)
		created                     = make([]bool, n)
		outSIDs, outStates          = make([]string, len(outcomes)), make([]string, len(outcomes))
		outReused                   = make([]bool, len(outcomes))
	)
	for i, a := range archived {
		cp := a.Copy
		sids[i], filenames[i], sizes[i], shas[i] = a.SID, nullString(cp.Filename), cp.Size, hex.EncodeToString(cp.SHA256[:])
		stores[i], buckets[i], keys[i], versions[i] = cp.Store, cp.Bucket, cp.Key, nullString(cp.VersionID)
		locks[i], retain[i], created[i] = nullString(string(cp.LockMode)), nullTime(cp.RetainUntil), cp.Created
	}
	for i, o := range outcomes {
		outSIDs[i], outStates[i], outReused[i] = o.SID, string(o.State), o.Reused
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock_shared($1)`, holdsLock)
	// Each statement of the batch takes its snapshot after the one before:
	// this one sees every hold committed before the lock. A batch outside
	// a transaction runs in one implicit transaction: the lock is held
	// until the rows commit.
	b.Queue(`
		WITH copies AS (
			SELECT * FROM unnest($2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[],
				$8::text[], $9::text[], $10::text[], $11::timestamptz[], $15::bool[])
				AS t(sid, filename, size_bytes, sha256, store, bucket, object_key, version_id, lock_mode, retain_until, created)
		), copied AS (
			UPDATE media m SET state = 'archived', filename = c.filename, size_bytes = c.size_bytes,
				sha256 = c.sha256, store = c.store, bucket = c.bucket, object_key = c.object_key,
				version_id = c.version_id, lock_mode = c.lock_mode, retain_until = c.retain_until,
				legal_hold_s3 = CASE WHEN c.created AND NOT held(g.sid, g.from_number, g.to_number, coalesce(g.date_sent, g.date_created))
					THEN false END,
				archived_at = now(), plausible_at = now(), last_error = NULL, updated_at = now()
			FROM copies c, messages g
			WHERE m.sid = c.sid AND m.state IN ('pending', 'failed', 'suspect') AND g.sid = m.message_sid
			RETURNING m.sid, m.legal_hold_s3 IS NULL AS hold_unknown
		), archived AS (
			UPDATE run_media d SET state = 'archived', error = NULL, updated_at = now()
			FROM copies c
			WHERE d.run_id = $1 AND d.media_sid = c.sid AND d.state = 'pending'
			RETURNING d.media_sid, d.delete_wanted
		), outcomes AS (
			UPDATE run_media d SET state = o.state, reused = d.reused OR o.reused, error = NULL, updated_at = now()
			FROM unnest($12::text[], $13::text[], $14::bool[]) AS o(sid, state, reused)
			WHERE d.run_id = $1 AND d.media_sid = o.sid AND d.state = 'pending'
			RETURNING d.media_sid, d.delete_wanted AND o.state = 'archived' AS delete_wanted
		)
		SELECT sid, true, false, hold_unknown FROM copied
		UNION ALL
		SELECT media_sid, false, true, false FROM archived WHERE delete_wanted
		UNION ALL
		SELECT media_sid, false, true, false FROM outcomes WHERE delete_wanted`,
		run, sids, filenames, sizes, shas, stores, buckets, keys, versions, locks, retain,
		outSIDs, outStates, outReused, created)
	br := c.pool.SendBatch(ctx, b)
	defer br.Close()
	fail := func(err error) ([]string, []string, []string, error) {
		return nil, nil, nil, fmt.Errorf("commit %d media of run %s: %w", n+len(outcomes), run, err)
	}
	if _, err := br.Exec(); err != nil {
		return fail(err)
	}
	rows, err := br.Query()
	if err != nil {
		return fail(err)
	}
	var (
		sid                    string
		isCopy, isDel, unknown bool
	)
	_, err = pgx.ForEachRow(rows, []any{&sid, &isCopy, &isDel, &unknown}, func() error {
		if isCopy {
			committed = append(committed, sid)
			if unknown {
				holdUnknown = append(holdUnknown, sid)
			}
		}
		if isDel {
			deleteWanted = append(deleteWanted, sid)
		}
		return nil
	})
	if err == nil {
		err = br.Close()
	}
	if err != nil {
		return fail(err)
	}
	return committed, deleteWanted, holdUnknown, nil
}
