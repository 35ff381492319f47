-- Whether each hold's S3 legal holds are known to be in place (and, once
-- released, lifted): the reconciler's sweep then reads only the holds not
-- yet applied or lifted and the objects whose S3 state is unknown, instead
-- of every held media every pass (#12: 4.2 s a batch at 1M held media).

-- +goose Up
-- hold:apply (or the reconciler) found no object in its store left to set:
-- applied_at for an active hold, lifted_at once released. NULL: not yet.
-- Holds placed before this migration are applied and lifted again, once.
ALTER TABLE holds ADD COLUMN applied_at timestamptz, ADD COLUMN lifted_at timestamptz;
CREATE INDEX holds_unsynced ON holds (id)
    WHERE (released_at IS NULL AND applied_at IS NULL) OR (released_at IS NOT NULL AND lifted_at IS NULL);
-- Archived objects whose S3 legal hold is unknown: never confirmed, or two
-- confirmations that disagreed. The sweep reads only these.
CREATE INDEX media_legal_hold_s3_unknown ON media (sid) WHERE legal_hold_s3 IS NULL AND object_key IS NOT NULL;
-- hold:apply reads a hold's messages in SID order, a batch at a time: for a
-- hold from or to a number, these give each batch at the cost of its own
-- rows (messages_from and messages_to are in date order).
CREATE INDEX messages_from_sid ON messages (from_number, sid);
CREATE INDEX messages_to_sid ON messages (to_number, sid);

-- +goose Down
DROP INDEX messages_to_sid;
DROP INDEX messages_from_sid;
DROP INDEX media_legal_hold_s3_unknown;
DROP INDEX holds_unsynced;
ALTER TABLE holds DROP COLUMN lifted_at, DROP COLUMN applied_at;
