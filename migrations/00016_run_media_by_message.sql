-- A message is one task (issue #14): it reads the work its run still has
-- for that message (media to archive, archived media to delete). This
-- index holds only those rows, by message, so the read costs the same at
-- any run size; rows written by older workers need nothing else.
-- +goose Up
CREATE INDEX run_media_message_unfinished ON run_media (run_id, message_sid)
    WHERE state = 'pending' OR (delete_wanted AND state = 'archived');

-- +goose Down
DROP INDEX run_media_message_unfinished;
