#!/usr/bin/env bash
# Stop the private dockerd started by scripts/start_dockerd.sh (idempotent).
# Running containers are stopped by dockerd's own shutdown; image data in
# $VLLMTUNE_DOCKER_DIR/data is kept. Pass --rm-containers to `docker rm -f` all
# containers first (faster than dockerd's shutdown timeout for stubborn ones).
set -euo pipefail

DIR="${VLLMTUNE_DOCKER_DIR:-/tmp/vllmtune-docker}"
SOCK="$DIR/docker.sock"
PIDFILE="$DIR/dockerd.pid"
TIMEOUT="${VLLMTUNE_DOCKERD_STOP_TIMEOUT:-30}"

say() { echo "stop_dockerd: $*" >&2; }

if [ "${1:-}" = "--rm-containers" ] && timeout 10 docker -H "unix://$SOCK" version >/dev/null 2>&1; then
    ids="$(docker -H "unix://$SOCK" ps -aq)"
    [ -n "$ids" ] && docker -H "unix://$SOCK" rm -f $ids >/dev/null
fi

if [ ! -f "$PIDFILE" ]; then
    say "no pidfile at $PIDFILE; nothing to stop"
    exit 0
fi
pid="$(cat "$PIDFILE")"
if ! kill -0 "$pid" 2>/dev/null; then
    say "dockerd pid $pid not running; removing stale pidfile"
    rm -f "$PIDFILE"
    exit 0
fi
# Make sure the pid really is a dockerd before signalling it.
if ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "dockerd.*$SOCK"; then
    say "pid $pid is not our dockerd ($(tr '\0' ' ' <"/proc/$pid/cmdline")); refusing"
    exit 1
fi
kill -TERM "$pid"
deadline=$(( $(date +%s) + TIMEOUT ))
while kill -0 "$pid" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
        say "dockerd did not exit within ${TIMEOUT}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 1
        break
    fi
    sleep 0.2
done
rm -f "$PIDFILE" "$SOCK"
say "dockerd stopped"
