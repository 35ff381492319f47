-- Issue #16: an operator can cancel a run, retry what a finished run
-- failed, and re-read the archive against the catalog.
--
--   * runs.state gains 'cancelled': a run stopped by `enqueue cancel`.
--   * runs.retry_of: a retry run names the run whose failures it retries;
--     at most one retry of a run is unfinished at a time, so asking twice
--     returns the one already going.
--   * runs.verify_sample: a verify run re-reads this share of the archived
--     media in its range (1: all of them); verify_selected_at: when it
--     chose them (until then it has work left).
--   * run_verify: the media a verify run re-reads, fixed at its start, and
--     each one's result.
--   * media.last_verified_at / verify_result / verify_error: the latest
--     re-read of the stored object, whatever it found (media.verified_at
--     stays the last proof that the copy matched, which a delete needs).
--   * policies.kind: a policy archives (the default) or verifies; a verify
--     policy re-reads verify_sample of the archive at each tick.
-- +goose Up
ALTER TABLE runs DROP CONSTRAINT runs_state_check;
ALTER TABLE runs ADD CONSTRAINT runs_state_check
    CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled'));
ALTER TABLE runs
    ADD COLUMN retry_of      uuid REFERENCES runs (id),
    ADD COLUMN verify_sample double precision CHECK (verify_sample > 0 AND verify_sample <= 1),
    ADD COLUMN verify_selected_at timestamptz; -- a verify run's media are chosen (run_verify)
CREATE UNIQUE INDEX runs_one_retry ON runs (retry_of) WHERE retry_of IS NOT NULL AND state IN ('queued', 'running');
CREATE INDEX runs_state_created ON runs (state, created_at DESC);
-- enqueue failures pages through a run's failed items of each kind in SID
-- order, whatever else the run holds.
CREATE INDEX run_media_failed ON run_media (run_id, media_sid) WHERE state = 'failed';
CREATE INDEX run_media_suspect ON run_media (run_id, media_sid) WHERE state = 'suspect';
CREATE INDEX run_messages_failed ON run_messages (run_id, message_sid) WHERE state = 'failed';
CREATE INDEX export_media_failed ON export_media (run_id, media_sid) WHERE state = 'failed';
-- A cancel waits for the delete leases of its run's media: few at a time.
CREATE INDEX media_delete_leased ON media (delete_lease_until) WHERE delete_lease_until IS NOT NULL;

CREATE TABLE run_verify (
    run_id     uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq        integer NOT NULL,
    media_sid  text NOT NULL REFERENCES media (sid),
    state      text NOT NULL DEFAULT 'pending'
               CHECK (state IN ('pending', 'ok', 'mismatch', 'missing', 'error')),
    error      text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, seq),
    UNIQUE (run_id, media_sid)
);
CREATE INDEX run_verify_pending ON run_verify (run_id, seq) WHERE state = 'pending';
CREATE INDEX run_verify_bad ON run_verify (run_id, media_sid) WHERE state NOT IN ('pending', 'ok');

ALTER TABLE media
    ADD COLUMN last_verified_at timestamptz,
    ADD COLUMN verify_result    text CHECK (verify_result IN ('ok', 'mismatch', 'missing', 'error')),
    ADD COLUMN verify_error     text;

ALTER TABLE policies
    ADD COLUMN kind          text NOT NULL DEFAULT 'archive' CHECK (kind IN ('archive', 'verify')),
    ADD COLUMN verify_sample double precision CHECK (verify_sample > 0 AND verify_sample <= 1),
    ADD CHECK (kind <> 'verify' OR (verify_sample IS NOT NULL AND delete_after IS NULL));

-- +goose Down
ALTER TABLE policies DROP COLUMN verify_sample, DROP COLUMN kind;
ALTER TABLE media DROP COLUMN verify_error, DROP COLUMN verify_result, DROP COLUMN last_verified_at;
DROP TABLE run_verify;
DROP INDEX media_delete_leased;
DROP INDEX export_media_failed;
DROP INDEX run_messages_failed;
DROP INDEX run_media_suspect;
DROP INDEX run_media_failed;
DROP INDEX runs_state_created;
DROP INDEX runs_one_retry;
ALTER TABLE runs DROP COLUMN verify_selected_at, DROP COLUMN verify_sample, DROP COLUMN retry_of;
UPDATE runs SET state = 'failed', error = coalesce(error, 'cancelled') WHERE state = 'cancelled';
ALTER TABLE runs DROP CONSTRAINT runs_state_check;
ALTER TABLE runs ADD CONSTRAINT runs_state_check
    CHECK (state IN ('queued', 'running', 'succeeded', 'failed'));
