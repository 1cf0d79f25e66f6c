#!/usr/bin/env bash
# Create (or repair) a virtualenv with checkov, the policy scanner that tests/render/test_checkov.py
# runs over the rendered Kubernetes manifests. Its own venv: checkov pins many libraries that
# would fight vllmtune's. Idempotent: a stamp file makes re-runs a fast no-op.
#
#   VLLMTUNE_CHECKOV_VENV   venv location (default: ~/.cache/vllmtune/checkov-venv)
#   VLLMTUNE_PYTHON         interpreter used to create the venv (default: python3)
#   VLLMTUNE_PIP_EXTRA_ARGS extra pip arguments
#   --force                 ignore the stamp and re-check everything
set -euo pipefail

CHECKOV_VERSION=3.3.30
STAMP_VALUE="checkov==${CHECKOV_VERSION} v1"

TAG=setup_checkov
VENV="${VLLMTUNE_CHECKOV_VENV:-$HOME/.cache/vllmtune/checkov-venv}"
READY="$VENV/bin/checkov"
HELP_LINES="2,9p"
# shellcheck source=lib/cached_venv.sh
source "$(dirname "$0")/lib/cached_venv.sh"
cached_venv_begin "$@"

log "installing checkov==$CHECKOV_VERSION"
start=$SECONDS
# shellcheck disable=SC2086
"$VPY" -m pip install -q ${VLLMTUNE_PIP_EXTRA_ARGS:-} "checkov==$CHECKOV_VERSION"
log "pip install took $((SECONDS - start))s"
check="checkov $("$VENV/bin/checkov" --version)"
log "$check"
cached_venv_done "$check"
