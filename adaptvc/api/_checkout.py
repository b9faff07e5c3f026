"""The API for getting a version's files back: checkout, export, resolve."""

from __future__ import annotations

import os
from pathlib import Path

from adaptvc.manifest import AdapterVersion
from adaptvc.repo import AdapterRepo
from adaptvc.versioning.checkout import checkout_version, export_version, resolve_directory


def checkout(ref: str, *, repo: str | os.PathLike[str] = ".", force: bool = False) -> AdapterVersion:
    """Put ``ref``'s files into the adapter's directory (config from git, weights from the
    DVC cache, hash-checked) without moving HEAD; the next save records it as parent.

    Raises:
        DirtyWorkspaceError: unsaved changes in the directory and not ``force``.
        ObjectMissingError: weights not in the local cache (hint ``adaptvc pull``).
    """
    return checkout_version(AdapterRepo.open(repo), ref, force=force)


def export(
    ref: str, directory: str | os.PathLike[str], *, repo: str | os.PathLike[str] = ".", force: bool = False
) -> Path:
    """Write ``ref``'s ``adapter_config.json`` and ``adapter_model.safetensors`` into ``directory``."""
    return export_version(AdapterRepo.open(repo), ref, directory, force=force)


def resolve(ref: str, *, repo: str | os.PathLike[str] = ".") -> Path:
    """A directory holding ``ref``'s files that ``PeftModel.from_pretrained`` loads, for any
    version, without touching the workspace (built once per clone under ``.git/adaptvc/``).

    Raises:
        InvalidRefError, AdapterNotFoundError, VersionNotFoundError, AmbiguousRefError.
        ObjectMissingError: the weights are not in the local cache (hint ``adaptvc pull``).

    Example:
        >>> PeftModel.from_pretrained(base, adaptvc.resolve("task_a@v2"))   # doctest: +SKIP
    """
    return resolve_directory(AdapterRepo.open(repo), ref)
