-- A media is `suspect` when its download was not plausibly the media: the
-- response's type disagreed with the listed one, the bytes lacked their
-- type's signature, or a binary body came back re-encoded as UTF-8 text
-- (U+FFFD where bytes were). Size and SHA-256 only prove that the archive
-- kept what was downloaded; a suspect media is stored for inspection under
-- its own key (suspect_key, never the media's object_key), is never deleted
-- from Twilio, and is downloaded again by a later run.

-- +goose Up
ALTER TABLE media
    ADD COLUMN suspect_key    text,
    ADD COLUMN suspect_size   bigint CHECK (suspect_size >= 0),
    ADD COLUMN suspect_sha256 text CHECK (suspect_sha256 ~ '^[0-9a-f]{64}$'),
    ADD COLUMN suspect_reason text,
    ADD COLUMN suspect_at     timestamptz;
ALTER TABLE media DROP CONSTRAINT media_state_check;
ALTER TABLE media ADD CONSTRAINT media_state_check
    CHECK (state IN ('pending', 'archived', 'deleted', 'gone', 'failed', 'suspect'));
-- Invariant 1 again, in the database: a suspect row records its copy and
-- why, and can hold no delete claim; and no verified copy is a suspect one.
ALTER TABLE media ADD CONSTRAINT media_suspect_check
    CHECK (state <> 'suspect'
           OR (suspect_key IS NOT NULL AND suspect_reason IS NOT NULL
               AND delete_claimed_at IS NULL AND deleted_at IS NULL));
ALTER TABLE media ADD CONSTRAINT media_verified_not_suspect
    CHECK (object_key IS NULL OR suspect_key IS NULL OR object_key <> suspect_key);
-- Suspect media are not archived: policies count them as unsaved.
DROP INDEX media_state;
CREATE INDEX media_state ON media (state) WHERE state IN ('pending', 'failed', 'suspect');

ALTER TABLE run_media DROP CONSTRAINT run_media_state_check;
ALTER TABLE run_media ADD CONSTRAINT run_media_state_check
    CHECK (state IN ('pending', 'listed', 'archived', 'deleted', 'gone', 'failed', 'held', 'suspect'));

DROP VIEW run_progress;
CREATE VIEW run_progress AS
SELECT r.id AS run_id, r.kind, r.state, r.delete_media, r.dry_run, r.policy_name,
       r.created_at, r.started_at, r.finished_at,
       w.windows_total, w.windows_done, w.pages_fetched,
       g.messages_seen, g.messages_pending,
       c.media_found, c.media_listed, c.media_archived, c.media_reused, c.media_deleted,
       c.media_gone, c.media_failed, c.media_pending, c.media_held, c.bytes_archived,
       c.media_suspect
FROM runs r
CROSS JOIN LATERAL (
    SELECT count(*) AS windows_total,
           count(*) FILTER (WHERE state <> 'pending') AS windows_done,
           coalesce(sum(page), 0)::bigint AS pages_fetched
    FROM run_windows WHERE run_id = r.id) w
CROSS JOIN LATERAL (
    SELECT count(*) AS messages_seen,
           count(*) FILTER (WHERE state = 'pending') AS messages_pending
    FROM run_messages WHERE run_id = r.id) g
CROSS JOIN LATERAL (
    SELECT count(*) AS media_found,
           count(*) FILTER (WHERE d.state = 'listed') AS media_listed,
           count(*) FILTER (WHERE d.state IN ('archived', 'deleted', 'held')) AS media_archived,
           count(*) FILTER (WHERE d.reused) AS media_reused,
           count(*) FILTER (WHERE d.state = 'deleted') AS media_deleted,
           count(*) FILTER (WHERE d.state = 'gone') AS media_gone,
           count(*) FILTER (WHERE d.state = 'failed') AS media_failed,
           count(*) FILTER (WHERE d.state = 'pending') AS media_pending,
           count(*) FILTER (WHERE d.state = 'held') AS media_held,
           coalesce(sum(m.size_bytes) FILTER (WHERE d.state IN ('archived', 'deleted', 'held')), 0)::bigint AS bytes_archived,
           count(*) FILTER (WHERE d.state = 'suspect') AS media_suspect
    FROM run_media d LEFT JOIN media m ON m.sid = d.media_sid
    WHERE d.run_id = r.id) c;

-- +goose Down
DROP VIEW run_progress;
CREATE VIEW run_progress AS
SELECT r.id AS run_id, r.kind, r.state, r.delete_media, r.dry_run, r.policy_name,
       r.created_at, r.started_at, r.finished_at,
       w.windows_total, w.windows_done, w.pages_fetched,
       g.messages_seen, g.messages_pending,
       c.media_found, c.media_listed, c.media_archived, c.media_reused, c.media_deleted,
       c.media_gone, c.media_failed, c.media_pending, c.media_held, c.bytes_archived
FROM runs r
CROSS JOIN LATERAL (
    SELECT count(*) AS windows_total,
           count(*) FILTER (WHERE state <> 'pending') AS windows_done,
           coalesce(sum(page), 0)::bigint AS pages_fetched
    FROM run_windows WHERE run_id = r.id) w
CROSS JOIN LATERAL (
    SELECT count(*) AS messages_seen,
           count(*) FILTER (WHERE state = 'pending') AS messages_pending
    FROM run_messages WHERE run_id = r.id) g
CROSS JOIN LATERAL (
    SELECT count(*) AS media_found,
           count(*) FILTER (WHERE d.state = 'listed') AS media_listed,
           count(*) FILTER (WHERE d.state IN ('archived', 'deleted', 'held')) AS media_archived,
           count(*) FILTER (WHERE d.reused) AS media_reused,
           count(*) FILTER (WHERE d.state = 'deleted') AS media_deleted,
           count(*) FILTER (WHERE d.state = 'gone') AS media_gone,
           count(*) FILTER (WHERE d.state = 'failed') AS media_failed,
           count(*) FILTER (WHERE d.state = 'pending') AS media_pending,
           count(*) FILTER (WHERE d.state = 'held') AS media_held,
           coalesce(sum(m.size_bytes) FILTER (WHERE d.state IN ('archived', 'deleted', 'held')), 0)::bigint AS bytes_archived
    FROM run_media d LEFT JOIN media m ON m.sid = d.media_sid
    WHERE d.run_id = r.id) c;
UPDATE run_media SET state = 'failed' WHERE state = 'suspect';
ALTER TABLE run_media DROP CONSTRAINT run_media_state_check;
ALTER TABLE run_media ADD CONSTRAINT run_media_state_check
    CHECK (state IN ('pending', 'listed', 'archived', 'deleted', 'gone', 'failed', 'held'));
DROP INDEX media_state;
CREATE INDEX media_state ON media (state) WHERE state IN ('pending', 'failed');
UPDATE media SET state = 'failed' WHERE state = 'suspect';
ALTER TABLE media DROP CONSTRAINT media_verified_not_suspect;
ALTER TABLE media DROP CONSTRAINT media_suspect_check;
ALTER TABLE media DROP CONSTRAINT media_state_check;
ALTER TABLE media ADD CONSTRAINT media_state_check
    CHECK (state IN ('pending', 'archived', 'deleted', 'gone', 'failed'));
ALTER TABLE media DROP COLUMN suspect_at, DROP COLUMN suspect_reason, DROP COLUMN suspect_sha256,
    DROP COLUMN suspect_size, DROP COLUMN suspect_key;
