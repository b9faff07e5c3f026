"""Installing adaptvc's git hooks next to the user's own (git alone: ``adaptvc init``,
``clone``'s per-clone set-up and ``adaptvc hooks install`` call this).

adaptvc installs five hooks (what each does is in :mod:`adaptvc.hooks.actions`):
``post-checkout``, ``post-merge``, ``post-rewrite``, ``pre-push`` and ``pre-commit``. Each is a small
shell script (``hook.sh.in``) that runs ``<python> -m adaptvc hooks run NAME`` with the
interpreter that installed it, so hooks work from a virtual environment that is not
activated.

A hook the user already had is never overwritten: it is renamed ``NAME.pre-adaptvc``
and adaptvc's script runs it first (same arguments and input; a failing ``pre-*`` hook
still stops git). ``uninstall`` puts it back. Hooks go where git looks for them:
``git rev-parse --git-path hooks``, which honours ``core.hooksPath`` and worktrees.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import textwrap
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from adaptvc.errors import AdaptvcError, HookInstallError
from adaptvc.storage import git_ops
from adaptvc.storage.files import write_atomic

HOOK_NAMES = ("post-checkout", "post-merge", "post-rewrite", "pre-push", "pre-commit")
# What each hook does, in one sentence: the header of the repository's hooks/ scripts.
HOOK_SUMMARIES = {
    "post-checkout": "after a branch checkout, bring each adapter's weights to the checked-out "
    "version, from the DVC cache or the DVC remote. Never fails the checkout.",
    "post-merge": "after git merge or git pull, repair an adapter whose files git took from two "
    "versions, then bring the weights to the merged version. Never fails the merge.",
    "post-rewrite": "after git rebase, the same repair and weights as post-merge (amends are left alone).",
    "pre-push": "upload the weights of the versions being pushed to the DVC remote first; refuse "
    "the push if that fails or no DVC remote is configured.",
    "pre-commit": "refuse adapter weight files staged into git, and staged .dvc pointers whose "
    "object is in neither the local DVC cache nor the DVC remote.",
}
MARKER = "adaptvc-managed git hook"
CHAINED_SUFFIX = ".pre-adaptvc"


@dataclass(frozen=True)
class HookStatus:
    """One hook: ``state`` is ``installed`` (adaptvc's, interpreter present), ``stale``
    (adaptvc's, but its interpreter is gone), ``foreign`` (someone else's hook, adaptvc's
    is not installed) or ``missing``. ``chained`` is the user's hook adaptvc runs first."""

    name: str
    path: Path
    state: str
    chained: Path | None = None
    python: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "state": self.state,
            "chained": str(self.chained) if self.chained else None,
            "python": self.python,
        }


def hooks_dir(root: Path) -> Path:
    """Where git runs hooks from for the repository at ``root`` (``core.hooksPath`` honoured)."""
    return git_ops.git_path(root, "hooks")


def _template(name: str = "hook.sh.in") -> str:
    return resources.files("adaptvc.hooks").joinpath(name).read_text(encoding="utf-8")


def _pythonpath_for_hooks() -> str:
    """The directory holding this adaptvc, when the interpreter would not find it by itself
    (a source checkout used through PYTHONPATH); empty for a normal installation."""
    pkg_parent = Path(__file__).resolve().parent.parent.parent
    site_dirs = {Path(p).resolve() for p in (sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"])}
    if pkg_parent in site_dirs:
        return ""
    code = "import adaptvc, os; print(os.path.dirname(os.path.dirname(adaptvc.__file__)))"
    probe = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd="/",
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    if probe.returncode == 0 and Path(probe.stdout.strip()).resolve() == pkg_parent:
        return ""  # installed (editable or not) into this interpreter
    return str(pkg_parent)


def render(name: str) -> str:
    """The script adaptvc installs as hook ``name``."""
    if "'" in sys.executable:
        raise HookInstallError(
            f"cannot write a hook for an interpreter path with a quote: {sys.executable}", path=sys.executable
        )
    return (
        _template()
        .replace("@HOOK@", name)
        .replace("@PYTHON@", sys.executable)
        .replace("@PYTHONPATH@", _pythonpath_for_hooks())
    )


def render_portable(name: str) -> str:
    """The repository's ``hooks/NAME``: the same hook for core.hooksPath managers, running
    the ``adaptvc`` on PATH (no pinned interpreter, no chaining: the manager chains)."""
    summary = textwrap.fill(
        f"adaptvc's {name} hook: {HOOK_SUMMARIES[name]}", width=90, initial_indent="# ", subsequent_indent="# "
    )
    return _template("portable.sh.in").replace("@SUMMARY@", summary).replace("@HOOK@", name)


def write_portable(directory: Path) -> list[Path]:
    """Write ``render_portable`` of every hook into ``directory`` (the repository's hooks/),
    executable. The repository's copies are checked against the package by the tests."""
    paths = []
    for name in HOOK_NAMES:
        path = directory / name
        write_atomic(path, render_portable(name).encode("utf-8"), mode=0o755)
        paths.append(path)
    return paths


def _is_ours(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as fobj:
            return MARKER in fobj.read(400)
    except (FileNotFoundError, IsADirectoryError):
        return False


def _python_of(path: Path) -> str | None:
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("ADAPTVC_PYTHON='"):
            return line.split("'")[1]
    return None


def status(root: Path) -> list[HookStatus]:
    """The state of each of adaptvc's hooks in the repository at ``root``."""
    directory = hooks_dir(root)
    out = []
    for name in HOOK_NAMES:
        path = directory / name
        chained = directory / f"{name}{CHAINED_SUFFIX}"
        chained_path = chained if chained.exists() else None
        if _is_ours(path):
            python = _python_of(path)
            state = "installed" if python and os.access(python, os.X_OK) else "stale"
            out.append(HookStatus(name, path, state, chained_path, python))
        elif path.exists():
            out.append(HookStatus(name, path, "foreign", chained_path))
        else:
            out.append(HookStatus(name, path, "missing", chained_path))
    return out


def install(root: Path) -> list[HookStatus]:
    """Install (or refresh) adaptvc's hooks, keeping and chaining the user's own.

    Idempotent: a second run rewrites adaptvc's scripts (e.g. for a new interpreter) and
    leaves the chained user hooks alone.

    Raises:
        HookInstallError: a user hook is in the way and a ``NAME.pre-adaptvc`` already exists
            (adaptvc will not overwrite either; the message says which to merge).
    """
    directory = hooks_dir(root)
    directory.mkdir(parents=True, exist_ok=True)
    for name in HOOK_NAMES:
        path = directory / name
        chained = directory / f"{name}{CHAINED_SUFFIX}"
        if (path.exists() or path.is_symlink()) and not _is_ours(path):
            if chained.exists() or chained.is_symlink():
                raise HookInstallError(
                    f"both {path} and {chained} exist and neither is adaptvc's: adaptvc will not overwrite them",
                    path=str(path),
                    hint=f"merge {path.name} into {chained.name} (adaptvc runs that one first), remove {path.name}, "
                    "then run `adaptvc hooks install` again",
                )
            os.replace(path, chained)  # the user's hook, kept; ours runs it first
        # A half-written hook would break every git command that runs it: atomic.
        write_atomic(path, render(name).encode("utf-8"), mode=0o755)
    return status(root)


def uninstall(root: Path) -> list[HookStatus]:
    """Remove adaptvc's hooks and put back the user's hooks they had replaced."""
    directory = hooks_dir(root)
    for name in HOOK_NAMES:
        path = directory / name
        chained = directory / f"{name}{CHAINED_SUFFIX}"
        if _is_ours(path):
            path.unlink()
            if chained.exists() or chained.is_symlink():
                os.replace(chained, path)
    return status(root)


def ensure_installed(root: Path) -> list[str]:
    """What ``adaptvc init`` calls: install the hooks unless they already are.

    Returns the changes made, as lines for ``init``'s report; a conflict with the user's
    hooks is reported there rather than failing ``init``.
    """
    if all(s.state == "installed" for s in status(root)):
        return []
    directory = hooks_dir(root)
    top = root.resolve()
    inside = directory.resolve() == top or top in directory.resolve().parents
    if inside and ".git" not in directory.resolve().relative_to(top).parts:
        # core.hooksPath inside the work tree: a directory the team shares through git. Our
        # scripts name this machine's interpreter and would rename the team's own hooks.
        return [
            f"did not install the git hooks: core.hooksPath ({directory.relative_to(top)}) is inside the "
            "repository, shared with your team; `adaptvc hooks install` puts them there anyway (they name "
            "this machine's Python: do not commit them)"
        ]
    try:
        install(root)
    except AdaptvcError as exc:
        return [f"did not install the git hooks: {exc.message} ({exc.hint})"]
    return ["installed the git hooks (adaptvc hooks status)"]
