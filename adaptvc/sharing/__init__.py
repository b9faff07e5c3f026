"""Team sharing: push, pull and clone through a git remote plus a DVC remote, and the
commands that change the DVC remotes.

The git remote carries configs, ``.dvc`` pointers, manifests and version tags; the DVC
remote carries the weights. The order of operations is what keeps a teammate from ever
seeing a version whose weights are missing:

- ``push`` (:mod:`.push`) uploads the weights first and pushes git only when every
  upload succeeded;
- ``pull`` (:mod:`.pull`) fast-forwards git, then brings the weights the workspace needs;
- ``clone`` (:mod:`.clone`) clones git and fetches the newest version of every adapter;
  the per-clone set-up (merge driver, hooks) between the two is the API's (it sits
  above the hooks). Older versions are fetched on demand by whatever reads them
  (:func:`adaptvc.storage.fetch.ensure_objects`);
- ``remote add/modify/remove/default`` (:mod:`.remotes`) change ``.dvc/config`` and
  commit it through the transaction.

Making the workspace's weights follow the pointers is :mod:`adaptvc.versioning.sync`
(the hooks use it too). Every operation takes an opened :class:`~adaptvc.repo.AdapterRepo`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from adaptvc.errors import DetachedHeadError, RemoteNotFoundError
from adaptvc.manifest import AdapterVersion
from adaptvc.repo import AdapterRepo
from adaptvc.storage import git_ops

# `adaptvc push` has uploaded already when it runs `git push`; `pull` syncs the workspace
# itself after `git pull`. The hook scripts skip themselves for names listed here.
SKIP_HOOKS_ENV = "ADAPTVC_SKIP_HOOKS"


def version_labels(versions: Iterable[AdapterVersion]) -> dict[str, str]:
    """object md5 → the ref to name it by (the first version seen with it), for every DVC
    object of the versions: weights, large companion files, training state."""
    labels: dict[str, str] = {}
    for v in versions:
        for obj in v.objects():
            labels.setdefault(obj.md5, v.ref)
    return labels


def require_git_remote(root: Path, git_remote: str, command: str) -> None:
    """Refuse early, in adaptvc's words, when ``git_remote`` is not configured (git's own
    "does not appear to be a git repository" reads like a network problem).

    Raises:
        RemoteNotFoundError: no git remote of that name (the message lists the others).
    """
    if git_ops.has_git_remote(root, git_remote):
        return
    others = git_ops.git_remotes(root)
    known = f" (git remotes: {', '.join(others)})" if others else ""
    raise RemoteNotFoundError(
        f"there is no git remote {git_remote!r}{known}",
        hint=f"git remote add {git_remote} URL   (or adaptvc {command} --git-remote NAME; "
        f"--no-git {'uploads' if command == 'push' else 'fetches'} only the weights)",
    )


def detached_head(repo: AdapterRepo, command: str) -> DetachedHeadError:
    """The error for ``push``/``pull`` with HEAD detached: in the middle of a rebase the
    way out is to finish it, otherwise to switch to a branch."""
    stopped = git_ops.operation_in_progress(repo.git_dir)
    if stopped is not None and stopped[0] == "rebase":
        return DetachedHeadError(
            f"a git rebase is in progress (HEAD is detached): there is no branch to {command} until it ends",
            command=command,
            hint=f"finish it (git rebase --continue) or abort it (git rebase --abort), then adaptvc {command}",
        )
    return DetachedHeadError(
        f"HEAD is detached: there is no branch to {command}",
        command=command,
        hint=f"git switch BRANCH, then adaptvc {command}",
    )
