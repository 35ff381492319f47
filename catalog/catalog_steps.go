package catalog

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mediasync/mediasync/internal/objects"
)

// ErrMediaNotFound is returned for a media SID the catalog has no row for.
var ErrMediaNotFound = errors.New("media not in catalog")

// ErrNotDeletable is returned by ClaimDelete when the row does not prove an
// archived copy matching the checked one: the delete must not happen.
var ErrNotDeletable = errors.New("media is not archived with the checked size and sha256")

// MediaState is where a media is: in the catalog (media.state) or within a
// run (run_media.state).
type MediaState string

// Media states.
const (
	MediaPending  MediaState = "pending"
	MediaArchived MediaState = "archived"
	MediaDeleted  MediaState = "deleted"
	MediaGone     MediaState = "gone"
	MediaFailed   MediaState = "failed"
	// MediaSuspect: the download was not plausibly the media (Sniffer); it
	// is kept under a SuspectKey for inspection, never deleted from Twilio,
	// and downloaded again by a later run.
	MediaSuspect MediaState = "suspect"
	MediaListed  MediaState = "listed" // run_media only: a dry run found it
	MediaHeld    MediaState = "held"   // run_media only: a legal hold stopped its delete
)

// MessageRecord is what the catalog keeps of a Twilio message.
type MessageRecord struct {
	SID           string
	AccountSID    string
	DateSent      time.Time
	DateCreated   time.Time
	From, To      string
	Direction     string
	NumMedia      int
	NumMediaKnown bool // Twilio may send num_media as null
	// TaskSID is the first message of the message task that archives
	// this one, when that is another (a batch); "" for its own.
	TaskSID string

	// A Conversations message (Source SourceConversations): its service,
	// conversation, index there and author. From is its author too, so
	// that holds and exports by number cover SMS and WhatsApp participants.
	Source          string
	ServiceSID      string
	ConversationSID string
	Index           int64
	Author          string

	// Record is the message's record as archived beside its media, if the
	// lister archived it (a Messaging page: issue #17); RecordNoBody says
	// it was stored without its body. A message's first record stays.
	Record       *MessageRecordCopy
	RecordNoBody bool
}

// HasMedia reports whether the message may have media to list: when Twilio
// did not say how many, it has to be asked.
func (m MessageRecord) HasMedia() bool { return !m.NumMediaKnown || m.NumMedia > 0 }

// MediaRecord is a media as listed by Twilio, before it is archived.
type MediaRecord struct {
	SID         string
	AccountSID  string
	MessageSID  string
	ContentType string
	DateCreated time.Time

	// A Conversations media: its source, conversation, author, filename
	// and the size its message's entry gave (-1: none).
	Source          string
	ConversationSID string
	Author          string
	Filename        string
	ListedSize      int64
}

// MediaItem is a media row with what its archiving needs of its message.
type MediaItem struct {
	MediaRecord
	State      MediaState
	Filename   string
	Size       int64
	SHA256     [32]byte
	Store      string
	Bucket     string
	Key        string
	VersionID  string
	Attempts   int
	LastError  string
	DateSent   time.Time // the message's
	From, To   string
	ArchivedAt time.Time
	DeletedAt  time.Time
	// PlausibleAt is when the archived copy was judged plausibly the media
	// (Sniffer.Check); zero for a copy archived before the check existed,
	// which must be read back and judged before it may be deleted.
	PlausibleAt time.Time
	// ServiceSID is a Conversations media's service (its message's), where
	// MCS serves it.
	ServiceSID string
}

// ArchivedCopy is the proof of an archived object, written with the state.
type ArchivedCopy struct {
	Filename  string
	Size      int64
	SHA256    [32]byte
	Store     string
	Bucket    string
	Key       string
	VersionID string
	// Object Lock retention written with the object (WORM), if any.
	LockMode    objects.LockMode
	RetainUntil time.Time
	// Created: this copy's PUT created the object (it was not there
	// already), and a PUT sets no legal hold, so S3 holds none on it.
	Created bool
}

// windowColumns are what scanWindow reads.
const windowColumns = `run_id, seq, starts_at, ends_at, state, page, coalesce(next_page_uri, '')`

// ReleaseWindows releases the next of a run's windows, in order, until n
// of them are released and not yet listed to the end, and returns those
// it released now (each then needs its first page task queued). A run's
// windows are released a few at a time as listing advances, never all at
// once: the queue holds one page task per released window, so a run of
// any length keeps it small, and a page that waits on the queue's backlog
// never waits on page tasks that only listing drains.
func (c *Catalog) ReleaseWindows(ctx context.Context, run uuid.UUID, n int) ([]Window, error) {
	var ws []Window
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		// One release at a time per run: two windows ending at once would
		// otherwise each count the other as still listing, and both top up.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM runs WHERE id = $1 FOR NO KEY UPDATE`, run); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
			UPDATE run_windows SET released_at = now()
			WHERE run_id = $1 AND seq IN (
				SELECT seq FROM run_windows
				WHERE run_id = $1 AND state = 'pending' AND released_at IS NULL
				ORDER BY seq
				LIMIT greatest(0, $2 - (SELECT count(*) FROM run_windows
					WHERE run_id = $1 AND state = 'pending' AND released_at IS NOT NULL)))
			RETURNING `+windowColumns, run, n)
		if err != nil {
			return err
		}
		ws, err = pgx.CollectRows(rows, scanWindow)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("release windows of run %s: %w", run, err)
	}
	slices.SortFunc(ws, func(a, b Window) int { return a.Seq - b.Seq })
	return ws, nil
}

// ReleasedWindows returns a run's released windows not yet listed to the
// end: those whose page task should be in the queue.
func (c *Catalog) ReleasedWindows(ctx context.Context, run uuid.UUID) ([]Window, error) {
	rows, err := c.pool.Query(ctx, `SELECT `+windowColumns+` FROM run_windows
		WHERE run_id = $1 AND state = 'pending' AND released_at IS NOT NULL ORDER BY seq`, run)
	if err != nil {
		return nil, fmt.Errorf("released windows of run %s: %w", run, err)
	}
	return pgx.CollectRows(rows, scanWindow)
}

// WindowsListing counts the released, unfinished windows of an account's
// running runs: at most one page task each is in the queue, so the queue
// backlog less this many is work that drains without listing.
func (c *Catalog) WindowsListing(ctx context.Context, account string) (int, error) {
	var n int
	err := c.pool.QueryRow(ctx, `
		SELECT count(*) FROM runs r JOIN run_windows w ON w.run_id = r.id
		WHERE r.state = 'running' AND r.account_sid = $1
		  AND w.state = 'pending' AND w.released_at IS NOT NULL`, account).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("windows listing: %w", err)
	}
	return n, nil
}

// GetWindow returns one window of a run.
func (c *Catalog) GetWindow(ctx context.Context, run uuid.UUID, seq int) (Window, error) {
	rows, err := c.pool.Query(ctx, `SELECT `+windowColumns+` FROM run_windows WHERE run_id = $1 AND seq = $2`, run, seq)
	if err != nil {
		return Window{}, fmt.Errorf("window %d of run %s: %w", seq, run, err)
	}
	w, err := pgx.CollectExactlyOneRow(rows, scanWindow)
	if err != nil {
		return Window{}, fmt.Errorf("window %d of run %s: %w", seq, run, err)
	}
	return w, nil
}

func scanWindow(r pgx.CollectableRow) (Window, error) {
	var w Window
	err := r.Scan(&w.RunID, &w.Seq, &w.StartsAt, &w.EndsAt, &w.State, &w.Page, &w.NextPageURI)
	w.StartsAt, w.EndsAt = w.StartsAt.UTC(), w.EndsAt.UTC()
	return w, err
}

// FollowCursor records that page `page` of a window is fetched from uri,
// and returns the page that was first fetched from it: page itself, unless
// the window's cursors went round in a cycle (A→B→A), which no retry ends.
// The cursors are kept in Postgres, so a cycle is found however many tasks,
// retries and restarts it spans; recording the same page again (a task run
// twice) is not a cycle.
func (c *Catalog) FollowCursor(ctx context.Context, run uuid.UUID, seq, page int, uri string) (int, error) {
	var first int
	err := c.pool.QueryRow(ctx, `
		INSERT INTO run_window_cursors (run_id, seq, cursor, page) VALUES ($1, $2, $3, $4)
		ON CONFLICT (run_id, seq, cursor) DO UPDATE SET page = run_window_cursors.page
		RETURNING page`, run, seq, cursorHash(uri), page).Scan(&first)
	if err != nil {
		return 0, fmt.Errorf("follow cursor of window %d of run %s: %w", seq, run, err)
	}
	return first, nil
}

// cursorHash names a page URI by the SHA-256 of its path and sorted query,
// so that the same page asked with its parameters in another order is
// still the same page.
func cursorHash(uri string) string {
	canonical := uri
	if u, err := url.Parse(uri); err == nil {
		canonical = u.Path + "?" + u.Query().Encode()
	}
	sum := sha256.Sum256([]byte(canonical))
	return hex.EncodeToString(sum[:])
}

// AdvanceWindow records that page `page` of a window was handled and where
// the next one is ("" when it was the last). It is guarded by the page
// number, so a page handled twice advances the window once; it reports
// whether this call advanced it.
func (c *Catalog) AdvanceWindow(ctx context.Context, run uuid.UUID, seq, page int, next string) (bool, error) {
	tag, err := c.pool.Exec(ctx, `
		UPDATE run_windows SET page = page + 1, next_page_uri = $4,
			state = CASE WHEN $4::text IS NULL THEN 'done' ELSE 'pending' END, updated_at = now()
		WHERE run_id = $1 AND seq = $2 AND page = $3 AND state = 'pending'`,
		run, seq, page, nullString(next))
	if err != nil {
		return false, fmt.Errorf("advance window %d of run %s: %w", seq, run, err)
	}
	if next == "" && tag.RowsAffected() == 1 {
		// Listed to the end: its cursors can no longer cycle.
		if _, err := c.pool.Exec(ctx, `DELETE FROM run_window_cursors WHERE run_id = $1 AND seq = $2`, run, seq); err != nil {
			return true, fmt.Errorf("advance window %d of run %s: %w", seq, run, err)
		}
	}
	return tag.RowsAffected() == 1, nil
}

// FailWindow ends a window that cannot be listed, with the reason.
func (c *Catalog) FailWindow(ctx context.Context, run uuid.UUID, seq int, reason string) error {
	_, err := c.pool.Exec(ctx, `
		UPDATE run_windows SET state = 'failed', error = $3, updated_at = now()
		WHERE run_id = $1 AND seq = $2 AND state = 'pending'`, run, seq, reason)
	if err != nil {
		return fmt.Errorf("fail window %d of run %s: %w", seq, run, err)
	}
	return nil
}

// RecordMessages records the messages of one listed page for a run: each is
// upserted into the catalog (unless dryRun: a dry run writes nothing but its
// own bookkeeping) and joined to the run. Messages Twilio says have no media
// are listed at once. A page is two statements in one transaction, whatever
// its size (a statement per message was most of Postgres's CPU per page);
// a message a page lists twice is recorded once, as first listed.
func (c *Catalog) RecordMessages(ctx context.Context, run uuid.UUID, msgs []MessageRecord, dryRun bool) error {
	if len(msgs) == 0 {
		return nil
	}
	msgs = firstOfEach(msgs, func(m MessageRecord) string { return m.SID })
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		if !dryRun {
			q, args := upsertMessagesSQL(msgs)
			b.Queue(q, args...)
		}
		n := len(msgs)
		sids, states, tasks := make([]string, n), make([]string, n), make([]*string, n)
		found := make([]*int32, n)
		for i, m := range msgs {
			sids[i], states[i], tasks[i] = m.SID, string(MessagePending), nullString(m.TaskSID)
			if !m.HasMedia() {
				zero := int32(0)
				states[i], found[i] = string(MessageListed), &zero
			}
		}
		b.Queue(`INSERT INTO run_messages (run_id, message_sid, state, media_found, task_sid)
			SELECT $1, t.sid, t.state, t.found, t.task FROM unnest($2::text[], $3::text[], $4::int[], $5::text[]) AS t(sid, state, found, task)
			ON CONFLICT (run_id, message_sid) DO NOTHING`,
			run, sids, states, found, tasks)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("record %d messages of run %s: %w", len(msgs), run, err)
	}
	return nil
}

// firstOfEach returns xs without the elements whose key an earlier one
// has: one statement cannot upsert a row twice (ON CONFLICT DO UPDATE
// refuses it), and a list that repeats an item (a Twilio stand-in's quirk,
// a page read while the data changed) must not fail the whole batch.
func firstOfEach[T any](xs []T, key func(T) string) []T {
	seen := make(map[string]struct{}, len(xs))
	out := xs[:0:0]
	for _, x := range xs {
		k := key(x)
		if _, ok := seen[k]; ok {
			continue
		}
		seen[k] = struct{}{}
		out = append(out, x)
	}
	return out
}

// upsertMessagesSQL is the one statement that upserts msgs (no SID twice).
func upsertMessagesSQL(msgs []MessageRecord) (string, []any) {
	n := len(msgs)
	var (
		sids, accounts, sources              = make([]string, n), make([]string, n), make([]string, n)
		sent, created                        = make([]*time.Time, n), make([]*time.Time, n)
		froms, tos, directions               = make([]*string, n), make([]*string, n), make([]*string, n)
		numMedia                             = make([]*int32, n)
		services, convs, authors, keys, shas = make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n)
		indexes, sizes                       = make([]*int64, n), make([]*int64, n)
		noBodies                             = make([]bool, n)
	)
	for i, m := range msgs {
		sids[i], accounts[i], sources[i] = m.SID, m.AccountSID, cmp.Or(m.Source, SourceMessaging)
		sent[i], created[i] = nullTime(m.DateSent), nullTime(m.DateCreated)
		froms[i], tos[i], directions[i] = nullString(m.From), nullString(m.To), nullString(m.Direction)
		if m.NumMediaKnown {
			v := int32(m.NumMedia)
			numMedia[i] = &v
		}
		services[i], convs[i], authors[i] = nullString(m.ServiceSID), nullString(m.ConversationSID), nullString(m.Author)
		if m.ConversationSID != "" {
			indexes[i] = &m.Index
		}
		if rc := m.Record; rc != nil {
			h := hex.EncodeToString(rc.SHA256[:])
			keys[i], sizes[i], shas[i] = &rc.Key, &rc.Size, &h
			noBodies[i] = m.RecordNoBody
		}
	}
	// A record given is kept only if the message has none (a Messaging
	// record is stored once: jobs/message_records.go); all three columns
	// and its no-body flag go together.
	return `
		INSERT INTO messages (sid, account_sid, date_sent, date_created, from_number, to_number, direction, num_media,
			source, service_sid, conversation_sid, conversation_index, author,
			record_key, record_size, record_sha256, record_no_body)
		SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[], $6::text[],
			$7::text[], $8::int[], $9::text[], $10::text[], $11::text[], $12::bigint[], $13::text[],
			$14::text[], $15::bigint[], $16::text[], $17::bool[])
		ON CONFLICT (sid) DO UPDATE SET num_media = EXCLUDED.num_media,
			date_sent = coalesce(EXCLUDED.date_sent, messages.date_sent),
			record_key = coalesce(messages.record_key, EXCLUDED.record_key),
			record_size = coalesce(messages.record_size, EXCLUDED.record_size),
			record_sha256 = coalesce(messages.record_sha256, EXCLUDED.record_sha256),
			record_no_body = CASE WHEN messages.record_key IS NULL THEN EXCLUDED.record_no_body ELSE messages.record_no_body END,
			updated_at = now()`,
		[]any{sids, accounts, sent, created, froms, tos, directions, numMedia,
			sources, services, convs, indexes, authors, keys, sizes, shas, noBodies}
}

// RunMessageState returns a message's state within a run ("" if unknown).
func (c *Catalog) RunMessageState(ctx context.Context, run uuid.UUID, sid string) (MessageState, error) {
	var state MessageState
	err := c.pool.QueryRow(ctx, `SELECT state FROM run_messages WHERE run_id = $1 AND message_sid = $2`, run, sid).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("state of message %s in run %s: %w", sid, run, err)
	}
	return state, nil
}

// RecordMedia records the media listed for one message of a run: new media
// get a pending row (an existing row keeps its state: it may already be
// archived), and each joins the run, as pending, or as listed on a dry run.
// All of them are one statement (one round trip), whatever their number.
func (c *Catalog) RecordMedia(ctx context.Context, run uuid.UUID, media []MediaRecord, dryRun bool) error {
	if len(media) == 0 {
		return nil
	}
	if err := c.recordMedia(ctx, run, media, dryRun, nil); err != nil {
		return fmt.Errorf("record %d media of run %s: %w", len(media), run, err)
	}
	return nil
}

// RecordLastMedia is RecordMedia for the last media listed of a message,
// and FinishMessage: in one statement, the media are recorded and the
// message marked listed with mediaFound media.
func (c *Catalog) RecordLastMedia(ctx context.Context, run uuid.UUID, message string, media []MediaRecord, mediaFound int, dryRun bool) error {
	if err := c.recordMedia(ctx, run, media, dryRun, []ListedMessage{{SID: message, MediaFound: mediaFound}}); err != nil {
		return fmt.Errorf("record the media of message %s of run %s: %w", message, run, err)
	}
	return nil
}

// recordMedia records media and marks the messages of finish listed, each
// with its MediaFound, in one statement (finish's Media are not read).
func (c *Catalog) recordMedia(ctx context.Context, run uuid.UUID, media []MediaRecord, dryRun bool, finish []ListedMessage) error {
	q, args := recordMediaSQL(run, media, dryRun, finish)
	_, err := c.pool.Exec(ctx, q, args...)
	return err
}

// ListedMessage is one message's media as listed, to record with the
// message marked listed (RecordListedWork).
type ListedMessage struct {
	SID        string
	Media      []MediaRecord
	MediaFound int
}

// RecordListedWork is RecordLastMedia for each of listed (not on a dry
// run) followed by MessagesWork(run, messages, "", "", limit), in one
// round trip and one transaction: a message task records the media it
// listed and reads what is left to do with its messages' media, as
// Postgres says, without a trip per message.
func (c *Catalog) RecordListedWork(ctx context.Context, run uuid.UUID, listed []ListedMessage, messages []string, limit int) ([]RunMediaItem, error) {
	// One statement for every message's media, not one per message: a
	// statement's parse, plan and executor start were most of Postgres's
	// CPU per listed message.
	var media []MediaRecord
	for _, l := range listed {
		media = append(media, l.Media...)
	}
	b := &pgx.Batch{}
	q, args := recordMediaSQL(run, media, false, listed)
	b.Queue(q, args...)
	q, args = messagesWorkSQL(run, messages, "", "", limit)
	b.Queue(q, args...)
	// A batch outside a transaction runs in one implicit transaction: the
	// read sees the rows just recorded, and a failure records nothing.
	br := c.pool.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, fmt.Errorf("record the media of %d messages of run %s: %w", len(listed), run, err)
	}
	rows, err := br.Query()
	if err != nil {
		return nil, fmt.Errorf("work on %d messages of run %s: %w", len(messages), run, err)
	}
	items, err := collectWork(rows)
	if err == nil {
		err = br.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("work on %d messages of run %s: %w", len(messages), run, err)
	}
	return items, nil
}

// recordMediaSQL is recordMedia's statement. A media listed twice is
// recorded once, as first listed.
func recordMediaSQL(run uuid.UUID, media []MediaRecord, dryRun bool, finish []ListedMessage) (string, []any) {
	media = firstOfEach(media, func(m MediaRecord) string { return m.SID })
	finishSIDs, found := make([]string, len(finish)), make([]int32, len(finish))
	for i, l := range finish {
		finishSIDs[i], found[i] = l.SID, int32(l.MediaFound)
	}
	sids := make([]string, len(media))
	accounts := make([]string, len(media))
	messages := make([]string, len(media))
	types := make([]*string, len(media))
	created := make([]*time.Time, len(media))
	sources := make([]string, len(media))
	convs, authors, names := make([]*string, len(media)), make([]*string, len(media)), make([]*string, len(media))
	sizes := make([]*int64, len(media))
	for i, m := range media {
		sids[i], accounts[i], messages[i] = m.SID, m.AccountSID, m.MessageSID
		types[i], created[i] = nullString(m.ContentType), nullTime(m.DateCreated)
		sources[i] = cmp.Or(m.Source, SourceMessaging)
		convs[i], authors[i], names[i] = nullString(m.ConversationSID), nullString(m.Author), nullString(m.Filename)
		if m.Source == SourceConversations && m.ListedSize >= 0 {
			sizes[i] = &m.ListedSize
		}
	}
	state := MediaPending
	if dryRun {
		state = MediaListed
	}
	// A run deletes what it archives when it asked to, and a policy only
	// what is older than its delete_after.
	return `
		WITH listed AS (
			SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
				$11::text[], $12::text[], $13::text[], $14::text[], $15::bigint[])
				AS t(sid, account_sid, message_sid, content_type, date_created,
					source, conversation_sid, author, filename, listed_size)
		), rows AS (
			INSERT INTO media (sid, account_sid, message_sid, content_type, date_created,
				source, conversation_sid, author, filename, listed_size)
			SELECT sid, account_sid, message_sid, content_type, date_created,
				source, conversation_sid, author, filename, listed_size FROM listed WHERE NOT $8
			ON CONFLICT (sid) DO UPDATE SET content_type = coalesce(media.content_type, EXCLUDED.content_type),
				listed_size = coalesce(media.listed_size, EXCLUDED.listed_size)
		), joined AS (
			INSERT INTO run_media (run_id, media_sid, message_sid, state, delete_wanted)
			SELECT $1, l.sid, l.message_sid, $7, r.delete_media AND NOT r.dry_run AND (r.delete_before IS NULL
				OR coalesce(g.date_sent, g.date_created) < r.delete_before)
			FROM listed l JOIN runs r ON r.id = $1 LEFT JOIN messages g ON g.sid = l.message_sid
			ON CONFLICT (run_id, media_sid) DO NOTHING
		)
		UPDATE run_messages d SET state = 'listed', media_found = f.found, error = NULL, updated_at = now()
		FROM unnest($9::text[], $10::int[]) AS f(sid, found)
		WHERE d.run_id = $1 AND d.message_sid = f.sid AND d.state <> 'listed'`,
		[]any{run, sids, accounts, messages, types, created, state, dryRun, finishSIDs, found,
			sources, convs, authors, names, sizes}
}

// FinishMessage marks a message's media as listed within a run.
func (c *Catalog) FinishMessage(ctx context.Context, run uuid.UUID, sid string, mediaFound int) error {
	_, err := c.pool.Exec(ctx, `
		UPDATE run_messages SET state = 'listed', media_found = $3, error = NULL, updated_at = now()
		WHERE run_id = $1 AND message_sid = $2 AND state <> 'listed'`, run, sid, mediaFound)
	if err != nil {
		return fmt.Errorf("finish message %s of run %s: %w", sid, run, err)
	}
	return nil
}

// GoneMessage records that a message was gone from Twilio (404) when its
// media were listed: mediaFound counts those listed before it vanished.
// Nothing more of it can be archived; the run is not failed by it.
func (c *Catalog) GoneMessage(ctx context.Context, run uuid.UUID, sid string, mediaFound int, reason string) error {
	_, err := c.pool.Exec(ctx, `
		UPDATE run_messages SET state = 'gone', media_found = $3, error = $4, updated_at = now()
		WHERE run_id = $1 AND message_sid = $2 AND state = 'pending'`, run, sid, mediaFound, reason)
	if err != nil {
		return fmt.Errorf("mark message %s of run %s gone: %w", sid, run, err)
	}
	return nil
}

// FailMessage records that a message's media could not be listed.
func (c *Catalog) FailMessage(ctx context.Context, run uuid.UUID, sid, reason string) error {
	_, err := c.pool.Exec(ctx, `
		INSERT INTO run_messages (run_id, message_sid, state, error) VALUES ($1, $2, 'failed', $3)
		ON CONFLICT (run_id, message_sid) DO UPDATE SET state = 'failed', error = $3, updated_at = now()
		WHERE run_messages.state = 'pending'`, run, sid, reason)
	if err != nil {
		return fmt.Errorf("fail message %s of run %s: %w", sid, run, err)
	}
	return nil
}

// GetMedia returns a media row with its message's date and numbers.
func (c *Catalog) GetMedia(ctx context.Context, sid string) (MediaItem, error) {
	it, err := scanMediaItem(c.pool.QueryRow(ctx, `SELECT `+mediaItemColumns+`
		FROM media m JOIN messages g ON g.sid = m.message_sid
		WHERE m.sid = $1`, sid))
	if errors.Is(err, pgx.ErrNoRows) {
		return MediaItem{}, fmt.Errorf("media %s: %w", sid, ErrMediaNotFound)
	}
	if err != nil {
		return MediaItem{}, fmt.Errorf("media %s: %w", sid, err)
	}
	return it, nil
}

// mediaItemColumns are what scanMediaItem reads, of media m joined with
// messages g.
const mediaItemColumns = `m.sid, m.account_sid, m.message_sid, m.content_type, m.date_created, m.state, m.filename,
	m.size_bytes, m.sha256, m.store, m.bucket, m.object_key, m.version_id, m.attempts, m.last_error,
	coalesce(g.date_sent, g.date_created), g.from_number, g.to_number, m.archived_at, m.deleted_at,
	m.plausible_at, m.source, m.conversation_sid, m.author, coalesce(m.listed_size, -1), g.service_sid`

func scanMediaItem(row pgx.Row, extra ...any) (MediaItem, error) {
	var it MediaItem
	var (
		contentType, filename, sha, store, bucket, key, version, lastErr, from, to *string
		conv, author, service                                                      *string
		size                                                                       *int64
		dateCreated, dateSent, archivedAt, deletedAt, plausibleAt                  *time.Time
	)
	err := row.Scan(append([]any{
		&it.SID, &it.AccountSID, &it.MessageSID, &contentType, &dateCreated, &it.State, &filename,
		&size, &sha, &store, &bucket, &key, &version, &it.Attempts, &lastErr,
		&dateSent, &from, &to, &archivedAt, &deletedAt, &plausibleAt,
		&it.Source, &conv, &author, &it.ListedSize, &service}, extra...)...)
	if err != nil {
		return MediaItem{}, err
	}
	it.ContentType, it.Filename, it.Store, it.Bucket = str(contentType), str(filename), str(store), str(bucket)
	it.Key, it.VersionID, it.LastError, it.From, it.To = str(key), str(version), str(lastErr), str(from), str(to)
	it.DateCreated, it.DateSent, it.ArchivedAt, it.DeletedAt = deref(dateCreated), deref(dateSent), deref(archivedAt), deref(deletedAt)
	it.PlausibleAt = deref(plausibleAt)
	it.ConversationSID, it.Author, it.ServiceSID = str(conv), str(author), str(service)
	it.MediaRecord.Filename = it.Filename
	if size != nil {
		it.Size = *size
	}
	if sha != nil {
		if _, err := hex.Decode(it.SHA256[:], []byte(*sha)); err != nil {
			return MediaItem{}, fmt.Errorf("stored sha256: %w", err)
		}
	}
	return it, nil
}

// MarkArchived records a media's archived copy and its run's outcome, in
// one statement (one transaction, one round trip), and reports whether the
// run deletes the media from Twilio next. Only a pending, failed or suspect
// row moves to archived: a second archiving of the same media (a task run
// twice, or two overlapping runs) leaves the first proof in place.
//
// The caller has judged the bytes plausibly the media (Sniffer.Check) before
// storing them: the row records that judgement (plausible_at), which
// ClaimDelete requires.
func (c *Catalog) MarkArchived(ctx context.Context, run uuid.UUID, sid string, cp ArchivedCopy) (deleteWanted bool, err error) {
	err = c.pool.QueryRow(ctx, `
		WITH copy AS (
			UPDATE media SET state = 'archived', filename = $3, size_bytes = $4, sha256 = $5, store = $6,
				bucket = $7, object_key = $8, version_id = $9, lock_mode = $10, retain_until = $11,
				archived_at = now(), plausible_at = now(), last_error = NULL, updated_at = now()
			WHERE sid = $2 AND state IN ('pending', 'failed', 'suspect')
		), outcome AS (
			UPDATE run_media SET state = 'archived', error = NULL, updated_at = now()
			WHERE run_id = $1 AND media_sid = $2
			RETURNING delete_wanted
		)
		SELECT coalesce((SELECT delete_wanted FROM outcome), false)`,
		run, sid, nullString(cp.Filename), cp.Size, hex.EncodeToString(cp.SHA256[:]), cp.Store, cp.Bucket,
		cp.Key, nullString(cp.VersionID), nullString(string(cp.LockMode)), nullTime(cp.RetainUntil)).Scan(&deleteWanted)
	if err != nil {
		return false, fmt.Errorf("mark media %s archived: %w", sid, err)
	}
	return deleteWanted, nil
}

// SuspectCopy is a download that failed the plausibility check, as stored
// for inspection under a SuspectKey.
type SuspectCopy struct {
	Size   int64
	SHA256 [32]byte
	Key    string
	Reason string
}

// MarkSuspect records that a media's download was not plausibly the media,
// with where its bytes were kept and why, as the run's outcome too. The row
// does not say archived, so nothing deletes it from Twilio (ClaimDelete
// needs archived, and the schema refuses a claim on a suspect row); a later
// run downloads it again. A row archived meanwhile by another run keeps its
// verified copy.
func (c *Catalog) MarkSuspect(ctx context.Context, run uuid.UUID, sid string, cp SuspectCopy) error {
	_, err := c.pool.Exec(ctx, `
		WITH copy AS (
			UPDATE media SET state = 'suspect', suspect_key = $3, suspect_size = $4, suspect_sha256 = $5,
				suspect_reason = $6, suspect_at = now(), last_error = $6, updated_at = now()
			WHERE sid = $2 AND state IN ('pending', 'failed', 'suspect')
		)
		UPDATE run_media SET state = 'suspect', error = $6, updated_at = now()
		WHERE run_id = $1 AND media_sid = $2`,
		run, sid, cp.Key, cp.Size, hex.EncodeToString(cp.SHA256[:]), cp.Reason)
	if err != nil {
		return fmt.Errorf("mark media %s suspect: %w", sid, err)
	}
	return nil
}

// SetRunMedia records a media's outcome within a run, for outcomes the media
// row already holds (reused copies, a delete done by an earlier run).
func (c *Catalog) SetRunMedia(ctx context.Context, run uuid.UUID, sid string, state MediaState, reused bool, reason string) error {
	if err := setRunMedia(ctx, c.pool, run, sid, state, reused, reason); err != nil {
		return fmt.Errorf("record media %s in run %s: %w", sid, run, err)
	}
	return nil
}

// execer is a pool or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func setRunMedia(ctx context.Context, db execer, run uuid.UUID, sid string, state MediaState, reused bool, reason string) error {
	_, err := db.Exec(ctx, `
		UPDATE run_media SET state = $3, reused = reused OR $4, error = $5, updated_at = now()
		WHERE run_id = $1 AND media_sid = $2`, run, sid, state, reused, nullString(reason))
	return err
}

// MarkGone records that Twilio no longer has a media we never archived.
func (c *Catalog) MarkGone(ctx context.Context, run uuid.UUID, sid string) error {
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			UPDATE media SET state = 'gone', gone_at = now(), updated_at = now()
			WHERE sid = $1 AND state IN ('pending', 'failed', 'suspect')`, sid); err != nil {
			return err
		}
		return setRunMedia(ctx, tx, run, sid, MediaGone, false, "")
	})
	if err != nil {
		return fmt.Errorf("mark media %s gone: %w", sid, err)
	}
	return nil
}

// RecordAttempt counts a failed attempt at a media, on its row and in the
// run, keeps its error, and returns the media's failed attempts in this run
// (0 if the run has no row for it): a message task's retries are shared by
// its media, so whether one media failed for good is decided by its own.
func (c *Catalog) RecordAttempt(ctx context.Context, run uuid.UUID, sid, reason string) (int, error) {
	var n int
	err := c.pool.QueryRow(ctx, `
		WITH m AS (
			UPDATE media SET attempts = attempts + 1, last_error = $3, updated_at = now() WHERE sid = $2
		), d AS (
			UPDATE run_media SET attempts = attempts + 1, updated_at = now()
			WHERE run_id = $1 AND media_sid = $2 RETURNING attempts
		)
		SELECT coalesce((SELECT attempts FROM d), 0)`, run, sid, reason).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("record attempt on media %s: %w", sid, err)
	}
	return n, nil
}

// MarkFailed records that archiving a media failed for good. A row already
// archived keeps its state (its copy is intact): only the run's outcome fails.
func (c *Catalog) MarkFailed(ctx context.Context, run uuid.UUID, sid, reason string) error {
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			UPDATE media SET state = 'failed', last_error = $2, updated_at = now()
			WHERE sid = $1 AND state = 'pending'`, sid, reason); err != nil {
			return err
		}
		return setRunMedia(ctx, tx, run, sid, MediaFailed, false, reason)
	})
	if err != nil {
		return fmt.Errorf("mark media %s failed: %w", sid, err)
	}
	return nil
}

// CopyAt is where an archived copy is: the store, bucket and object key a
// delete verified (ClaimDelete binds the claim to them).
type CopyAt struct {
	Store, Bucket, Key string
}

// ClaimDelete is the last gate before a media is deleted from Twilio. In
// one transaction it checks that the row is archived with exactly the size
// and SHA-256 just verified against the store, in exactly the store, bucket
// and key verified (at: a copy elsewhere, proven or not, is not the row's),
// and that no legal hold covers its message, and records the verification
// and the claim. Without
// a claim, nothing may be deleted. The copy must also have been judged
// plausibly the media (plausible_at: MarkArchived, or MarkPlausible for a
// copy archived before the check existed). It returns ErrHeld under a hold,
// and ErrNotDeletable when the row does not match.
func (c *Catalog) ClaimDelete(ctx context.Context, sid string, size int64, sha [32]byte, at CopyAt) error {
	var outcome string
	err := c.pool.QueryRow(ctx, `
		WITH m AS (
			SELECT m.sid, held(g.sid, g.from_number, g.to_number, coalesce(g.date_sent, g.date_created)) AS held
			FROM media m JOIN messages g ON g.sid = m.message_sid
			WHERE m.sid = $1 AND m.state = 'archived' AND m.size_bytes = $2 AND m.sha256 = $3
				AND m.store = $4 AND m.bucket = $5 AND m.object_key = $6
				AND m.plausible_at IS NOT NULL
			FOR UPDATE OF m
		), claimed AS (
			UPDATE media SET verified_at = now(), delete_claimed_at = now(), updated_at = now()
			WHERE sid = (SELECT sid FROM m WHERE NOT held) RETURNING sid
		)
		SELECT CASE WHEN EXISTS (SELECT 1 FROM claimed) THEN 'claimed'
		            WHEN EXISTS (SELECT 1 FROM m WHERE held) THEN 'held'
		            ELSE 'no' END`,
		sid, size, hex.EncodeToString(sha[:]), at.Store, at.Bucket, at.Key).Scan(&outcome)
	if err != nil {
		return fmt.Errorf("claim delete of media %s: %w", sid, err)
	}
	switch outcome {
	case "claimed":
		return nil
	case "held":
		return fmt.Errorf("claim delete of media %s: %w", sid, ErrHeld)
	default:
		return fmt.Errorf("claim delete of media %s: %w", sid, ErrNotDeletable)
	}
}

// MarkPlausible records that the archived copy of a media, archived before
// copies were judged (plausible_at NULL), has been read back from the store
// and judged plausibly the media (CheckStored). Only the row with that
// exact copy (archived, with that size and SHA-256) is marked: a copy
// replaced meanwhile is not vouched for, and ClaimDelete, which checks
// plausible_at again, then refuses it.
func (c *Catalog) MarkPlausible(ctx context.Context, sid string, size int64, sha [32]byte) error {
	_, err := c.pool.Exec(ctx, `
		UPDATE media SET plausible_at = now(), updated_at = now()
		WHERE sid = $1 AND state = 'archived' AND size_bytes = $2 AND sha256 = $3 AND plausible_at IS NULL`,
		sid, size, hex.EncodeToString(sha[:]))
	if err != nil {
		return fmt.Errorf("mark media %s plausible: %w", sid, err)
	}
	return nil
}

// DeleteWanted reports whether a run deletes this media once archived.
func (c *Catalog) DeleteWanted(ctx context.Context, run uuid.UUID, sid string) (bool, error) {
	var wanted bool
	err := c.pool.QueryRow(ctx, `SELECT delete_wanted FROM run_media WHERE run_id = $1 AND media_sid = $2`, run, sid).Scan(&wanted)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("media %s in run %s: %w", sid, run, err)
	}
	return wanted, nil
}

// MarkDeleted records that Twilio no longer has a media whose copy was
// verified and claimed, with its audit entry, in one transaction; the entry
// is written once, by the call that moves the row to deleted. It refuses,
// with ErrHeld, a media a hold covers: the catalog never says a held media
// was deleted (see ReleaseHeldDelete).
//
// It is one statement, so one round trip and its own transaction: the
// audit log's chain lock (taken by the insert's trigger, migration 00003),
// which every delete of the fleet queues on, is held only for the rest of
// the statement and its commit, never across a round trip to the worker;
// the fleet's deletes per second are at most the inverse of that time.
func (c *Catalog) MarkDeleted(ctx context.Context, run Run, sid string) error {
	var (
		held, done bool
		state      MediaState
	)
	err := c.pool.QueryRow(ctx, `
		WITH m AS (
			SELECT m.sid, m.state, m.delete_claimed_at IS NOT NULL AS claimed,
				held(g.sid, g.from_number, g.to_number, coalesce(g.date_sent, g.date_created)) AS held
			FROM media m JOIN messages g ON g.sid = m.message_sid
			WHERE m.sid = $1
			FOR UPDATE OF m
		), done AS (
			UPDATE media SET state = 'deleted', deleted_at = now(), last_error = NULL,
				delete_lease_until = NULL, updated_at = now()
			WHERE sid = (SELECT sid FROM m WHERE state = 'archived' AND claimed AND NOT held)
			RETURNING sid, message_sid, object_key, sha256, size_bytes
		), audited AS (
			-- The entry audit() would write, with the same details.
			INSERT INTO audit_log (actor, action, subject, details, prev_hash, hash)
			SELECT $2, '`+AuditMediaDeleted+`', d.sid, jsonb_build_object('message_sid', d.message_sid,
				'object_key', d.object_key, 'sha256', d.sha256, 'size', d.size_bytes, 'run_id', $3::uuid::text), '', ''
			FROM done d
		), recorded AS (
			-- The run's outcome: deleted now, or recorded deleted before (a
			-- task run twice only records it).
			UPDATE run_media SET state = 'deleted', error = NULL, updated_at = now()
			WHERE run_id = $3::uuid AND media_sid = $1
			  AND (EXISTS (SELECT 1 FROM done) OR EXISTS (SELECT 1 FROM m WHERE state = 'deleted'))
		)
		-- Held, unless recorded deleted before the hold. (Every CTE above
		-- runs, referenced or not.)
		SELECT coalesce((SELECT held AND state <> 'deleted' FROM m), false),
			coalesce((SELECT state FROM m), ''),
			EXISTS (SELECT 1 FROM done)`, sid, run.Actor, run.ID).
		Scan(&held, &state, &done)
	switch {
	case err != nil:
		return fmt.Errorf("mark media %s deleted: %w", sid, err)
	case held:
		return fmt.Errorf("mark media %s deleted: %w", sid, ErrHeld)
	case !done && state != MediaDeleted:
		// Never claimed (or the claim was released): the run must not
		// count as deleted a media the catalog still holds archived.
		return fmt.Errorf("mark media %s deleted: %w: state is %q and no delete was claimed", sid, ErrNotDeletable, state)
	}
	return nil
}

func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// StaleWork is a run's outstanding work that has not moved for a while:
// its tasks may have been lost (Redis restarted, or a worker died between a
// commit and an enqueue) and are queued again from it. A message is one
// task: each message named here is queued once, whatever of it is left.
type StaleWork struct {
	Messages []string // message SIDs with media to list, archive or delete
	Media    []string // media SIDs still to archive or delete, of those messages
	// Tasks holds, for each of Messages, the first message of the task it
	// was queued in ("" for its own task): queued again under that task's
	// ID, it is not queued twice while its batch still waits.
	Tasks []string
}

// StaleWork returns the messages of a run whose outstanding work (media to
// list, archive or, with --delete, to delete) was last touched before
// olderThan: up to limit messages to list and those of up to 2·limit media.
func (c *Catalog) StaleWork(ctx context.Context, run uuid.UUID, olderThan time.Time, limit int) (StaleWork, error) {
	var w StaleWork
	rows, err := c.pool.Query(ctx, `
		SELECT message_sid, coalesce(task_sid, '') FROM run_messages
		WHERE run_id = $1 AND state = 'pending' AND updated_at < $2 LIMIT $3`, run, olderThan, limit)
	if err != nil {
		return w, fmt.Errorf("stale work of run %s: %w", run, err)
	}
	seen := make(map[string]bool)
	var msg, task string
	_, err = pgx.ForEachRow(rows, []any{&msg, &task}, func() error {
		seen[msg] = true
		w.Messages, w.Tasks = append(w.Messages, msg), append(w.Tasks, task)
		return nil
	})
	if err != nil {
		return w, fmt.Errorf("stale work of run %s: %w", run, err)
	}
	rows, err = c.pool.Query(ctx, `
		SELECT d.media_sid, d.message_sid, coalesce(g.task_sid, '') FROM run_media d
		LEFT JOIN run_messages g ON g.run_id = d.run_id AND g.message_sid = d.message_sid
		WHERE d.run_id = $1 AND d.updated_at < $2
		  AND (d.state = 'pending' OR (d.delete_wanted AND d.state = 'archived'))
		LIMIT $3`, run, olderThan, 2*limit)
	if err != nil {
		return w, fmt.Errorf("stale work of run %s: %w", run, err)
	}
	defer rows.Close()
	for rows.Next() {
		var sid string
		if err := rows.Scan(&sid, &msg, &task); err != nil {
			return w, fmt.Errorf("stale work of run %s: %w", run, err)
		}
		w.Media = append(w.Media, sid)
		if !seen[msg] {
			seen[msg] = true
			w.Messages, w.Tasks = append(w.Messages, msg), append(w.Tasks, task)
		}
	}
	return w, rows.Err()
}

// Touch marks outstanding work as just queued, so the next reconciliation
// does not queue it again before it had a chance to run.
func (c *Catalog) Touch(ctx context.Context, run uuid.UUID, w StaleWork) error {
	b := &pgx.Batch{}
	if len(w.Messages) > 0 {
		b.Queue(`UPDATE run_messages SET updated_at = now() WHERE run_id = $1 AND message_sid = ANY($2)`, run, w.Messages)
	}
	if len(w.Media) > 0 {
		b.Queue(`UPDATE run_media SET updated_at = now() WHERE run_id = $1 AND media_sid = ANY($2)`, run, w.Media)
	}
	if b.Len() == 0 {
		return nil
	}
	if err := c.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("touch work of run %s: %w", run, err)
	}
	return nil
}
