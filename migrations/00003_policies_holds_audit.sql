-- Retention policies that run themselves, legal holds, and a tamper-evident
-- audit log.

-- +goose Up

-- A retention policy: every tick of its schedule starts one run that
-- archives messages sent in [watermark, tick - archive_after) and deletes
-- from Twilio the archived media of messages sent before tick - delete_after.
CREATE TABLE policies (
    name          text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
    account_sid   text NOT NULL,
    schedule      text NOT NULL,                -- cron expression or @every DUR
    archive_after interval NOT NULL DEFAULT '0',
    delete_after  interval,                     -- NULL: never delete
    watermark     timestamptz NOT NULL,         -- everything before it is archived
    from_number   text,
    to_number     text,
    last_tick     timestamptz,                  -- the latest tick that started a run
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (delete_after IS NULL OR delete_after >= archive_after)
);

ALTER TABLE runs
    ADD COLUMN policy_name   text REFERENCES policies (name) ON DELETE SET NULL,
    ADD COLUMN tick          timestamptz,
    -- Only media of messages sent before this are deleted (NULL: all the
    -- run archives, as backfill --delete asks).
    ADD COLUMN delete_before timestamptz;
-- Exactly one run per policy tick, however many schedulers race for it.
CREATE UNIQUE INDEX runs_policy_tick ON runs (policy_name, tick) WHERE tick IS NOT NULL;
CREATE INDEX runs_policy ON runs (policy_name, created_at DESC) WHERE policy_name IS NOT NULL;
-- A policy tick may find nothing new to archive: its run has no range.
ALTER TABLE runs DROP CONSTRAINT runs_check;
ALTER TABLE runs ADD CONSTRAINT runs_range CHECK (since IS NULL OR until IS NULL OR since <= until);

-- Whether a run deletes this media once archived (a policy deletes only
-- what is old enough); and `held`: a legal hold stopped the delete.
ALTER TABLE run_media ADD COLUMN delete_wanted boolean NOT NULL DEFAULT false;
UPDATE run_media d SET delete_wanted = r.delete_media FROM runs r WHERE r.id = d.run_id;
ALTER TABLE run_media DROP CONSTRAINT run_media_state_check;
ALTER TABLE run_media ADD CONSTRAINT run_media_state_check
    CHECK (state IN ('pending', 'listed', 'archived', 'deleted', 'gone', 'failed', 'held'));

-- A legal hold: while it is not released, nothing deletes from Twilio the
-- media it covers, whichever run asks. It covers media archived before and
-- after it was placed.
CREATE TABLE holds (
    id             bigserial PRIMARY KEY,
    reason         text NOT NULL CHECK (reason <> ''),
    message_sids   text[],                      -- these messages, or
    from_number    text,                        -- messages from this number, or
    to_number      text,                        -- to this number,
    since          timestamptz,                 -- optionally sent in [since, until)
    until          timestamptz,
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    released_at    timestamptz,
    released_by    text,
    release_reason text,
    CHECK (num_nonnulls(message_sids, from_number, to_number) = 1),
    CHECK (since IS NULL OR until IS NULL OR since < until),
    CHECK ((released_at IS NULL) = (release_reason IS NULL))
);
CREATE INDEX holds_active ON holds (id) WHERE released_at IS NULL;

-- held reports whether an active hold covers a message.
-- +goose StatementBegin
CREATE FUNCTION held(msg_sid text, msg_from text, msg_to text, sent timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM holds h
        WHERE h.released_at IS NULL
          AND (msg_sid = ANY (h.message_sids) OR h.from_number = msg_from OR h.to_number = msg_to)
          AND (h.since IS NULL OR sent >= h.since)
          AND (h.until IS NULL OR sent < h.until))
$$;
-- +goose StatementEnd

-- The audit log: append-only, each row chained to the one before by
-- SHA-256, so a removed or altered row breaks the chain at that row.
CREATE TABLE audit_log (
    id        bigint PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    actor     text NOT NULL,
    action    text NOT NULL,                    -- media.deleted, hold.added, policy.created, run.started…
    subject   text NOT NULL,                    -- what was affected: a SID, a hold id, a policy name, a run id
    details   jsonb NOT NULL DEFAULT '{}',
    prev_hash bytea NOT NULL,
    hash      bytea NOT NULL
);
CREATE SEQUENCE audit_log_id_seq OWNED BY audit_log.id;

-- The payload a row's hash covers; Go's audit verification computes the
-- same bytes independently.
-- +goose StatementBegin
CREATE FUNCTION audit_payload(a audit_log) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT a.id::text || '|' || to_char(a.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
        || '|' || a.actor || '|' || a.action || '|' || a.subject || '|' || a.details::text
$$;
-- +goose StatementEnd

-- Appends are serialised by a transaction-scoped lock taken before the id
-- is drawn, so ids follow the chain and every row links to the row before
-- it, committed.
-- +goose StatementBegin
CREATE FUNCTION audit_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    prev bytea;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('mediasync.audit_log'));
    NEW.id := nextval('audit_log_id_seq');
    NEW.at := clock_timestamp();
    SELECT a.hash INTO prev FROM audit_log a ORDER BY a.id DESC LIMIT 1;
    NEW.prev_hash := coalesce(prev, '\x'::bytea);
    NEW.hash := sha256(NEW.prev_hash || convert_to(audit_payload(NEW), 'UTF8'));
    RETURN NEW;
END $$;
-- +goose StatementEnd
CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_chain();

-- +goose StatementBegin
CREATE FUNCTION audit_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
END $$;
-- +goose StatementEnd
CREATE TRIGGER audit_log_immutable BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_immutable();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_immutable();

DROP VIEW run_progress;
CREATE VIEW run_progress AS
SELECT r.id AS run_id, r.kind, r.state, r.delete_media, r.dry_run, r.policy_name,
       r.created_at, r.started_at, r.finished_at,
       w.windows_total, w.windows_done, w.pages_fetched,
       g.messages_seen, g.messages_pending,
       c.media_found, c.media_listed, c.media_archived, c.media_reused, c.media_deleted,
       c.media_gone, c.media_failed, c.media_pending, c.media_held, c.bytes_archived
FROM runs r
CROSS JOIN LATERAL (
    SELECT count(*) AS windows_total,
           count(*) FILTER (WHERE state <> 'pending') AS windows_done,
           coalesce(sum(page), 0)::bigint AS pages_fetched
    FROM run_windows WHERE run_id = r.id) w
CROSS JOIN LATERAL (
    SELECT count(*) AS messages_seen,
           count(*) FILTER (WHERE state = 'pending') AS messages_pending
    FROM run_messages WHERE run_id = r.id) g
CROSS JOIN LATERAL (
    SELECT count(*) AS media_found,
           count(*) FILTER (WHERE d.state = 'listed') AS media_listed,
           count(*) FILTER (WHERE d.state IN ('archived', 'deleted', 'held')) AS media_archived,
           count(*) FILTER (WHERE d.reused) AS media_reused,
           count(*) FILTER (WHERE d.state = 'deleted') AS media_deleted,
           count(*) FILTER (WHERE d.state = 'gone') AS media_gone,
           count(*) FILTER (WHERE d.state = 'failed') AS media_failed,
           count(*) FILTER (WHERE d.state = 'pending') AS media_pending,
           count(*) FILTER (WHERE d.state = 'held') AS media_held,
           coalesce(sum(m.size_bytes) FILTER (WHERE d.state IN ('archived', 'deleted', 'held')), 0)::bigint AS bytes_archived
    FROM run_media d LEFT JOIN media m ON m.sid = d.media_sid
    WHERE d.run_id = r.id) c;

-- +goose Down
DROP VIEW run_progress;
CREATE VIEW run_progress AS
SELECT r.id AS run_id, r.kind, r.state, r.delete_media, r.dry_run,
       r.created_at, r.started_at, r.finished_at,
       0::bigint AS windows_total, 0::bigint AS windows_done, 0::bigint AS pages_fetched,
       0::bigint AS messages_seen, 0::bigint AS messages_pending,
       0::bigint AS media_found, 0::bigint AS media_listed, 0::bigint AS media_archived,
       0::bigint AS media_reused, 0::bigint AS media_deleted, 0::bigint AS media_gone,
       0::bigint AS media_failed, 0::bigint AS media_pending, 0::bigint AS bytes_archived
FROM runs r;
DROP TABLE audit_log;
DROP FUNCTION audit_chain();
DROP FUNCTION audit_immutable();
DROP FUNCTION audit_payload;
DROP FUNCTION held;
DROP TABLE holds;
ALTER TABLE run_media DROP CONSTRAINT run_media_state_check;
ALTER TABLE run_media ADD CONSTRAINT run_media_state_check
    CHECK (state IN ('pending', 'listed', 'archived', 'deleted', 'gone', 'failed'));
ALTER TABLE run_media DROP COLUMN delete_wanted;
ALTER TABLE runs DROP CONSTRAINT runs_range;
ALTER TABLE runs ADD CONSTRAINT runs_check CHECK (since IS NULL OR until IS NULL OR since < until);
DROP INDEX runs_policy;
DROP INDEX runs_policy_tick;
ALTER TABLE runs DROP COLUMN delete_before, DROP COLUMN tick, DROP COLUMN policy_name;
DROP TABLE policies;
