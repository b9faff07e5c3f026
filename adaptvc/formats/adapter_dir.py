"""A directory in PEFT format, summarised without loading any tensor.

:func:`inspect_adapter` is what ``adaptvc inspect`` prints. For safetensors weights it
reads only the header (no torch). Legacy ``adapter_model.bin`` needs torch
(``weights_only=True``) and is handled by :mod:`adaptvc.formats.legacy_bin`.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from adaptvc.errors import InvalidAdapterError
from adaptvc.formats import CONFIG_NAME, LEGACY_WEIGHTS_NAME, WEIGHTS_NAME
from adaptvc.formats.adapter_config import read_config
from adaptvc.formats.safetensors_header import read_header


@dataclass(frozen=True)
class AdapterInfo:
    """What an adapter directory holds, from its config and its weights' header."""

    path: str
    weights_file: str
    weights_format: str  # "safetensors" or "bin"
    peft_type: str
    task_type: str | None
    r: int | None
    lora_alpha: float | None
    target_modules: list[str] | str | None
    base_model_name_or_path: str | None
    revision: str | None
    use_rslora: bool
    use_dora: bool
    tensor_count: int
    parameter_count: int
    bytes: int
    dtypes: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def weights_path(directory: str | os.PathLike[str]) -> Path:
    """The weights file of an adapter directory: safetensors first, then legacy .bin.

    Raises:
        InvalidAdapterError: neither file exists.
    """
    directory = Path(directory)
    for name in (WEIGHTS_NAME, LEGACY_WEIGHTS_NAME):
        if (directory / name).is_file():
            return directory / name
    raise InvalidAdapterError(
        f"{directory}: no {WEIGHTS_NAME} (or legacy {LEGACY_WEIGHTS_NAME}) in this directory",
        path=str(directory),
        hint="point at a directory written by save_pretrained / adaptvc.save_adapter",
    )


def open_adapter_dir(directory: str | os.PathLike[str]) -> tuple[dict[str, Any], Path]:
    """``(config, weights file)`` of an adapter directory, both validated.

    Raises:
        InvalidAdapterError: no such directory, a bad config, or no weights file.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise InvalidAdapterError(f"{directory}: no such directory", path=str(directory))
    return read_config(directory / CONFIG_NAME), weights_path(directory)


def _target_modules(config: dict[str, Any]) -> list[str] | str | None:
    tm = config.get("target_modules")
    if isinstance(tm, (list, tuple, set)):
        return sorted(tm)
    return tm


def inspect_adapter(directory: str | os.PathLike[str]) -> AdapterInfo:
    """Summarise an adapter directory without loading its tensors.

    Args:
        directory: a folder holding ``adapter_config.json`` and the weights.

    Returns:
        An :class:`AdapterInfo`.

    Raises:
        InvalidAdapterError: a missing or malformed file (the message names it).

    Example:
        >>> inspect_adapter("adapters/task_a").r      # doctest: +SKIP
        16
    """
    directory = Path(directory)
    config, wpath = open_adapter_dir(directory)
    if wpath.name == WEIGHTS_NAME:
        header = read_header(wpath)
        shapes = {name: (t.dtype, t.numel) for name, t in header.tensors.items()}
        fmt = "safetensors"
        nbytes = header.file_size
    else:
        # Imported here: legacy_bin (pickle, the writer) adds ~3 ms to `adaptvc diff`,
        # which imports this module, and only a legacy .bin directory needs it.
        from adaptvc.formats.legacy_bin import load_bin_state_dict

        state = load_bin_state_dict(wpath)
        shapes = {name: (_torch_dtype_name(t.dtype), t.numel()) for name, t in state.items()}
        fmt = "bin"
        nbytes = wpath.stat().st_size
    dtypes: dict[str, int] = {}
    for dtype, _ in shapes.values():
        dtypes[dtype] = dtypes.get(dtype, 0) + 1
    return AdapterInfo(
        path=str(directory),
        weights_file=wpath.name,
        weights_format=fmt,
        peft_type=str(config["peft_type"]),
        task_type=config.get("task_type"),
        r=config.get("r"),
        lora_alpha=config.get("lora_alpha"),
        target_modules=_target_modules(config),
        base_model_name_or_path=config.get("base_model_name_or_path"),
        revision=config.get("revision"),
        use_rslora=bool(config.get("use_rslora", False)),
        use_dora=bool(config.get("use_dora", False)),
        tensor_count=len(shapes),
        parameter_count=sum(n for _, n in shapes.values()),
        bytes=nbytes,
        dtypes=dict(sorted(dtypes.items())),
    )


# torch dtype → safetensors dtype name, so .bin and .safetensors summaries read alike.
_TORCH_TO_ST = {
    "float64": "F64",
    "float32": "F32",
    "float16": "F16",
    "bfloat16": "BF16",
    "int64": "I64",
    "int32": "I32",
    "int16": "I16",
    "int8": "I8",
    "uint8": "U8",
    "bool": "BOOL",
}


def _torch_dtype_name(dtype: Any) -> str:
    name = str(dtype).replace("torch.", "")
    return _TORCH_TO_ST.get(name, name.upper())
