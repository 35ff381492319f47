-- A delete lease: the time until which a worker may send the DELETE of a
-- media to Twilio. The worker stamps it, under the holds lock, immediately
-- before each attempt and sends the request with that deadline; placing a
-- hold waits until every lease on a media it covers has ended, so once
-- `hold add` returns no DELETE of a held media can still reach Twilio.
-- Cleared when the delete is recorded or given up.

-- +goose Up
ALTER TABLE media ADD COLUMN delete_lease_until timestamptz;
-- Only leases are indexed: a hold looks for those still running.
CREATE INDEX media_delete_lease ON media (delete_lease_until) WHERE delete_lease_until IS NOT NULL;

-- +goose Down
DROP INDEX media_delete_lease;
ALTER TABLE media DROP COLUMN delete_lease_until;
