-- A retention policy archives one source (issue #15): Messaging, as
-- before, or Conversations, with the services it lists ('' element or
-- NULL: the account's default service).

-- +goose Up
ALTER TABLE policies
    ADD COLUMN source   text NOT NULL DEFAULT 'messaging' CHECK (source IN ('messaging', 'conversations')),
    ADD COLUMN services text[];

-- +goose Down
ALTER TABLE policies DROP COLUMN services, DROP COLUMN source;
