-- The catalog of archived media and the bookkeeping of runs.
--
-- Postgres, not the queue, decides what is left to do: every task checks its
-- row before it acts, so a task delivered twice, or lost with Redis and
-- re-enqueued, does no harm. Tables are keyed by Twilio SIDs, which are
-- globally unique; `source` leaves room for Conversations media (MCS).

-- +goose Up

-- A run is one request to archive: a backfill of a date range, one message,
-- and later a retention policy's tick or an export.
CREATE TABLE runs (
    id            uuid PRIMARY KEY,
    kind          text NOT NULL,                -- backfill | message (later: policy, export)
    source        text NOT NULL DEFAULT 'messaging',
    account_sid   text NOT NULL,
    since         timestamptz,                  -- window start, inclusive
    until         timestamptz,                  -- window end, exclusive
    message_sid   text,                         -- kind = message
    from_number   text,                         -- Twilio list filters, when given
    to_number     text,
    delete_media  boolean NOT NULL DEFAULT false,
    dry_run       boolean NOT NULL DEFAULT false,
    actor         text NOT NULL,
    params        jsonb NOT NULL DEFAULT '{}',  -- the request as given, for the record
    state         text NOT NULL DEFAULT 'queued'
                  CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    error         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    CHECK (since IS NULL OR until IS NULL OR since < until),
    CHECK (NOT (delete_media AND dry_run))
);
CREATE INDEX runs_created_at ON runs (created_at DESC);
CREATE INDEX runs_unfinished ON runs (state) WHERE state IN ('queued', 'running');

-- A message whose media mediasync has seen. Export filters (number, date)
-- read these columns, so they live here rather than on each media row.
CREATE TABLE messages (
    sid           text PRIMARY KEY,
    source        text NOT NULL DEFAULT 'messaging',
    account_sid   text NOT NULL,
    date_sent     timestamptz,
    date_created  timestamptz,
    from_number   text,
    to_number     text,
    direction     text,
    num_media     integer,                      -- as Twilio last said; NULL when unknown
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX messages_date_sent ON messages (account_sid, date_sent);
CREATE INDEX messages_from ON messages (from_number, date_sent);
CREATE INDEX messages_to ON messages (to_number, date_sent);

-- One row per media: where its archived copy is and what state it is in.
--   pending  - known, not yet archived
--   archived - bytes in the archive, size and SHA-256 recorded
--   deleted  - archived, verified, and deleted from Twilio
--   gone     - Twilio answered 404 before we had a copy (nothing to archive)
--   failed   - archiving failed permanently (last_error says why)
CREATE TABLE media (
    sid               text PRIMARY KEY,
    source            text NOT NULL DEFAULT 'messaging',
    account_sid       text NOT NULL,
    message_sid       text NOT NULL REFERENCES messages (sid),
    content_type      text,
    filename          text,
    date_created      timestamptz,
    state             text NOT NULL DEFAULT 'pending'
                      CHECK (state IN ('pending', 'archived', 'deleted', 'gone', 'failed')),
    size_bytes        bigint CHECK (size_bytes >= 0),
    sha256            text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    store             text,                     -- s3 | file
    bucket            text,                     -- bucket, or directory for the file store
    object_key        text,
    version_id        text,
    attempts          integer NOT NULL DEFAULT 0,
    last_error        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    archived_at       timestamptz,
    verified_at       timestamptz,              -- last proof that the stored copy matches
    delete_claimed_at timestamptz,              -- a worker is deleting it from Twilio
    deleted_at        timestamptz,
    gone_at           timestamptz,
    -- Invariant 1, enforced by the database itself: no row can say archived
    -- without the proof, and none can say deleted without a verified copy.
    CHECK (state NOT IN ('archived', 'deleted')
           OR (size_bytes IS NOT NULL AND sha256 IS NOT NULL AND object_key IS NOT NULL
               AND archived_at IS NOT NULL)),
    CHECK (state <> 'deleted' OR (verified_at IS NOT NULL AND deleted_at IS NOT NULL)),
    CHECK (delete_claimed_at IS NULL OR verified_at IS NOT NULL)
);
CREATE INDEX media_message ON media (message_sid);
CREATE INDEX media_state ON media (state) WHERE state IN ('pending', 'failed');

-- A run's windows of time; each is listed page by page, and next_page_uri is
-- the cursor of the page still to fetch (NULL once the window is done).
CREATE TABLE run_windows (
    run_id        uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq           integer NOT NULL,
    starts_at     timestamptz NOT NULL,
    ends_at       timestamptz NOT NULL,
    state         text NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'done', 'failed')),
    page          integer NOT NULL DEFAULT 0,   -- pages fetched so far
    next_page_uri text,
    error         text,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, seq)
);

-- Every message a run saw in its windows, with or without media.
CREATE TABLE run_messages (
    run_id      uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    message_sid text NOT NULL,
    state       text NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'listed', 'failed')),
    media_found integer,
    error       text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, message_sid)
);
CREATE INDEX run_messages_pending ON run_messages (run_id) WHERE state = 'pending';

-- What a run did with each media it found. `listed` is a dry run's outcome.
CREATE TABLE run_media (
    run_id      uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    media_sid   text NOT NULL,
    message_sid text NOT NULL,
    state       text NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'listed', 'archived', 'deleted', 'gone', 'failed')),
    reused      boolean NOT NULL DEFAULT false, -- was already archived by an earlier run
    error       text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, media_sid)
);
CREATE INDEX run_media_state ON run_media (run_id, state);

-- +goose Down
DROP TABLE run_media;
DROP TABLE run_messages;
DROP TABLE run_windows;
DROP TABLE media;
DROP TABLE messages;
DROP TABLE runs;
