-- Conversations media (issue #15): a second source in the same tables.
--
-- A Conversations message (IM…) is a `messages` row with source
-- 'conversations'; its media (ME…, served by MCS) are `media` rows with
-- source 'conversations', in the same states and under the same rules
-- (invariant 1 is the media table's CHECKs, whatever the source). What only
-- this source has sits in columns that stay NULL for Messaging.

-- +goose Up

ALTER TABLE runs
    -- Conversations services a run lists, in window order (run_windows.seq
    -- is the index): '' is the account's default service (/v1/Conversations).
    ADD COLUMN services text[];

ALTER TABLE messages
    ADD COLUMN service_sid        text,    -- IS…: where its media live in MCS
    ADD COLUMN conversation_sid   text,    -- CH…
    ADD COLUMN conversation_index bigint,  -- the message's index in its conversation
    ADD COLUMN author             text,    -- an identity, or the sender's address for SMS/WhatsApp
    -- The message itself (author, body, attributes, date, media SIDs) as
    -- archived beside its media: a create-only JSON object and its proof.
    -- A message is deleted from Twilio only once this is recorded.
    ADD COLUMN record_key         text,
    ADD COLUMN record_size        bigint CHECK (record_size >= 0),
    ADD COLUMN record_sha256      text CHECK (record_sha256 ~ '^[0-9a-f]{64}$'),
    ADD CONSTRAINT messages_record CHECK ((record_key IS NULL) = (record_sha256 IS NULL)
                                          AND (record_key IS NULL) = (record_size IS NULL));
CREATE INDEX messages_conversation ON messages (conversation_sid, conversation_index)
    WHERE conversation_sid IS NOT NULL;

ALTER TABLE media
    ADD COLUMN conversation_sid text,
    ADD COLUMN author           text,
    -- The size the message's media entry gave (bytes); the download is
    -- checked against it. NULL when Twilio sent none, and for Messaging.
    ADD COLUMN listed_size      bigint CHECK (listed_size >= 0);

-- A conversation a run pages through, newest message first; next_page_url
-- is the cursor of the page still to fetch (NULL before the first page).
CREATE TABLE run_conversations (
    run_id           uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    conversation_sid text NOT NULL,
    service_sid      text NOT NULL,
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'done', 'failed')),
    page             integer NOT NULL DEFAULT 0,
    next_page_url    text,
    -- Where this scan stops reading: the index an earlier run had read up
    -- to (conversation_progress), fixed when the scan starts.
    stop_index       bigint,
    -- The highest index this scan saw among messages created before the
    -- run's until: what conversation_progress moves to when it ends.
    top_index        bigint,
    -- Whether the scan read down to the conversation's first message.
    reached_start    boolean NOT NULL DEFAULT false,
    error            text,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, conversation_sid)
);
CREATE INDEX run_conversations_pending ON run_conversations (run_id) WHERE state = 'pending';

-- Per conversation, how far runs have read it: every message with an index
-- up to last_index, created on or after covered_since (NULL: from the
-- conversation's first message), was listed by a run that archived it. A
-- later run whose since is no earlier than covered_since reads only the
-- messages after last_index; the catalog still gives it the earlier ones it
-- has work on (a failed media, a delete asked for now).
CREATE TABLE conversation_progress (
    conversation_sid text PRIMARY KEY,
    account_sid      text NOT NULL,
    service_sid      text NOT NULL,
    last_index       bigint NOT NULL,
    covered_since    timestamptz,
    run_id           uuid,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE conversation_progress;
DROP TABLE run_conversations;
ALTER TABLE media DROP COLUMN listed_size, DROP COLUMN author, DROP COLUMN conversation_sid;
DROP INDEX messages_conversation;
ALTER TABLE messages DROP CONSTRAINT messages_record,
    DROP COLUMN record_sha256, DROP COLUMN record_size, DROP COLUMN record_key,
    DROP COLUMN author, DROP COLUMN conversation_index, DROP COLUMN conversation_sid, DROP COLUMN service_sid;
ALTER TABLE runs DROP COLUMN services;
