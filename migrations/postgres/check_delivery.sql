-- Exercises the delivery cursors of 0002_delivery.sql (after check.sql, on the same scratch
-- database). Every DO block raises an exception on the first mismatch.

\set ON_ERROR_STOP 1
SET client_min_messages = warning;

CREATE FUNCTION ids(p_seqs bigint[]) RETURNS uuid[] LANGUAGE sql AS $$
    SELECT array_agg(l.event_id ORDER BY s.n)
      FROM unnest(p_seqs) WITH ORDINALITY AS s (seq, n) JOIN revocation_log l ON l.seq = s.seq
$$;

CREATE FUNCTION open_seqs(p_name text) RETURNS bigint[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(seq ORDER BY seq), '{}') FROM tor_unacknowledged(p_name, 100)
$$;

DO $$
DECLARE
    base bigint;
    s bigint[];
BEGIN
    -- A cursor starts at the log's end: what was logged before is not its.
    base := tor_cursor('poll check');
    PERFORM expect('a new cursor is at the end', base,
                   (SELECT coalesce(max(seq), 0) FROM revocation_log));
    PERFORM expect('a new cursor has nothing open', open_seqs('poll check'), '{}'::bigint[]);
    PERFORM tor_log('grant', NULL, NULL, ARRAY[9001, 9002, 9003, 9004]::bigint[], 'app', 'ann',
                    NULL, 's', ARRAY[NULL, NULL, NULL, NULL]::timestamptz[], 'n');
    s := open_seqs('poll check');
    PERFORM expect('four open', cardinality(s), 4);
    PERFORM expect('the ids are stable', ids(s), ids(s));

    -- Acknowledged out of order: the cursor moves only past the leading ones.
    PERFORM tor_acknowledge('poll check', ARRAY[s[2], s[3]], ids(ARRAY[s[2], s[3]]));
    PERFORM expect('two acknowledged, two open', open_seqs('poll check'), ARRAY[s[1], s[4]]);
    PERFORM expect('not moved past the first',
                   (SELECT position FROM event_cursors WHERE name = 'poll check'), base);
    -- A wrong id acknowledges nothing.
    PERFORM tor_acknowledge('poll check', ARRAY[s[1]], ARRAY[gen_random_uuid()]);
    PERFORM expect('a forged id acknowledges nothing', open_seqs('poll check'), ARRAY[s[1], s[4]]);
    PERFORM tor_acknowledge('poll check', ARRAY[s[1]], ids(ARRAY[s[1]]));
    PERFORM expect('moved past three', (SELECT position FROM event_cursors WHERE name = 'poll check'), s[3]);
    PERFORM expect('and forgot their acknowledgements',
                   (SELECT acked FROM event_cursors WHERE name = 'poll check'), '{}'::bigint[]);
    PERFORM tor_acknowledge('poll check', ARRAY[s[4], s[4]], ids(ARRAY[s[4], s[4]]));
    PERFORM expect('everything acknowledged', open_seqs('poll check'), '{}'::bigint[]);
    PERFORM expect('at the end', (SELECT position FROM event_cursors WHERE name = 'poll check'), s[4]);

    -- Push leases: one holder at a time; the position moves only for the holder, never back.
    PERFORM expect('a takes the lease', tor_claim('push check', 'a', 60000), s[4]);
    PERFORM expect('b waits', tor_claim('push check', 'b', 60000), NULL::bigint);
    PERFORM expect('b cannot move it', tor_advance('push check', 'b', s[4] + 10, 60000), false);
    PERFORM expect('a renews', tor_claim('push check', 'a', 60000), s[4]);
    PERFORM expect('a moves it', tor_advance('push check', 'a', s[4] + 10, 60000), true);
    PERFORM expect('never back', tor_advance('push check', 'a', 1, 60000), true);
    PERFORM expect('where a left it', tor_claim('push check', 'a', 60000), s[4] + 10);
    PERFORM tor_release('push check', 'a');
    PERFORM expect('released: b takes it', tor_claim('push check', 'b', 1), s[4] + 10);
    PERFORM pg_sleep(0.01);
    PERFORM expect('a lease that ran out is taken over', tor_claim('push check', 'a', 60000), s[4] + 10);
END
$$;
\echo delivery cursors: all checks passed
