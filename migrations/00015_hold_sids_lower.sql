-- Holds placed on message SIDs typed with upper-case hex covered nothing:
-- the catalog holds SIDs as Twilio writes them, in lower case, and holds
-- compared them as typed. New holds are written canonical (AddHold);
-- this makes the holds already in force cover what they name.
-- +goose Up
UPDATE holds SET message_sids = (
    SELECT array_agg(left(s, 2) || lower(substr(s, 3)) ORDER BY i)
    FROM unnest(message_sids) WITH ORDINALITY AS u(s, i))
WHERE message_sids IS NOT NULL AND cardinality(message_sids) > 0
  AND EXISTS (SELECT 1 FROM unnest(message_sids) s WHERE substr(s, 3) <> lower(substr(s, 3)));

-- +goose Down
-- Nothing to undo: the lower-case SIDs name the same messages.
SELECT 1;
