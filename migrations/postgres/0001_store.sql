-- tower-oauth-revoke, PostgreSQL token store: schema version 1.
--
-- Versioning. Each file migrations/postgres/NNNN_<name>.sql moves the schema from version
-- NNNN-1 to NNNN, and is applied once, as ONE transaction (`psql -1 -f FILE`, or the whole
-- file sent as one simple query, which PostgreSQL runs as one implicit transaction): it
-- commits whole or not at all. A runner, in one transaction per file:
--   1. takes the advisory lock (7009, 1), so that nodes starting together migrate one at a
--      time (every file takes it as well, as its first statement);
--   2. creates `schema_version` if missing and reads max(version) (0 when empty);
--   3. applies, in order, every file whose number is greater.
-- Every file records its own version in `schema_version`: applied a second time, that
-- insert violates the primary key and the file fails without changing anything. Files are
-- never edited once released; a change of the schema is a new file. Functions are
-- CREATE OR REPLACE, so a later file may redefine them.
--
-- Objects are created in the current schema (the first of `search_path`): give a tenant a
-- schema of its own by setting `search_path` before migrating and on every connection.
--
-- Contracts of the functions: see README.md beside this file. In short, each primitive of
-- the store's Backend is one function call, one round trip, one transaction, mirroring the
-- Redis store's scripts (src/store/redis/scripts.rs). Expiry is judged by the calling
-- node's clock (p_now); creation times and cut-offs come from the database's clock
-- (clock_timestamp()), as the Redis scripts use Redis's TIME.

DO $$ BEGIN PERFORM pg_advisory_xact_lock(7009, 1); END $$;

CREATE TABLE IF NOT EXISTS schema_version (
    version     integer     PRIMARY KEY,
    description text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

INSERT INTO schema_version (version, description) VALUES (1, 'token store');

-- A grant: one authorization of one client by one resource owner (or by the client
-- itself), and every token issued under it. Revoking it sets `revoked`, which every token
-- of it consults: the cascade is one write, whatever the number of tokens.
CREATE TABLE grants (
    -- The GrantId's 64 bits, as a signed bigint (u64 <-> i64 by reinterpreting the bits).
    id          bigint      PRIMARY KEY,
    -- NULL only for a tombstone: a grant revoked before any token of it was seen.
    client      text,
    -- The resource owner; NULL for client_credentials grants (and tombstones).
    owner       text,
    -- The latest expiry of its tokens; a grant past it holds no active token.
    expires_at  timestamptz NOT NULL,
    -- When the row may be purged, and until when it counts at all: expires_at for a live
    -- grant; once revoked, the later of that and the tombstone time from the revocation, so
    -- that a token registered into it meanwhile is refused. A row past it is as absent.
    keep_until  timestamptz NOT NULL,
    revoked     boolean     NOT NULL DEFAULT false,
    -- When its first token was registered, in µs since the Unix epoch (database clock);
    -- a cut-off covers the grants created at or before it.
    created_us  bigint      NOT NULL
);
-- A subject's and a client's grants, in id order (tor_grants' keyset pages).
CREATE INDEX grants_owner ON grants (owner, id) WHERE owner IS NOT NULL;
CREATE INDEX grants_client ON grants (client, id) WHERE client IS NOT NULL;
CREATE INDEX grants_keep_until ON grants (keep_until);

-- An issued token, keyed by the SHA-256 of the token: the token itself never reaches the
-- database. A token whose grant row is missing, revoked or cut off is inactive.
CREATE TABLE tokens (
    hash        bytea       PRIMARY KEY CHECK (octet_length(hash) = 32),
    -- 'a' access token, 'r' refresh token.
    kind        text        NOT NULL CHECK (kind IN ('a', 'r')),
    grant_id    bigint      NOT NULL,
    expires_at  timestamptz NOT NULL,
    issued_at   timestamptz NOT NULL
);
CREATE INDEX tokens_expires_at ON tokens (expires_at);

-- Bulk revocations, one row per subject or client: every grant of that scope created at or
-- before cutoff_us (µs since the epoch, database clock) is revoked. Kept until the last
-- grant it covered has expired, and at least the tombstone time.
CREATE TABLE cutoffs (
    scope       text        NOT NULL CHECK (scope IN ('subject', 'client')),
    name        text        NOT NULL,
    cutoff_us   bigint      NOT NULL,
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (scope, name)
);
CREATE INDEX cutoffs_expires_at ON cutoffs (expires_at);

-- The outbox: one row per confirmed revocation, written in the transaction that revoked,
-- with a NOTIFY on channel `tor_revocations` (payload: the row's seq) sent at its commit.
-- Rows are numbered under the advisory lock (7009, 0), held to the end of the writing
-- transaction, so that seq order is commit order: a reader that has seen every row up to
-- seq N never finds a row below N later. Readers poll `seq > last` on each NOTIFY (and
-- after reconnecting, so that nothing is lost while not listening).
CREATE TABLE revocation_log (
    seq         bigserial   PRIMARY KEY,
    -- What was revoked: one token, one grant, every grant of a subject or of a client.
    kind        text        NOT NULL CHECK (kind IN ('token', 'grant', 'subject', 'client')),
    token_hash  bytea,                -- kind 'token'
    token_kind  text,                 -- kind 'token': 'a' or 'r'
    grant_id    bigint,               -- kinds 'token' and 'grant'
    client_id   text,                 -- the client of the revoked tokens (kind 'client': its name)
    subject     text,                 -- their resource owner (kind 'subject': its name)
    jti         text,                 -- the token's jti, when the client revoked a JWT
    -- Who asked: 'c:<client id>', 'o:<owner>', 'a:<admin id>' or 's' (the system).
    initiator   text        NOT NULL,
    at          timestamptz NOT NULL,
    -- When what was revoked would have expired anyway (token's expiry, grant's latest).
    expires_at  timestamptz,
    -- The id of the node whose call revoked (so that it recognises its own events).
    node        text
);
CREATE INDEX revocation_log_at ON revocation_log (at);

-- µs since the Unix epoch.
CREATE OR REPLACE FUNCTION tor_us(t timestamptz) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT (extract(epoch FROM t) * 1000000)::bigint
$$;

-- Whether a cut-off covers a grant of `client` and `owner` created at `created_us`.
CREATE OR REPLACE FUNCTION tor_cut(p_client text, p_owner text, p_created_us bigint)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM cutoffs
        WHERE (scope = 'client' AND name = p_client OR scope = 'subject' AND name = p_owner)
          AND p_created_us <= cutoff_us
    )
$$;

-- Appends rows to the outbox (and wakes its listeners at commit); returns the last seq.
-- Called last, after every row lock the transaction takes: the advisory lock it takes is
-- then never held while waiting for a row. `at` is p_at, or now.
CREATE OR REPLACE FUNCTION tor_log(
    p_kind text, p_token_hash bytea, p_token_kind text, p_grant_ids bigint[],
    p_client_id text, p_subject text, p_jti text, p_initiator text,
    p_expires_at timestamptz[], p_node text, p_at timestamptz DEFAULT NULL
) RETURNS bigint LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    last_seq bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(7009, 0);
    WITH rows AS (
        INSERT INTO revocation_log (kind, token_hash, token_kind, grant_id, client_id,
                                    subject, jti, initiator, at, expires_at, node)
        SELECT p_kind, p_token_hash, p_token_kind, e.grant_id, p_client_id, p_subject,
               p_jti, p_initiator, coalesce(p_at, clock_timestamp()), e.expires_at, p_node
        FROM unnest(p_grant_ids, p_expires_at) WITH ORDINALITY AS e (grant_id, expires_at, n)
        ORDER BY e.n
        RETURNING seq
    )
    SELECT max(seq) INTO last_seq FROM rows;
    PERFORM pg_notify('tor_revocations', last_seq::text);
    RETURN last_seq;
END
$$;

-- The functions below are the atomic primitives of the store's Backend (src/store/backend.rs):
-- each decides only what must be decided inside its step (is the token active, is it the
-- caller's client's, which grants are live), and returns raw state or the facts of what it
-- changed; the Rust side applies the store's rules to them (what is active, what a bulk
-- revocation counted, the events).
--
-- Clocks: every function takes p_now, the calling node's time, and judges expiry by it
-- (tokens, grants, tombstones, cut-off retention), as the Rust rules do with Backend::now;
-- NULL means the database's clock. Creation times and cut-offs (created_us, cutoff_us),
-- which order registrations against bulk revocations, always come from the database's
-- clock, one clock for every node.

-- A scope's cut-off (µs), if any.
CREATE OR REPLACE FUNCTION tor_cutoff_of(p_scope text, p_name text) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT cutoff_us FROM cutoffs WHERE scope = p_scope AND name = p_name
$$;

-- ISSUE (Backend::register): registers a token into its grant. Returns 'ok', or 'grant
-- revoked' when the grant is revoked or cut off (nothing is written then). The grant row is
-- locked (FOR UPDATE), as every revocation locks it: a token registered while its grant is
-- being revoked is either refused or revoked with it. An already expired token is
-- accepted, not stored. A grant whose tokens have all expired starts anew: new client,
-- owner and creation time.
CREATE OR REPLACE FUNCTION tor_issue(
    p_hash bytea, p_kind text, p_grant bigint, p_client text, p_owner text,
    p_expires_at timestamptz, p_issued_at timestamptz, p_now timestamptz DEFAULT NULL
) RETURNS text LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    now_ts timestamptz := coalesce(p_now, clock_timestamp());
    g grants%ROWTYPE;
    known boolean;
    created bigint;
BEGIN
    LOOP
        SELECT * INTO g FROM grants WHERE id = p_grant FOR UPDATE;
        known := FOUND;
        IF known AND g.keep_until > now_ts THEN
            IF g.revoked THEN
                RETURN 'grant revoked';
            END IF;
            IF p_expires_at <= now_ts THEN
                RETURN 'ok';
            END IF;
            IF g.expires_at > now_ts THEN
                IF tor_cut(g.client, g.owner, g.created_us) THEN
                    RETURN 'grant revoked';
                END IF;
                IF p_expires_at > g.expires_at THEN
                    UPDATE grants SET expires_at = p_expires_at,
                                      keep_until = greatest(keep_until, p_expires_at)
                    WHERE id = p_grant;
                END IF;
                EXIT;
            END IF;
        END IF;
        -- No grant (or one past its time): it starts now.
        IF p_expires_at <= now_ts THEN
            RETURN 'ok';
        END IF;
        created := tor_us(clock_timestamp());
        IF tor_cut(p_client, p_owner, created) THEN
            RETURN 'grant revoked';
        END IF;
        IF known THEN
            UPDATE grants SET client = p_client, owner = p_owner, expires_at = p_expires_at,
                              keep_until = p_expires_at, revoked = false, created_us = created
            WHERE id = p_grant;
            EXIT;
        END IF;
        INSERT INTO grants (id, client, owner, expires_at, keep_until, revoked, created_us)
        VALUES (p_grant, p_client, p_owner, p_expires_at, p_expires_at, false, created)
        ON CONFLICT (id) DO NOTHING;
        EXIT WHEN FOUND;
        -- Another call created the grant meanwhile: lock it and look again.
    END LOOP;
    INSERT INTO tokens (hash, kind, grant_id, expires_at, issued_at)
    VALUES (p_hash, p_kind, p_grant, p_expires_at, p_issued_at)
    ON CONFLICT (hash) DO UPDATE
        SET kind = EXCLUDED.kind, grant_id = EXCLUDED.grant_id,
            expires_at = EXCLUDED.expires_at, issued_at = EXCLUDED.issued_at;
    RETURN 'ok';
END
$$;

-- LOOKUP (Backend::lookup): what is held of a token and its grant, active or not, raw: one
-- row, or none when the token or its grant is not held (a tombstone holds no token). The
-- caller judges whether it is active (Held::is_active). (PL/pgSQL rather than SQL: its plan
-- is kept for the session, where a SQL function's would be made anew on every call.)
CREATE OR REPLACE FUNCTION tor_lookup(p_hash bytea)
RETURNS TABLE (kind text, grant_id bigint, expires_at timestamptz, issued_at timestamptz,
               client_id text, owner text, revoked boolean, grant_expires_at timestamptz,
               created_us bigint, subject_cutoff_us bigint, client_cutoff_us bigint)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT t.kind, t.grant_id, t.expires_at, t.issued_at, g.client, g.owner, g.revoked,
           g.expires_at, g.created_us,
           tor_cutoff_of('subject', g.owner), tor_cutoff_of('client', g.client)
    FROM tokens t
    JOIN grants g ON g.id = t.grant_id
    WHERE t.hash = p_hash
      AND g.client IS NOT NULL;
END
$$;

-- REVOKE (Backend::revoke_token): a client's revocation of one token, checked and written
-- in one step. p_access_grant / p_refresh_grant: whether revoking an access / a refresh
-- token revokes its whole grant (TokenRule::scope_for). One row (outcome, kind, grant_id,
-- client_id, owner, expires_at):
--   ('not active', NULL...)      unknown, expired, or its grant revoked, expired or cut off
--   ('another client', NULL...)  issued to another client: nothing changed
--   ('grant', kind, facts)       its whole grant is revoked; expires_at is the grant's
--   ('token', kind, facts)       the token alone: deleted; expires_at is the token's
-- p_jti: the token's jti (or NULL), for the outbox row.
CREATE OR REPLACE FUNCTION tor_revoke(
    p_hash bytea, p_client text, p_access_grant boolean, p_refresh_grant boolean,
    p_jti text, p_tombstone interval, p_node text, p_now timestamptz DEFAULT NULL
) RETURNS TABLE (outcome text, kind text, grant_id bigint, client_id text, owner text,
                 expires_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    now_ts timestamptz := coalesce(p_now, clock_timestamp());
    t tokens%ROWTYPE;
    g grants%ROWTYPE;
BEGIN
    SELECT * INTO t FROM tokens WHERE hash = p_hash;
    IF NOT FOUND OR t.expires_at <= now_ts THEN
        RETURN QUERY SELECT 'not active'::text, NULL::text, NULL::bigint, NULL::text,
                            NULL::text, NULL::timestamptz;
        RETURN;
    END IF;
    SELECT * INTO g FROM grants WHERE id = t.grant_id FOR UPDATE;
    IF NOT FOUND OR g.client IS NULL OR g.revoked OR g.expires_at <= now_ts
       OR g.keep_until <= now_ts OR tor_cut(g.client, g.owner, g.created_us) THEN
        RETURN QUERY SELECT 'not active'::text, NULL::text, NULL::bigint, NULL::text,
                            NULL::text, NULL::timestamptz;
        RETURN;
    END IF;
    IF g.client <> p_client THEN
        RETURN QUERY SELECT 'another client'::text, NULL::text, NULL::bigint, NULL::text,
                            NULL::text, NULL::timestamptz;
        RETURN;
    END IF;
    IF (t.kind = 'r' AND p_refresh_grant) OR (t.kind = 'a' AND p_access_grant) THEN
        UPDATE grants
        SET revoked = true,
            keep_until = greatest(keep_until, expires_at, now_ts + p_tombstone)
        WHERE id = g.id;
        PERFORM tor_log('grant', NULL, NULL, ARRAY[g.id], g.client, g.owner, p_jti,
                        'c:' || p_client, ARRAY[g.expires_at], p_node);
        RETURN QUERY SELECT 'grant'::text, t.kind, g.id, g.client, g.owner, g.expires_at;
        RETURN;
    END IF;
    DELETE FROM tokens WHERE hash = p_hash;
    IF NOT FOUND THEN
        -- A concurrent revocation of the same token came first.
        RETURN QUERY SELECT 'not active'::text, NULL::text, NULL::bigint, NULL::text,
                            NULL::text, NULL::timestamptz;
        RETURN;
    END IF;
    PERFORM tor_log('token', p_hash, t.kind, ARRAY[g.id], g.client, g.owner, p_jti,
                    'c:' || p_client, ARRAY[t.expires_at], p_node);
    RETURN QUERY SELECT 'token'::text, t.kind, g.id, g.client, g.owner, t.expires_at;
END
$$;

-- REVOKE_GRANT (Backend::revoke_grants, one grant): revokes a whole grant. A grant never
-- seen is recorded as a revoked tombstone (kept p_tombstone), so that a token registered
-- into it later is refused. One row (grant_id, client_id, owner, expires_at) when the grant
-- was live (then logged, initiator p_initiator); none otherwise.
CREATE OR REPLACE FUNCTION tor_revoke_grant(
    p_grant bigint, p_tombstone interval, p_node text, p_now timestamptz DEFAULT NULL,
    p_initiator text DEFAULT 's'
) RETURNS TABLE (grant_id bigint, client_id text, owner text, expires_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    now_ts timestamptz := coalesce(p_now, clock_timestamp());
    g grants%ROWTYPE;
BEGIN
    LOOP
        SELECT * INTO g FROM grants WHERE id = p_grant FOR UPDATE;
        IF FOUND THEN
            UPDATE grants
            SET revoked = true,
                keep_until = greatest(keep_until, expires_at, now_ts + p_tombstone)
            WHERE id = p_grant;
            IF NOT g.revoked AND g.client IS NOT NULL AND g.expires_at > now_ts
               AND g.keep_until > now_ts AND NOT tor_cut(g.client, g.owner, g.created_us) THEN
                PERFORM tor_log('grant', NULL, NULL, ARRAY[g.id], g.client, g.owner, NULL,
                                p_initiator, ARRAY[g.expires_at], p_node);
                RETURN QUERY SELECT g.id, g.client, g.owner, g.expires_at;
            END IF;
            RETURN;
        END IF;
        INSERT INTO grants (id, client, owner, expires_at, keep_until, revoked, created_us)
        VALUES (p_grant, NULL, NULL, now_ts, now_ts + p_tombstone, true, 0)
        ON CONFLICT (id) DO NOTHING;
        IF FOUND THEN
            RETURN;
        END IF;
        -- Another call created the grant meanwhile: lock it and look again.
    END LOOP;
END
$$;

-- REVOKE_CLIENT_FOR_OWNER (Backend::revoke_grants, a client's grants from an owner):
-- revokes every grant p_client holds from p_owner. One row (grant_id, client_id, owner,
-- expires_at) per grant that was live (not revoked, not expired, not cut off), in grant id
-- order, and one outbox row for each of them. p_initiator: 'c:<client id>', 'o:<owner>',
-- 'a:<admin id>' or 's'.
CREATE OR REPLACE FUNCTION tor_revoke_client_for_owner(
    p_owner text, p_client text, p_initiator text, p_tombstone interval, p_node text,
    p_now timestamptz DEFAULT NULL
) RETURNS TABLE (grant_id bigint, client_id text, owner text, expires_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    now_ts timestamptz := coalesce(p_now, clock_timestamp());
    ids bigint[];
    expiries timestamptz[];
BEGIN
    -- Locks first, in id order (no deadlock between two such calls), then the update.
    PERFORM 1 FROM grants
    WHERE owner = p_owner AND client = p_client AND NOT revoked AND expires_at > now_ts
    ORDER BY id FOR UPDATE;
    WITH revoked AS (
        UPDATE grants
        SET revoked = true,
            keep_until = greatest(keep_until, expires_at, now_ts + p_tombstone)
        WHERE owner = p_owner AND client = p_client AND NOT revoked AND expires_at > now_ts
        RETURNING id, client, owner, expires_at, created_us
    )
    SELECT array_agg(id ORDER BY id), array_agg(expires_at ORDER BY id)
    INTO ids, expiries
    FROM revoked
    WHERE NOT tor_cut(client, owner, created_us);
    IF ids IS NULL THEN
        RETURN;
    END IF;
    PERFORM tor_log('grant', NULL, NULL, ids, p_client, p_owner, NULL, p_initiator, expiries,
                    p_node);
    RETURN QUERY SELECT e.id, p_client, p_owner, e.expires_at
                 FROM unnest(ids, expiries) WITH ORDINALITY AS e (id, expires_at, n)
                 ORDER BY e.n;
END
$$;

-- CUT_OFF (Backend::cut_off): revokes every grant of a subject (p_scope 'subject': the
-- grants p_name gave, to any client) or of a client (p_scope 'client': every grant of
-- p_name, whoever gave it), with one write: a cut-off, now (database clock, never below the
-- previous one), kept as long as the longest-lived grant of the scope (+1 s) and at least
-- p_tombstone. One row (cutoff_us, previous_us, announced): the cut-off written, the one it
-- replaced (-1 if none or past its time), and whether an outbox row was written (in this
-- transaction, when a grant it covers was live until then: not revoked, not expired,
-- created after the previous cut-off, covered by no cut-off of the other scope). What it
-- revoked is counted by the caller over tor_grants (CutOff::counts).
CREATE OR REPLACE FUNCTION tor_cut_off(
    p_scope text, p_name text, p_initiator text, p_tombstone interval, p_node text,
    p_now timestamptz DEFAULT NULL
) RETURNS TABLE (cutoff_us bigint, previous_us bigint, announced boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    now_ts timestamptz := coalesce(p_now, clock_timestamp());
    c cutoffs%ROWTYPE;
    previous bigint;
    cutoff bigint;
    live boolean;
    latest timestamptz;
    other text := CASE p_scope WHEN 'subject' THEN 'client' ELSE 'subject' END;
BEGIN
    IF p_scope NOT IN ('subject', 'client') THEN
        RAISE EXCEPTION 'tor_cut_off: scope must be subject or client, not %', p_scope;
    END IF;
    -- The row exists (a placeholder when new), then is locked: two cut-offs of one scope
    -- are serialised, and the second sees the first's as its previous one.
    INSERT INTO cutoffs (scope, name, cutoff_us, expires_at)
    VALUES (p_scope, p_name, -1, now_ts)
    ON CONFLICT (scope, name) DO NOTHING;
    SELECT * INTO c FROM cutoffs WHERE scope = p_scope AND name = p_name FOR UPDATE;
    previous := CASE WHEN c.expires_at > now_ts THEN c.cutoff_us ELSE -1 END;
    cutoff := greatest(tor_us(clock_timestamp()), previous);
    IF p_scope = 'subject' THEN
        SELECT max(g.expires_at) INTO latest
        FROM grants g WHERE g.owner = p_name AND g.expires_at > now_ts;
        SELECT EXISTS (
            SELECT 1 FROM grants g
            WHERE g.owner = p_name AND g.client IS NOT NULL AND g.expires_at > now_ts
              AND NOT g.revoked AND g.created_us > previous AND g.created_us <= cutoff
              AND NOT coalesce(g.created_us <= tor_cutoff_of(other, g.client), false))
        INTO live;
    ELSE
        SELECT max(g.expires_at) INTO latest
        FROM grants g WHERE g.client = p_name AND g.expires_at > now_ts;
        SELECT EXISTS (
            SELECT 1 FROM grants g
            WHERE g.client = p_name AND g.expires_at > now_ts
              AND NOT g.revoked AND g.created_us > previous AND g.created_us <= cutoff
              AND NOT coalesce(g.created_us <= tor_cutoff_of(other, g.owner), false))
        INTO live;
    END IF;
    UPDATE cutoffs
    SET cutoff_us = cutoff,
        expires_at = greatest(expires_at, now_ts + p_tombstone,
                              coalesce(latest + interval '1 second', now_ts))
    WHERE scope = p_scope AND name = p_name;
    -- The outbox row's time is the cut-off's: it revoked every grant of the scope created
    -- at or before it.
    IF live THEN
        IF p_scope = 'subject' THEN
            PERFORM tor_log('subject', NULL, NULL, ARRAY[NULL::bigint], NULL, p_name, NULL,
                            p_initiator, ARRAY[NULL::timestamptz], p_node,
                            timestamptz 'epoch' + cutoff * interval '1 microsecond');
        ELSE
            PERFORM tor_log('client', NULL, NULL, ARRAY[NULL::bigint], p_name, NULL, NULL,
                            p_initiator, ARRAY[NULL::timestamptz], p_node,
                            timestamptz 'epoch' + cutoff * interval '1 microsecond');
        END IF;
    END IF;
    RETURN QUERY SELECT cutoff, previous, live;
END
$$;

-- GRANTS (Backend::grants): a keyset page of the unexpired grants of a subject (p_scope
-- 'subject') or of a client ('client'), live or not, raw, in grant id order: those with an
-- id above p_after (NULL: from the first), at most p_limit. One row per grant (grant_id,
-- client_id, revoked, expires_at, created_us, subject_cutoff_us, client_cutoff_us); the
-- next page starts after the last grant_id of a full page.
CREATE OR REPLACE FUNCTION tor_grants(
    p_scope text, p_name text, p_after bigint, p_limit integer, p_now timestamptz DEFAULT NULL
) RETURNS TABLE (grant_id bigint, client_id text, revoked boolean, expires_at timestamptz,
                 created_us bigint, subject_cutoff_us bigint, client_cutoff_us bigint)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
    now_ts timestamptz := coalesce(p_now, clock_timestamp());
BEGIN
    IF p_scope = 'subject' THEN
        RETURN QUERY
        SELECT g.id, g.client, g.revoked, g.expires_at, g.created_us,
               tor_cutoff_of('subject', g.owner), tor_cutoff_of('client', g.client)
        FROM grants g
        WHERE g.owner = p_name AND (p_after IS NULL OR g.id > p_after)
          AND g.client IS NOT NULL AND g.expires_at > now_ts
        ORDER BY g.id LIMIT p_limit;
    ELSIF p_scope = 'client' THEN
        RETURN QUERY
        SELECT g.id, g.client, g.revoked, g.expires_at, g.created_us,
               tor_cutoff_of('subject', g.owner), tor_cutoff_of('client', g.client)
        FROM grants g
        WHERE g.client = p_name AND (p_after IS NULL OR g.id > p_after)
          AND g.expires_at > now_ts
        ORDER BY g.id LIMIT p_limit;
    ELSE
        RAISE EXCEPTION 'tor_grants: scope must be subject or client, not %', p_scope;
    END IF;
END
$$;

-- Expiry: deletes at most p_batch expired rows of each of tokens, grants (past keep_until)
-- and cut-offs, skipping rows that a running call holds; returns how many were deleted.
-- Call it again while it returns p_batch or more: each call is a short transaction that
-- locks only the rows it deletes.
CREATE OR REPLACE FUNCTION tor_purge_expired(p_batch integer) RETURNS integer
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    now_ts timestamptz := clock_timestamp();
    n integer;
    total integer := 0;
BEGIN
    DELETE FROM tokens WHERE hash IN (
        SELECT hash FROM tokens WHERE expires_at <= now_ts
        ORDER BY expires_at LIMIT p_batch FOR UPDATE SKIP LOCKED)
      AND expires_at <= now_ts;
    GET DIAGNOSTICS n = ROW_COUNT;
    total := total + n;
    DELETE FROM grants WHERE id IN (
        SELECT id FROM grants WHERE keep_until <= now_ts
        ORDER BY keep_until LIMIT p_batch FOR UPDATE SKIP LOCKED)
      AND keep_until <= now_ts;
    GET DIAGNOSTICS n = ROW_COUNT;
    total := total + n;
    DELETE FROM cutoffs WHERE (scope, name) IN (
        SELECT scope, name FROM cutoffs WHERE expires_at <= now_ts
        ORDER BY expires_at LIMIT p_batch FOR UPDATE SKIP LOCKED)
      AND expires_at <= now_ts;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN total + n;
END
$$;

-- Log retention: deletes at most p_batch outbox rows older than p_keep, oldest first;
-- returns how many. Call it again while it returns p_batch.
CREATE OR REPLACE FUNCTION tor_purge_log(p_keep interval, p_batch integer) RETURNS integer
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    n integer;
BEGIN
    DELETE FROM revocation_log WHERE seq IN (
        SELECT seq FROM revocation_log WHERE at < clock_timestamp() - p_keep
        ORDER BY seq LIMIT p_batch);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- The outbox after p_seq, at most p_limit rows, in order: what a listener reads on each
-- NOTIFY, and after reconnecting.
CREATE OR REPLACE FUNCTION tor_log_since(p_seq bigint, p_limit integer)
RETURNS SETOF revocation_log LANGUAGE sql STABLE AS $$
    SELECT * FROM revocation_log WHERE seq > p_seq ORDER BY seq LIMIT p_limit
$$;
