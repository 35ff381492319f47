-- WORM archiving: each archived object's S3 Object Lock retention, as
-- written with it, for exports' manifests and for audits.

-- +goose Up
ALTER TABLE media
    ADD COLUMN lock_mode text CHECK (lock_mode IN ('GOVERNANCE', 'COMPLIANCE')),
    ADD COLUMN retain_until timestamptz,
    ADD CONSTRAINT media_lock CHECK ((lock_mode IS NULL) = (retain_until IS NULL));

-- +goose Down
ALTER TABLE media DROP CONSTRAINT media_lock, DROP COLUMN retain_until, DROP COLUMN lock_mode;
