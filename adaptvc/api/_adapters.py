"""The API for adapter files and live models: inspect, convert (no repository)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from adaptvc import extract
from adaptvc.formats import legacy_bin
from adaptvc.formats.adapter_dir import AdapterInfo, inspect_adapter

if TYPE_CHECKING:  # pragma: no cover
    import torch


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
    return legacy_bin.convert(directory, keep_bin=keep_bin)


# --- live models (torch) ----------------------------------------------------------------


def get_adapter_state_dict(
    model: Any, adapter_name: str | None = None, *, save_embedding_layers: bool | Literal["auto"] = False
) -> dict[str, torch.Tensor]:
    """Only the adapter's tensors of a live model, keyed exactly as PEFT saves them.

    See :func:`adaptvc.extract.get_adapter_state_dict`.
    """
    return extract.get_adapter_state_dict(model, adapter_name=adapter_name, save_embedding_layers=save_embedding_layers)


def save_adapter(
    model: Any,
    save_directory: str | os.PathLike[str],
    *,
    adapter_name: str | None = None,
    safe_serialization: bool = True,
    save_embedding_layers: bool | Literal["auto"] = False,
) -> Path:
    """Write one adapter of a live model in PEFT format into ``save_directory``.

    See :func:`adaptvc.extract.save_adapter`.
    """
    return extract.save_adapter(
        model,
        save_directory,
        adapter_name=adapter_name,
        safe_serialization=safe_serialization,
        save_embedding_layers=save_embedding_layers,
    )
