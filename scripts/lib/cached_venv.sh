# Shared by scripts/setup_*.sh: a virtualenv cached outside the checkout (~/.cache/vllmtune),
# set up once and recognised by a stamp file whose first line says what was installed.
#
# The caller sets TAG (log prefix), VENV, STAMP_VALUE, READY (a file that exists once set up,
# e.g. "$VENV/bin/vllm") and HELP_LINES (the line range of its header comment), then:
#
#   cached_venv_begin "$@"     # exits 0 when already set up (no --force); else creates or
#                              # reuses the venv and sets VPY to its python
#   ... install and check ...
#   cached_venv_done "$what"   # writes the stamp: STAMP_VALUE, then the checked summary

log() { echo "[$TAG] $*" >&2; }

cached_venv_begin() {
  local force=0 arg
  for arg in "$@"; do
    case "$arg" in
      --force) force=1 ;;
      -h|--help) sed -n "$HELP_LINES" "$0"; exit 0 ;;
      *) echo "usage: $0 [--force]" >&2; exit 2 ;;
    esac
  done
  STAMP="$VENV/.vllmtune-setup-stamp"
  if [[ $force -eq 0 && -f "$STAMP" && -e "$READY" && -x "$VENV/bin/python" ]] \
     && [[ "$(head -n1 "$STAMP")" == "$STAMP_VALUE" ]]; then
    log "already set up: $VENV ($(sed -n 2p "$STAMP"))"
    exit 0
  fi
  rm -f "$STAMP"
  if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import sys, pip' >/dev/null 2>&1; then
    log "reusing venv $VENV"
  else
    local python="${VLLMTUNE_PYTHON:-python3}"
    log "creating venv $VENV with $python"
    mkdir -p "$(dirname "$VENV")"
    "$python" -m venv --clear "$VENV"
  fi
  VPY="$VENV/bin/python"
  export PIP_DISABLE_PIP_VERSION_CHECK=1
}

cached_venv_done() {
  printf '%s\n%s\n' "$STAMP_VALUE" "$1" > "$STAMP"
  log "done: $VENV"
}
