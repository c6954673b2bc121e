#!/usr/bin/env bash
# Applies every migration (NNNN_*.sql, in order) to a scratch database tor_check_<random> on the PostgreSQL at
# PGHOST:PGPORT, else at DATABASE_URL's server (default 127.0.0.1:5432, user postgres, trust
# auth; see .ci/postgres.sh); checks that a second application fails without effect, runs
# check.sql, check_delivery.sql and check_confirmation.sql (asserts on every function), a
# version-3 node's statements across the migration to version 4, and races of concurrent
# calls; drops the database.
# With --bench N, also times N revocations through tor_revoke.
set -euo pipefail
cd "$(dirname "$0")"

# The server of DATABASE_URL (postgres://user@host:port/db), unless PGHOST is set.
if [[ -z "${PGHOST:-}" && -n "${DATABASE_URL:-}" ]]; then
  rest="${DATABASE_URL#*://}"
  if [[ "$rest" == *@* ]]; then
    PGUSER="${PGUSER:-${rest%%@*}}"
    PGUSER="${PGUSER%%:*}"
    rest="${rest#*@}"
  fi
  rest="${rest%%/*}"
  PGHOST="${rest%%:*}"
  if [[ "$rest" == *:* ]]; then PGPORT="${PGPORT:-${rest##*:}}"; fi
fi
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
db="tor_check_$(date +%s)_$RANDOM"
bench=0
if [[ "${1:-}" == --bench ]]; then bench="${2:-10000}"; fi

psql_db() { psql -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }

createdb "$db"
trap 'dropdb --if-exists "$db"' EXIT
echo "check: database $db on $PGHOST:$PGPORT"

files=( [0-9][0-9][0-9][0-9]_*.sql )
for file in "${files[@]}"; do
  psql_db -1 -f "$file"
  if psql_db -1 -f "$file" 2>/dev/null; then
    echo "check: applying $file twice succeeded" >&2
    exit 1
  fi
done
[[ "$(psql_db -At -c 'select count(*) from schema_version')" == "${#files[@]}" ]]
echo "check: ${#files[@]} migrations applied once each, in order; a second application fails and changes nothing"

psql_db -f check.sql
psql_db -f check_delivery.sql
psql_db -f check_confirmation.sql

# A rolling upgrade to version 4, on a second scratch database migrated to version 3 only:
# a node of version 3 prepares its statements (the store's own, as version 3 sends them)
# before the migration and runs them after it, beside a node of version 4 that registers a
# bound token; a node of version 3 that starts after the migration prepares them anew.
up="${db}_upgrade"
createdb "$up"
trap 'dropdb --if-exists "$db"; dropdb --if-exists "$up"' EXIT
for file in 000[1-3]_*.sql; do
  psql -X -q -v ON_ERROR_STOP=1 -d "$up" -1 -f "$file"
done
v3_issue='SELECT tor_issue($1, $2, $3, $4, $5, $6, $7, $8)'
v3_lookup='SELECT kind, grant_id, expires_at, issued_at, client_id, owner, revoked, grant_expires_at, created_us, subject_cutoff_us, client_cutoff_us FROM tor_lookup($1)'
hour="'app', 'ann', clock_timestamp() + interval '1 hour', clock_timestamp()"
# Kind, grant, client, owner, revoked of each looked-up row; the other lines as they are.
rows() { awk -F'|' 'NF > 1 { print $1 "|" $2 "|" $5 "|" $6 "|" $7; next } { print }'; }
got="$(psql -X -q -At -v ON_ERROR_STOP=1 -d "$up" <<SQL | rows
PREPARE issue3 AS $v3_issue;
PREPARE lookup3 AS $v3_lookup;
EXECUTE issue3(sha256('before'), 'a', 5, $hour, NULL);
EXECUTE lookup3(sha256('before'));
\! psql -X -q -v ON_ERROR_STOP=1 -d "$up" -1 -f 0004_confirmation.sql
EXECUTE issue3(sha256('after'), 'a', 6, $hour, NULL);
EXECUTE lookup3(sha256('after'));
EXECUTE lookup3(sha256('before'));
\! psql -X -q -At -v ON_ERROR_STOP=1 -d "$up" -c "SELECT tor_issue(sha256('bound'), 'a', 7, $hour, NULL, 'jkt', sha256('key'))"
EXECUTE lookup3(sha256('bound'));
SQL
)"
got+=$'\n'"$(psql -X -q -At -v ON_ERROR_STOP=1 -d "$up" <<SQL | rows
PREPARE lookup3 AS $v3_lookup;
EXECUTE lookup3(sha256('bound'));
SELECT cnf_member || ' ' || (cnf = sha256('key')) FROM tor_lookup(sha256('bound'));
SELECT count(*) FROM tor_lookup(sha256('before')) WHERE cnf_member IS NULL AND cnf IS NULL;
SQL
)"
want='ok
a|5|app|ann|f
ok
a|6|app|ann|f
a|5|app|ann|f
ok
a|7|app|ann|f
a|7|app|ann|f
jkt true
1'
if [[ "$got" != "$want" ]]; then
  printf 'check: a version-3 node across the migration to version 4:\n%s\nwant:\n%s\n' "$got" "$want" >&2
  exit 1
fi
echo "check: a version-3 node's statements, prepared before the migration to version 4 and after it, run beside a version-4 node's bound token"

# A refresh racing a revocation: the revocation holds the grant's row (as a slow commit
# would) while a new token of the grant is registered; the registration waits for it and
# is refused.
psql_db -At -c "select tor_issue(sha256('race-r'::bytea), 'r', 900, 'app', 'ann',
  clock_timestamp() + interval '1 hour', clock_timestamp())" >/dev/null
psql_db -At <<'SQL' >/dev/null &
begin;
select * from tor_revoke(sha256('race-r'::bytea), 'app', false, true, null, '1 hour', 'n');
select pg_sleep(1);
commit;
SQL
revoker=$!
sleep 0.3
start=$(date +%s%N)
got="$(psql_db -At -c "select tor_issue(sha256('race-a'::bytea), 'a', 900, 'app', 'ann',
  clock_timestamp() + interval '1 hour', clock_timestamp())")"
waited=$(( ($(date +%s%N) - start) / 1000000 ))
wait "$revoker"
if [[ "$got" != "grant revoked" || "$waited" -lt 400 ]]; then
  echo "check: a token registered during its grant's revocation: '$got' after $waited ms" >&2
  exit 1
fi
echo "check: a token registered during its grant's revocation waited $waited ms and was refused"

# The other order: the registration holds the grant; the revocation waits, then revokes the
# new token with its grant.
psql_db -At -c "select tor_issue(sha256('race2-r'::bytea), 'r', 901, 'app', 'ann',
  clock_timestamp() + interval '1 hour', clock_timestamp())" >/dev/null
psql_db -At <<'SQL' >/dev/null &
begin;
select tor_issue(sha256('race2-a'::bytea), 'a', 901, 'app', 'ann',
  clock_timestamp() + interval '1 hour', clock_timestamp());
select pg_sleep(1);
commit;
SQL
issuer=$!
sleep 0.3
got="$(psql_db -At -c "select outcome from tor_revoke(sha256('race2-r'::bytea), 'app', false, true, null, '1 hour', 'n')")"
wait "$issuer"
active="$(psql_db -At -c "select count(*) from tor_lookup(sha256('race2-a'::bytea)) where not revoked")"
if [[ "$got" != grant || "$active" != 0 ]]; then
  echo "check: a revocation during a registration: '$got', new token active: $active" >&2
  exit 1
fi
echo "check: a revocation during a registration waited, then revoked the new token with its grant"

# Runs SQL in a transaction held open for a second, in the background; then runs the
# second statement, which must wait for it, and prints its result.
while_held() {
  psql_db -At >/dev/null <<SQL &
begin;
$1;
select pg_sleep(1);
commit;
SQL
  local holder=$!
  sleep 0.3
  local start
  start=$(date +%s%N)
  psql_db -At -c "$2"
  waited=$(( ($(date +%s%N) - start) / 1000000 ))
  wait "$holder"
}

expect_waited() {
  if [[ "$1" != "$2" || "$waited" -lt 400 ]]; then
    echo "check: $3: got '$1' after $waited ms, want '$2' after waiting" >&2
    exit 1
  fi
  echo "check: $3: waited $waited ms, then '$1'"
}

hour="clock_timestamp() + interval '1 hour', clock_timestamp()"

# A grant created by two calls at once: the second's insert conflicts, waits, then locks the
# first's row and looks again.
got="$(while_held "select tor_revoke_grant(777, '1 hour', 'n')" \
  "select tor_issue(sha256('new-777'::bytea), 'a', 777, 'app', 'ann', $hour)")"
expect_waited "$got" "grant revoked" "a token registered into a grant being tombstoned"
got="$(while_held "select tor_issue(sha256('new-778'::bytea), 'a', 778, 'app', 'ann', $hour)" \
  "select count(*) from tor_revoke_grant(778, '1 hour', 'n')")"
expect_waited "$got" "1" "a grant revoked while its first token is being registered"
[[ "$(psql_db -At -c "select count(*) from tor_lookup(sha256('new-778'::bytea)) where not revoked")" == 0 ]]

# Two bulk revocations of one subject at once: the second sees the first's cut-off.
psql_db -At -c "select tor_issue(sha256('zed-1'::bytea), 'a', 779, 'app', 'zed', $hour)" >/dev/null
got="$(while_held "select * from tor_cut_off('subject', 'zed', 's', '1 hour', 'n')" \
  "select announced || ' ' || (previous_us > 0) from tor_cut_off('subject', 'zed', 's', '1 hour', 'n')")"
expect_waited "$got" "false true" "a subject's cut-off written while another is"
[[ "$(psql_db -At -c "select count(*) from revocation_log where subject = 'zed'")" == 1 ]]

# Registers N access tokens (one grant each) named <prefix>-1 .. <prefix>-N.
bench_tokens() {
  psql_db -c "select tor_issue(sha256(('$1-' || i)::bytea), 'a', $2 + i, 'app', 'u' || (i % 100),
    clock_timestamp() + interval '1 hour', clock_timestamp()) from generate_series(1, $bench) i" >/dev/null
}

revoked_by() {
  psql_db -At -c "select count(*) from revocation_log where node = '$1'"
}

if (( bench > 0 )); then
  echo "bench: $bench access tokens revoked alone, one grant each, $(nproc) cores"

  # 1. psql, one statement (one round trip, one commit) per revocation.
  bench_tokens psql 10000000
  script="$(mktemp)"
  for ((i = 1; i <= bench; i++)); do
    echo "select outcome from tor_revoke(sha256('psql-$i'::bytea), 'app', false, true, null, '1 hour', 'psql');"
  done >"$script"
  start=$(date +%s%N)
  psql_db -At -f "$script" >/dev/null
  ns=$(( $(date +%s%N) - start ))
  [[ "$(revoked_by psql)" == "$bench" ]]
  echo "bench: psql, one call per statement, synchronous_commit on: $(( ns / 1000 / bench )) µs each ($(( ns / 1000000 )) ms)"

  # 2. The same without waiting for the WAL flush at commit: the cost of the call itself.
  bench_tokens nosync 20000000
  sed 's/psql-/nosync-/; s/'"'"'psql'"'"')/'"'"'nosync'"'"')/' "$script" >"$script.2"
  start=$(date +%s%N)
  PGOPTIONS='-c synchronous_commit=off' psql_db -At -f "$script.2" >/dev/null
  ns=$(( $(date +%s%N) - start ))
  [[ "$(revoked_by nosync)" == "$bench" ]]
  echo "bench: psql, one call per statement, synchronous_commit off: $(( ns / 1000 / bench )) µs each ($(( ns / 1000000 )) ms)"
  rm -f "$script" "$script.2"

  # 3. pgbench, 1 and 2 connections, synchronous_commit on.
  for clients in 1 2; do
    prefix="pgb$clients"
    bench_tokens "$prefix" $(( 30000000 + clients * 1000000 ))
    psql_db -c "create sequence ${prefix}_seq" >/dev/null
    echo "select r.outcome from (select nextval('${prefix}_seq') i) n,
      lateral tor_revoke(sha256(('$prefix-' || n.i)::bytea), 'app', false, true, null, '1 hour', '$prefix') r;" \
      >"$script"
    out="$(pgbench -n -c "$clients" -j "$clients" -t $(( bench / clients )) -f "$script" "$db" 2>&1)"
    [[ "$(revoked_by "$prefix")" == "$bench" ]]
    echo "bench: pgbench -c $clients: $(grep -E 'latency average|^tps' <<<"$out" | tr '\n' ' ')"
  done
  rm -f "$script"

  # 4. Inside the server, one transaction: the function's own cost.
  bench_tokens inside 40000000
  psql_db -At <<SQL
do \$\$
declare t0 timestamptz := clock_timestamp(); i integer;
begin
  for i in 1..$bench loop
    perform tor_revoke(sha256(('inside-' || i)::bytea), 'app', false, true, null, '1 hour', 'inside');
  end loop;
  raise notice 'bench: inside one transaction: % µs each',
    round(extract(epoch from clock_timestamp() - t0) * 1000000 / $bench, 1);
end \$\$;
SQL
  [[ "$(revoked_by inside)" == "$bench" ]]
fi
echo "check: passed"
