-- Whether each archived object's S3 legal hold is known to match what the
-- holds in force require: a hold is set on S3 after the rows that ask for it
-- commit, so a failed or interrupted PUT must be found and retried, and
-- `hold list` must be able to say which objects are not yet protected.

-- +goose Up
-- The S3 legal hold last confirmed on the object (true: ON, false: OFF),
-- written only after S3 accepted it; NULL: never confirmed.
ALTER TABLE media ADD COLUMN legal_hold_s3 boolean;
-- The reconciler's "still ON, perhaps no longer wanted" scan reads only these.
CREATE INDEX media_legal_hold_s3_on ON media (sid) WHERE legal_hold_s3;

-- +goose Down
DROP INDEX media_legal_hold_s3_on;
ALTER TABLE media DROP COLUMN legal_hold_s3;
