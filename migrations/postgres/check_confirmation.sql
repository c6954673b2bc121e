-- Exercises the bindings of 0004_confirmation.sql (after check.sql, on the same scratch
-- database, whose helpers h() and expect() it uses). Every DO block raises an exception on
-- the first mismatch.

\set ON_ERROR_STOP 1
SET client_min_messages = warning;

DO $$
DECLARE
    r record;
    jkt bytea := sha256('a DPoP key'::bytea);
    x5t bytea := sha256('a certificate'::bytea);
    hour timestamptz := clock_timestamp() + interval '1 hour';
BEGIN
    -- Each kind of binding is kept and looked up with its token.
    PERFORM expect('issue jkt', tor_issue(h('c1'), 'a', 80, 'app', 'cat', hour,
        clock_timestamp(), NULL, 'jkt', jkt), 'ok');
    PERFORM expect('issue x5t', tor_issue(h('c2'), 'r', 80, 'app', 'cat', hour,
        clock_timestamp(), NULL, 'x5t#S256', x5t), 'ok');
    SELECT * INTO r FROM tor_lookup(h('c1'));
    PERFORM expect('jkt member', r.cnf_member, 'jkt');
    PERFORM expect('jkt thumbprint', r.cnf, jkt);
    PERFORM expect('the rest as before', (r.kind, r.grant_id, r.client_id, r.owner)::text,
        ('a', 80, 'app', 'cat')::text);
    SELECT * INTO r FROM tor_lookup(h('c2'));
    PERFORM expect('x5t member', r.cnf_member, 'x5t#S256');
    PERFORM expect('x5t thumbprint', r.cnf, x5t);

    -- Version 1's signatures (7 and 8 arguments) register bearer tokens.
    PERFORM expect('issue, 7 arguments', tor_issue(h('c3'), 'a', 80, 'app', 'cat', hour,
        clock_timestamp()), 'ok');
    PERFORM expect('issue, 8 arguments', tor_issue(h('c4'), 'a', 80, 'app', 'cat', hour,
        clock_timestamp(), NULL), 'ok');
    SELECT * INTO r FROM tor_lookup(h('c3'));
    PERFORM expect('bearer: no member', r.cnf_member, NULL::text);
    PERFORM expect('bearer: no thumbprint', r.cnf, NULL::bytea);
    PERFORM expect('bearer, 8 arguments', (SELECT cnf FROM tor_lookup(h('c4'))), NULL::bytea);

    -- A hash registered again without a binding keeps none.
    PERFORM tor_issue(h('c1'), 'a', 80, 'app', 'cat', hour, clock_timestamp());
    PERFORM expect('binding replaced', (SELECT cnf_member FROM tor_lookup(h('c1'))), NULL::text);

    -- Revoking and purging treat a bound token as any.
    SELECT * INTO r FROM tor_revoke(h('c2'), 'app', false, true, NULL, '1 hour', 'node-9');
    PERFORM expect('bound refresh token revokes its grant', r.outcome, 'grant');
    -- Registered by a caller whose clock is an hour behind: stored, and expired now.
    PERFORM tor_issue(h('c5'), 'a', 81, 'app', 'cat', clock_timestamp() - interval '1 minute',
        clock_timestamp() - interval '1 hour', clock_timestamp() - interval '1 hour', 'jkt', jkt);
    PERFORM expect('stored', (SELECT cnf FROM tokens WHERE hash = h('c5')), jkt);
    PERFORM tor_purge_expired(1000);
    PERFORM expect('purged with its binding', (SELECT count(*) FROM tokens WHERE hash = h('c5')), 0::bigint);
END $$;

-- The constraint refuses half a binding, another member, and a thumbprint of another size.
DO $$
DECLARE
    hour timestamptz := clock_timestamp() + interval '1 hour';
    bad record;
BEGIN
    FOR bad IN SELECT * FROM (VALUES
        ('jkt', NULL::bytea), (NULL, sha256('k'::bytea)), ('jwk', sha256('k'::bytea)),
        ('jkt', '\x00'::bytea), ('x5t#S256', sha256('k'::bytea) || '\x00'::bytea)
    ) AS v (member, thumbprint) LOOP
        BEGIN
            PERFORM tor_issue(h('c6'), 'a', 82, 'app', 'cat', hour, clock_timestamp(), NULL,
                              bad.member, bad.thumbprint);
            RAISE EXCEPTION 'a binding (%, %) was accepted', bad.member, bad.thumbprint;
        EXCEPTION WHEN check_violation THEN
            NULL;
        END;
    END LOOP;
END $$;

\echo confirmation checks passed
