"""The API for looking at versions (log, show, status) and naming them (alias): what
most commands run, so this module imports only what reading versions needs."""

from __future__ import annotations

import os

from adaptvc.manifest import AdapterVersion
from adaptvc.repo import AdapterRepo
from adaptvc.versioning.history import log_versions, set_alias, show_version
from adaptvc.versioning.history import status as adapter_statuses
from adaptvc.versioning.workspace import AdapterStatus


def log(adapter: str | None = None, *, repo: str | os.PathLike[str] = ".") -> list[AdapterVersion]:
    """Versions newest first (all adapters, grouped by adapter, when ``adapter`` is None).

    Example:
        >>> [v.ref for v in adaptvc.log("task_a")]                       # doctest: +SKIP
        ['task_a@v3', 'task_a@v2', 'task_a@v1']
    """
    return log_versions(AdapterRepo.open(repo), adapter)


def show(ref: str, *, repo: str | os.PathLike[str] = ".") -> AdapterVersion:
    """One version in full (``commit`` filled in). Raises as :func:`resolve`."""
    return show_version(AdapterRepo.open(repo), ref)


def status(*, repo: str | os.PathLike[str] = ".") -> list[AdapterStatus]:
    """Per adapter: the version its directory is at and ``state`` (``clean``, ``modified``,
    ``weights missing``, ``never saved``, ``merge conflict``, ``deleted``)."""
    return adapter_statuses(AdapterRepo.open(repo))


def alias(ref: str, name: str, *, repo: str | os.PathLike[str] = ".") -> AdapterVersion:
    """Point ``ADAPTER@name`` (e.g. ``task_a@production``) at ``ref``'s version; the move is
    recorded as a git commit of ``adapters/ADAPTER/aliases.jsonl``."""
    return set_alias(AdapterRepo.open(repo), ref, name)
