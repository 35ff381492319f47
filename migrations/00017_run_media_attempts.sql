-- A message task (issue #14) retries for all its media at once: whether one
-- media failed for good is decided by that media's own failed attempts in
-- the run, not by the task's retries (which its siblings share) nor by
-- media.attempts (which counts earlier runs too).
-- +goose Up
ALTER TABLE run_media ADD COLUMN attempts integer NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE run_media DROP COLUMN attempts;
