#!/usr/bin/env bash
# The snapshot's cost at scale, measured from outside in one run: the demo server on a
# fresh PostgreSQL database holding N revocations still in force (written straight into the
# outbox), then, for each N:
#   - the compact snapshot (Accept: application/x-ndjson) and the SET snapshot: bytes and
#     seconds to fetch with curl (the SET form only up to SET_MAX, 100,000 by default: one
#     signature and ~1.2 KB per revocation);
#   - the outbox's size on disk (table and indexes), per row;
#   - the resource server example with --sync: seconds from its start until it has applied
#     the snapshot (its own log line), i.e. until it may admit a JWT.
# Ratios (compact / SET) are printed for every N where both were measured.
#
#   benches/snapshot.sh                       # N = 10000 100000 1000000
#   SIZES="10000" benches/snapshot.sh
#
# Needs: psql/createdb on DATABASE_URL's server (default postgres://postgres@127.0.0.1:5432),
# curl, and builds the release examples.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES="${SIZES:-10000 100000 1000000}"
SET_MAX="${SET_MAX:-100000}"
server_url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
server_url="${server_url%/*}"
db="tor_snapshot_bench_$RANDOM$RANDOM"
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  psql -X -q -d "$server_url/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --release -q -p tower-oauth-revoke-demo --example server --example resource_server
bin="${CARGO_TARGET_DIR:-target}/release/examples"
psql -X -q -d "$server_url/postgres" -c "CREATE DATABASE $db"
url="$server_url/$db"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # file pattern
  for _ in $(seq 1 6000); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "timed out waiting for '$2' in $1" >&2; cat "$1" >&2; return 1
}

port="$(free_port)"
issuer="http://127.0.0.1:$port"
RUST_LOG=warn "$bin/server" --plain --listen "127.0.0.1:$port" --postgres "$url" >"$work/server.log" 2>&1 &
pids+=($!)
wait_for "$work/server.log" "listening on"

have=0
printf '%-10s %-8s %12s %10s %14s\n' revocations form bytes fetch_s rs_synced_s
for n in $SIZES; do
  # Grant revocations in force for a day, 1 in 10 a single access token (as the endpoint
  # writes them), spread over 10,000 users and 100 clients.
  psql -X -q -d "$url" <<SQL
INSERT INTO revocation_log (kind, token_hash, token_kind, grant_id, client_id, subject,
                            initiator, at, expires_at, node)
SELECT CASE WHEN g % 10 = 0 THEN 'token' ELSE 'grant' END,
       CASE WHEN g % 10 = 0 THEN sha256(convert_to('token-' || g, 'UTF8')) END,
       CASE WHEN g % 10 = 0 THEN 'a' END,
       g, 'client-' || (g % 100), 'user-' || (g % 10000), 'c:client-' || (g % 100),
       clock_timestamp(), clock_timestamp() + interval '1 day', 'bench'
FROM generate_series($have + 1, $n) AS g;
SQL
  have=$n
  outbox=$(psql -X -At -d "$url" -c "select pg_total_relation_size('revocation_log')")
  echo "$n revocations: the outbox takes $outbox bytes with its indexes ($(( outbox / n )) bytes a row)"
  fetch() { # accept -> bytes seconds
    curl -s -o "$work/snap" -w '%{size_download} %{time_total}\n' -u resource-server:rs-secret \
      -H "Accept: $1" "$issuer/oauth2/events/snapshot"
  }
  read -r cbytes csecs < <(fetch application/x-ndjson)
  start=$(date +%s.%N)
  rs_port="$(free_port)"
  RUST_LOG=info "$bin/resource_server" --listen "127.0.0.1:$rs_port" --issuer "$issuer" --sync >"$work/rs.log" 2>&1 &
  rs=$!
  wait_for "$work/rs.log" "applied the issuer's snapshot"
  synced=$(echo "$(date +%s.%N) - $start" | bc)
  kill "$rs"; wait "$rs" 2>/dev/null || true
  printf '%-10s %-8s %12s %10.2f %14.2f\n' "$n" compact "$cbytes" "$csecs" "$synced"
  if (( n <= SET_MAX )); then
    read -r sbytes ssecs < <(fetch application/json)
    printf '%-10s %-8s %12s %10.2f %14s\n' "$n" SETs "$sbytes" "$ssecs" -
    echo "$n: compact/SETs bytes $(echo "scale=3; $cbytes / $sbytes" | bc), fetch time $(echo "scale=3; $csecs / $ssecs" | bc)"
  fi
done
