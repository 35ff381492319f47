-- Compliance exports: a run of kind 'export' re-reads archived media,
-- re-verifies each against its row, and writes a package a reviewer can
-- open without mediasync (files, manifests, SHA256SUMS, export.json).

-- +goose Up

-- An export's request and outcome. The filters live on its runs row
-- (since, until, from_number, to_number); what only exports have is here.
CREATE TABLE exports (
    run_id          uuid PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    out_url         text NOT NULL,              -- destination URL; never holds credentials (refused when parsed)
    format          text NOT NULL CHECK (format IN ('dir', 'zip')),
    message_sids    text[],                     -- only these messages, when given
    any_number      text,                       -- messages from or to this number, when given
    presign         interval,                   -- presigned URLs valid this long, when asked
    selected_at     timestamptz,                -- export_media filled in
    not_archived    integer,                    -- in range but not archived (pending, failed, gone): not exportable
    -- Fixed by the first attempt that writes the package, so a retried
    -- attempt writes the very same export.json, byte for byte.
    ended_at        timestamptz,
    output_key      text,                       -- the zip, or export.json
    manifest_sha256 text CHECK (manifest_sha256 ~ '^[0-9a-f]{64}$'),
    sums_sha256     text CHECK (sums_sha256 ~ '^[0-9a-f]{64}$')
);

-- Each media an export covers, in the order of the manifest. What can
-- change after archiving (the Twilio delete, holds) is captured when the
-- media is verified, so the manifest written from these rows is the same
-- however often it is written.
CREATE TABLE export_media (
    run_id      uuid NOT NULL REFERENCES exports (run_id) ON DELETE CASCADE,
    seq         integer NOT NULL,
    media_sid   text NOT NULL REFERENCES media (sid),
    state       text NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'exported', 'failed')),
    path        text,                           -- where it is inside the export
    deleted_at  timestamptz,                    -- deleted from Twilio, as of verification
    holds       bigint[],                       -- active legal holds, as of verification
    error       text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, seq),
    UNIQUE (run_id, media_sid)
);
CREATE INDEX export_media_pending ON export_media (run_id, seq) WHERE state = 'pending';

-- holds_covering lists the active holds that cover a message, for the
-- manifest; held() becomes its non-empty test, so the two never disagree.
-- +goose StatementBegin
CREATE FUNCTION holds_covering(msg_sid text, msg_from text, msg_to text, sent timestamptz) RETURNS bigint[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(h.id ORDER BY h.id), '{}') FROM holds h
    WHERE h.released_at IS NULL
      AND (msg_sid = ANY (h.message_sids) OR h.from_number = msg_from OR h.to_number = msg_to)
      AND (h.since IS NULL OR sent >= h.since)
      AND (h.until IS NULL OR sent < h.until)
$$;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION held(msg_sid text, msg_from text, msg_to text, sent timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT cardinality(holds_covering(msg_sid, msg_from, msg_to, sent)) > 0
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION held(msg_sid text, msg_from text, msg_to text, sent timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM holds h
        WHERE h.released_at IS NULL
          AND (msg_sid = ANY (h.message_sids) OR h.from_number = msg_from OR h.to_number = msg_to)
          AND (h.since IS NULL OR sent >= h.since)
          AND (h.until IS NULL OR sent < h.until))
$$;
-- +goose StatementEnd
DROP FUNCTION holds_covering;
DROP TABLE export_media;
DROP TABLE exports;
