-- tower-oauth-revoke, PostgreSQL token store: schema version 2, durable event delivery.
--
-- Security Event Tokens are delivered from the outbox (revocation_log), not from a node's
-- memory: each receiver has a cursor here, every outbox row up to its position delivered
-- (push) or acknowledged (poll). A node that dies before a SET was delivered leaves the
-- cursor where it was, and the SET is delivered after it, by the node on restart or by
-- another: at least once, in outbox (commit) order. Each row has a stable event id, the
-- SET's jti on every delivery of it, by which receivers drop a repeat.
--
-- Push: one node at a time holds a cursor's lease (holder, lease_until) and pushes; the
-- others wait for the lease to run out (its holder died) and take it over.
-- Poll: no lease; any node answers, acknowledgements are merged (acked: rows past
-- `position` already acknowledged), and the cursor moves past every leading acknowledged
-- row.
-- See README.md beside this file for the contracts.

DO $$ BEGIN PERFORM pg_advisory_xact_lock(7009, 1); END $$;

INSERT INTO schema_version (version, description) VALUES (2, 'durable event delivery');

-- gen_random_uuid() is built in from PostgreSQL 13. Existing rows get one each.
ALTER TABLE revocation_log ADD COLUMN event_id uuid NOT NULL DEFAULT gen_random_uuid();

CREATE TABLE event_cursors (
    -- 'push <receiver URL>' or 'poll <queue name>'.
    name        text        PRIMARY KEY,
    -- Every outbox row with seq <= position is delivered or acknowledged.
    position    bigint      NOT NULL,
    -- Poll: rows past `position` already acknowledged, in no order.
    acked       bigint[]    NOT NULL DEFAULT '{}',
    -- Push: the node delivering, and until when its lease runs.
    holder      text,
    lease_until timestamptz
);

-- The cursor `p_name`, created at the outbox's end if missing: its position.
CREATE OR REPLACE FUNCTION tor_cursor(p_name text) RETURNS bigint
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    pos bigint;
BEGIN
    INSERT INTO event_cursors (name, position)
    VALUES (p_name, (SELECT coalesce(max(seq), 0) FROM revocation_log))
    ON CONFLICT (name) DO NOTHING;
    SELECT position INTO pos FROM event_cursors WHERE name = p_name;
    RETURN pos;
END
$$;

-- Takes or renews the lease of cursor p_name for p_holder, for p_lease_ms: its position,
-- or NULL while another holder's lease runs.
CREATE OR REPLACE FUNCTION tor_claim(p_name text, p_holder text, p_lease_ms integer)
RETURNS bigint LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    pos bigint;
BEGIN
    PERFORM tor_cursor(p_name);
    UPDATE event_cursors
       SET holder = p_holder,
           lease_until = clock_timestamp() + p_lease_ms * interval '1 millisecond'
     WHERE name = p_name
       AND (holder IS NULL OR holder = p_holder OR lease_until < clock_timestamp())
    RETURNING position INTO pos;
    RETURN pos;
END
$$;

-- Moves cursor p_name to p_position (never back) and renews the lease, if p_holder holds
-- it; false if it does not (its lease ran out and another node took it).
CREATE OR REPLACE FUNCTION tor_advance(
    p_name text, p_holder text, p_position bigint, p_lease_ms integer
) RETURNS boolean LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    UPDATE event_cursors
       SET position = greatest(position, p_position),
           lease_until = clock_timestamp() + p_lease_ms * interval '1 millisecond'
     WHERE name = p_name AND holder = p_holder;
    RETURN FOUND;
END
$$;

-- Gives the lease of cursor p_name up, if p_holder holds it.
CREATE OR REPLACE FUNCTION tor_release(p_name text, p_holder text) RETURNS void
LANGUAGE sql AS $$
    UPDATE event_cursors SET holder = NULL, lease_until = NULL
     WHERE name = p_name AND holder = p_holder
$$;

-- Poll: acknowledges the rows (p_seqs[i], p_ids[i]) of cursor p_name (a pair that names no
-- row past its position is ignored), then moves the cursor past every leading
-- acknowledged row. One statement under the cursor's row lock, so that two nodes
-- acknowledging at once both count.
CREATE OR REPLACE FUNCTION tor_acknowledge(p_name text, p_seqs bigint[], p_ids uuid[])
RETURNS void LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    pos bigint;
    done bigint[];
    first_open bigint;
BEGIN
    PERFORM tor_cursor(p_name);
    SELECT position, acked INTO pos, done FROM event_cursors WHERE name = p_name FOR UPDATE;
    SELECT coalesce(array_agg(DISTINCT l.seq), '{}') || done INTO done
      FROM unnest(p_seqs, p_ids) AS a (seq, id)
      JOIN revocation_log l ON l.seq = a.seq AND l.event_id = a.id
     WHERE l.seq > pos;
    SELECT min(seq) INTO first_open FROM revocation_log
     WHERE seq > pos AND seq <> ALL (done);
    IF first_open IS NULL THEN
        pos := greatest(pos, (SELECT coalesce(max(x), pos) FROM unnest(done) AS x));
    ELSE
        pos := first_open - 1;
    END IF;
    UPDATE event_cursors
       SET position = pos,
           acked = coalesce((SELECT array_agg(DISTINCT x) FROM unnest(done) AS x WHERE x > pos), '{}')
     WHERE name = p_name;
END
$$;

-- Poll: at most p_limit rows of cursor p_name not yet acknowledged, oldest first.
CREATE OR REPLACE FUNCTION tor_unacknowledged(p_name text, p_limit integer)
RETURNS SETOF revocation_log LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    pos bigint;
    done bigint[];
BEGIN
    PERFORM tor_cursor(p_name);
    SELECT position, acked INTO pos, done FROM event_cursors WHERE name = p_name;
    RETURN QUERY SELECT * FROM revocation_log
                  WHERE seq > pos AND seq <> ALL (done) ORDER BY seq LIMIT p_limit;
END
$$;
