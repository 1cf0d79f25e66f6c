#!/usr/bin/env bash
# Create (or repair) a virtualenv with llm-compressor on the CPU build of torch, used by the
# real quantization test (tests/quantize). Idempotent: a stamp file makes re-runs a fast no-op.
#
#   VLLMTUNE_LLMC_VENV      venv location (default: ~/.cache/vllmtune/llmc-venv, outside the
#                           checkout so CI can cache it)
#   VLLMTUNE_PYTHON         interpreter used to create the venv (default: python3)
#   VLLMTUNE_PIP_EXTRA_ARGS extra pip arguments. torch==2.13.0+cpu comes from pip's find-links
#                           (a local wheel directory), as for scripts/setup_vllm_cpu.sh; without
#                           one use e.g. "--extra-index-url https://download.pytorch.org/whl/cpu"
#   --force                 ignore the stamp and re-check everything
#
# The llmcompressor pin is the default of quantization.recipe.llmcompressor
# (vllmtune/profile/models.py): the job renders and the test runs the same release.
set -euo pipefail

LLMC_VERSION=0.14.0.1
TORCH_VERSION=2.13.0
STAMP_VALUE="llmcompressor==${LLMC_VERSION} torch==${TORCH_VERSION} v1"

TAG=setup_llmcompressor
VENV="${VLLMTUNE_LLMC_VENV:-$HOME/.cache/vllmtune/llmc-venv}"
READY="$VENV/bin/python"
HELP_LINES="2,14p"
# shellcheck source=lib/cached_venv.sh
source "$(dirname "$0")/lib/cached_venv.sh"
cached_venv_begin "$@"

# ---- install ---------------------------------------------------------------
# torch is named with its version so that pip takes the local +cpu wheel (a local version
# label sorts above the plain release) instead of the CUDA build from the index.
log "installing llmcompressor==$LLMC_VERSION torch==$TORCH_VERSION"
start=$SECONDS
# shellcheck disable=SC2086
"$VPY" -m pip install -q ${VLLMTUNE_PIP_EXTRA_ARGS:-} "llmcompressor==$LLMC_VERSION" "torch==$TORCH_VERSION"
log "pip install took $((SECONDS - start))s"

# ---- check -----------------------------------------------------------------
check="$("$VPY" - <<'EOF'
import torch
import llmcompressor
from llmcompressor import oneshot  # noqa: F401  (the entry point the job uses)
from llmcompressor.modifiers.gptq import GPTQModifier  # noqa: F401  (the modules quantize_job.py uses)
from llmcompressor.modifiers.quantization import QuantizationModifier  # noqa: F401
from llmcompressor.modifiers.transform import AWQModifier, SmoothQuantModifier  # noqa: F401
print(f"llmcompressor {llmcompressor.__version__}, torch {torch.__version__}")
EOF
)"
check="$(printf '%s\n' "$check" | tail -n1)"  # llmcompressor logs to stdout on import
log "$check"
case "$check" in
  *"torch ${TORCH_VERSION}+cpu"*) ;;
  *) log "expected torch ${TORCH_VERSION}+cpu (pip took another build); see VLLMTUNE_PIP_EXTRA_ARGS"; exit 1 ;;
esac
cached_venv_done "$check"
