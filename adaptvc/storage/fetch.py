"""Making sure the DVC objects a command needs are in the local cache.

Every reader of cache objects (``checkout``, ``export``, ``resolve``, ``diff``) calls
:func:`ensure_objects` first. Objects missing from the cache are handed to
:func:`fetch_missing`, the one place that may fetch them (from the default DVC remote,
through :mod:`adaptvc.storage.transfer`); whatever is still missing afterwards is an
:class:`~adaptvc.errors.ObjectMissingError` naming the versions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

from adaptvc.errors import ObjectMissingError, RemoteNotFoundError
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
    reported the same way. A remote that cannot be reached raises ``RemoteError``.
    """
    try:
        # Imported here: the transfer machinery (remote config through configobj, thread
        # pools) is needed only when an object is missing, not by every checkout or diff
        # of cached versions (~5 ms of their start-up).
        from adaptvc.storage.transfer import fetch_objects

        fetch_objects(repo.root, md5s)
    except RemoteNotFoundError:
        return False  # no remote: the caller's error names the versions and says `adaptvc remote add`
    return True


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


def ensure_versions(repo: ObjectStore, versions: Iterable[object], *, training_state: bool = True) -> None:
    """:func:`ensure_objects` for every object of :class:`~adaptvc.manifest.AdapterVersion`
    objects (``version.objects()``: weights, large companion files, training state;
    ``training_state=False`` leaves the last out, for readers that only load the adapter)."""
    labels: dict[str, str] = {}
    for v in versions:
        for obj in v.objects():  # type: ignore[attr-defined]
            if training_state or obj.kind != "training_state":
                labels.setdefault(obj.md5, v.ref if obj.kind == "weights" else f"{v.ref} {obj.name}")  # type: ignore[attr-defined]
    ensure_objects(repo, list(labels), labels=labels)
