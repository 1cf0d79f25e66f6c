#!/usr/bin/env bash
# Install the schema validators the tests use for custom resources (KEDA ScaledObject,
# prometheus-operator PodMonitor / ServiceMonitor) from the npm registry, pinned, into a
# cache outside the checkout. Idempotent: a stamp file makes re-runs a fast no-op.
#
# We may not commit CRD YAML fetched from upstream repositories, so the schemas come from
# registry packages installed at test time:
#   @kubernetes-models/keda 0.4.2
#       generated (its package.json "crd-generate" input) from KEDA v2.10.1's published
#       release manifest keda-2.10.1.yaml. The newer 2.x line is generated from KEDA's Go
#       types instead of the CRD and needs node >= 22 (this machine has node 20).
#   @kubernetes-models/prometheus-operator 5.0.1
#       generated from prometheus-operator v0.90.1's published stripped-down-crds.yaml
#       (the CRDs without descriptions). 6.x is generated from Go types.
# Both compile the CRD's openAPIV3Schema with ajv (types, enums, patterns, required), but
# do not reject unknown fields; tests/support/crd_validate.cjs adds that check.
# The PyPI alternative (cloudcoil-models-keda / -prometheus-operator) was not chosen: its
# pydantic models ignore unknown fields and coerce "1" to 1 unless monkeypatched.
#
#   VLLMTUNE_CRD_VALIDATORS  install location (default ~/.cache/vllmtune/crd-validators)
#   --force                  ignore the stamp and reinstall
set -euo pipefail

KEDA_PKG="@kubernetes-models/keda@0.4.2"
PROM_PKG="@kubernetes-models/prometheus-operator@5.0.1"
STAMP_VALUE="$KEDA_PKG $PROM_PKG v1"

DIR="${VLLMTUNE_CRD_VALIDATORS:-$HOME/.cache/vllmtune/crd-validators}"
STAMP="$DIR/.vllmtune-setup-stamp"
FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--force]" >&2; exit 2 ;;
  esac
done

log() { echo "[setup_crd_validators] $*" >&2; }

if [[ $FORCE -eq 0 && -f "$STAMP" && "$(cat "$STAMP")" == "$STAMP_VALUE" ]]; then
  exit 0
fi
for tool in node npm; do
  if ! command -v "$tool" >/dev/null; then
    log "$tool not found: install Node.js 20 or newer (Debian: apt-get install nodejs npm)"
    exit 1
  fi
done

mkdir -p "$DIR"
rm -f "$STAMP"
# A private package.json keeps npm from walking up into a parent project.
if [[ ! -f "$DIR/package.json" ]]; then
  printf '{"name": "vllmtune-crd-validators", "private": true}\n' >"$DIR/package.json"
fi
log "installing $KEDA_PKG $PROM_PKG into $DIR"
# engine-strict=false: prometheus-operator 5.0.1's dependencies declare node >= 22 but run
# on node 20 (the tests prove each validator still accepts and rejects).
npm install --prefix "$DIR" --no-audit --no-fund --save-exact --engine-strict=false \
  --loglevel=error "$KEDA_PKG" "$PROM_PKG" >&2
echo "$STAMP_VALUE" >"$STAMP"
log "done"
