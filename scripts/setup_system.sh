#!/usr/bin/env bash
# The system packages the test suite uses, from the distribution (Debian/Ubuntu apt):
#   docker.io        a real Docker engine (tests start a private dockerd; scripts/start_dockerd.sh)
#   busybox-static   the rootfs of the stand-in vLLM image (tests/docker_image), built offline
#   redis-server     the prompt cache's Redis backend, run on 127.0.0.1 (scripts/start_redis.sh)
#   docker-compose   Compose v1 (1.29 on Debian 12): rendered compose files must pass `config`
#   prometheus       promtool checks the rendered alert/recording rules and autoscaler PromQL
# Idempotent: installs only what is missing. Needs root (or sudo) only when something is missing.
# Packages must not start their services (prometheus would listen on 0.0.0.0:9090): tests start
# their own servers on 127.0.0.1, so a policy-rc.d that says "do not start" (exit 101) is in
# place while apt runs.
set -euo pipefail

if ! command -v dpkg >/dev/null; then  # not Debian/Ubuntu: the commands must be there already
  for cmd in dockerd busybox redis-server docker-compose promtool; do
    command -v "$cmd" >/dev/null || { echo "setup_system: $cmd not found; install it (not an apt system)" >&2; exit 1; }
  done
  exit 0
fi
missing=()
for pkg in docker.io busybox-static redis-server docker-compose; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
lean=()  # prometheus alone, without its recommends (node-exporter, smartmontools, ipmitool, ...)
dpkg -s prometheus >/dev/null 2>&1 || lean+=(prometheus)
if (( ${#missing[@]} + ${#lean[@]} == 0 )); then
  exit 0
fi
echo "setup_system: installing ${missing[*]} ${lean[*]}" >&2

as_root() { if [[ "$(id -u)" == 0 ]]; then "$@"; else sudo "$@"; fi; }
if [[ "$(id -u)" != 0 ]] && ! command -v sudo >/dev/null; then
  echo "setup_system: ${missing[*]} ${lean[*]} missing and not root (no sudo): install them with apt-get" >&2
  exit 1
fi
command -v apt-get >/dev/null || {
  echo "setup_system: no apt-get: install docker.io, busybox-static, redis-server, docker-compose, prometheus (promtool) by hand" >&2
  exit 1
}

own_policy=0
cleanup() { if (( own_policy )); then as_root rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
  as_root chmod +x /usr/sbin/policy-rc.d
  own_policy=1
fi
as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
if (( ${#missing[@]} )); then
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if (( ${#lean[@]} )); then
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${lean[@]}" >/dev/null
fi
