#!/usr/bin/env bash
# Start a private dockerd for vllmtune's tests (idempotent).
#
#   eval "$(scripts/start_dockerd.sh | tail -1)"    # -> export DOCKER_HOST=unix://...
#
# Layout (override the base with VLLMTUNE_DOCKER_DIR, default /tmp/vllmtune-docker):
#   $DIR/docker.sock  API socket        $DIR/data    --data-root (images survive restarts)
#   $DIR/exec         --exec-root       $DIR/dockerd.pid, $DIR/dockerd.log
# Extra daemon flags: VLLMTUNE_DOCKERD_ARGS="..." (word-split). Start-up wait bound:
# VLLMTUNE_DOCKERD_TIMEOUT (seconds, default 60).
#
# Defaults (iptables on, default docker0 bridge, userland-proxy on) work in the vllmtune
# sandbox VM: -p 127.0.0.1:PORT:PORT publishing, container->host via 172.17.0.1 /
# host-gateway, and container<->container all work. If the daemon dies during start-up
# with an iptables/bridge error, we retry once with --iptables=false --ip-masq=false
# (publishing then still works through docker-proxy).
# Everything informational goes to stderr; the last stdout line is the export.
set -euo pipefail

DIR="${VLLMTUNE_DOCKER_DIR:-/tmp/vllmtune-docker}"
SOCK="$DIR/docker.sock"
ROOT="$DIR/data"
EXEC="$DIR/exec"
PIDFILE="$DIR/dockerd.pid"
LOG="$DIR/dockerd.log"
TIMEOUT="${VLLMTUNE_DOCKERD_TIMEOUT:-60}"
HOST="unix://$SOCK"

say() { echo "start_dockerd: $*" >&2; }
answering() { timeout 10 docker -H "$HOST" version >/dev/null 2>&1; }
pid_alive() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE" 2>/dev/null)" 2>/dev/null; }

for bin in dockerd docker containerd runc; do
    command -v "$bin" >/dev/null 2>&1 || { say "$bin not found (apt-get install -y docker.io)"; exit 1; }
done
if [ "$(id -u)" != 0 ]; then
    say "must run as root (rootless dockerd is not set up here)"; exit 1
fi
mkdir -p "$DIR" "$ROOT" "$EXEC"

# wait_up PID: poll until the API answers; return 1 if PID dies or on timeout.
wait_up() {
    local pid="$1" deadline=$(( $(date +%s) + TIMEOUT ))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        answering && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.2
    done
    return 1
}

launch() {  # extra dockerd args...
    rm -f "$SOCK"
    say "launching dockerd $* (log: $LOG)"
    echo "==== $(date -u '+%F %T') start_dockerd: dockerd $*" >>"$LOG"
    # Fully detached: own session, no inherited stdio (so $(...) callers do not hang).
    setsid dockerd \
        --host "$HOST" \
        --data-root "$ROOT" \
        --exec-root "$EXEC" \
        --pidfile "$PIDFILE" \
        "$@" </dev/null >>"$LOG" 2>&1 &
    LAUNCHED=$!
}

if answering; then
    say "dockerd already answering on $HOST"
elif pid_alive; then
    say "dockerd (pid $(cat "$PIDFILE")) running but not answering yet; waiting"
    wait_up "$(cat "$PIDFILE")" || { say "dockerd did not answer within ${TIMEOUT}s; see $LOG"; exit 1; }
else
    rm -f "$PIDFILE"
    # shellcheck disable=SC2206
    extra=( ${VLLMTUNE_DOCKERD_ARGS:-} )
    start=$(date +%s.%N)
    launch "${extra[@]}"
    if ! wait_up "$LAUNCHED"; then
        if ! kill -0 "$LAUNCHED" 2>/dev/null \
           && tail -n 40 "$LOG" | grep -qiE 'iptables|bridge|docker0'; then
            say "dockerd failed with a network error; retrying with --iptables=false --ip-masq=false"
            rm -f "$PIDFILE"
            launch "${extra[@]}" --iptables=false --ip-masq=false
            wait_up "$LAUNCHED" || { say "dockerd failed to start; last log lines:"; tail -n 20 "$LOG" >&2; exit 1; }
        else
            say "dockerd failed to start within ${TIMEOUT}s; last log lines:"
            tail -n 20 "$LOG" >&2
            kill "$LAUNCHED" 2>/dev/null || true
            exit 1
        fi
    fi
    say "dockerd up (pid $(cat "$PIDFILE" 2>/dev/null || echo "$LAUNCHED")) in $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}')s"
fi
echo "export DOCKER_HOST=$HOST"
