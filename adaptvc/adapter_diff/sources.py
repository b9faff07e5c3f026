"""What a diff compares: a plain PEFT directory or a saved version, as config + weights.

An argument that is an existing directory holding ``adapter_config.json`` is read as a
directory (write ``./task_a`` to force that reading); anything else is a ref of the
versioning core (``task_a``, ``task_a@v3``, ``task_a@<id>``, ``task_a@<alias>``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adaptvc.errors import InvalidAdapterError, InvalidRefError
from adaptvc.formats import CONFIG_NAME, LEGACY_WEIGHTS_NAME, WEIGHTS_NAME
from adaptvc.formats.adapter_config import read_config
from adaptvc.formats.adapter_dir import weights_path


@dataclass(frozen=True)
class AdapterSource:
    """One side of a diff.

    Attributes:
        label: what the user typed (a ref or a path), echoed in the result.
        directory: the adapter directory (for a saved version: its place in the repo).
        weights: the safetensors file to read (for a saved version, possibly the DVC
            cache object itself, which is read in place).
        config: the parsed ``adapter_config.json``.
        base_model: ``name_or_path``, ``revision`` and ``fingerprint`` (None if unknown).
    """

    label: str
    directory: Path
    weights: Path
    config: dict[str, Any]
    base_model: dict[str, Any] = field(default_factory=dict)


def _base_from_config(config: dict[str, Any]) -> dict[str, Any]:
    return {"name_or_path": config.get("base_model_name_or_path"), "revision": config.get("revision"), "fingerprint": None}


def is_adapter_directory(path: Path) -> bool:
    return path.is_dir() and (path / CONFIG_NAME).is_file()


def directory_source(path: str | os.PathLike[str], *, label: str | None = None) -> AdapterSource:
    """A plain directory in PEFT format.

    Raises:
        InvalidAdapterError: no config, no weights, or only a legacy ``.bin``.
    """
    directory = Path(path)
    if not directory.is_dir():
        raise InvalidAdapterError(f"{directory}: no such directory", path=str(directory))
    config = read_config(directory / CONFIG_NAME)
    weights = weights_path(directory)
    if weights.name == LEGACY_WEIGHTS_NAME:
        raise InvalidAdapterError(
            f"{directory}: only a legacy {LEGACY_WEIGHTS_NAME}; diff reads {WEIGHTS_NAME} (memory-mapped, no torch)",
            path=str(directory),
            hint=f"adaptvc convert {directory}",
        )
    return AdapterSource(label=label or str(path), directory=directory, weights=weights, config=config,
                         base_model=_base_from_config(config))


def resolve_source(ref: str, *, repo: str | os.PathLike[str] = ".") -> AdapterSource:
    """A directory or a ref → :class:`AdapterSource`.

    Raises:
        InvalidAdapterError, InvalidRefError, AdapterNotFoundError, VersionNotFoundError.
    """
    text = str(ref)
    candidates = [Path(text).expanduser()]
    if not Path(text).is_absolute():
        candidates.append(Path(repo) / text)
    for cand in candidates:
        if is_adapter_directory(cand):
            return directory_source(cand, label=text)
    looks_like_path = os.sep in text or text.startswith(".") or (os.altsep is not None and os.altsep in text)
    if looks_like_path:
        if candidates[0].is_dir():
            raise InvalidAdapterError(f"{text}: no {CONFIG_NAME} in this directory; not a PEFT adapter",
                                      path=text, hint="point at a directory written by save_pretrained")
        raise InvalidAdapterError(f"{text}: no such directory", path=text)
    return _version_source(text, repo=repo)


def _version_source(ref: str, *, repo: str | os.PathLike[str]) -> AdapterSource:
    """A saved version: its weights read straight from the DVC cache when possible."""
    try:
        from adaptvc import api
        resolve = getattr(api, "resolve")
    except (ImportError, AttributeError):
        raise InvalidRefError(
            f"{ref}: not an adapter directory (and refs need adaptvc's versioning core, not available here)",
            hint="pass a directory holding adapter_config.json",
        ) from None
    directory = Path(resolve(ref, repo=repo))
    source = directory_source(directory, label=ref)
    return source


def workspace_source(ref: str, *, repo: str | os.PathLike[str] = ".") -> AdapterSource:
    """The workspace (unsaved) state of the adapter ``ref`` names: ``adapters/<name>/``.

    Raises:
        InvalidRefError: ``ref`` is a directory (a directory has no workspace to compare with).
    """
    text = str(ref)
    if is_adapter_directory(Path(text).expanduser()) or os.sep in text:
        raise InvalidRefError(
            f"{text} is a directory; give the second adapter to compare it with",
            hint=f"adaptvc diff {text} OTHER_DIRECTORY_OR_REF",
        )
    from adaptvc.refs import parse_ref

    name = parse_ref(text).adapter
    directory = _workspace_directory(name, repo=repo)
    return directory_source(directory, label=f"{name} (workspace)")


def _workspace_directory(name: str, *, repo: str | os.PathLike[str]) -> Path:
    return Path(repo) / "adapters" / name
