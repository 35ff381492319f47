-- A run's windows are released into the queue a few at a time, as listing
-- advances, rather than all at its start: a backfill of three years queued
-- 1 100 page tasks at once, and since listing waits while the queues hold
-- more than MaxBacklog tasks, those page tasks, which only listing drains,
-- kept every page waiting forever.
--
--   run_windows.released_at  the window has (or had) a page task queued;
--                            the reconciler re-queues only these.
--   runs.waiting(_since)     why, and since when, the run's listing waits
--                            (the queue backlog), for `enqueue status`.
--   run_window_cursors       the cursors a window has followed, so that a
--                            next_page_uri cycle (A→B→A) is found across
--                            tasks and restarts, and the window fails.

-- +goose Up
ALTER TABLE run_windows ADD COLUMN released_at timestamptz;
-- Windows of runs already going had their page task queued at the start.
UPDATE run_windows w SET released_at = now()
FROM runs r WHERE r.id = w.run_id AND r.state = 'running' AND w.state = 'pending';
CREATE INDEX run_windows_unreleased ON run_windows (run_id, seq)
    WHERE state = 'pending' AND released_at IS NULL;
CREATE INDEX run_windows_released ON run_windows (run_id, seq)
    WHERE state = 'pending' AND released_at IS NOT NULL;

ALTER TABLE runs ADD COLUMN waiting text, ADD COLUMN waiting_since timestamptz;

CREATE TABLE run_window_cursors (
    run_id  uuid NOT NULL,
    seq     integer NOT NULL,
    cursor  text NOT NULL,     -- SHA-256 (hex) of the page URI, query sorted
    page    integer NOT NULL,  -- the page this cursor fetches
    PRIMARY KEY (run_id, seq, cursor),
    FOREIGN KEY (run_id, seq) REFERENCES run_windows (run_id, seq) ON DELETE CASCADE
);

-- +goose Down
DROP TABLE run_window_cursors;
ALTER TABLE runs DROP COLUMN waiting, DROP COLUMN waiting_since;
DROP INDEX run_windows_released;
DROP INDEX run_windows_unreleased;
ALTER TABLE run_windows DROP COLUMN released_at;
