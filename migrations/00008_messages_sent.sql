-- Exports select messages by the day they were sent, falling back to the
-- day they were created when Twilio gave no date_sent (as the archive's
-- keys do): an index on that expression lets an export of one month read
-- that month, not the account's every message.

-- +goose Up
CREATE INDEX messages_sent ON messages (account_sid, (coalesce(date_sent, date_created)));

-- +goose Down
DROP INDEX messages_sent;
