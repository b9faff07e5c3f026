#!/usr/bin/env bash
# One entry point for a fresh machine. It creates .venv (or $ADAPTVC_VENV), installs
# adaptvc with everything the example and the tests need, then runs the job:
#
#   ./dev.sh example        the end-to-end walk through the tool (examples/walkthrough.py)
#   ./dev.sh test [ARGS]    the static checks (as `lint`), then the test suite (ARGS go to pytest);
#                           with no ARGS, then the three install jobs below
#   ./dev.sh installs [JOB...]  the install jobs (notorch, fresh, lowest), each in its own
#                           virtual environment under .venvs/: adaptvc installed as users get it
#   ./dev.sh lint           only the static checks: ruff (lint, format), mypy, import-linter
#   ./dev.sh setup          only the installation
#   ./dev.sh hooks          regenerate hooks/ from the package's hook templates (adaptvc/hooks/)
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
# the report tests open the HTML in Debian's chromium (driven by Playwright, which never
# downloads a browser of its own); the reflink tests mount an XFS image (xfsprogs: mkfs.xfs;
# filefrag is in e2fsprogs).
setup_system() {
  local missing=()
  { [ -x /usr/sbin/sshd ] || command -v sshd >/dev/null 2>&1; } || missing+=(openssh-server)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  { [ -x /usr/sbin/mkfs.xfs ] || command -v mkfs.xfs >/dev/null 2>&1; } || missing+=(xfsprogs)
  { [ -x /usr/sbin/filefrag ] || command -v filefrag >/dev/null 2>&1; } || missing+=(e2fsprogs)
  if [ ${#missing[@]} -eq 0 ]; then
    return
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing ${missing[*]} (SSH remote, report browser and reflink tests)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    log "cannot install ${missing[*]} here: the SSH remote, report browser and reflink tests need them (and root, to mount)"
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

# --- install jobs: adaptvc installed as users install it, each in a fresh virtual environment
# under .venvs/ (kept and reused while pyproject.toml and requirements/ are unchanged; the
# package itself is reinstalled every run). Each then runs the tests that apply to it against
# the installed package (ADAPTVC_TEST_INSTALLED=1: no source tree on the path).
#   notorch  `pip install .`, no extras: the tests marked torchless; torch/transformers/peft absent
#   fresh    `pip install '.[torch]'` resolved today, without the constraints file
#   lowest   '.[torch]' at the declared lower bounds (uv --resolution lowest-direct)
# fresh and lowest pre-install torch 2.13.0 (the CPU wheel on this project's machines: an
# unpinned torch pulls a multi-GB CUDA build); lowest keeps it, so torch's own lower bound is
# not exercised. What each resolved is printed.
JOBS_DIR=.venvs
INSTALL_JOBS=(notorch fresh lowest)
TORCH_PIN="torch==2.13.0"
# PEFT/transformers tests for fresh and lowest; the hash-seed test (a minute of subprocesses
# importing torch) is version-independent and runs in the main suite.
TORCH_TESTS=(tests/test_extract.py tests/test_extract_selection.py tests/test_callback.py)
TORCH_TESTS_DESELECT="not whatever_the_hash_seed"

pinned() { grep -i -m1 "^$1==" requirements/constraints.txt; }
# What the tests import beyond adaptvc's own dependencies, at the versions of constraints.txt.
test_tools() { pinned pytest; pinned pytest-xdist; pinned gitpython; }

job_python() { echo "$JOBS_DIR/$1/bin/python"; }

# job_venv NAME: succeed (0) when $JOBS_DIR/NAME must be (re)built, after emptying it.
job_venv() {
  local dir="$JOBS_DIR/$1" want
  want=$( (cat pyproject.toml requirements/*.txt; echo "$1") | sha256sum | cut -d' ' -f1)
  if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.adaptvc-setup" 2>/dev/null)" = "$want" ]; then
    return 1
  fi
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/python" -m pip install -q --upgrade pip
  echo "$want" > "$dir/.adaptvc-job"
  return 0
}
job_done() { mv "$JOBS_DIR/$1/.adaptvc-job" "$JOBS_DIR/$1/.adaptvc-setup"; }

install_job() {
  local job="$1" py start=$SECONDS
  py=$(job_python "$job")
  local pip=("$py" -m pip install -q)
  rm -rf build  # setuptools' in-tree build directory: a stale one would put deleted files in the wheel
  if job_venv "$job"; then
    log "install job $job: building $JOBS_DIR/$job"
    case "$job" in
      notorch)
        # + Playwright: the report tests drive Debian's chromium (a test tool, no torch)
        "${pip[@]}" -c requirements/constraints.txt . $(test_tools) $(pinned playwright)
        ;;
      fresh)
        "${pip[@]}" "$TORCH_PIN"
        "${pip[@]}" ".[torch]"          # no constraints: what `pip install 'adaptvc[torch]'` gives today
        "${pip[@]}" $(test_tools)
        ;;
      lowest)
        "${pip[@]}" "$TORCH_PIN"
        # uv does not see the local CPU wheel: the override drops torch from its resolution, so
        # the torch installed above stays.
        printf '%s\n' "torch; sys_platform == 'never'" > "$JOBS_DIR/$job/keep-torch.txt"
        "$VENV/bin/uv" pip install -q --python "$py" --resolution lowest-direct \
          --override "$JOBS_DIR/$job/keep-torch.txt" ".[torch]"
        "${pip[@]}" $(test_tools)
        ;;
    esac
    job_done "$job"
  else
    log "install job $job: reusing $JOBS_DIR/$job (reinstalling adaptvc only)"
    "${pip[@]}" --no-deps --force-reinstall .
  fi
  rm -rf build
  log "install job $job: installed in $((SECONDS - start)) s"
  log "install job $job: $("$py" -m pip freeze | grep -i -E '^(adaptvc|torch|transformers|peft|accelerate|huggingface.hub|dvc|dvc-data|numpy|safetensors|click)( @|==)' | sed 's/ @ .*//' | tr '\n' ' ')"

  local tests=() args=()
  case "$job" in
    notorch)
      # Really without the extras: the point of this job.
      "$py" -c 'import importlib.util, sys
found = [m for m in ("torch", "transformers", "peft", "accelerate") if importlib.util.find_spec(m)]
sys.exit(f"the notorch environment has {found}") if found else None'
      # The modules holding torchless tests (marked, or through the dvc_remote fixture's
      # directory remote); collecting the others would import torch.
      mapfile -t tests < <(grep -l -E "pytest.mark.torchless|dvc_remote" tests/test_*.py)
      args=(-m torchless)
      ;;
    fresh | lowest)
      tests=("${TORCH_TESTS[@]}")
      args=(-k "$TORCH_TESTS_DESELECT")
      ;;
  esac
  log "install job $job: pytest ${args[*]} ${tests[*]}"
  # --import-mode=append and the pytest script (not python -m): the installed adaptvc comes
  # first on sys.path, the repository only supplies the tests package.
  ADAPTVC_TEST_INSTALLED=1 "$JOBS_DIR/$job/bin/pytest" -p no:cacheprovider --import-mode=append \
    -n 2 -q "${args[@]}" "${tests[@]}"
}

install_jobs() {
  local job start
  for job in "$@"; do
    start=$SECONDS
    install_job "$job"
    log "install job $job: passed in $((SECONDS - start)) s"
  done
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
    if [ $# -gt 0 ]; then
      exec "$PY" -m pytest -n 2 "$@"
    fi
    start=$SECONDS
    "$PY" -m pytest -n 2
    log "main suite: passed in $((SECONDS - start)) s"
    install_jobs "${INSTALL_JOBS[@]}"
    ;;
  installs)
    setup_python
    setup_system
    [ $# -gt 0 ] || set -- "${INSTALL_JOBS[@]}"
    install_jobs "$@"
    ;;
  hooks)
    setup_python
    exec "$PY" -c 'from pathlib import Path; from adaptvc.hooks.install import write_portable; write_portable(Path("hooks"))'
    ;;
  *)
    echo "usage: ./dev.sh example | test [PYTEST_ARGS...] | installs [notorch|fresh|lowest...] | lint | setup | hooks" >&2
    exit 2
    ;;
esac
