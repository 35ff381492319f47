package catalog

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Conversations runs (issue #15). A run's window i pages the conversations
// of its service i; each conversation found is scanned on its own
// (run_conversations), newest message first, down to the run's since or to
// where an earlier run had read it (conversation_progress).

// RunConversation is one conversation a run scans.
type RunConversation struct {
	RunID           uuid.UUID
	ConversationSID string
	ServiceSID      string
	State           WindowState // pending, done or failed
	Page            int
	NextPageURL     string // "" before the first page
	// StopIndex is where the scan stops reading (an earlier run read up to
	// it, from a since no later than this run's); -1 reads down to since.
	StopIndex int64
	// TopIndex is the highest index seen among messages created before
	// the run's until; -1 while none.
	TopIndex int64
}

// ConversationRef names a conversation found by a run's listing.
type ConversationRef struct {
	SID        string
	ServiceSID string
}

// AddConversations records the conversations of one listed page for a run
// (one scan each) and returns those new to it, each with its stop index
// taken now from conversation_progress: where an earlier run read it from
// a since no later than this run's. A dry run reads progress but never
// writes it.
func (c *Catalog) AddConversations(ctx context.Context, run uuid.UUID, convs []ConversationRef) ([]RunConversation, error) {
	if len(convs) == 0 {
		return nil, nil
	}
	sids, svcs := make([]string, len(convs)), make([]string, len(convs))
	for i, cv := range convs {
		sids[i], svcs[i] = cv.SID, cv.ServiceSID
	}
	rows, err := c.pool.Query(ctx, `
		INSERT INTO run_conversations (run_id, conversation_sid, service_sid, stop_index)
		SELECT $1, t.sid, t.svc, p.last_index
		FROM unnest($2::text[], $3::text[]) AS t(sid, svc)
		JOIN runs r ON r.id = $1
		LEFT JOIN conversation_progress p ON p.conversation_sid = t.sid
			AND (p.covered_since IS NULL OR p.covered_since <= r.since)
		ON CONFLICT (run_id, conversation_sid) DO NOTHING
		RETURNING `+runConversationColumns, run, sids, svcs)
	if err != nil {
		return nil, fmt.Errorf("record %d conversations of run %s: %w", len(convs), run, err)
	}
	out, err := pgx.CollectRows(rows, scanRunConversation)
	if err != nil {
		return nil, fmt.Errorf("record %d conversations of run %s: %w", len(convs), run, err)
	}
	return out, nil
}

const runConversationColumns = `run_id, conversation_sid, service_sid, state, page, coalesce(next_page_url, ''),
	coalesce(stop_index, -1), coalesce(top_index, -1)`

func scanRunConversation(r pgx.CollectableRow) (RunConversation, error) {
	var v RunConversation
	err := r.Scan(&v.RunID, &v.ConversationSID, &v.ServiceSID, &v.State, &v.Page, &v.NextPageURL, &v.StopIndex, &v.TopIndex)
	return v, err
}

// ErrConversationNotInRun is returned for a conversation a run never listed.
var ErrConversationNotInRun = errors.New("conversation not listed by the run")

// GetRunConversation returns one conversation of a run.
func (c *Catalog) GetRunConversation(ctx context.Context, run uuid.UUID, sid string) (RunConversation, error) {
	rows, err := c.pool.Query(ctx, `SELECT `+runConversationColumns+` FROM run_conversations
		WHERE run_id = $1 AND conversation_sid = $2`, run, sid)
	if err != nil {
		return RunConversation{}, fmt.Errorf("conversation %s of run %s: %w", sid, run, err)
	}
	v, err := pgx.CollectExactlyOneRow(rows, scanRunConversation)
	if errors.Is(err, pgx.ErrNoRows) {
		return RunConversation{}, fmt.Errorf("conversation %s of run %s: %w", sid, run, ErrConversationNotInRun)
	}
	if err != nil {
		return RunConversation{}, fmt.Errorf("conversation %s of run %s: %w", sid, run, err)
	}
	return v, nil
}

// PendingConversations returns a run's conversations still to scan whose
// row was last touched before olderThan (their task may be lost), up to
// limit, and touches them.
func (c *Catalog) PendingConversations(ctx context.Context, run uuid.UUID, olderThan time.Time, limit int) ([]RunConversation, error) {
	rows, err := c.pool.Query(ctx, `
		UPDATE run_conversations SET updated_at = now()
		WHERE run_id = $1 AND conversation_sid IN (
			SELECT conversation_sid FROM run_conversations
			WHERE run_id = $1 AND state = 'pending' AND updated_at < $2 LIMIT $3)
		RETURNING `+runConversationColumns, run, olderThan, limit)
	if err != nil {
		return nil, fmt.Errorf("pending conversations of run %s: %w", run, err)
	}
	return pgx.CollectRows(rows, scanRunConversation)
}

// AdvanceConversation records that page `page` of a conversation's scan was
// handled: where the next page is ("" when the scan ends), and the highest
// index seen before the run's until (top, -1 for none on this page). It is
// guarded by the page number, so a page handled twice advances it once; it
// reports whether this call advanced it. A scan that ends moves the
// conversation's progress (unless the run is a dry run): reachedStart says
// it read down to the conversation's first message.
func (c *Catalog) AdvanceConversation(ctx context.Context, run Run, sid string, page int, next string, top int64, reachedStart bool) (bool, error) {
	var topArg *int64
	if top >= 0 {
		topArg = &top
	}
	advanced := false
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		var v RunConversation
		rows, err := tx.Query(ctx, `
			UPDATE run_conversations SET page = page + 1, next_page_url = $4,
				top_index = greatest(top_index, $5), reached_start = reached_start OR $6,
				state = CASE WHEN $4::text IS NULL THEN 'done' ELSE 'pending' END, updated_at = now()
			WHERE run_id = $1 AND conversation_sid = $2 AND page = $3 AND state = 'pending'
			RETURNING `+runConversationColumns, run.ID, sid, page, nullString(next), topArg, reachedStart)
		if err != nil {
			return err
		}
		vs, err := pgx.CollectRows(rows, scanRunConversation)
		if err != nil || len(vs) == 0 {
			return err
		}
		advanced, v = true, vs[0]
		if next != "" {
			return nil
		}
		// Scanned to its end: its cursors can no longer cycle.
		if _, err := tx.Exec(ctx, `DELETE FROM run_conversation_cursors WHERE run_id = $1 AND conversation_sid = $2`, run.ID, sid); err != nil {
			return err
		}
		if run.DryRun || v.TopIndex < 0 {
			return nil
		}
		// The scan ended: everything from its top down to its stop (an
		// earlier run's coverage, from no later a since) or to this run's
		// since, or to the first message, is covered now. A run with an
		// earlier until than the coverage's (top below last_index) leaves
		// it as it is: it read less.
		var since *time.Time
		if !reachedStart {
			since = &run.Since
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO conversation_progress AS p (conversation_sid, account_sid, service_sid, last_index, covered_since, run_id)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (conversation_sid) DO UPDATE SET
				last_index = EXCLUDED.last_index,
				covered_since = CASE WHEN $7 THEN
						CASE WHEN p.covered_since IS NULL OR EXCLUDED.covered_since IS NULL THEN coalesce(p.covered_since, EXCLUDED.covered_since)
						     ELSE greatest(p.covered_since, EXCLUDED.covered_since) END
					ELSE EXCLUDED.covered_since END,
				run_id = EXCLUDED.run_id, updated_at = now()
			WHERE EXCLUDED.last_index >= p.last_index`,
			sid, run.AccountSID, v.ServiceSID, v.TopIndex, since, run.ID, v.StopIndex >= 0)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("advance conversation %s of run %s: %w", sid, run.ID, err)
	}
	return advanced, nil
}

// FollowConversationCursor records that page `page` of a conversation's
// scan is fetched from uri, and returns the page first fetched from it:
// page itself, unless the scan's cursors went round (FollowCursor for a
// window).
func (c *Catalog) FollowConversationCursor(ctx context.Context, run uuid.UUID, sid string, page int, uri string) (int, error) {
	var first int
	err := c.pool.QueryRow(ctx, `
		INSERT INTO run_conversation_cursors (run_id, conversation_sid, cursor, page) VALUES ($1, $2, $3, $4)
		ON CONFLICT (run_id, conversation_sid, cursor) DO UPDATE SET page = run_conversation_cursors.page
		RETURNING page`, run, sid, cursorHash(uri), page).Scan(&first)
	if err != nil {
		return 0, fmt.Errorf("follow cursor of conversation %s of run %s: %w", sid, run, err)
	}
	return first, nil
}

// FailConversation ends a conversation's scan that cannot go on, with the
// reason; the run fails for it, and its progress does not move.
func (c *Catalog) FailConversation(ctx context.Context, run uuid.UUID, sid, reason string) error {
	_, err := c.pool.Exec(ctx, `
		UPDATE run_conversations SET state = 'failed', error = $3, updated_at = now()
		WHERE run_id = $1 AND conversation_sid = $2 AND state = 'pending'`, run, sid, reason)
	if err != nil {
		return fmt.Errorf("fail conversation %s of run %s: %w", sid, run, err)
	}
	return nil
}

// KnownWork joins to a run, as messages still to handle, the catalogued
// messages of a conversation at or below index `stop` (those the scan does
// not read again), created in the run's range, that still have work for it:
// a media not archived (pending, failed, suspect), or, when the run
// deletes, one archived and not deleted. It returns their SIDs.
func (c *Catalog) KnownWork(ctx context.Context, run Run, conversation string, stop int64) ([]string, error) {
	rows, err := c.pool.Query(ctx, `
		INSERT INTO run_messages (run_id, message_sid, state)
		SELECT $1, g.sid, 'pending' FROM messages g
		WHERE g.conversation_sid = $2 AND g.conversation_index <= $3
		  AND g.date_created >= $4 AND g.date_created < $5
		  AND EXISTS (SELECT 1 FROM media m WHERE m.message_sid = g.sid
		              AND (m.state IN ('pending', 'failed', 'suspect') OR ($6 AND m.state = 'archived')))
		ON CONFLICT (run_id, message_sid) DO NOTHING
		RETURNING message_sid`, run.ID, conversation, stop, run.Since, run.Until, run.Delete)
	if err != nil {
		return nil, fmt.Errorf("known work of conversation %s in run %s: %w", conversation, run.ID, err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// ConversationMessage is what the catalog keeps of a Conversations message:
// where it lives on Twilio and the proof of its archived record.
type ConversationMessage struct {
	SID, AccountSID, ServiceSID, ConversationSID string
	Index                                        int64
	DateCreated                                  time.Time
	Record                                       *MessageRecordCopy // nil until archived
}

// MessageRecordCopy is the archived JSON record of a message.
type MessageRecordCopy struct {
	Key    string
	Size   int64
	SHA256 [32]byte
}

// ErrNotConversation is returned for a message the catalog does not hold as
// a Conversations message.
var ErrNotConversation = errors.New("not a Conversations message in the catalog")

// GetConversationMessage returns a Conversations message's row.
func (c *Catalog) GetConversationMessage(ctx context.Context, sid string) (ConversationMessage, error) {
	var (
		m              ConversationMessage
		svc, conv, key *string
		index, size    *int64
		sha            *string
		created        *time.Time
	)
	err := c.pool.QueryRow(ctx, `
		SELECT sid, account_sid, service_sid, conversation_sid, conversation_index, date_created,
			record_key, record_size, record_sha256
		FROM messages WHERE sid = $1 AND source = 'conversations'`, sid).
		Scan(&m.SID, &m.AccountSID, &svc, &conv, &index, &created, &key, &size, &sha)
	if errors.Is(err, pgx.ErrNoRows) {
		return m, fmt.Errorf("message %s: %w", sid, ErrNotConversation)
	}
	if err != nil {
		return m, fmt.Errorf("message %s: %w", sid, err)
	}
	m.ServiceSID, m.ConversationSID, m.DateCreated = str(svc), str(conv), deref(created)
	if index != nil {
		m.Index = *index
	}
	if key != nil && size != nil && sha != nil {
		rc := &MessageRecordCopy{Key: *key, Size: *size}
		if _, err := hex.Decode(rc.SHA256[:], []byte(*sha)); err != nil {
			return m, fmt.Errorf("message %s: stored record sha256: %w", sid, err)
		}
		m.Record = rc
	}
	return m, nil
}

// RecordMessageCopy records the archived JSON record of a message. A later
// record (the message was edited between two tries) replaces the proof: the
// object named by it is the one a delete verifies.
func (c *Catalog) RecordMessageCopy(ctx context.Context, sid string, rc MessageRecordCopy) error {
	_, err := c.pool.Exec(ctx, `
		UPDATE messages SET record_key = $2, record_size = $3, record_sha256 = $4, updated_at = now()
		WHERE sid = $1`, sid, rc.Key, rc.Size, hex.EncodeToString(rc.SHA256[:]))
	if err != nil {
		return fmt.Errorf("record the archived record of message %s: %w", sid, err)
	}
	return nil
}

// MessageMedia returns every catalogued media of a message, whatever its
// state or run: a Conversations message is deleted whole, so a delete
// proves each of them.
func (c *Catalog) MessageMedia(ctx context.Context, message string) ([]MediaItem, error) {
	rows, err := c.pool.Query(ctx, `SELECT `+mediaItemColumns+`
		FROM media m JOIN messages g ON g.sid = m.message_sid
		WHERE m.message_sid = $1 ORDER BY m.sid LIMIT 100`, message)
	if err != nil {
		return nil, fmt.Errorf("media of message %s: %w", message, err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (MediaItem, error) { return scanMediaItem(r) })
	if err != nil {
		return nil, fmt.Errorf("media of message %s: %w", message, err)
	}
	return items, nil
}

// MessageDeleteWanted reports whether a run deletes a message: it marked an
// archived media of it to delete, and has not done so yet.
func (c *Catalog) MessageDeleteWanted(ctx context.Context, run uuid.UUID, message string) (bool, error) {
	var wanted bool
	err := c.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM run_media
		WHERE run_id = $1 AND message_sid = $2 AND delete_wanted AND state = 'archived')`, run, message).Scan(&wanted)
	if err != nil {
		return false, fmt.Errorf("delete of message %s in run %s: %w", message, run, err)
	}
	return wanted, nil
}

// KeepMessage records that a run does not delete a message after all (one
// of its media could not be archived, or its record not verified): its
// archived media stay archived, each with the reason, and are no longer
// work for the run.
func (c *Catalog) KeepMessage(ctx context.Context, run uuid.UUID, message, reason string) error {
	_, err := c.pool.Exec(ctx, `
		UPDATE run_media SET delete_wanted = false, error = $3, updated_at = now()
		WHERE run_id = $1 AND message_sid = $2 AND delete_wanted AND state = 'archived'`, run, message, reason)
	if err != nil {
		return fmt.Errorf("keep message %s in run %s: %w", message, run, err)
	}
	return nil
}
