"""The public Python API. The CLI calls only these functions.

Every function takes its subject first and the rest keyword-only, returns values
(frozen dataclasses, paths) and never prints. Heavy libraries (torch, peft, dvc) are
imported inside the functions that need them so that ``import adaptvc`` stays cheap.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adaptvc.formats.adapter_dir import AdapterInfo, inspect_adapter

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from adaptvc.adapter_diff.result import DiffResult
    from adaptvc.storage.remotes import RemoteInfo

# The public API; ``adaptvc.<name>`` resolves these lazily (see adaptvc/__init__.py).
# Keep one section per concern below and add each new function's name here.
__all__ = [
    # adapter files
    "inspect",
    "convert",
    # live models
    "get_adapter_state_dict",
    "save_adapter",
    # team sharing: DVC remotes, push/pull/clone, git hooks
    "remote_add",
    "remote_list",
    "remote_modify",
    "remote_remove",
    # diff
    "diff",
]


# --- reading adapter files (no torch) -------------------------------------------------


def inspect(directory: str | os.PathLike[str]) -> AdapterInfo:
    """Summarise an adapter directory (PEFT type, rank, targets, sizes) without torch.

    See :func:`adaptvc.formats.adapter_dir.inspect_adapter`.
    """
    return inspect_adapter(directory)


def convert(directory: str | os.PathLike[str], *, keep_bin: bool = False) -> Path:
    """Turn a legacy ``adapter_model.bin`` into ``adapter_model.safetensors`` (needs torch).

    See :func:`adaptvc.formats.legacy_bin.convert`.
    """
    from adaptvc.formats.legacy_bin import convert as _impl

    return _impl(directory, keep_bin=keep_bin)


# --- live models (torch) ----------------------------------------------------------------


def get_adapter_state_dict(
    model: Any, adapter_name: str | None = None, *, save_embedding_layers: bool | str = False
) -> dict[str, "torch.Tensor"]:
    """Only the adapter's tensors of a live model, keyed exactly as PEFT saves them.

    See :func:`adaptvc.extract.get_adapter_state_dict`.
    """
    from adaptvc.extract import get_adapter_state_dict as _impl

    return _impl(model, adapter_name=adapter_name, save_embedding_layers=save_embedding_layers)


def save_adapter(
    model: Any,
    save_directory: str | os.PathLike[str],
    *,
    adapter_name: str | None = None,
    safe_serialization: bool = True,
    save_embedding_layers: bool | str = False,
) -> Path:
    """Write one adapter of a live model in PEFT format into ``save_directory``.

    See :func:`adaptvc.extract.save_adapter`.
    """
    from adaptvc.extract import save_adapter as _impl

    return _impl(
        model,
        save_directory,
        adapter_name=adapter_name,
        safe_serialization=safe_serialization,
        save_embedding_layers=save_embedding_layers,
    )


# --- team sharing: DVC remotes, push / pull / clone, git hooks --------------------------


def remote_add(name: str, url: str, *, repo: str | os.PathLike[str] = ".", default: bool = False,
               local: bool = False, force: bool = False) -> "RemoteInfo":
    """Add a DVC remote (team config, committed; ``local=True`` for a personal one).

    See :func:`adaptvc.storage.remotes.add_remote`.
    """
    from adaptvc.storage.remotes import add_remote

    return add_remote(name, url, repo=repo, default=default, local=local, force=force)


def remote_list(*, repo: str | os.PathLike[str] = ".") -> list["RemoteInfo"]:
    """The DVC remotes, all config levels merged, secrets masked.

    See :func:`adaptvc.storage.remotes.list_remotes`.
    """
    from adaptvc.storage.remotes import list_remotes

    return list_remotes(repo)


def remote_modify(name: str, key: str, value: str | None, *, repo: str | os.PathLike[str] = ".",
                  local: bool = False) -> "RemoteInfo":
    """Set (``value=None``: unset) one option of a remote; credentials need ``local=True``.

    See :func:`adaptvc.storage.remotes.modify_remote`.
    """
    from adaptvc.storage.remotes import modify_remote

    return modify_remote(name, key, value, repo=repo, local=local)


def remote_remove(name: str, *, repo: str | os.PathLike[str] = ".") -> None:
    """Remove a DVC remote from the team and personal config.

    See :func:`adaptvc.storage.remotes.remove_remote`.
    """
    from adaptvc.storage.remotes import remove_remote

    remove_remote(name, repo=repo)


# --- diff (numpy, no torch, no base model) ----------------------------------------------


def diff(
    a: str | os.PathLike[str],
    b: str | os.PathLike[str] | None = None,
    *,
    repo: str | os.PathLike[str] = ".",
    force: bool = False,
) -> "DiffResult":
    """Compare two adapters layer by layer, without the base model.

    Compares the effective LoRA updates ``ΔW = s·B·A`` (never the raw factors, which are
    only defined up to ``B·M, M⁻¹·A``) from r×r products in float64, streaming the
    memory-mapped weights module by module; other tensors (``modules_to_save``, biases,
    DoRA magnitudes, non-LoRA PEFT types) elementwise. See docs/diff.md.

    Args:
        a: a ref (``task_a@v2``) or a directory in PEFT format.
        b: the same; default: the workspace (unsaved) state of ``a``'s adapter.
        repo: the repository refs are resolved in.
        force: compare even when the base models differ.

    Returns:
        A :class:`~adaptvc.adapter_diff.result.DiffResult`: ``config`` changes, per-module
        ``modules`` (norms, distance, relative change, cosine), elementwise ``tensors``,
        ``summary`` (totals, added/removed/reshaped, base-model check); ``.top(n)``,
        ``.to_dict()`` (the ``--json`` document) and ``.plot(path)``.

    Raises:
        BaseModelMismatchError: recorded base models differ and ``force`` is False.
        InvalidAdapterError: unreadable or inconsistent adapter files.
        InvalidRefError, AdapterNotFoundError, VersionNotFoundError: a bad ref.

    Example:
        >>> r = adaptvc.diff("task_a@v2", "task_a@v3")          # doctest: +SKIP
        >>> [(m.module, round(m.relative, 3)) for m in r.top(3)]  # doctest: +SKIP
    """
    from adaptvc.adapter_diff import diff_adapters

    return diff_adapters(a, b, repo=repo, force=force)
