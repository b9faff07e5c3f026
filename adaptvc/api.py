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

# The public API; ``adaptvc.<name>`` resolves these lazily (see adaptvc/__init__.py).
# Keep one section per concern below and add each new function's name here.
__all__ = [
    # adapter files
    "inspect",
    "convert",
    # live models
    "get_adapter_state_dict",
    "save_adapter",
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
