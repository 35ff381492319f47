-- Restores (issue #15): a run of kind 'restore' uploads archived media into
-- a Media Content Service (MCS) service and records, per media, the new
-- Media SID Twilio gave it, and at the end a manifest of old → new SIDs in
-- the archive.
--
-- MCS upload is not idempotent and MCS has no list: once a POST has sent a
-- whole file, only its answer tells whether a Media was created. So each
-- upload is claimed here before it is sent (state 'uploading', a claim
-- token and a lease), and committed with the new SID after; a claim whose
-- worker died between sending and committing is never uploaded again by
-- the same restore: it ends 'unconfirmed' (see jobs/restore_upload.go).

-- +goose Up

-- A restore's request and outcome. since/until live on its runs row.
CREATE TABLE restores (
    run_id          uuid PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    service_sids    text[] NOT NULL CHECK (cardinality(service_sids) > 0), -- target MCS services (IS…)
    from_run        uuid,                       -- --run: the media that run archived
    message_sids    text[],                     -- --message: the media of these messages
    selected_at     timestamptz,                -- restore_media filled in
    not_archived    integer,                    -- in scope with no archived copy: not restorable
    ended_at        timestamptz,                -- fixed by the first attempt that writes the manifest
    manifest_key    text,
    manifest_sha256 text CHECK (manifest_sha256 ~ '^[0-9a-f]{64}$'),
    manifest_size   bigint
);

-- Each (media, target service) of a restore.
--   pending     - to upload
--   uploading   - claimed: a worker may be sending it now (claim, lease_until)
--   restored    - uploaded and checked; new_media_sid is Twilio's new Media
--   unconfirmed - a claim ended without an answer: a Media may or may not
--                 exist in the service; never uploaded again by this restore
--   failed      - cannot be restored (error says why); new_media_sid is set
--                 when Twilio created a Media that failed its check
CREATE TABLE restore_media (
    run_id        uuid NOT NULL REFERENCES restores (run_id) ON DELETE CASCADE,
    seq           integer NOT NULL,
    media_sid     text NOT NULL REFERENCES media (sid),
    service_sid   text NOT NULL CHECK (service_sid ~ '^IS[0-9a-f]{32}$'),
    state         text NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'uploading', 'restored', 'unconfirmed', 'failed')),
    claim         uuid,                         -- the attempt that may upload, set before the POST
    lease_until   timestamptz,                  -- the claimer is done (or dead) by then
    attempts      integer NOT NULL DEFAULT 0,   -- claims taken
    new_media_sid text CHECK (new_media_sid ~ '^ME[0-9a-f]{32}$'),
    new_size      bigint,
    restored_at   timestamptz,
    error         text,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, seq),
    UNIQUE (run_id, media_sid, service_sid),
    CHECK (state <> 'restored' OR (new_media_sid IS NOT NULL AND restored_at IS NOT NULL)),
    CHECK (state <> 'uploading' OR (claim IS NOT NULL AND lease_until IS NOT NULL))
);
CREATE UNIQUE INDEX restore_media_new_sid ON restore_media (new_media_sid);
CREATE INDEX restore_media_open ON restore_media (run_id, seq) WHERE state IN ('pending', 'uploading');

-- +goose Down
DROP TABLE restore_media;
DROP TABLE restores;
