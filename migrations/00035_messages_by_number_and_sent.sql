-- Every query that narrows messages by date does so by the date the
-- archive files them under, coalesce(date_sent, date_created) (00008),
-- never by date_sent alone. So messages_date_sent (account_sid,
-- date_sent) answered nothing messages_sent does not, and messages_from
-- / messages_to (number, date_sent) served only their number: "every MMS
-- this number got in March" read all of the number's messages, of every
-- year, to keep March's. Indexed on the number and that date instead, it
-- reads March's (EXPLAIN on 300 000 messages, 300 per number: 2.9 ms →
-- 0.2 ms). One index fewer for every message written.
--
-- The new indexes are built before the old ones are dropped: a build
-- holds a SHARE lock (other workers still read messages; their writes
-- wait for it), a DROP an ACCESS EXCLUSIVE one (nothing reads), and the
-- migration's transaction holds both to its commit. Dropped last, the
-- table is never closed to readers while millions of rows are indexed.

-- +goose Up
CREATE INDEX messages_from_sent ON messages (from_number, (coalesce(date_sent, date_created)));
CREATE INDEX messages_to_sent ON messages (to_number, (coalesce(date_sent, date_created)));
DROP INDEX messages_date_sent;
DROP INDEX messages_from;
DROP INDEX messages_to;

-- +goose Down
CREATE INDEX messages_date_sent ON messages (account_sid, date_sent);
CREATE INDEX messages_from ON messages (from_number, date_sent);
CREATE INDEX messages_to ON messages (to_number, date_sent);
DROP INDEX messages_to_sent;
DROP INDEX messages_from_sent;
