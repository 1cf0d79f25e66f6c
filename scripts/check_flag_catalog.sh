#!/usr/bin/env bash
# Is vllmtune/flags/catalog.json what the vLLM flag dumps say? (scripts/build_flag_catalog.py)
# The dumps live beside the checkout ($VLLMTUNE_FLAG_DUMPS, default ../shared/vllm-flags).
# Without them: a skip, said out loud -- or a failure under VLLMTUNE_REQUIRE_REAL=1 (CI).
set -euo pipefail
cd "$(dirname "$0")/.."
dumps="${VLLMTUNE_FLAG_DUMPS:-../shared/vllm-flags}"
if [[ -d "$dumps" ]]; then
  exec python3 scripts/build_flag_catalog.py "$dumps" --check
fi
if [[ "${VLLMTUNE_REQUIRE_REAL:-0}" == 1 ]]; then
  echo "error: the vLLM flag dumps ($dumps) are required (VLLMTUNE_REQUIRE_REAL=1) but missing" >&2
  exit 1
fi
echo "skipped: no vLLM flag dumps at $dumps (set VLLMTUNE_FLAG_DUMPS)"
