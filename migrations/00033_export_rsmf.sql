-- RSMF exports (issue #17): an export may be written as .rsmf files, one
-- per conversation per UTC day, for eDiscovery review platforms.

-- +goose Up
ALTER TABLE exports DROP CONSTRAINT exports_format_check;
ALTER TABLE exports ADD CONSTRAINT exports_format_check CHECK (format IN ('dir', 'zip', 'rsmf'));

-- +goose Down
DELETE FROM exports WHERE format = 'rsmf';
ALTER TABLE exports DROP CONSTRAINT exports_format_check;
ALTER TABLE exports ADD CONSTRAINT exports_format_check CHECK (format IN ('dir', 'zip'));
