"""The adapter's directory in the work tree: which version it is at, and whether it
changed since (``status``). Writing into it goes through :mod:`adaptvc.transaction`."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from adaptvc.errors import AdaptvcError
from adaptvc.formats import CONFIG_NAME, LEGACY_WEIGHTS_NAME, WEIGHTS_NAME
from adaptvc.formats.adapter_config import dumps_config, read_config
from adaptvc.manifest import ALIASES_NAME, MANIFEST_NAME, AdapterVersion, newest
from adaptvc.repo import AdapterRepo
from adaptvc.storage.dvc_cache import POINTER_SUFFIX, read_pointer
from adaptvc.versioning.companions import changed_companions, unknown_files

POINTER_NAME = WEIGHTS_NAME + POINTER_SUFFIX
GITIGNORE_LINE = f"/{WEIGHTS_NAME}"

CLEAN = "clean"
MODIFIED = "modified"
WEIGHTS_MISSING = "weights missing"
NEVER_SAVED = "never saved"
CONFLICT = "merge conflict"  # git left conflict markers in the pointer
DELETED = "deleted"  # the directory is gone from the work tree; its versions are in HEAD


def config_bytes(config: dict[str, Any]) -> bytes:
    """The bytes adaptvc writes and hashes: PEFT's format with sets sorted."""
    return dumps_config(config).encode("utf-8")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def state_record(v: AdapterVersion) -> dict[str, Any]:
    return {"version": v.version, "id": v.id, "created_at": v.created_at, "ref": v.ref}


def workspace_version(repo: AdapterRepo, adapter: str, versions: Sequence[AdapterVersion]) -> AdapterVersion | None:
    """The version the adapter's directory is at.

    The ``.dvc`` pointer in the directory is the truth (save and checkout write it, and
    so do ``git checkout``/``git merge``); the per-clone state picks among versions that
    share its md5. ``None`` when the pointer names no recorded version.
    """
    if not versions:
        return None
    pointer = read_pointer(repo.adapter_dir(adapter) / POINTER_NAME)
    at = repo.state.at(adapter)
    if at:
        for v in versions:
            if (v.version, v.id, v.created_at) == (at.get("version"), at.get("id"), at.get("created_at")):
                if pointer is None or pointer.md5 == v.id:
                    return v
    if pointer is None:
        return None
    same = [v for v in versions if v.id == pointer.md5]
    return newest(same)


@dataclass(frozen=True)
class AdapterStatus:
    """``adaptvc status`` for one adapter."""

    adapter: str
    state: str  # clean | modified | weights missing | never saved | merge conflict | deleted
    version: AdapterVersion | None = None  # the version the directory is at
    latest: AdapterVersion | None = None
    changes: tuple[str, ...] = ()  # e.g. ("weights", "config", "tokenizer.json")
    weights_md5: str | None = None  # of the workspace weights, when they were hashed
    unknown: tuple[str, ...] = ()  # files in the directory that adaptvc does not version

    def to_dict(self) -> dict[str, Any]:
        return {
            "adapter": self.adapter,
            "state": self.state,
            "version": self.version.ref if self.version else None,
            "id": self.version.id if self.version else None,
            "latest": self.latest.ref if self.latest else None,
            "is_latest": bool(self.version and self.latest and self.version == self.latest),
            "changes": list(self.changes),
            "unknown": list(self.unknown),
        }


KNOWN_FILES = {CONFIG_NAME, WEIGHTS_NAME, LEGACY_WEIGHTS_NAME, MANIFEST_NAME, ALIASES_NAME}


def adapter_status(repo: AdapterRepo, adapter: str, versions: Sequence[AdapterVersion]) -> AdapterStatus:
    """The adapter directory's state against the version it is at, and the files in it
    that no version holds (neither adapter files nor companion files by name)."""
    status = _adapter_status(repo, adapter, versions)
    if status.state == DELETED:
        return status
    return replace(status, unknown=tuple(unknown_files(repo, adapter, KNOWN_FILES)))


def _adapter_status(repo: AdapterRepo, adapter: str, versions: Sequence[AdapterVersion]) -> AdapterStatus:
    d = repo.adapter_dir(adapter)
    latest = newest(versions)
    if not versions:
        return AdapterStatus(adapter, NEVER_SAVED)
    if not any((d / f).exists() for f in (MANIFEST_NAME, CONFIG_NAME, POINTER_NAME, WEIGHTS_NAME)):
        # rm -rf adapters/NAME with its versions committed (read from HEAD's tree):
        # nothing to compare; `adaptvc checkout NAME` brings the directory back.
        return AdapterStatus(adapter, DELETED, None, latest, ("directory",))
    try:
        at = workspace_version(repo, adapter, versions)
    except AdaptvcError:  # a pointer with conflict markers, or damaged: no version to compare with
        return AdapterStatus(
            adapter, CONFLICT if _has_conflict(d / POINTER_NAME) else MODIFIED, None, latest, ("pointer",)
        )
    weights = d / WEIGHTS_NAME
    if not weights.is_file():
        return AdapterStatus(adapter, WEIGHTS_MISSING, at, latest, ("weights",))
    changes = []
    md5 = None
    if at is None:
        changes.append("weights")
    else:
        md5, _ = repo.state.md5(weights)
        if md5 != at.id:
            changes.append("weights")
        try:
            if sha256(config_bytes(read_config(d / CONFIG_NAME))) != at.config_sha256:
                changes.append("config")
        except AdaptvcError:
            changes.append("config")
        changes += changed_companions(repo, at)
    return AdapterStatus(adapter, MODIFIED if changes else CLEAN, at, latest, tuple(changes), md5)


def committed_missing_files(repo: AdapterRepo, adapter: str) -> dict[str, bytes]:
    """When the adapter's manifest is gone from the work tree (its directory deleted):
    HEAD's manifest, aliases and ``.gitignore`` that the directory lacks, to write back
    (one git call); ``{}`` when the manifest is there or HEAD has none."""
    d = repo.adapter_dir(adapter)
    if (d / MANIFEST_NAME).exists():
        return {}
    head = repo.committed_files(adapter, (MANIFEST_NAME, ALIASES_NAME, ".gitignore"))
    if head[MANIFEST_NAME] is None:
        return {}
    return {f: data for f, data in head.items() if data is not None and not (d / f).exists()}


def _has_conflict(path: Path) -> bool:
    try:
        return b"<<<<<<< " in path.read_bytes()
    except OSError:
        return False


def ensure_gitignore(path: Path, extra: Sequence[str] = ()) -> bytes | None:
    """The ``.gitignore`` bytes with the weights (and ``extra`` lines: DVC-tracked
    companions, the training state) ignored, as ``dvc add`` writes it; ``None`` when it
    already ignores them."""
    try:
        old = path.read_bytes()
    except FileNotFoundError:
        old = b""
    lines = old.decode("utf-8", errors="replace").splitlines()
    missing = [line for line in dict.fromkeys([GITIGNORE_LINE, *extra]) if line not in lines]
    if not missing:
        return None
    if old and not old.endswith(b"\n"):
        old += b"\n"
    return old + "".join(f"{line}\n" for line in missing).encode()


__all__ = [
    "CLEAN",
    "CONFLICT",
    "DELETED",
    "MODIFIED",
    "NEVER_SAVED",
    "WEIGHTS_MISSING",
    "POINTER_NAME",
    "AdapterStatus",
    "adapter_status",
    "committed_missing_files",
    "config_bytes",
    "ensure_gitignore",
    "sha256",
    "state_record",
    "workspace_version",
    "CONFIG_NAME",
    "LEGACY_WEIGHTS_NAME",
    "WEIGHTS_NAME",
]
