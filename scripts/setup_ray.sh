#!/usr/bin/env bash
# Create (or repair) a virtualenv with Ray, used by the real multi-node test
# (tests/render/test_multinode_ray.py), which runs the rendered LeaderWorkerSet leader and
# worker start-up scripts against a real two-node Ray cluster on this machine.
# Idempotent: a stamp file makes re-runs a fast no-op.
#
#   VLLMTUNE_RAY_VENV       venv location (default: ~/.cache/vllmtune/ray-venv, outside the
#                           checkout so CI can cache it)
#   VLLMTUNE_PYTHON         interpreter used to create the venv (default: python3)
#   VLLMTUNE_PIP_EXTRA_ARGS extra pip arguments
#   --force                 ignore the stamp and re-check everything
#
# The pin: vLLM 0.32 declares no Ray requirement of its own (the image ships one); at run time
# it needs ray>=2.43 for the compiled-graph pipeline-parallel path and ray>=2.56 for its
# sharded_rdt weight transfer. 2.60.0 satisfies both and is the newest release.
set -euo pipefail

RAY_VERSION=2.60.0
STAMP_VALUE="ray==${RAY_VERSION} v1"

TAG=setup_ray
VENV="${VLLMTUNE_RAY_VENV:-$HOME/.cache/vllmtune/ray-venv}"
READY="$VENV/bin/ray"
HELP_LINES="2,16p"
# shellcheck source=lib/cached_venv.sh
source "$(dirname "$0")/lib/cached_venv.sh"
cached_venv_begin "$@"

# ---- install ---------------------------------------------------------------
log "installing ray==$RAY_VERSION"
start=$SECONDS
# shellcheck disable=SC2086
"$VPY" -m pip install -q ${VLLMTUNE_PIP_EXTRA_ARGS:-} "ray==$RAY_VERSION"
log "pip install took $((SECONDS - start))s"

# ---- check -----------------------------------------------------------------
# The leader script imports ray in python3 and runs the `ray` CLI: check both.
check="$("$VPY" -c 'import ray; print(f"ray {ray.__version__}")')"
"$VENV/bin/ray" --version >/dev/null
log "$check"
if [[ "$check" != "ray $RAY_VERSION" ]]; then
  log "expected ray $RAY_VERSION"
  exit 1
fi
cached_venv_done "$check"
