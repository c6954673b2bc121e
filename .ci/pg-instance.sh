#!/usr/bin/env bash
# A private PostgreSQL instance for outage and crash tests, on a loopback port of its own:
#
#   pg-instance.sh start PORT DIR   initialises DIR when it is empty or missing (trust auth,
#                                   database `test`), starts the server on 127.0.0.1:PORT
#                                   and prints postgres://postgres@127.0.0.1:PORT/test
#   pg-instance.sh stop DIR         stops it at once (`-m immediate`: like a crash; the next
#                                   start recovers from the write-ahead log)
#   pg-instance.sh status DIR       exit status 0 when it runs
#
# The instance listens on 127.0.0.1 only, without a Unix socket. Run as root, DIR is handed
# to the `postgres` user (initdb refuses root), so its parent must be searchable by it
# (e.g. a directory made with `mktemp -d` under /tmp, passed itself as DIR).
set -euo pipefail

usage() {
  echo "usage: $0 start PORT DIR | stop DIR | status DIR" >&2
  exit 2
}

bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
if [[ -z "$bin" ]]; then
  echo "pg-instance: no PostgreSQL server installed (run .ci/postgres.sh first)" >&2
  exit 1
fi

as_owner() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case "${1:-}" in
  start)
    [[ $# == 3 ]] || usage
    port="$2"
    dir="$3"
    mkdir -p "$dir"
    if [[ "$(id -u)" == 0 ]]; then chown postgres: "$dir"; fi
    chmod 700 "$dir"
    fresh=false
    if [[ ! -f "$dir/PG_VERSION" ]]; then
      if [[ -n "$(ls -A "$dir")" ]]; then
        echo "pg-instance: $dir is neither empty nor a PostgreSQL data directory" >&2
        exit 1
      fi
      as_owner "$bin/initdb" -D "$dir" -U postgres -A trust -E UTF8 --no-sync >/dev/null
      fresh=true
    fi
    as_owner "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories= -c fsync=off" \
      start >/dev/null
    if $fresh; then
      psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -c 'create database test'
    fi
    echo "postgres://postgres@127.0.0.1:$port/test"
    ;;
  stop)
    [[ $# == 2 ]] || usage
    dir="$2"
    if [[ -f "$dir/postmaster.pid" ]]; then
      as_owner "$bin/pg_ctl" -D "$dir" -m immediate -w stop >/dev/null
    fi
    ;;
  status)
    [[ $# == 2 ]] || usage
    as_owner "$bin/pg_ctl" -D "$2" status >/dev/null
    ;;
  *)
    usage
    ;;
esac
