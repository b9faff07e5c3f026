"""The API for making and getting versions: save, checkout, export, alias, resolve."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from adaptvc.manifest import AdapterVersion
from adaptvc.repo import AdapterRepo
from adaptvc.versioning.checkout import checkout_version, export_version, resolve_directory
from adaptvc.versioning.history import set_alias
from adaptvc.versioning.save import parse_metric as _parse_metric
from adaptvc.versioning.save import save_model, save_version

# --- versioning: git + DVC + the manifest (no torch unless a live model is saved) -------


def save(
    model_or_directory: Any = None,
    *,
    adapter: str,
    message: str,
    repo: str | os.PathLike[str] = ".",
    metrics: dict[str, Any] | None = None,
    parent: str | None = None,
    base_model: str | None = None,
) -> AdapterVersion:
    """Save a version of ``adapter``: weights to DVC, config + pointer + manifest to git,
    one commit touching only the adapter's files, an annotated tag ``NAME@vN``.

    Args:
        model_or_directory: ``None`` (the adapter's own directory ``adapters/NAME``), a
            directory in PEFT format (a training output; a folder with ``<name>/``
            subfolders picks ``adapter``'s), or a live PEFT/transformers model (saved
            through :func:`save_adapter` first; needs torch).
        adapter: the adapter's name in the repository.
        message: what this version is.
        repo: a path inside the repository.
        metrics: e.g. ``{"eval_loss": 1.92}``.
        parent: a ref to record as parent instead of the version the workspace is at.
        base_model: overrides the config's ``base_model_name_or_path`` in the base-model link.

    Returns:
        The :class:`~adaptvc.manifest.AdapterVersion`; ``.new`` is False when the content
        was identical to the version the workspace is at (nothing was created).

    Raises:
        InvalidAdapterError: missing/bad files, weights holding base-model tensors.
        NotARepositoryError: not a git repository or adaptvc not initialised.
        LockTimeoutError: another adaptvc process held the lock too long.

    Example:
        >>> adaptvc.save("outputs/checkpoint-500", adapter="task_a", message="epoch 3",
        ...              metrics={"eval_loss": 1.92}).ref                # doctest: +SKIP
        'task_a@v3'
    """
    r = AdapterRepo.open(repo)
    if model_or_directory is None or isinstance(model_or_directory, (str, os.PathLike)):
        return save_version(
            r, adapter, message, source=model_or_directory, metrics=metrics, parent=parent, base_model=base_model
        )
    return save_model(
        r, model_or_directory, adapter=adapter, message=message, metrics=metrics, parent=parent, base_model=base_model
    )


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


def alias(ref: str, name: str, *, repo: str | os.PathLike[str] = ".") -> AdapterVersion:
    """Point ``ADAPTER@name`` (e.g. ``task_a@production``) at ``ref``'s version; the move is
    recorded as a git commit of ``adapters/ADAPTER/aliases.jsonl``."""
    return set_alias(AdapterRepo.open(repo), ref, name)


def parse_metric(text: str) -> tuple[str, Any]:
    """``"eval_loss=1.92"`` → ``("eval_loss", 1.92)`` (``--metric``); non-numbers stay strings.

    See :func:`adaptvc.versioning.save.parse_metric`.
    """
    return _parse_metric(text)
