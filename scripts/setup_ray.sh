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

VENV="${VLLMTUNE_RAY_VENV:-$HOME/.cache/vllmtune/ray-venv}"
PYTHON="${VLLMTUNE_PYTHON:-python3}"
STAMP="$VENV/.vllmtune-setup-stamp"
FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--force]" >&2; exit 2 ;;
  esac
done

log() { echo "[setup_ray] $*" >&2; }

# ---- fast path -------------------------------------------------------------
if [[ $FORCE -eq 0 && -f "$STAMP" && -x "$VENV/bin/ray" && -x "$VENV/bin/python" ]] \
   && [[ "$(head -n1 "$STAMP")" == "$STAMP_VALUE" ]]; then
  log "already set up: $VENV ($(sed -n 2p "$STAMP"))"
  exit 0
fi
rm -f "$STAMP"

# ---- venv ------------------------------------------------------------------
if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import sys, pip' >/dev/null 2>&1; then
  log "reusing venv $VENV"
else
  log "creating venv $VENV with $PYTHON"
  mkdir -p "$(dirname "$VENV")"
  "$PYTHON" -m venv --clear "$VENV"
fi
VPY="$VENV/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1

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
printf '%s\n%s\n' "$STAMP_VALUE" "$check" > "$STAMP"
log "done: $VENV"
