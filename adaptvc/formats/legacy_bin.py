"""Legacy ``adapter_model.bin``: read it without running its code, convert it to safetensors.

Before safetensors, PEFT saved adapters with ``torch.save`` — a pickle, and unpickling
can call any function the file names (``os.system`` included). adaptvc therefore reads
``.bin`` files only through ``torch.load(weights_only=True)``, torch's restricted
unpickler that accepts tensors and plain containers and refuses everything else, and
never writes them unless asked (``save_adapter(..., safe_serialization=False)``).

``convert`` replaces the pickle by ``adapter_model.safetensors`` (the file PEFT loads
first). It removes the ``.bin`` afterwards, unless ``keep_bin=True``, but only after
reading the new file back and checking every tensor is identical: two weight files in
one adapter directory invite loading or versioning the wrong one, and the pickle is the
unsafe one.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING

from adaptvc.errors import (
    CorruptObjectError,
    DestinationNotEmptyError,
    InvalidAdapterError,
    MissingDependencyError,
    UnsafeFileError,
)
from adaptvc.formats import CONFIG_NAME, LEGACY_WEIGHTS_NAME, WEIGHTS_NAME
from adaptvc.formats.adapter_config import read_config
from adaptvc.formats.writer import write_state_dict

if TYPE_CHECKING:  # pragma: no cover
    import torch


def _import_torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is an extra
        raise MissingDependencyError("torch", extra="torch", purpose=f"reading legacy {LEGACY_WEIGHTS_NAME}") from None
    return torch


def load_bin_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Load a legacy ``adapter_model.bin`` safely, on CPU.

    Args:
        path: the ``.bin`` file.

    Returns:
        ``{name: tensor}``.

    Raises:
        UnsafeFileError: the pickle references a function or class (it would run code).
        InvalidAdapterError: missing, truncated or not a torch file, or not a flat
            ``{str: Tensor}`` mapping.

    Example:
        >>> load_bin_state_dict("old/adapter_model.bin")            # doctest: +SKIP
        {'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': tensor(...), ...}
    """
    torch = _import_torch()
    path = Path(path)
    if not path.is_file():
        raise InvalidAdapterError(f"{path}: no such file", path=str(path))
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Weights only load failed" in text and "GLOBAL " in text:
            # The pickle names a function or class to call: that is what runs code.
            # (Other weights_only failures, e.g. "Unsupported operand", are just bad bytes.)
            # torch's message is a page long; keep the line that names the culprit.
            culprit = next((ln.strip() for ln in text.splitlines() if "GLOBAL " in ln), "").split(". ")[0]
            raise UnsafeFileError(
                f"{path}: refused: this pickle would run code when loaded" + (f" ({culprit})" if culprit else ""),
                path=str(path),
                hint="only load it if you trust its author; otherwise re-save the adapter from the model",
            ) from None
        first = (text.splitlines() or [""])[0].split(". ")[0] or type(exc).__name__
        raise InvalidAdapterError(f"{path}: truncated or not a torch file ({first})", path=str(path)) from None
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError, KeyError, EOFError... on bad bytes
        first = (str(exc).splitlines() or [""])[0].split(". ")[0]
        detail = first if isinstance(exc, RuntimeError) else f"{type(exc).__name__} {first}".strip()
        raise InvalidAdapterError(f"{path}: truncated or not a torch file ({detail})", path=str(path)) from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise InvalidAdapterError(
            f"{path}: expected a mapping of tensor names to tensors, got {type(state).__name__}", path=str(path)
        )
    return state


def convert(directory: str | os.PathLike[str], *, keep_bin: bool = False) -> Path:
    """Turn ``DIR/adapter_model.bin`` into ``DIR/adapter_model.safetensors``.

    Same names, dtypes, shapes and values; metadata ``{"format": "pt"}``; shared tensors
    cloned apart and made contiguous, as PEFT does. The new file is read back and
    compared tensor by tensor before the ``.bin`` is removed.

    Args:
        directory: an adapter directory holding ``adapter_config.json`` and the ``.bin``.
        keep_bin: keep the ``.bin`` next to the new file (PEFT loads safetensors first).

    Returns:
        The path of the new ``adapter_model.safetensors``.

    Raises:
        InvalidAdapterError: no config, no ``.bin``, or an unreadable one.
        UnsafeFileError: the ``.bin`` would run code when loaded.
        DestinationNotEmptyError: the directory already has ``adapter_model.safetensors``.

    Example:
        >>> convert("adapters/old_run")                             # doctest: +SKIP
        PosixPath('adapters/old_run/adapter_model.safetensors')
    """
    torch = _import_torch()
    directory = Path(directory)
    if not directory.is_dir():
        raise InvalidAdapterError(f"{directory}: no such directory", path=str(directory))
    read_config(directory / CONFIG_NAME)  # an adapter directory, not any folder with a .bin
    source, target = directory / LEGACY_WEIGHTS_NAME, directory / WEIGHTS_NAME
    if target.exists():
        raise DestinationNotEmptyError(
            f"{directory}: already has {WEIGHTS_NAME}; nothing to convert"
            + (f" (the {LEGACY_WEIGHTS_NAME} next to it is ignored by PEFT)" if source.exists() else ""),
            path=str(directory),
            hint=f"remove {target} first to convert again from {LEGACY_WEIGHTS_NAME}" if source.exists() else None,
        )
    if not source.is_file():
        raise InvalidAdapterError(f"{directory}: no {LEGACY_WEIGHTS_NAME} to convert", path=str(directory))
    state = load_bin_state_dict(source)
    write_state_dict(state, target, safe_serialization=True)

    from safetensors.torch import load_file  # imports torch, which is loaded by now anyway

    written = load_file(str(target))
    same = written.keys() == state.keys() and all(
        written[k].dtype == v.dtype and written[k].shape == v.shape and torch.equal(written[k], v)
        for k, v in state.items()
    )
    if not same:  # pragma: no cover - would be a safetensors bug; keep the original
        target.unlink(missing_ok=True)
        raise CorruptObjectError(
            f"{target}: read-back differs from {source}; kept the .bin, removed the new file",
            what="the converted safetensors file",
            path=str(target),
        )
    if not keep_bin:
        source.unlink()
    return target
