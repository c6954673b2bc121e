-- Exercises the functions of 0001_store.sql on a scratch database (check.sh creates it,
-- applies the migration, runs this file with ON_ERROR_STOP, and drops it). Every DO block
-- raises an exception on the first mismatch.

\set ON_ERROR_STOP 1
SET client_min_messages = warning;

-- The hash of a token, as the store sees it.
CREATE FUNCTION h(token text) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT sha256(convert_to(token, 'UTF8'))
$$;

CREATE FUNCTION expect(what text, got anyelement, want anyelement) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF got IS DISTINCT FROM want THEN
        RAISE EXCEPTION '%: got %, want %', what, got, want;
    END IF;
END
$$;

-- Issue a token for an hour.
CREATE FUNCTION issue(token text, kind text, grant_id bigint, client text, owner text)
RETURNS text LANGUAGE sql AS $$
    SELECT tor_issue(h(token), kind, grant_id, client, owner,
                     clock_timestamp() + interval '1 hour', date_trunc('second', clock_timestamp()))
$$;

-- The store's rules (src/store/backend.rs), restated over the raw state the functions
-- return, so that the checks below read as what a caller sees.

-- GrantState::is_live.
CREATE FUNCTION live(revoked boolean, expires timestamptz, created bigint, subject_cut bigint,
                     client_cut bigint) RETURNS boolean LANGUAGE sql AS $$
    SELECT NOT revoked AND expires > clock_timestamp()
       AND NOT coalesce(created <= subject_cut, false)
       AND NOT coalesce(created <= client_cut, false)
$$;

-- The record of an active token (Held::is_active over tor_lookup): one row, or none.
CREATE FUNCTION inspect(token bytea)
RETURNS TABLE (kind text, grant_id bigint, client_id text, owner text,
               expires_at timestamptz, issued_at timestamptz) LANGUAGE sql AS $$
    SELECT l.kind, l.grant_id, l.client_id, l.owner, l.expires_at, l.issued_at
    FROM tor_lookup(token) l
    WHERE l.expires_at > clock_timestamp()
      AND live(l.revoked, l.grant_expires_at, l.created_us, l.subject_cutoff_us, l.client_cutoff_us)
$$;

CREATE FUNCTION active(token text) RETURNS boolean LANGUAGE sql AS $$
    SELECT EXISTS (SELECT 1 FROM inspect(h(token)))
$$;

-- tor_revoke_grant as (whether the grant was live, the outbox row it wrote).
CREATE FUNCTION revoke_grant(grant_id bigint, tombstone interval, node text)
RETURNS TABLE (revoked boolean, seq bigint) LANGUAGE plpgsql AS $$
DECLARE n integer;
BEGIN
    SELECT count(*) INTO n FROM tor_revoke_grant(grant_id, tombstone, node);
    IF n = 1 THEN
        RETURN QUERY SELECT true, (SELECT max(l.seq) FROM revocation_log l);
    ELSE
        RETURN QUERY SELECT false, NULL::bigint;
    END IF;
END
$$;

-- How many grants tor_revoke_client_for_owner revoked.
CREATE FUNCTION revoke_client_for_owner(owner text, client text, initiator text,
                                        tombstone interval, node text)
RETURNS integer LANGUAGE sql AS $$
    SELECT count(*)::integer FROM tor_revoke_client_for_owner(owner, client, initiator, tombstone, node)
$$;

-- tor_cut_off, then the count the store takes over tor_grants' pages (CutOff::counts), two
-- grants a page: (revoked, cutoff_us, previous_us, the outbox row written or NULL).
CREATE FUNCTION revoke_bulk(p_scope text, p_name text, p_initiator text, p_tombstone interval,
                            p_node text)
RETURNS TABLE (revoked integer, cutoff_us bigint, previous_us bigint, seq bigint)
LANGUAGE plpgsql AS $$
DECLARE c record; g record; n integer := 0; after bigint; page integer; other bigint;
BEGIN
    SELECT * INTO c FROM tor_cut_off(p_scope, p_name, p_initiator, p_tombstone, p_node);
    LOOP
        page := 0;
        FOR g IN SELECT * FROM tor_grants(p_scope, p_name, after, 2) LOOP
            page := page + 1;
            after := g.grant_id;
            other := CASE p_scope WHEN 'subject' THEN g.client_cutoff_us ELSE g.subject_cutoff_us END;
            IF NOT g.revoked AND g.expires_at > clock_timestamp() AND g.created_us <= c.cutoff_us
               AND g.created_us > c.previous_us
               AND NOT coalesce(g.created_us <= other AND other < c.cutoff_us, false) THEN
                n := n + 1;
            END IF;
        END LOOP;
        EXIT WHEN page < 2;
    END LOOP;
    RETURN QUERY SELECT n, c.cutoff_us, c.previous_us,
        CASE WHEN c.announced THEN (SELECT max(l.seq) FROM revocation_log l) END;
END
$$;

-- The clients holding live grants from an owner, with how many (over tor_grants).
CREATE FUNCTION clients_of_owner(owner text)
RETURNS TABLE (client_id text, grants integer) LANGUAGE sql AS $$
    SELECT g.client_id, count(*)::integer
    FROM tor_grants('subject', owner, NULL, 1000) g
    WHERE live(g.revoked, g.expires_at, g.created_us, g.subject_cutoff_us, g.client_cutoff_us)
    GROUP BY g.client_id
    ORDER BY g.client_id COLLATE "C"
$$;

CREATE FUNCTION log_rows() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM revocation_log
$$;

\echo issue and inspect
DO $$
DECLARE r record;
BEGIN
    PERFORM expect('issue r1', issue('r1', 'r', 1, 'app', 'alice'), 'ok');
    PERFORM expect('issue a1', issue('a1', 'a', 1, 'app', 'alice'), 'ok');
    SELECT * INTO r FROM inspect(h('a1'));
    PERFORM expect('a1 kind', r.kind, 'a');
    PERFORM expect('a1 grant', r.grant_id, 1::bigint);
    PERFORM expect('a1 client', r.client_id, 'app');
    PERFORM expect('a1 owner', r.owner, 'alice');
    PERFORM expect('a1 expiry', r.expires_at > clock_timestamp() + interval '59 minutes', true);
    PERFORM expect('a1 issued', r.issued_at <= clock_timestamp(), true);
    PERFORM expect('unknown token', active('nope'), false);
    -- Without an owner (client_credentials).
    PERFORM expect('issue cc', issue('cc1', 'a', 5, 'svc', NULL), 'ok');
    SELECT * INTO r FROM inspect(h('cc1'));
    PERFORM expect('cc1 owner', r.owner, NULL::text);
    -- An expired token is accepted and not kept.
    PERFORM expect('issue expired',
        tor_issue(h('old'), 'a', 6, 'app', 'alice', clock_timestamp() - interval '1 second',
                  clock_timestamp()), 'ok');
    PERFORM expect('expired not kept', (SELECT count(*) FROM tokens WHERE hash = h('old')), 0::bigint);
    PERFORM expect('no log yet', log_rows(), 0::bigint);
END $$;

\echo an access token revoked alone
DO $$
DECLARE r record; l revocation_log%ROWTYPE;
BEGIN
    PERFORM expect('issue a2', issue('a2', 'a', 1, 'app', 'alice'), 'ok');
    SELECT * INTO r FROM tor_revoke(h('a2'), 'app', false, true, 'jti-2', '1 hour', 'node-1');
    PERFORM expect('a2 outcome', r.outcome, 'token');
    PERFORM expect('a2 kind', r.kind, 'a');
    PERFORM expect('a2 inactive', active('a2'), false);
    PERFORM expect('a1 still active', active('a1'), true);
    PERFORM expect('r1 still active', active('r1'), true);
    SELECT * INTO l FROM revocation_log ORDER BY seq DESC LIMIT 1;
    PERFORM expect('log kind', l.kind, 'token');
    PERFORM expect('log hash', l.token_hash, h('a2'));
    PERFORM expect('log token kind', l.token_kind, 'a');
    PERFORM expect('log grant', l.grant_id, 1::bigint);
    PERFORM expect('log client', l.client_id, 'app');
    PERFORM expect('log subject', l.subject, 'alice');
    PERFORM expect('log jti', l.jti, 'jti-2');
    PERFORM expect('log initiator', l.initiator, 'c:app');
    PERFORM expect('log node', l.node, 'node-1');
    PERFORM expect('log expiry', l.expires_at > clock_timestamp(), true);
    -- Again: nothing to do, nothing logged.
    SELECT * INTO r FROM tor_revoke(h('a2'), 'app', false, true, NULL, '1 hour', 'node-1');
    PERFORM expect('a2 again', r.outcome, 'not active');
    PERFORM expect('a2 again kind', r.kind, NULL::text);
    SELECT * INTO r FROM tor_revoke(h('never'), 'app', false, true, NULL, '1 hour', 'node-1');
    PERFORM expect('unknown', r.outcome, 'not active');
    PERFORM expect('one log row', log_rows(), 1::bigint);
END $$;

\echo another client is refused
DO $$
DECLARE r record;
BEGIN
    SELECT * INTO r FROM tor_revoke(h('a1'), 'evil', false, true, NULL, '1 hour', 'node-1');
    PERFORM expect('other client', r.outcome, 'another client');
    SELECT * INTO r FROM tor_revoke(h('r1'), 'evil', true, true, NULL, '1 hour', 'node-1');
    PERFORM expect('other client, refresh', r.outcome, 'another client');
    PERFORM expect('a1 untouched', active('a1'), true);
    PERFORM expect('r1 untouched', active('r1'), true);
    PERFORM expect('nothing logged', log_rows(), 1::bigint);
END $$;

\echo a refresh token revokes its grant; a revoked grant refuses new tokens
DO $$
DECLARE r record; l revocation_log%ROWTYPE;
BEGIN
    SELECT * INTO r FROM tor_revoke(h('r1'), 'app', false, true, NULL, '1 hour', 'node-2');
    PERFORM expect('r1 outcome', r.outcome, 'grant');
    PERFORM expect('r1 kind', r.kind, 'r');
    PERFORM expect('r1 inactive', active('r1'), false);
    PERFORM expect('a1 revoked with its grant', active('a1'), false);
    SELECT * INTO l FROM revocation_log ORDER BY seq DESC LIMIT 1;
    PERFORM expect('log kind', l.kind, 'grant');
    PERFORM expect('log grant', l.grant_id, 1::bigint);
    PERFORM expect('log hash', l.token_hash, NULL::bytea);
    PERFORM expect('log initiator', l.initiator, 'c:app');
    PERFORM expect('issue into revoked grant', issue('a3', 'a', 1, 'app', 'alice'), 'grant revoked');
    PERFORM expect('a3 not kept', (SELECT count(*) FROM tokens WHERE hash = h('a3')), 0::bigint);
    PERFORM expect('a3 inactive', active('a3'), false);
    SELECT * INTO r FROM tor_revoke(h('a1'), 'app', false, true, NULL, '1 hour', 'node-2');
    PERFORM expect('a1 after grant', r.outcome, 'not active');
    -- An access token with the grant scope revokes its grant too.
    PERFORM expect('issue a4', issue('a4', 'a', 2, 'app', 'alice'), 'ok');
    PERFORM expect('issue r4', issue('r4', 'r', 2, 'app', 'alice'), 'ok');
    SELECT * INTO r FROM tor_revoke(h('a4'), 'app', true, true, NULL, '1 hour', 'node-2');
    PERFORM expect('a4 grant scope', r.outcome, 'grant');
    PERFORM expect('a4 kind', r.kind, 'a');
    PERFORM expect('r4 revoked with it', active('r4'), false);
    PERFORM expect('three log rows', log_rows(), 3::bigint);
END $$;

\echo revoke_grant: a live grant, an unknown grant (tombstone)
DO $$
DECLARE r record; l revocation_log%ROWTYPE;
BEGIN
    PERFORM expect('issue a5', issue('a5', 'a', 3, 'app', 'alice'), 'ok');
    SELECT * INTO r FROM revoke_grant(3, '1 hour', 'node-3');
    PERFORM expect('grant 3 was live', r.revoked, true);
    PERFORM expect('a5 inactive', active('a5'), false);
    SELECT * INTO l FROM revocation_log ORDER BY seq DESC LIMIT 1;
    PERFORM expect('log kind', l.kind, 'grant');
    PERFORM expect('log grant', l.grant_id, 3::bigint);
    PERFORM expect('log initiator', l.initiator, 's');
    SELECT * INTO r FROM revoke_grant(3, '1 hour', 'node-3');
    PERFORM expect('grant 3 again', r.revoked, false);
    PERFORM expect('grant 3 again, no row', r.seq, NULL::bigint);
    SELECT * INTO r FROM revoke_grant(99, '1 hour', 'node-3');
    PERFORM expect('unknown grant', r.revoked, false);
    PERFORM expect('tombstone kept', (SELECT revoked AND client IS NULL FROM grants WHERE id = 99), true);
    PERFORM expect('tombstone refuses', issue('a6', 'a', 99, 'app', 'alice'), 'grant revoked');
    -- Grant ids use all 64 bits.
    PERFORM expect('issue high grant', issue('a7', 'a', -1, 'app', 'alice'), 'ok');
    SELECT * INTO r FROM revoke_grant(-1, '1 hour', 'node-3');
    PERFORM expect('high grant revoked', r.revoked, true);
    PERFORM expect('five log rows', log_rows(), 5::bigint);
END $$;

\echo revoke_client_for_owner
DO $$
DECLARE n integer; before bigint;
BEGIN
    PERFORM expect('issue', issue('o10', 'a', 10, 'app', 'alice'), 'ok');
    PERFORM expect('issue', issue('o10r', 'r', 10, 'app', 'alice'), 'ok');
    PERFORM expect('issue', issue('o11', 'a', 11, 'app', 'alice'), 'ok');
    PERFORM expect('issue', issue('o12', 'r', 12, 'app', 'alice'), 'ok');
    PERFORM expect('issue', issue('o13', 'a', 13, 'mail', 'alice'), 'ok');
    PERFORM expect('issue', issue('o14', 'a', 14, 'app', 'bob'), 'ok');
    before := log_rows();
    n := revoke_client_for_owner('alice', 'app', 'o:alice', '1 hour', 'node-4');
    PERFORM expect('alice''s live app grants', n, 3);
    PERFORM expect('o10', active('o10'), false);
    PERFORM expect('o10r', active('o10r'), false);
    PERFORM expect('o11', active('o11'), false);
    PERFORM expect('o12', active('o12'), false);
    PERFORM expect('mail untouched', active('o13'), true);
    PERFORM expect('bob untouched', active('o14'), true);
    PERFORM expect('one row per grant', log_rows() - before, 3::bigint);
    PERFORM expect('rows in grant order',
        (SELECT array_agg(grant_id ORDER BY seq) FROM revocation_log WHERE seq > (SELECT max(seq) - 3 FROM revocation_log)),
        ARRAY[10, 11, 12]::bigint[]);
    PERFORM expect('rows name owner, client, initiator',
        (SELECT bool_and(subject = 'alice' AND client_id = 'app' AND initiator = 'o:alice' AND kind = 'grant')
         FROM revocation_log WHERE seq > (SELECT max(seq) - 3 FROM revocation_log)), true);
    n := revoke_client_for_owner('alice', 'app', 'o:alice', '1 hour', 'node-4');
    PERFORM expect('again', n, 0);
    n := revoke_client_for_owner('nobody', 'app', 'o:nobody', '1 hour', 'node-4');
    PERFORM expect('unknown owner', n, 0);
    PERFORM expect('nothing more logged', log_rows() - before, 3::bigint);
END $$;

\echo revoke_bulk: the cut-off of a subject
DO $$
DECLARE r record; first_cutoff bigint; before bigint; l revocation_log%ROWTYPE;
BEGIN
    PERFORM expect('issue', issue('s20', 'a', 20, 'app', 'carol'), 'ok');
    PERFORM expect('issue', issue('s20r', 'r', 20, 'app', 'carol'), 'ok');
    PERFORM expect('issue', issue('s21', 'a', 21, 'mail', 'carol'), 'ok');
    PERFORM expect('issue', issue('s22', 'a', 22, 'app', 'carol'), 'ok');
    PERFORM revoke_grant(22, '1 hour', 'node-5');
    before := log_rows();
    SELECT * INTO r FROM revoke_bulk('subject', 'carol', 'a:admin', '1 hour', 'node-5');
    PERFORM expect('carol''s live grants', r.revoked, 2);
    PERFORM expect('no previous cut-off', r.previous_us, -1::bigint);
    first_cutoff := r.cutoff_us;
    PERFORM expect('s20', active('s20'), false);
    PERFORM expect('s20r', active('s20r'), false);
    PERFORM expect('s21', active('s21'), false);
    PERFORM expect('one row', log_rows() - before, 1::bigint);
    SELECT * INTO l FROM revocation_log ORDER BY seq DESC LIMIT 1;
    PERFORM expect('log kind', l.kind, 'subject');
    PERFORM expect('log subject', l.subject, 'carol');
    PERFORM expect('log client', l.client_id, NULL::text);
    PERFORM expect('log initiator', l.initiator, 'a:admin');
    PERFORM expect('log expiry', l.expires_at, NULL::timestamptz);
    PERFORM expect('log time is the cut-off', tor_us(l.at), r.cutoff_us);
    -- A covered grant refuses new tokens; a new grant after the cut-off is live.
    PERFORM expect('issue into covered grant', issue('s20b', 'a', 20, 'app', 'carol'), 'grant revoked');
    PERFORM expect('issue new grant', issue('s23', 'a', 23, 'app', 'carol'), 'ok');
    PERFORM expect('s23 active', active('s23'), true);
    -- Revoking a covered grant or token changes nothing live.
    SELECT * INTO r FROM tor_revoke(h('s20r'), 'app', false, true, NULL, '1 hour', 'node-5');
    PERFORM expect('covered refresh', r.outcome, 'not active');
    PERFORM expect('covered grant', (SELECT revoked FROM revoke_grant(21, '1 hour', 'node-5')), false);
    -- Again: the new grant only.
    SELECT * INTO r FROM revoke_bulk('subject', 'carol', 'a:admin', '1 hour', 'node-5');
    PERFORM expect('second cut-off', r.revoked, 1);
    PERFORM expect('previous', r.previous_us, first_cutoff);
    PERFORM expect('later', r.cutoff_us >= first_cutoff, true);
    PERFORM expect('s23 inactive', active('s23'), false);
    SELECT * INTO r FROM revoke_bulk('subject', 'carol', 'a:admin', '1 hour', 'node-5');
    PERFORM expect('third: nothing live', r.revoked, 0);
    PERFORM expect('third: no row', r.seq, NULL::bigint);
    PERFORM expect('two rows in all', log_rows() - before, 2::bigint);
    SELECT * INTO r FROM revoke_bulk('subject', 'nobody', 'a:admin', '1 hour', 'node-5');
    PERFORM expect('unknown subject', r.revoked, 0);
    PERFORM expect('cut-off kept an hour at least',
        (SELECT expires_at >= clock_timestamp() + interval '59 minutes' FROM cutoffs WHERE scope = 'subject' AND name = 'carol'), true);
END $$;

\echo revoke_bulk: the cut-off of a client
DO $$
DECLARE r record; before bigint; l revocation_log%ROWTYPE;
BEGIN
    -- mail: alice's grant 13 (live), carol's 21 (covered by carol's cut-off), dave's 30,
    -- and its own client_credentials grant 31.
    PERFORM expect('issue', issue('c30', 'a', 30, 'mail', 'dave'), 'ok');
    PERFORM expect('issue', issue('c31', 'a', 31, 'mail', NULL), 'ok');
    PERFORM expect('issue', issue('c32', 'a', 32, 'chat', 'dave'), 'ok');
    before := log_rows();
    SELECT * INTO r FROM revoke_bulk('client', 'mail', 'a:admin', '1 hour', 'node-6');
    PERFORM expect('mail''s live grants', r.revoked, 3);
    PERFORM expect('o13', active('o13'), false);
    PERFORM expect('c30', active('c30'), false);
    PERFORM expect('c31', active('c31'), false);
    PERFORM expect('chat untouched', active('c32'), true);
    SELECT * INTO l FROM revocation_log ORDER BY seq DESC LIMIT 1;
    PERFORM expect('log kind', l.kind, 'client');
    PERFORM expect('log client', l.client_id, 'mail');
    PERFORM expect('log subject', l.subject, NULL::text);
    PERFORM expect('log time is the cut-off', tor_us(l.at), r.cutoff_us);
    PERFORM expect('one row', log_rows() - before, 1::bigint);
    -- Now a subject's cut-off over dave does not count mail's grant again.
    SELECT * INTO r FROM revoke_bulk('subject', 'dave', 'o:dave', '1 hour', 'node-6');
    PERFORM expect('dave''s live grants (chat only)', r.revoked, 1);
    PERFORM expect('c32', active('c32'), false);
    BEGIN
        PERFORM revoke_bulk('owner', 'dave', 's', '1 hour', 'node-6');
        RAISE EXCEPTION 'scope owner accepted';
    EXCEPTION WHEN raise_exception THEN
        IF SQLERRM NOT LIKE 'tor_cut_off: scope%' THEN RAISE; END IF;
    END;
END $$;

\echo clients_of_owner
DO $$
DECLARE got text;
BEGIN
    PERFORM expect('issue', issue('e1', 'a', 40, 'zeta', 'erin'), 'ok');
    PERFORM expect('issue', issue('e2', 'a', 41, 'app', 'erin'), 'ok');
    PERFORM expect('issue', issue('e3', 'r', 42, 'app', 'erin'), 'ok');
    PERFORM expect('issue', issue('e3b', 'a', 42, 'app', 'erin'), 'ok');
    PERFORM expect('issue', issue('e4', 'a', 43, 'Beta', 'erin'), 'ok');
    PERFORM expect('issue', issue('e5', 'a', 44, 'mail', 'erin'), 'ok'); -- after mail's cut-off
    PERFORM expect('issue', issue('e6', 'a', 45, 'gone', 'erin'), 'ok');
    PERFORM revoke_grant(45, '1 hour', 'node-7');
    SELECT string_agg(client_id || '=' || grants, ' ') INTO got FROM clients_of_owner('erin');
    PERFORM expect('erin''s clients', got, 'Beta=1 app=2 mail=1 zeta=1');
    PERFORM expect('nobody''s clients', (SELECT count(*) FROM clients_of_owner('nobody')), 0::bigint);
    PERFORM expect('alice''s clients (all revoked)', (SELECT count(*) FROM clients_of_owner('alice')), 0::bigint);
END $$;

\echo a grant whose tokens all expired starts anew; expiry purge
DO $$
DECLARE r record; n integer;
BEGIN
    PERFORM expect('issue short',
        tor_issue(h('x1'), 'a', 50, 'app', 'fay', clock_timestamp() + interval '200 milliseconds', clock_timestamp()), 'ok');
    PERFORM expect('x1 active', active('x1'), true);
    PERFORM pg_sleep(0.3);
    PERFORM expect('x1 expired', active('x1'), false);
    SELECT * INTO r FROM tor_revoke(h('x1'), 'app', false, true, NULL, '1 hour', 'node-8');
    PERFORM expect('expired revoke', r.outcome, 'not active');
    PERFORM expect('revoke_grant of an expired grant', (SELECT revoked FROM revoke_grant(50, '200 milliseconds', 'node-8')), false);
    PERFORM expect('tombstone refuses', issue('x2', 'a', 50, 'app', 'fay'), 'grant revoked');
    -- Expired grant not revoked: a new client may take the id.
    PERFORM expect('issue short',
        tor_issue(h('y1'), 'a', 51, 'app', 'fay', clock_timestamp() + interval '200 milliseconds', clock_timestamp()), 'ok');
    PERFORM pg_sleep(0.3);
    PERFORM expect('restart', issue('y2', 'a', 51, 'other', 'gus'), 'ok');
    PERFORM expect('restarted client', (SELECT client_id FROM inspect(h('y2'))), 'other');
    PERFORM expect('restarted owner', (SELECT owner FROM inspect(h('y2'))), 'gus');
    -- Purge in batches: x1 and y1 tokens, grant 50 (tombstone past its time).
    PERFORM expect('expired tokens', (SELECT count(*) FROM tokens WHERE expires_at <= clock_timestamp()), 2::bigint);
    n := tor_purge_expired(1);
    PERFORM expect('first batch', n, 2); -- one token, one grant
    n := tor_purge_expired(100);
    PERFORM expect('second batch', n, 1);
    n := tor_purge_expired(100);
    PERFORM expect('nothing left', n, 0);
    PERFORM expect('x1 gone', (SELECT count(*) FROM tokens WHERE hash IN (h('x1'), h('y1'))), 0::bigint);
    PERFORM expect('grant 50 gone', (SELECT count(*) FROM grants WHERE id = 50), 0::bigint);
    PERFORM expect('y2 kept', active('y2'), true);
    PERFORM expect('grant 50 free again', issue('x3', 'a', 50, 'app', 'fay'), 'ok');
END $$;

\echo the log: seq order, kinds, retention
DO $$
DECLARE kinds text;
BEGIN
    SELECT string_agg(kind, ',' ORDER BY seq) INTO kinds FROM revocation_log;
    PERFORM expect('kinds in order', kinds,
        'token,grant,grant,grant,grant,grant,grant,grant,grant,subject,subject,client,subject,grant');
    PERFORM expect('seq strictly increasing with time',
        (SELECT bool_and(ok) FROM (
            SELECT seq > lag(seq) OVER w AND at >= lag(at) OVER w AS ok
            FROM revocation_log WINDOW w AS (ORDER BY seq)) s WHERE ok IS NOT NULL), true);
    PERFORM expect('log_since', (SELECT count(*) FROM tor_log_since(3, 100)), 11::bigint);
    PERFORM expect('log_since limit', (SELECT array_agg(seq) FROM tor_log_since(3, 2)),
        (SELECT array_agg(seq) FROM (SELECT seq FROM revocation_log ORDER BY seq OFFSET 3 LIMIT 2) s));
    PERFORM expect('retention keeps recent rows', tor_purge_log('1 hour', 100), 0);
    PERFORM expect('retention purges old rows, by batches', tor_purge_log('0 seconds', 10), 10);
    PERFORM expect('the rest', tor_purge_log('0 seconds', 10), 4);
END $$;

\echo the primitives' raw results: lookup, facts, cut-off, grant pages, the caller's clock
DO $$
DECLARE r record; n integer; ids bigint[];
BEGIN
    PERFORM expect('issue', issue('p1', 'r', 60, 'app', 'pat'), 'ok');
    PERFORM expect('issue', issue('p1a', 'a', 60, 'app', 'pat'), 'ok');
    PERFORM expect('issue', issue('p2', 'a', 61, 'app', 'pat'), 'ok');
    PERFORM expect('issue', issue('p3', 'a', 62, 'mail', 'pat'), 'ok');
    -- Raw state: a revoked grant's token is still looked up, marked revoked.
    SELECT * INTO r FROM tor_lookup(h('p1a'));
    PERFORM expect('lookup kind', r.kind, 'a');
    PERFORM expect('lookup grant', r.grant_id, 60::bigint);
    PERFORM expect('lookup client', r.client_id, 'app');
    PERFORM expect('lookup owner', r.owner, 'pat');
    PERFORM expect('lookup not revoked', r.revoked, false);
    PERFORM expect('lookup no cut-offs', r.subject_cutoff_us IS NULL AND r.client_cutoff_us IS NULL, true);
    PERFORM expect('unknown lookup', (SELECT count(*) FROM tor_lookup(h('nope'))), 0::bigint);
    -- A refresh token with the refresh scope 'token' (never asked by the store) goes alone.
    SELECT * INTO r FROM tor_revoke(h('p1'), 'app', false, false, NULL, '1 hour', 'node-9');
    PERFORM expect('refresh alone', r.outcome, 'token');
    PERFORM expect('p1a still active', active('p1a'), true);
    SELECT * INTO r FROM tor_revoke(h('p1a'), 'app', true, true, 'j', '1 hour', 'node-9');
    PERFORM expect('facts outcome', r.outcome, 'grant');
    PERFORM expect('facts grant', r.grant_id, 60::bigint);
    PERFORM expect('facts client', r.client_id, 'app');
    PERFORM expect('facts owner', r.owner, 'pat');
    PERFORM expect('facts expiry', r.expires_at > clock_timestamp(), true);
    PERFORM expect('revoked raw', (SELECT revoked FROM tor_lookup(h('p1a'))), true);
    -- The caller's clock: two hours on, the token has expired.
    SELECT * INTO r FROM tor_revoke(h('p2'), 'app', false, true, NULL, '1 hour', 'node-9',
                                    clock_timestamp() + interval '2 hours');
    PERFORM expect('expired by the caller''s clock', r.outcome, 'not active');
    PERFORM expect('p2 untouched', active('p2'), true);
    SELECT * INTO r FROM tor_revoke_grant(61, '1 hour', 'node-9', NULL, 'a:admin');
    PERFORM expect('grant facts', r.grant_id, 61::bigint);
    PERFORM expect('grant facts client', r.client_id, 'app');
    PERFORM expect('grant initiator', (SELECT initiator FROM revocation_log ORDER BY seq DESC LIMIT 1), 'a:admin');
    PERFORM expect('again: no row', (SELECT count(*) FROM tor_revoke_grant(61, '1 hour', 'node-9')), 0::bigint);
    PERFORM expect('issue', issue('p4', 'a', 63, 'mail', 'pat'), 'ok');
    SELECT array_agg(grant_id ORDER BY grant_id) INTO ids
    FROM tor_revoke_client_for_owner('pat', 'mail', 's', '1 hour', 'node-9');
    PERFORM expect('client for owner facts', ids, ARRAY[62, 63]::bigint[]);
    -- Grant pages: keyset by id, revoked grants included, expired ones not.
    PERFORM expect('page 1', (SELECT array_agg(grant_id) FROM tor_grants('subject', 'pat', NULL, 2)), ARRAY[60, 61]::bigint[]);
    PERFORM expect('page 2', (SELECT array_agg(grant_id) FROM tor_grants('subject', 'pat', 61, 2)), ARRAY[62, 63]::bigint[]);
    PERFORM expect('page 3', (SELECT count(*) FROM tor_grants('subject', 'pat', 63, 2)), 0::bigint);
    PERFORM expect('none unexpired two hours on',
        (SELECT count(*) FROM tor_grants('subject', 'pat', NULL, 10, clock_timestamp() + interval '2 hours')), 0::bigint);
    PERFORM expect('client page', (SELECT array_agg(grant_id) FROM tor_grants('client', 'mail', 61, 10)), ARRAY[62, 63]::bigint[]);
    -- A cut-off over nothing live writes no outbox row, and is the previous of the next.
    n := log_rows();
    SELECT * INTO r FROM tor_cut_off('subject', 'pat', 's', '1 hour', 'node-9');
    PERFORM expect('nothing live: not announced', r.announced, false);
    PERFORM expect('no previous', r.previous_us, -1::bigint);
    PERFORM expect('no row', log_rows(), n::bigint);
    PERFORM expect('cut-off in lookups', (SELECT subject_cutoff_us FROM tor_lookup(h('p4'))), r.cutoff_us);
    PERFORM expect('issue', issue('p5', 'a', 64, 'app', 'pat'), 'ok');
    SELECT * INTO r FROM tor_cut_off('subject', 'pat', 's', '1 hour', 'node-9');
    PERFORM expect('live: announced', r.announced, true);
    PERFORM expect('one row', log_rows(), n::bigint + 1);
    PERFORM expect('p5 covered', active('p5'), false);
END $$;

\echo all checks passed
