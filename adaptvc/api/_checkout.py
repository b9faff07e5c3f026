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
    ref: str,
    directory: str | os.PathLike[str],
    *,
    repo: str | os.PathLike[str] = ".",
    force: bool = False,
    training_state: bool = False,
) -> Path:
    """Write ``ref``'s ``adapter_config.json``, ``adapter_model.safetensors`` and companion
    files into ``directory``; with ``training_state``, also the training state saved with
    it, so that ``trainer.train(resume_from_checkpoint=directory)`` resumes from ``ref``.

    Raises:
        DestinationNotEmptyError: adapter files already there and not ``force``.
        TrainingStateMissingError: ``training_state`` and ``ref`` was saved without it.

    Example:
        >>> trainer.train(resume_from_checkpoint=adaptvc.export("task_a@v6", "resume",
        ...               training_state=True))                            # doctest: +SKIP
    """
    return export_version(AdapterRepo.open(repo), ref, directory, force=force, training_state=training_state)


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
