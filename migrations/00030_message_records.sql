-- Issue #17: a Messaging message's record (the JSON object Twilio's list
-- returned for it) is archived beside its media, in the record_key /
-- record_size / record_sha256 columns the Conversations source uses
-- (00020). An account that must not keep bodies leaves them out:
--
--   * runs.no_bodies / policies.no_bodies: the run stores records without
--     their "body" (a policy's runs take the policy's setting);
--   * messages.record_no_body: the record record_key names was stored
--     without its body, so an export can say which was done.
-- +goose Up
ALTER TABLE runs ADD COLUMN no_bodies boolean NOT NULL DEFAULT false;
ALTER TABLE policies ADD COLUMN no_bodies boolean NOT NULL DEFAULT false;
ALTER TABLE messages ADD COLUMN record_no_body boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE messages DROP COLUMN record_no_body;
ALTER TABLE policies DROP COLUMN no_bodies;
ALTER TABLE runs DROP COLUMN no_bodies;
