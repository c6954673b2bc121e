#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers at DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432/test) with trust authentication, and that its database
# exists: uses a server already answering, otherwise installs Debian's postgresql when it is
# missing and starts a cluster of its own, initialised in a temporary directory, listening
# on the loopback interface only, without fsync (test data only). Prints the URL as
# `DATABASE_URL=...`.
set -euo pipefail

url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
export DATABASE_URL="$url"

# user, host, port and database from postgres://[user[:password]@]host[:port][/db]
rest="${url#*://}"
user="postgres"
if [[ "$rest" == *@* ]]; then
  user="${rest%%@*}"
  user="${user%%:*}"
  rest="${rest#*@}"
fi
hostport="${rest%%/*}"
db="postgres"
if [[ "$rest" == */* ]]; then
  db="${rest#*/}"
  db="${db%%\?*}"
fi
host="${hostport%%:*}"
port="5432"
if [[ "$hostport" == *:* ]]; then
  port="${hostport##*:}"
fi

answers() {
  command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h "$host" -p "$port" -t 2
}

# Creates the database (and a superuser role `root`, for a plain `psql` as root) when they
# are missing; fails when the server refuses the user.
ensure_database() {
  local admin=(psql -X -q -v ON_ERROR_STOP=1 -h "$host" -p "$port" -U "$user" -d postgres -At)
  if ! "${admin[@]}" -c 'select 1' >/dev/null; then
    echo "postgres: $host:$port answers but refuses user $user without a password" >&2
    return 1
  fi
  if [[ "$("${admin[@]}" -c "select 1 from pg_database where datname = '$db'")" != 1 ]]; then
    "${admin[@]}" -c "create database \"$db\""
    echo "postgres: created database $db"
  fi
  if [[ "$("${admin[@]}" -c "select 1 from pg_roles where rolname = 'root'")" != 1 ]]; then
    "${admin[@]}" -c 'create role root superuser login' || true
  fi
}

if answers; then
  echo "postgres: already answering at $host:$port"
  ensure_database
  echo "DATABASE_URL=$url"
  exit 0
fi

case "$host" in
  127.0.0.1 | localhost) ;;
  *)
    echo "postgres: nothing answers at $host:$port, and only a loopback server can be started here" >&2
    exit 1
    ;;
esac

sudo=""
if [[ "$(id -u)" != 0 ]]; then sudo="sudo"; fi
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  echo "postgres: installing postgresql"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
fi
bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"

# initdb refuses to run as root: the cluster belongs to `postgres` when we are root.
as_owner() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

data="$(mktemp -d "${TMPDIR:-/tmp}/postgres-ci-$port.XXXXXX")"
log="$data.log"
touch "$log"
if [[ "$(id -u)" == 0 ]]; then chown postgres: "$data" "$log"; fi
chmod 700 "$data"

echo "postgres: initialising a cluster in $data"
as_owner "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --no-sync >/dev/null
echo "postgres: starting on 127.0.0.1:$port (log $log)"
as_owner "$bin/pg_ctl" -D "$data" -l "$log" -w -t 30 \
  -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories= -c fsync=off" \
  start >/dev/null

for _ in $(seq 1 100); do
  if answers; then
    ensure_database
    echo "postgres: answering at 127.0.0.1:$port"
    echo "DATABASE_URL=$url"
    exit 0
  fi
  sleep 0.1
done
echo "postgres: the server did not answer at 127.0.0.1:$port (see $log)" >&2
exit 1
