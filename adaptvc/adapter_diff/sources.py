"""What a diff compares: a plain PEFT directory or a saved version, as config + weights.

An argument that is an existing directory holding ``adapter_config.json`` is read as a
directory (write ``./task_a`` to force that reading); anything else is a ref of the
versioning core (``task_a``, ``task_a@v3``, ``task_a@<id>``, ``task_a@<alias>``).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adaptvc.base_model import base_model_dict
from adaptvc.errors import InvalidAdapterError, InvalidRefError
from adaptvc.formats import CONFIG_NAME, WEIGHTS_NAME
from adaptvc.formats.adapter_dir import open_adapter_dir
from adaptvc.formats.companions import DEFAULT_COMPANIONS, find_files

if TYPE_CHECKING:  # pragma: no cover
    from adaptvc.manifest import AdapterVersion
    from adaptvc.repo import AdapterRepo

# The repository model (adaptvc.repo, .refs, .storage.fetch) is imported only when a side
# is a saved version or the workspace: `adaptvc diff DIR_A DIR_B` would otherwise pay
# ~15 ms for modules it never uses (python -X importtime; docs/benchmarks.md).


@dataclass(frozen=True)
class AdapterSource:
    """One side of a diff.

    Attributes:
        label: what the user typed (a ref or a path), echoed in the result.
        origin: where it was read from, for people.
        directory: the adapter directory (for a saved version: its place in the repo).
        weights: the safetensors file to read (for a saved version, possibly the DVC
            cache object itself, which is read in place).
        config: the parsed ``adapter_config.json``.
        base_model: ``name_or_path``, ``revision`` and ``fingerprint`` (None if unknown);
            for a saved version also ``config_name``, the config's own
            ``base_model_name_or_path`` when ``save --base-model`` recorded another.
    """

    label: str
    directory: Path
    weights: Path
    config: dict[str, Any]
    base_model: dict[str, Any] = field(default_factory=dict)
    origin: str = ""  # for people: the directory, or "saved version <id>: <message>"
    companions: Mapping[str, Callable[[], bytes]] = field(default_factory=dict)  # name -> its bytes


def _base_from_config(config: dict[str, Any]) -> dict[str, Any]:
    return {
        "name_or_path": config.get("base_model_name_or_path"),
        "revision": config.get("revision"),
        "fingerprint": None,
    }


def is_adapter_directory(path: Path) -> bool:
    return path.is_dir() and (path / CONFIG_NAME).is_file()


def directory_source(path: str | os.PathLike[str], *, label: str | None = None) -> AdapterSource:
    """A plain directory in PEFT format.

    Raises:
        InvalidAdapterError: no config, no weights, or only a legacy ``.bin``.
    """
    directory = Path(path)
    checked = open_adapter_dir(directory, safetensors_only=True)
    config, weights = checked.config, checked.weights
    # The same link `save` records: with a fingerprint when the base model is on disk, so
    # a workspace or a plain directory is checked as strictly as a saved version.
    return AdapterSource(
        label=label or str(path),
        directory=directory,
        weights=weights,
        config=config,
        base_model=base_model_dict(config),
        origin=str(directory),
        companions={name: p.read_bytes for name, p in find_files(directory, DEFAULT_COMPANIONS).items()},
    )


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
            raise InvalidAdapterError(
                f"{text}: no {CONFIG_NAME} in this directory; not a PEFT adapter",
                path=text,
                hint="point at a directory written by save_pretrained",
            )
        raise InvalidAdapterError(f"{text}: no such directory", path=text)
    return _version_source(text, repo=repo)


def _version_source(ref: str, *, repo: str | os.PathLike[str]) -> AdapterSource:
    """A saved version, read in place: weights from the DVC cache object, config from git.

    Nothing is copied or linked (``adaptvc.resolve`` would build a directory under
    ``.git/adaptvc/``); the cache object is read-only and memory-mapped like any file.
    Objects missing locally are fetched from the DVC remote when one is configured; a
    damaged one is refused (``CorruptObjectError``), rehashed only when the record of
    verified objects (:mod:`adaptvc.storage.verified`) does not vouch for it.
    """
    from adaptvc.refs import resolve_version  # lazily: see the note at the top
    from adaptvc.repo import AdapterRepo
    from adaptvc.storage.fetch import ensure_versions

    adapter_repo = AdapterRepo.open(repo)
    version = resolve_version(adapter_repo, ref, with_commit=False)
    ensure_versions(adapter_repo, [version], training_state=False)
    return version_source(adapter_repo, version, label=ref)


def version_source(adapter_repo: AdapterRepo, version: AdapterVersion, *, label: str) -> AdapterSource:
    """A saved version whose weights are in the local cache (see :func:`_version_source`)."""
    from adaptvc.storage.verified import VerifiedRecord, check_objects  # lazily: see the note at the top

    # Read in place, so checked here: rehashed unless the verified record vouches for it.
    check_objects(
        adapter_repo.dvc_cache, VerifiedRecord(adapter_repo.state_dir), [version.id], labels={version.id: version.ref}
    )
    try:
        config = json.loads(adapter_repo.version_config(version))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidAdapterError(f"{version.ref}: adapter_config.json in git is not valid JSON ({exc})") from None
    directory = (
        adapter_repo.root / version.directory if version.directory else adapter_repo.adapter_dir(version.adapter)
    )
    base = version.base_model.to_dict()
    if not base.get("name_or_path"):
        base = _base_from_config(config)
    # `save --base-model` may have recorded another name than the config's; both name it.
    base["config_name"] = config.get("base_model_name_or_path")
    return AdapterSource(
        label=label,
        directory=directory,
        weights=adapter_repo.dvc_cache.object_path(version.id),
        config=config,
        base_model=base,
        origin=f"saved version {version.id[:12]}: {version.message.splitlines()[0] if version.message else ''}",
        companions={
            c.name: (
                functools.partial(adapter_repo.git_blob, c.git_blob, sha256=c.sha256)
                if c.storage == "git"
                else adapter_repo.dvc_cache.object_path(c.md5).read_bytes
            )
            for c in version.companions
        },
    )


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
    from adaptvc.refs import parse_ref  # lazily: see the note at the top
    from adaptvc.repo import AdapterRepo

    name = parse_ref(text).adapter
    adapter_repo = AdapterRepo.open(repo)
    directory = adapter_repo.adapter_dir(name)
    if not (directory / WEIGHTS_NAME).is_file():
        raise InvalidAdapterError(
            f"{adapter_repo.rel(directory)}: no {WEIGHTS_NAME} in the workspace to compare {text} with",
            path=str(directory),
            hint=f"adaptvc checkout {name}   (or give REF_B)",
        )
    source = directory_source(directory, label=f"{name} (workspace)")
    found = find_files(directory, adapter_repo.config.companion_files)  # the repository's names
    return replace(source, companions={n: p.read_bytes for n, p in found.items()})
