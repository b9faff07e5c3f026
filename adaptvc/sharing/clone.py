"""``clone``: ``git clone``, then the weights of the newest version of every adapter.

The steps are separate functions because the per-clone set-up goes between them
(``adaptvc init``'s merge driver and the git hooks: git does not carry ``.git/config``
or hooks over a clone), and that set-up belongs to a layer above this one; the API
composes them: :func:`clone_git` → set-up → :func:`unborn_note` → open →
:func:`fetch_newest`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adaptvc.errors import AdaptvcError, DestinationNotEmptyError, GitRemoteError
from adaptvc.manifest import AdapterVersion, newest
from adaptvc.repo import AdapterRepo
from adaptvc.sharing import version_labels
from adaptvc.storage import git_ops
from adaptvc.storage.transfer import fetch_objects, use_remote
from adaptvc.versioning.sync import sync_workspace

log = logging.getLogger("adaptvc")


@dataclass(frozen=True)
class CloneResult:
    """The new clone and the versions whose weights were fetched (warnings went to the
    ``adaptvc`` logger)."""

    path: Path
    fetched: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        # "warnings": the CLI's --json document lists the logged ones here.
        return {"path": str(self.path), "fetched": list(self.fetched), "warnings": []}


def clone_git(url: str, directory: str | os.PathLike[str] | None = None) -> Path:
    """``git clone -q URL [DIRECTORY]``; the clone's absolute path.

    Raises:
        DestinationNotEmptyError: the target exists and is not an empty directory.
        GitRemoteError: git clone failed.
    """
    target = Path(directory) if directory is not None else Path(_clone_dir_name(url))
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        _refuse_clone_target(url, target)  # before git: no network round trip for a typo'd path
    proc = git_ops.clone(url, os.fspath(directory) if directory is not None else None)
    if proc.returncode != 0:
        text = git_ops.output_text(proc)
        # git ran under LC_ALL=C (git_ops.run): its English words whatever the locale.
        if "already exists and is not an empty directory" in text:
            _refuse_clone_target(url, target)
        raise GitRemoteError(
            f"git clone {url} failed: {text}", command="clone", remote=url, stderr=text, hint="git ls-remote " + url
        )
    return target.resolve()


def _refuse_clone_target(url: str, target: Path) -> None:
    what = "is not a directory" if not target.is_dir() else "is not empty"
    raise DestinationNotEmptyError(
        f"{target} already exists and {what}",
        path=str(target),
        hint=f"pick another directory: adaptvc clone {url} NEW-DIR",
    )


def _clone_dir_name(url: str) -> str:
    name = url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return name[:-4] if name.endswith(".git") else name


def unborn_note(path: Path, url: str) -> str | None:
    """What to tell when the clone has no commit checked out (``None`` when it has one):
    the remote has no commits at all, or its default branch has none (naming the others)."""
    if git_ops.head_commit(path) is not None:
        return None
    branches = git_ops.remote_branches(path)
    if not branches:
        return (
            f"{url} has no commits yet: the clone is empty, nothing to fetch (to start the project: "
            "adaptvc init in the clone, save a version, adaptvc push)"
        )
    return (
        f"the default branch of {url} has no commits yet; its branches: {', '.join(branches)} "
        f"(git switch {branches[0]}, in {path})"
    )


def fetch_newest(repo: AdapterRepo, *, remote: str | None = None) -> tuple[str, ...]:
    """Fetch the weights of the newest version of every adapter, then make the workspace's
    weights match the pointers. Returns the versions whose weights are in the cache
    (sorted). What could not be fetched is a warning, not an error: the clone is usable
    and ``adaptvc pull`` retries."""
    latest: dict[str, AdapterVersion] = {}
    for name in repo.list_adapters():
        v = newest(repo.versions(name))
        if v is not None:
            latest[name] = v
    fetched: list[str] = []
    if latest:
        labels = version_labels(latest.values())
        try:
            result = fetch_objects(repo.root, list(labels), remote=remote)
            fetched = list(dict.fromkeys(labels[m] for m in (*result.transferred, *result.skipped)))
            for m, exc in sorted(result.failed.items()):
                log.warning("%s: weights not fetched: %s", labels[m], exc.message)
        except AdaptvcError as exc:
            log.warning("weights not fetched: %s", exc.message + (f" ({exc.hint})" if exc.hint else ""))
    with use_remote(remote):
        sync_workspace(repo)
    return tuple(sorted(fetched))
