"""Making sure the DVC objects a command needs are in the local cache.

Every reader of cache objects (``checkout``, ``export``, ``resolve``, ``diff``) calls
:func:`ensure_objects` first. Objects missing from the cache are handed to
:func:`fetch_missing`, the one place that may fetch them (from the default DVC remote,
through :mod:`adaptvc.storage.transfer`); whatever is still missing afterwards is an
:class:`~adaptvc.errors.ObjectMissingError` naming the versions.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

from adaptvc.errors import (
    CorruptObjectError,
    DiskFullError,
    ObjectMissingError,
    RemoteAccessError,
    RemoteNotFoundError,
    VersionPrunedError,
)
from adaptvc.storage.dvc_cache import DvcCache


class ObjectStore(Protocol):
    """Where objects are wanted: a repository's root (its DVC remotes) and its local
    cache (an :class:`~adaptvc.repo.AdapterRepo`, which sits above storage)."""

    @property
    def root(self) -> Path: ...

    @property
    def dvc_cache(self) -> DvcCache: ...


def fetch_missing(repo: ObjectStore, md5s: list[str]) -> bool:
    """Try to bring ``md5s`` into the local cache from the default DVC remote; ``False``
    when no DVC remote is configured.

    Every object is MD5-checked before it enters the cache (see
    :mod:`adaptvc.storage.transfer`). With no DVC remote configured, nothing happens and
    :func:`ensure_objects` reports what is missing; objects the remote lacks are
    reported the same way. A remote that cannot be reached, or fails part-way, raises
    ``RemoteAccessError`` naming it; a damaged copy there, ``CorruptObjectError``; a full
    disk under the cache, ``DiskFullError``.
    """
    try:
        # Imported here: the transfer machinery (remote config through configobj, thread
        # pools) is needed only when an object is missing, not by every checkout or diff
        # of cached versions (~5 ms of their start-up).
        from adaptvc.storage.transfer import fetch_objects

        result = fetch_objects(repo.root, md5s)
    except RemoteNotFoundError:
        return False  # no remote: the caller's error names the versions and says `adaptvc remote add`
    # Objects the remote lacks are the caller's to report (it names the versions); any
    # other failure (the remote went away, a damaged copy there) is said as it is.
    failed = {m: exc for m, exc in result.failed.items() if not isinstance(exc, ObjectMissingError)}
    if failed:
        md5, exc = sorted(failed.items())[0]
        if isinstance(exc, CorruptObjectError):
            raise exc
        if any(_disk_full(e) for e in failed.values()):
            raise DiskFullError(
                f"no space left in the DVC cache ({repo.dvc_cache.path}) for the weights fetched from DVC remote "
                f"{result.remote!r}; nothing partial was kept",
                errno=errno.ENOSPC,
                path=str(repo.dvc_cache.path),
                hint="free some space there (or move the cache: dvc cache dir --local DIR), then run the same "
                "command again",
            )
        raise RemoteAccessError(
            f"fetching weights from DVC remote {result.remote!r} failed ({len(failed)} object(s)): {exc.message}",
            remote=result.remote,
            hint="run the same command again once the remote answers (what was fetched is kept); "
            f"check it with: adaptvc verify --remote {result.remote}",
        )
    return True


def _disk_full(exc: BaseException) -> bool:
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    return isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT)


def ensure_objects(repo: ObjectStore, md5s: Iterable[str], *, labels: Mapping[str, str] | None = None) -> None:
    """Make sure every object in ``md5s`` is in the local DVC cache.

    Args:
        repo: the open repository.
        md5s: weights md5s (a version's ``id``).
        labels: md5 → what to call it in the error (``"task_a@v2"``).

    Raises:
        ObjectMissingError: some objects could not be found or fetched.
    """
    cache = repo.dvc_cache
    missing = [m for m in dict.fromkeys(md5s) if not cache.has(m)]
    if not missing:
        return
    has_remote = fetch_missing(repo, missing)
    still = [m for m in missing if not cache.has(m)]
    if still:
        labels = labels or {}
        names = ", ".join(labels.get(m, m) for m in still)
        if has_remote:
            where, hint = "nor on the DVC remote", "adaptvc pull (or ask whoever saved it to run adaptvc push)"
        else:
            where = "and no DVC remote is configured to fetch them from"
            hint = "adaptvc remote add NAME URL --default (where the team pushes weights), then run this again"
        raise ObjectMissingError(
            f"weights of {names} are not in the local cache ({cache.path}) {where}",
            md5s=tuple(still),
            hint=hint,
        )


class PruneMark(Protocol):
    """Why a version's weights are gone (a :class:`~adaptvc.manifest.PruneRecord`)."""

    @property
    def pruned_at(self) -> str: ...

    @property
    def by(self) -> str: ...

    @property
    def policy(self) -> str: ...


class StoredVersion(Protocol):
    """What fetching needs of a version (an :class:`~adaptvc.manifest.AdapterVersion`)."""

    @property
    def ref(self) -> str: ...

    @property
    def id(self) -> str: ...

    @property
    def pruned(self) -> PruneMark | None: ...


def ensure_versions(repo: ObjectStore, versions: Iterable[StoredVersion]) -> None:
    """:func:`ensure_objects` for :class:`~adaptvc.manifest.AdapterVersion` objects.

    Raises:
        VersionPrunedError: a version marked pruned (``adaptvc gc``) whose weights are not
            in the local cache: no remote is asked, the prune record says why.
        ObjectMissingError: as :func:`ensure_objects`.
    """
    versions = list(versions)
    for v in versions:
        if v.pruned is not None and not repo.dvc_cache.has(v.id):
            raise VersionPrunedError(
                f"the weights of {v.ref} were pruned on {v.pruned.pruned_at[:10]} by {v.pruned.by} "
                f"(adaptvc gc, policy: {v.pruned.policy})",
                ref=v.ref,
                pruned_at=v.pruned.pruned_at,
                by=v.pruned.by,
                policy=v.pruned.policy,
                md5s=(v.id,),
                hint=f"its config, metrics and lineage remain: adaptvc show {v.ref}",
            )
    ensure_objects(repo, [v.id for v in versions], labels={v.id: v.ref for v in versions})
