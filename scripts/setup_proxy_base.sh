#!/usr/bin/env bash
# An offline base image for the cache-proxy image and a stand-in for the Redis image the plan
# pins, so that tests and CI run `vllmtune up` with the prompt cache on a real Docker engine
# without a registry (as tests/docker_image stands in for vllm/vllm-openai).
#
#   scripts/setup_proxy_base.sh            build the rootfs tarball once, then import it when
#                                          DOCKER_HOST answers (else tests import it)
#   scripts/setup_proxy_base.sh --import   import only (the tarball must exist)
#
# The rootfs: `debootstrap --variant=minbase` of Debian bookworm with python3 (3.11),
# redis-server and python3-async-timeout (redis-py needs it on Python < 3.11.3), from the
# host's Debian mirror, cached as a tarball under ~/.cache/vllmtune/ (VLLMTUNE_PROXY_BASE_TAR).
# Imported as vllmtune-test/debian-python:bookworm and tagged also as REDIS_IMAGE (vllmtune/plan/sidecars.py).
# Idempotent: the tarball is built once; the image carries the tarball's hash and is imported
# again only when it differs. Building the tarball needs root (or sudo) and debootstrap.
set -euo pipefail
cd "$(dirname "$0")/.."

TARBALL="${VLLMTUNE_PROXY_BASE_TAR:-$HOME/.cache/vllmtune/debian-python-bookworm.tar}"
TAG=vllmtune-test/debian-python:bookworm
MIRROR="${VLLMTUNE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
INCLUDE=python3,redis-server,python3-async-timeout
FORMAT=1  # bump when the rootfs recipe changes
LABEL_KEY=org.vllmtune.proxy-base.hash
REDIS_IMAGE="$(sed -n 's/^REDIS_IMAGE = "\([^"]*\)".*/\1/p' vllmtune/plan/sidecars.py)"
[[ -n "$REDIS_IMAGE" ]] || { echo "setup_proxy_base: REDIS_IMAGE not found in vllmtune/plan/sidecars.py" >&2; exit 1; }
log() { echo "setup_proxy_base: $*" >&2; }
as_root() { if [[ "$(id -u)" == 0 ]]; then "$@"; else sudo "$@"; fi; }

stamp="$TARBALL.recipe"
recipe="format=$FORMAT include=$INCLUDE suite=bookworm"
if [[ "${1:-}" != --import ]] && { [[ ! -s "$TARBALL" ]] || [[ "$(cat "$stamp" 2>/dev/null)" != "$recipe" ]]; }; then
  if ! command -v debootstrap >/dev/null; then
    if command -v apt-get >/dev/null; then
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
    else
      log "debootstrap not found: install it (apt-get install debootstrap)"; exit 1
    fi
  fi
  mkdir -p "$(dirname "$TARBALL")"
  work="$(mktemp -d "${TMPDIR:-/tmp}/proxy-base.XXXXXX")"
  trap 'as_root rm -rf "$work"' EXIT
  log "debootstrap bookworm ($INCLUDE) from $MIRROR (once; cached as $TARBALL)"
  as_root debootstrap --variant=minbase --include="$INCLUDE" bookworm "$work/root" "$MIRROR" >"$work/log" 2>&1 || {
    tail -20 "$work/log" >&2; log "debootstrap failed"; exit 1; }
  # what an image does not need: package caches, docs, locales
  as_root rm -rf "$work"/root/var/cache/apt/archives/*.deb "$work"/root/var/lib/apt/lists/* \
    "$work"/root/usr/share/doc "$work"/root/usr/share/man "$work"/root/usr/share/locale
  as_root mkdir -p "$work/root/data"  # the Redis image's WORKDIR
  as_root tar -C "$work/root" --numeric-owner -cf "$TARBALL.tmp" .
  as_root chown "$(id -u):$(id -g)" "$TARBALL.tmp"
  mv "$TARBALL.tmp" "$TARBALL"
  echo "$recipe" >"$stamp"
  log "wrote $TARBALL ($(du -h "$TARBALL" | cut -f1))"
fi

[[ -s "$TARBALL" ]] || { log "$TARBALL is missing: run scripts/setup_proxy_base.sh"; exit 1; }
if [[ -z "${DOCKER_HOST:-}" ]] || ! docker version >/dev/null 2>&1; then
  log "no Docker engine answers (DOCKER_HOST unset or down): the tests import $TAG themselves"
  exit 0
fi
hash="$( { echo "format=$FORMAT"; cat "$stamp"; stat -c '%s %Y' "$TARBALL"; } | sha256sum | cut -c1-32)"
current="$(docker image inspect -f "{{ index .Config.Labels \"$LABEL_KEY\" }}" "$TAG" 2>/dev/null || true)"
if [[ "$current" != "$hash" ]]; then
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'WORKDIR /data' \
    --change 'CMD ["python3"]' \
    --change "LABEL $LABEL_KEY=$hash" \
    --message "vllmtune test base: Debian bookworm minbase + python3 + redis-server" \
    "$TARBALL" "$TAG" >/dev/null
  log "imported $TAG ($hash)"
fi
id="$(docker image inspect -f '{{.Id}}' "$TAG")"
if [[ "$(docker image inspect -f '{{.Id}}' "$REDIS_IMAGE" 2>/dev/null || true)" != "$id" ]]; then
  docker tag "$id" "$REDIS_IMAGE"
  log "tagged $REDIS_IMAGE (stand-in)"
fi
echo "$TAG"
