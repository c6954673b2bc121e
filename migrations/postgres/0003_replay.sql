-- tower-oauth-revoke, PostgreSQL token store: schema version 3, one-time values.
--
-- The `jti` of each client assertion (RFC 7523) and DPoP proof (RFC 9449) may be used once,
-- by whichever node: each is kept here, as the SHA-256 of its scope and itself (never in
-- clear), until the time its token stops being acceptable anyway. A row whose time is past
-- may be taken again, or swept.

DO $$ BEGIN PERFORM pg_advisory_xact_lock(7009, 1); END $$;

INSERT INTO schema_version (version, description) VALUES (3, 'one-time values');

CREATE TABLE replay_cache (
    key         bytea       PRIMARY KEY CHECK (octet_length(key) = 32),
    expires_at  timestamptz NOT NULL
);

CREATE INDEX replay_cache_expiry ON replay_cache (expires_at);
