#!/usr/bin/env bash
# Makes sure a Redis server answers at REDIS_URL (default redis://127.0.0.1:6379):
# uses one already running, otherwise installs redis-server and starts one of its own,
# daemonized, on the loopback interface only, without persistence.
set -euo pipefail

url="${REDIS_URL:-redis://127.0.0.1:6379}"
export REDIS_URL="$url"

# host and port from redis://[user:password@]host[:port][/db]
rest="${url#*://}"
rest="${rest##*@}"
rest="${rest%%/*}"
host="${rest%%:*}"
port="6379"
if [[ "$rest" == *:* ]]; then
  port="${rest##*:}"
fi

ping() {
  command -v redis-cli >/dev/null 2>&1 && redis-cli -u "$url" ping 2>/dev/null | grep -q PONG
}

if ping; then
  echo "redis: already answering at $host:$port"
  exit 0
fi

case "$host" in
  127.0.0.1 | localhost) ;;
  *)
    echo "redis: nothing answers at $url, and only a loopback server can be started here" >&2
    exit 1
    ;;
esac

if ! command -v redis-server >/dev/null 2>&1; then
  sudo=""
  if [[ "$(id -u)" != 0 ]]; then sudo="sudo"; fi
  echo "redis: installing redis-server"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
fi

echo "redis: starting redis-server on 127.0.0.1:$port"
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
  --daemonize yes --logfile "${TMPDIR:-/tmp}/redis-ci-$port.log"

for _ in $(seq 1 100); do
  if ping; then
    echo "redis: answering at 127.0.0.1:$port"
    exit 0
  fi
  sleep 0.1
done
echo "redis: redis-server did not answer at 127.0.0.1:$port" >&2
exit 1
