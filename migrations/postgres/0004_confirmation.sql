-- tower-oauth-revoke, PostgreSQL token store: schema version 4, sender-constrained tokens.
--
-- A token may be bound to a key (RFC 7800 `cnf`): the SHA-256 thumbprint of a DPoP key
-- (RFC 9449 `cnf.jkt`) or of a client certificate (RFC 8705 `cnf.x5t#S256`), kept in the
-- token's row for its lifetime and purged with it. A bearer token leaves both columns NULL.
--
-- Rolling upgrade: nodes of version 3 keep working against this schema while the others
-- are upgraded. `tor_issue` with their 7 or 8 arguments remains (it registers a bearer
-- token), and `tor_lookup` keeps its name, its argument and every column they select by
-- name; the new columns come last. A statement a version-3 node prepared before this
-- migration is planned again by PostgreSQL on its next execution and finds the new
-- `tor_lookup` by name (check.sh runs such a node's statements across the migration).
-- What version-3 nodes cannot do is keep a binding: a token they register is a bearer
-- token, and they read a bound token as one.

DO $$ BEGIN PERFORM pg_advisory_xact_lock(7009, 1); END $$;

INSERT INTO schema_version (version, description) VALUES (4, 'sender-constrained tokens');

-- Two nullable columns without a default: no table rewrite. The constraint is NOT VALID so
-- that adding it does not scan the table under its lock (every existing row has both
-- columns NULL, which it admits); it holds for every row written from now on.
ALTER TABLE tokens
    -- The `cnf` member: 'jkt' (a DPoP key) or 'x5t#S256' (a client certificate).
    ADD COLUMN cnf_member text,
    -- The thumbprint: 32 bytes of SHA-256.
    ADD COLUMN cnf bytea,
    ADD CONSTRAINT tokens_cnf CHECK (
        (cnf_member IS NULL AND cnf IS NULL)
        OR (cnf_member IS NOT NULL AND cnf IS NOT NULL
            AND cnf_member IN ('jkt', 'x5t#S256') AND octet_length(cnf) = 32)
    ) NOT VALID;

-- ISSUE (Backend::register), with the token's binding (p_cnf_member and p_cnf both NULL for
-- a bearer token). As version 1's tor_issue in every other respect: see 0001_store.sql.
-- No argument has a default, so that a call with 7 or 8 arguments can only mean the
-- version-1 signature below.
CREATE OR REPLACE FUNCTION tor_issue(
    p_hash bytea, p_kind text, p_grant bigint, p_client text, p_owner text,
    p_expires_at timestamptz, p_issued_at timestamptz, p_now timestamptz,
    p_cnf_member text, p_cnf bytea
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
    INSERT INTO tokens (hash, kind, grant_id, expires_at, issued_at, cnf_member, cnf)
    VALUES (p_hash, p_kind, p_grant, p_expires_at, p_issued_at, p_cnf_member, p_cnf)
    ON CONFLICT (hash) DO UPDATE
        SET kind = EXCLUDED.kind, grant_id = EXCLUDED.grant_id,
            expires_at = EXCLUDED.expires_at, issued_at = EXCLUDED.issued_at,
            cnf_member = EXCLUDED.cnf_member, cnf = EXCLUDED.cnf;
    RETURN 'ok';
END
$$;

-- Version 1's signature, for nodes of version 3: a bearer token, through the function
-- above (so that a hash registered again this way loses any binding it had).
CREATE OR REPLACE FUNCTION tor_issue(
    p_hash bytea, p_kind text, p_grant bigint, p_client text, p_owner text,
    p_expires_at timestamptz, p_issued_at timestamptz, p_now timestamptz DEFAULT NULL
) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RETURN tor_issue(p_hash, p_kind, p_grant, p_client, p_owner, p_expires_at, p_issued_at,
                     p_now, NULL::text, NULL::bytea);
END
$$;

-- LOOKUP (Backend::lookup), with the token's binding in the last two columns (both NULL for
-- a bearer token). Its result type changes, which CREATE OR REPLACE cannot do: dropped and
-- made again, in this one transaction, so that no call ever finds it missing.
DROP FUNCTION tor_lookup(bytea);
CREATE FUNCTION tor_lookup(p_hash bytea)
RETURNS TABLE (kind text, grant_id bigint, expires_at timestamptz, issued_at timestamptz,
               client_id text, owner text, revoked boolean, grant_expires_at timestamptz,
               created_us bigint, subject_cutoff_us bigint, client_cutoff_us bigint,
               cnf_member text, cnf bytea)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT t.kind, t.grant_id, t.expires_at, t.issued_at, g.client, g.owner, g.revoked,
           g.expires_at, g.created_us,
           tor_cutoff_of('subject', g.owner), tor_cutoff_of('client', g.client),
           t.cnf_member, t.cnf
    FROM tokens t
    JOIN grants g ON g.id = t.grant_id
    WHERE t.hash = p_hash
      AND g.client IS NOT NULL;
END
$$;
