-- A run's counters, computed from what its rows say rather than stored, so
-- they can never drift from the truth however many times a task ran.
-- `enqueue status` reads this view; operators can too:
--   SELECT * FROM run_progress ORDER BY created_at DESC LIMIT 10;

-- +goose Up
CREATE VIEW run_progress AS
SELECT r.id AS run_id, r.kind, r.state, r.delete_media, r.dry_run,
       r.created_at, r.started_at, r.finished_at,
       w.windows_total, w.windows_done, w.pages_fetched,
       g.messages_seen, g.messages_pending,
       c.media_found, c.media_listed, c.media_archived, c.media_reused, c.media_deleted,
       c.media_gone, c.media_failed, c.media_pending, c.bytes_archived
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
           count(*) FILTER (WHERE d.state IN ('archived', 'deleted')) AS media_archived,
           count(*) FILTER (WHERE d.reused) AS media_reused,
           count(*) FILTER (WHERE d.state = 'deleted') AS media_deleted,
           count(*) FILTER (WHERE d.state = 'gone') AS media_gone,
           count(*) FILTER (WHERE d.state = 'failed') AS media_failed,
           count(*) FILTER (WHERE d.state = 'pending') AS media_pending,
           coalesce(sum(m.size_bytes) FILTER (WHERE d.state IN ('archived', 'deleted')), 0)::bigint AS bytes_archived
    FROM run_media d LEFT JOIN media m ON m.sid = d.media_sid
    WHERE d.run_id = r.id) c;

-- +goose Down
DROP VIEW run_progress;
