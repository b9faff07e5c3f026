"""The API for adaptvc's git hooks: install, uninstall, status, run."""

from __future__ import annotations

import os

from adaptvc.hooks import HookStatus
from adaptvc.hooks import install as install_hooks
from adaptvc.hooks import status as hooks_state
from adaptvc.hooks import uninstall as uninstall_hooks
from adaptvc.hooks.actions import HookOutcome, git_input_from_pre_commit
from adaptvc.hooks.actions import run as run_hook
from adaptvc.repo import AdapterRepo
from adaptvc.sharing import SKIP_HOOKS_ENV


def hooks_install(*, repo: str | os.PathLike[str] = ".") -> list[HookStatus]:
    """Install adaptvc's git hooks, keeping and chaining existing ones. See :mod:`adaptvc.hooks`."""
    return install_hooks(AdapterRepo.open(repo, require_init=False).root)


def hooks_uninstall(*, repo: str | os.PathLike[str] = ".") -> list[HookStatus]:
    """Remove adaptvc's git hooks and restore the hooks they replaced."""
    return uninstall_hooks(AdapterRepo.open(repo, require_init=False).root)


def hooks_status(*, repo: str | os.PathLike[str] = ".") -> list[HookStatus]:
    """The state of each of adaptvc's git hooks."""
    return hooks_state(AdapterRepo.open(repo, require_init=False).root)


def hooks_run(
    name: str, args: list[str] | tuple[str, ...], *, repo: str | os.PathLike[str] = ".", stdin: str = ""
) -> HookOutcome:
    """Run one git hook (``adaptvc hooks run NAME ARGS...``, called by the hook scripts
    with git's arguments and, for pre-push and post-rewrite, git's stdin).

    Does nothing for a hook named in ``ADAPTVC_SKIP_HOOKS`` (comma-separated, or ``all``):
    ``adaptvc push`` and ``pull`` run git with it set for the work they do themselves.
    Run by the pre-commit framework (``PRE_COMMIT=1``, no arguments), git's arguments and
    stdin are rebuilt from its ``PRE_COMMIT_*`` variables.

    See :func:`adaptvc.hooks.actions.run`.
    """
    skipped = {part.strip() for part in os.environ.get(SKIP_HOOKS_ENV, "").split(",")}
    if name in skipped or "all" in skipped:
        return HookOutcome()
    # Opened whether or not adaptvc is initialised: pre-commit guards any repository.
    avc = AdapterRepo.open(repo, require_init=False)
    args = list(args)
    if not args and os.environ.get("PRE_COMMIT") == "1":
        args, stdin = git_input_from_pre_commit(name, os.environ, avc.root)
    return run_hook(name, args, avc, stdin=stdin)
