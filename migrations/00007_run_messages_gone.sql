-- A message Twilio no longer has when its media are listed (deleted between
-- the page that listed it and the listing of its media: 404 / 20404) is
-- `gone`: nothing of it can be archived, no retry can change that, and the
-- run says so instead of counting it as a message without media.

-- +goose Up
ALTER TABLE run_messages DROP CONSTRAINT run_messages_state_check;
ALTER TABLE run_messages ADD CONSTRAINT run_messages_state_check
    CHECK (state IN ('pending', 'listed', 'gone', 'failed'));

-- +goose Down
UPDATE run_messages SET state = 'listed' WHERE state = 'gone';
ALTER TABLE run_messages DROP CONSTRAINT run_messages_state_check;
ALTER TABLE run_messages ADD CONSTRAINT run_messages_state_check
    CHECK (state IN ('pending', 'listed', 'failed'));
