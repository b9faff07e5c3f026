#!/usr/bin/env bash
# One entry point for a fresh machine. It creates .venv (or $ADAPTVC_VENV), installs
# adaptvc with everything the example and the tests need, then runs the job:
#
#   ./dev.sh example        the end-to-end walk through the tool (examples/walkthrough.py)
#   ./dev.sh test [ARGS]    the static checks (as `lint`), then the test suite (ARGS go to pytest)
#   ./dev.sh lint           only the static checks: ruff (lint, format), mypy, import-linter
#   ./dev.sh setup          only the installation
#
# Re-runs reinstall only when pyproject.toml or requirements/ changed.
set -euo pipefail
cd "$(dirname "$0")"

VENV="${ADAPTVC_VENV:-.venv}"
PY="$VENV/bin/python"

log() { printf '[dev.sh] %s\n' "$*" >&2; }

setup_python() {
  if [ ! -x "$PY" ]; then
    log "creating virtual environment $VENV"
    python3 -m venv "$VENV"
  fi
  local want have
  want=$(cat pyproject.toml requirements/*.txt | sha256sum | cut -d' ' -f1)
  have=$(cat "$VENV/.adaptvc-setup" 2>/dev/null || true)
  if [ "$want" != "$have" ]; then
    log "installing adaptvc and its test/example dependencies (torch pinned to the CPU wheel)"
    "$PY" -m pip install -q --upgrade pip
    "$PY" -m pip install -q -c requirements/constraints.txt "torch==2.13.0"
    "$PY" -m pip install -q -c requirements/constraints.txt -e ".[test]"
    echo "$want" > "$VENV/.adaptvc-setup"
  fi
}

# The SSH-remote tests run a real OpenSSH server on 127.0.0.1 (Debian's openssh-server);
# the reflink tests mount an XFS image (xfsprogs: mkfs.xfs; filefrag is in e2fsprogs).
setup_system() {
  local missing=()
  { [ -x /usr/sbin/sshd ] || command -v sshd >/dev/null 2>&1; } || missing+=(openssh-server)
  { [ -x /usr/sbin/mkfs.xfs ] || command -v mkfs.xfs >/dev/null 2>&1; } || missing+=(xfsprogs)
  { [ -x /usr/sbin/filefrag ] || command -v filefrag >/dev/null 2>&1; } || missing+=(e2fsprogs)
  if [ ${#missing[@]} -eq 0 ]; then
    return
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing ${missing[*]} (for the SSH remote and reflink tests)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    log "cannot install ${missing[*]} here: the SSH remote and reflink tests need them (and root, to mount)"
    exit 1
  fi
}

# The static checks, in order, stopping at the first that fails. Read-only: to fix what
# they report, run `ruff check --fix` / `ruff format` yourself.
LINT_PATHS=(adaptvc tests benchmarks examples)
static_checks() {
  local bin="$VENV/bin"
  log "ruff check"
  "$bin/ruff" check "${LINT_PATHS[@]}"
  log "ruff format --check"
  "$bin/ruff" format --check "${LINT_PATHS[@]}"
  log "mypy adaptvc"
  "$bin/mypy" adaptvc
  log "lint-imports (layers: docs/architecture.md)"
  "$bin/lint-imports"
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  setup)
    setup_python
    setup_system
    ;;
  example)
    setup_python
    exec "$PY" examples/walkthrough.py "$@"
    ;;
  lint)
    setup_python
    static_checks
    ;;
  test)
    setup_python
    setup_system
    static_checks
    exec "$PY" -m pytest -n 2 "$@"
    ;;
  *)
    echo "usage: ./dev.sh example | test [PYTEST_ARGS...] | lint | setup" >&2
    exit 2
    ;;
esac
