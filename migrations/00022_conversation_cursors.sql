-- The page URLs a conversation's scan followed (issue #15), as
-- run_window_cursors for a window: a scan whose next_page_url goes round
-- (A→B→A) fails with the reason instead of reading for ever. Deleted once
-- the scan ends.

-- +goose Up
CREATE TABLE run_conversation_cursors (
    run_id           uuid NOT NULL,
    conversation_sid text NOT NULL,
    cursor           text NOT NULL,     -- SHA-256 (hex) of the page URL, query sorted
    page             integer NOT NULL,  -- the page this cursor fetches
    PRIMARY KEY (run_id, conversation_sid, cursor),
    FOREIGN KEY (run_id, conversation_sid) REFERENCES run_conversations (run_id, conversation_sid) ON DELETE CASCADE
);

-- +goose Down
DROP TABLE run_conversation_cursors;
