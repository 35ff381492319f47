-- When the archived copy of a media was judged plausibly the media (the
-- Sniffer's Check: its type, its signature, no sign of a binary body
-- re-encoded as text). Size and SHA-256 prove only that the archive keeps
-- what was downloaded; a proxy can hand back corrupt bytes of the right
-- length. Copies archived before the check existed (rows already archived
-- when migration 00009 ran) were never judged: they stay NULL here, and
-- nothing deletes them from Twilio until their stored bytes have been read
-- back and judged (ClaimDelete requires plausible_at).

-- +goose Up
ALTER TABLE media ADD COLUMN plausible_at timestamptz;

-- +goose Down
ALTER TABLE media DROP COLUMN plausible_at;
