"""The API for team sharing: DVC remotes, push, pull, clone."""

from __future__ import annotations

import logging
import os

from adaptvc.errors import AdaptvcError
from adaptvc.hooks import install as install_hooks
from adaptvc.repo import CONFIG_FILE, AdapterRepo
from adaptvc.sharing.clone import CloneResult, clone_git, fetch_newest, unborn_note
from adaptvc.sharing.pull import PullResult
from adaptvc.sharing.pull import pull as pull_from
from adaptvc.sharing.push import PushResult
from adaptvc.sharing.push import push as push_versions
from adaptvc.sharing.remotes import (
    add_remote,
    modify_global_remote,
    modify_remote,
    remove_remote,
    set_default_remote,
)
from adaptvc.storage.remotes import RemoteInfo, list_remotes
from adaptvc.versioning.init_repo import init_repo

_log = logging.getLogger("adaptvc")


# --- team sharing: DVC remotes, push / pull / clone, git hooks --------------------------


def remote_add(
    name: str,
    url: str,
    *,
    repo: str | os.PathLike[str] = ".",
    default: bool = False,
    local: bool = False,
    force: bool = False,
) -> RemoteInfo:
    """Add a DVC remote (team config, committed; ``local=True`` for a personal one).

    See :func:`adaptvc.sharing.remotes.add_remote`.
    """
    return add_remote(AdapterRepo.open(repo), name, url, default=default, local=local, force=force)


def remote_list(*, repo: str | os.PathLike[str] = ".") -> list[RemoteInfo]:
    """The DVC remotes, all config levels merged, secrets masked.

    See :func:`adaptvc.storage.remotes.list_remotes`.
    """
    return list_remotes(AdapterRepo.open(repo).root)


def remote_modify(
    name: str,
    key: str,
    value: str | None,
    *,
    repo: str | os.PathLike[str] = ".",
    local: bool = False,
    global_: bool = False,
) -> RemoteInfo | None:
    """Set (``value=None``: unset) one option of a remote; credentials need ``local=True``
    (this clone) or ``global_=True`` (your DVC global config, every clone).

    See :func:`adaptvc.sharing.remotes.modify_remote` (``global_``:
    :func:`~adaptvc.sharing.remotes.modify_global_remote`, which needs no repository and
    returns None).
    """
    if global_:
        modify_global_remote(name, key, value)
        return None
    return modify_remote(AdapterRepo.open(repo), name, key, value, local=local)


def remote_remove(name: str, *, repo: str | os.PathLike[str] = ".") -> None:
    """Remove a DVC remote from the team and personal config.

    See :func:`adaptvc.sharing.remotes.remove_remote`.
    """
    remove_remote(AdapterRepo.open(repo), name)


def remote_default(name: str | None, *, repo: str | os.PathLike[str] = ".", local: bool = False) -> RemoteInfo | None:
    """Make an existing DVC remote the default (committed: ``.dvc/config`` alone);
    ``None`` clears it; ``local=True`` sets a personal default in ``.dvc/config.local``.

    Example:
        >>> adaptvc.remote_default("storage")  # doctest: +SKIP

    See :func:`adaptvc.sharing.remotes.set_default_remote`.
    """
    return set_default_remote(AdapterRepo.open(repo), name, local=local)


def push(
    refs: list[str] | tuple[str, ...] = (),
    *,
    repo: str | os.PathLike[str] = ".",
    remote: str | None = None,
    git_remote: str | None = "origin",
    jobs: int | None = None,
) -> PushResult:
    """Upload the weights to the DVC remote, then push branch + version tags to git.

    A failed upload raises and pushes nothing to git. See :func:`adaptvc.sharing.push.push`.

    Example:
        >>> adaptvc.push()                      # every version of this commit, then origin  # doctest: +SKIP
    """
    return push_versions(AdapterRepo.open(repo), tuple(refs), remote=remote, git_remote=git_remote, jobs=jobs)


def pull(
    *, repo: str | os.PathLike[str] = ".", remote: str | None = None, git_remote: str | None = "origin"
) -> PullResult:
    """Fast-forward from git, then fetch the weights the workspace needs.

    Problems with single versions are warnings on the ``adaptvc`` logger.
    See :func:`adaptvc.sharing.pull.pull`.
    """
    return pull_from(AdapterRepo.open(repo), remote=remote, git_remote=git_remote)


def clone(
    url: str, directory: str | os.PathLike[str] | None = None, *, remote: str | None = None, hooks: bool = True
) -> CloneResult:
    """git clone + per-clone set-up + the weights of the newest version of every adapter.

    The per-clone set-up is what git does not carry over a clone: ``adaptvc init``'s part
    in ``.git/config`` (the merge driver; it commits nothing in an initialised clone)
    and, with ``hooks``, the git hooks. Weights that could not be fetched, and a set-up
    step that failed, are warnings on the ``adaptvc`` logger, not errors: the clone is
    usable and ``adaptvc pull`` retries. See :mod:`adaptvc.sharing.clone`.

    Raises:
        DestinationNotEmptyError: ``directory`` exists and is not an empty directory.
        GitRemoteError: git clone failed.
    """
    path = clone_git(url, directory)
    if (path / CONFIG_FILE).is_file():  # idempotent: commits nothing in an initialised clone
        try:
            init_repo(path)
        except AdaptvcError as exc:
            _log.warning("per-clone set-up (adaptvc init) failed: %s", exc.message)
    if hooks:
        try:
            install_hooks(path)
        except AdaptvcError as exc:
            _log.warning("git hooks not installed: %s", exc.message)
    note = unborn_note(path, url)
    if note is not None:
        _log.warning("%s", note)
        return CloneResult(path)
    try:
        r = AdapterRepo.open(path)
    except AdaptvcError as exc:
        _log.warning("not an adaptvc repository: %s", exc.message)
        return CloneResult(path)
    return CloneResult(path, fetch_newest(r, remote=remote))
