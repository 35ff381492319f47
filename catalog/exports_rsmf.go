package catalog

import (
	"context"
	"encoding/hex"
	"fmt"
	"iter"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// RSMFMessage is one message of an RSMF export, with its exported media
// (their seqs in export_media), in the order the .rsmf files take them:
// by conversation, UTC day, time sent.
type RSMFMessage struct {
	SID             string
	Source          string
	Sent            time.Time
	From, To        string
	Direction       string
	ConversationSID string
	Author          string
	// Record is the message's archived record, nil when none is recorded.
	Record     *MessageRecordCopy
	MediaSeq   []int
	MediaBytes int64 // the sum of their sizes
}

// Conversation is the key of the conversation the message belongs to: a
// Conversations message's CH…, else the unordered pair of numbers.
func (m RSMFMessage) Conversation() string {
	if m.ConversationSID != "" {
		return m.ConversationSID
	}
	a, b := m.From, m.To
	if b < a {
		a, b = b, a
	}
	return a + "_" + b
}

// RSMFMessages yields every message export id covers (its filters, with or
// without media), grouped by conversation and UTC day and in time order
// within one, from one streamed query in one snapshot: an export of any
// size is never in memory.
func (c *Catalog) RSMFMessages(ctx context.Context, id uuid.UUID) iter.Seq2[RSMFMessage, error] {
	return func(yield func(RSMFMessage, error) bool) {
		fail := func(err error) { yield(RSMFMessage{}, fmt.Errorf("export %s messages: %w", id, err)) }
		tx, err := c.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			fail(err)
			return
		}
		defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
		where, args, err := exportFilters(ctx, tx, id)
		if err != nil {
			fail(err)
			return
		}
		const conv = `coalesce(g.conversation_sid, least(coalesce(g.from_number, ''), coalesce(g.to_number, '')) || '_' ||
			greatest(coalesce(g.from_number, ''), coalesce(g.to_number, '')))`
		rows, err := tx.Query(ctx, `
			SELECT g.sid, g.source, `+exportSent+`, coalesce(g.from_number, ''), coalesce(g.to_number, ''),
				coalesce(g.direction, ''), coalesce(g.conversation_sid, ''), coalesce(g.author, ''),
				coalesce(g.record_key, ''), coalesce(g.record_size, 0), coalesce(g.record_sha256, ''),
				coalesce((SELECT array_agg(x.seq ORDER BY x.seq) FROM export_media x JOIN media m ON m.sid = x.media_sid
					WHERE x.run_id = $1 AND m.message_sid = g.sid), '{}'),
				(SELECT coalesce(sum(m.size_bytes), 0)::bigint FROM export_media x JOIN media m ON m.sid = x.media_sid
					WHERE x.run_id = $1 AND m.message_sid = g.sid)
			FROM messages g
			WHERE `+where+`
				-- what the export's selection saw: a retried pass writes the same files
				AND g.first_seen_at <= (SELECT selected_at FROM exports WHERE run_id = $1)
			ORDER BY `+conv+`, (`+exportSent+` AT TIME ZONE 'UTC')::date, `+exportSent+`, g.sid`,
			append([]any{id}, args...)...)
		if err != nil {
			fail(err)
			return
		}
		defer rows.Close()
		for rows.Next() {
			var m RSMFMessage
			var recKey, recSHA string
			var recSize int64
			if err := rows.Scan(&m.SID, &m.Source, &m.Sent, &m.From, &m.To, &m.Direction, &m.ConversationSID, &m.Author,
				&recKey, &recSize, &recSHA, &m.MediaSeq, &m.MediaBytes); err != nil {
				fail(err)
				return
			}
			if recKey != "" {
				m.Record = &MessageRecordCopy{Key: recKey, Size: recSize}
				if _, err := hex.Decode(m.Record.SHA256[:], []byte(recSHA)); err != nil {
					fail(fmt.Errorf("message %s: record sha256 %q: %w", m.SID, recSHA, err))
					return
				}
			}
			if !yield(m, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			fail(err)
		}
	}
}

// ExportItemsAt returns the media of export id at seqs (one .rsmf
// file's: at most its event limit's media), by seq, in one query.
func (c *Catalog) ExportItemsAt(ctx context.Context, id uuid.UUID, seqs []int) (map[int]ExportItem, error) {
	rows, err := c.pool.Query(ctx, `
		SELECT `+exportItemColumns+`
		FROM export_media x
		JOIN media m ON m.sid = x.media_sid
		JOIN messages g ON g.sid = m.message_sid
		WHERE x.run_id = $1 AND x.seq = ANY ($2)`, id, seqs)
	if err != nil {
		return nil, fmt.Errorf("export %s items: %w", id, err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ExportItem, error) { return scanExportItem(r) })
	if err != nil {
		return nil, fmt.Errorf("export %s items: %w", id, err)
	}
	out := make(map[int]ExportItem, len(items))
	for _, it := range items {
		out[it.Seq] = it
	}
	for _, s := range seqs {
		if _, ok := out[s]; !ok {
			return nil, fmt.Errorf("export %s has no media %d", id, s)
		}
	}
	return out, nil
}
