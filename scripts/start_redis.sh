#!/usr/bin/env bash
# Start a throw-away redis-server on 127.0.0.1 for vllmtune's tests.
#
#   eval "$(scripts/start_redis.sh [PORT] | tail -1)"   # -> export VLLMTUNE_TEST_REDIS_URL=...
#   scripts/start_redis.sh --stop PORT                  # shutdown nosave
#
# No persistence (save "", appendonly no); daemonized; pidfile/log/dir in a temp dir
# ($VLLMTUNE_REDIS_DIR or mktemp -d /tmp/vllmtune-redis.XXXXXX), printed on stderr.
# Idempotent for an explicit PORT that already answers PING. Bounded wait (~15 s).
set -euo pipefail

say() { echo "start_redis: $*" >&2; }
ping_ok() { [ "$(timeout 3 redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = "PONG" ]; }

command -v redis-server >/dev/null 2>&1 || { say "redis-server not found (apt-get install -y redis-server)"; exit 1; }

if [ "${1:-}" = "--stop" ]; then
    port="${2:?usage: start_redis.sh --stop PORT}"
    if ping_ok "$port"; then
        timeout 10 redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
        say "redis on port $port stopped"
    else
        say "nothing answering on port $port"
    fi
    exit 0
fi

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

PORT="${1:-}"
if [ -n "$PORT" ] && ping_ok "$PORT"; then
    say "redis already answering on 127.0.0.1:$PORT"
    echo "export VLLMTUNE_TEST_REDIS_URL=redis://127.0.0.1:$PORT/0"
    exit 0
fi
[ -n "$PORT" ] || PORT="$(free_port)"

DIR="${VLLMTUNE_REDIS_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/vllmtune-redis.XXXXXX")}"
mkdir -p "$DIR"
redis-server \
    --bind 127.0.0.1 --port "$PORT" --protected-mode yes \
    --daemonize yes --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" --dir "$DIR" \
    --save "" --appendonly no </dev/null >/dev/null 2>&1 \
    || { say "redis-server failed to start; see $DIR/redis.log"; tail -n 5 "$DIR/redis.log" >&2 || true; exit 1; }

deadline=$(( $(date +%s) + 15 ))
until ping_ok "$PORT"; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
        say "redis did not answer PING on port $PORT within 15s; see $DIR/redis.log"
        tail -n 5 "$DIR/redis.log" >&2 || true
        exit 1
    fi
    sleep 0.1
done
say "redis up on 127.0.0.1:$PORT (pid $(cat "$DIR/redis.pid" 2>/dev/null || echo '?'), dir $DIR); stop: $0 --stop $PORT"
echo "export VLLMTUNE_TEST_REDIS_URL=redis://127.0.0.1:$PORT/0"
