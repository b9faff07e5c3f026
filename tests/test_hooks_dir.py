"""The repository's hooks/ and .pre-commit-hooks.yaml: the same hooks as `adaptvc hooks
install`, for core.hooksPath managers and for the pre-commit framework.

hooks/ is generated from the package (``./dev.sh hooks``), so the package keeps shipping
what it installs and one source of truth holds both; these tests fail when they drift apart.
The pre-commit framework is tested for real in tests/test_pre_commit_framework.py.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import adaptvc
from adaptvc.hooks import HOOK_NAMES
from adaptvc.hooks.install import render_portable
from adaptvc.storage.dvc_cache import file_md5
from tests.conftest import REPO_ROOT
from tests.versioning_helpers import _initialised_template, avc_repo, git, write_adapter  # noqa: F401

pytestmark = pytest.mark.torchless

HOOKS_DIR = REPO_ROOT / "hooks"
WEIGHTS = "adapters/task_a/adapter_model.safetensors"


def test_hooks_dir_is_what_the_package_renders():
    files = {p.name for p in HOOKS_DIR.iterdir()}
    assert files == {*HOOK_NAMES, "README.md"}
    for name in HOOK_NAMES:
        path = HOOKS_DIR / name
        assert path.read_text(encoding="utf-8") == render_portable(name), (
            f"hooks/{name} differs from the package's: edit adaptvc/hooks/ and run ./dev.sh hooks"
        )
        assert path.stat().st_mode & stat.S_IXUSR, f"hooks/{name} is not executable"
        assert path.read_text(encoding="utf-8").rstrip().endswith(f'exec adaptvc hooks run {name} "$@"')
    # git records them executable too (a clone must get working hooks)
    modes = git(REPO_ROOT, "ls-files", "-s", "--", "hooks")
    if modes:  # a source tree without git (an unpacked sdist) has nothing to compare
        tracked = {line.split("\t")[1]: line.split()[0] for line in modes.splitlines()}
        assert {tracked.get(f"hooks/{n}") for n in HOOK_NAMES} == {"100755"}


def test_hooks_readme_and_pre_commit_manifest_name_every_hook():
    import yaml

    readme = (HOOKS_DIR / "README.md").read_text(encoding="utf-8")
    manifest = yaml.safe_load((REPO_ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    by_stage = {hook["stages"][0]: hook for hook in manifest}
    assert sorted(by_stage) == sorted(HOOK_NAMES) and len(manifest) == len(HOOK_NAMES)
    for name in HOOK_NAMES:
        assert f"| `{name}` |" in readme and f"id: adaptvc-{name}" in readme
        hook = by_stage[name]
        assert hook["id"] == f"adaptvc-{name}"
        assert hook["entry"] == f"adaptvc hooks run {name}"
        assert hook["language"] == "python"
        assert hook["always_run"] is True and hook["pass_filenames"] is False
        assert hook["stages"] == [name]


def test_installed_hook_and_hooks_dir_run_the_same_command(avc_repo):
    """What `adaptvc hooks install` writes and hooks/NAME both end in `adaptvc hooks run NAME`
    with git's arguments (the installed one through the Python that installed it)."""
    installed = {s.name: s.path for s in adaptvc.hooks_install()}
    for name in HOOK_NAMES:
        text = installed[name].read_text(encoding="utf-8")
        assert 'run_stdin "$ADAPTVC_PYTHON" -m adaptvc hooks run "$hook_name" "$@"' in text
        assert f"hook_name='{name}'" in text


@pytest.fixture
def hooks_path_repo(avc_repo, monkeypatch):
    """avc_repo with adaptvc's own hooks removed and core.hooksPath set to the repository's
    hooks/, the `adaptvc` of this Python on PATH, as a lefthook/husky user would have it."""
    adaptvc.hooks_uninstall()
    git(avc_repo, "config", "core.hooksPath", str(HOOKS_DIR))
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    return avc_repo


def test_hooks_dir_as_core_hooks_path_refuses_weights_and_moves_them_on_checkout(hooks_path_repo):
    root = hooks_path_repo
    write_adapter(root / "adapters" / "task_a", 1)
    v1 = adaptvc.save(root / "adapters" / "task_a", adapter="task_a", message="v1")
    git(root, "add", "-f", WEIGHTS)
    proc = subprocess.run(["git", "commit", "-m", "oops"], cwd=root, capture_output=True, text=True)
    assert proc.returncode != 0 and "adapter weights do not go into git" in proc.stderr
    git(root, "rm", "-q", "--cached", WEIGHTS)

    git(root, "checkout", "-q", "-b", "exp")
    write_adapter(root / "adapters" / "task_a", 2)
    v2 = adaptvc.save(root / "adapters" / "task_a", adapter="task_a", message="v2")
    proc = subprocess.run(["git", "checkout", "main"], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert file_md5(root / WEIGHTS)[0] == v1.id
    proc = subprocess.run(["git", "checkout", "exp"], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0 and "weights of task_a updated" in proc.stderr, proc.stderr
    assert file_md5(root / WEIGHTS)[0] == v2.id
