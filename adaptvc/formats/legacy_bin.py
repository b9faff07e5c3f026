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

import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from adaptvc.errors import (
    CorruptObjectError,
    DestinationNotEmptyError,
    InvalidAdapterError,
    MissingDependencyError,
    UnsafeFileError,
    UnsafePickleError,
)
from adaptvc.formats import CONFIG_NAME, LEGACY_WEIGHTS_NAME, WEIGHTS_NAME
from adaptvc.formats.adapter_config import read_config
from adaptvc.formats.adapter_dir import check_tensors
from adaptvc.formats.regular_file import open_regular
from adaptvc.formats.writer import write_state_dict

if TYPE_CHECKING:  # pragma: no cover
    import torch


def _import_torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is an extra
        raise MissingDependencyError("torch", extra="torch", purpose=f"reading legacy {LEGACY_WEIGHTS_NAME}") from None
    return torch


# What torch's restricted loader accepts when torch cannot say itself (older or newer
# torch without the private list): tensors, storages, dtypes and plain containers.
_FALLBACK_ALLOWED = ("collections.OrderedDict", "torch.Size", "builtins.set")
_FALLBACK_PREFIXES = ("torch._utils._rebuild_", "torch._tensor._rebuild_")


def _allowed_imports() -> frozenset[str] | None:
    try:
        from torch import _weights_only_unpickler
        from torch.serialization import get_safe_globals
    except ImportError:  # pragma: no cover - no torch, or torch moved its list
        return None
    allowed = set(getattr(_weights_only_unpickler, "_get_allowed_globals", dict)())
    for item in get_safe_globals():
        obj = item[0] if isinstance(item, tuple) else item
        allowed.add(f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}")
    return frozenset(allowed) or None


def _is_allowed(name: str, allowed: frozenset[str] | None) -> bool:
    if allowed is not None:
        return name in allowed
    module, _, attr = name.rpartition(".")
    return (
        name in _FALLBACK_ALLOWED
        or name.startswith(_FALLBACK_PREFIXES)
        or (module == "torch" and (attr.endswith("Storage") or attr.islower()))
    )


class _Stub:
    """What the scanning unpickler hands out for every import: it accepts any call,
    state and items, and does nothing, so scanning a pickle runs none of its code."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __call__(self, *args: object, **kwargs: object) -> _Stub:
        return _Stub()

    def __setstate__(self, state: object) -> None:
        pass

    def __setitem__(self, key: object, value: object) -> None:
        pass

    def append(self, item: object) -> None:
        pass

    def extend(self, items: object) -> None:
        pass

    def add(self, item: object) -> None:
        pass


class _ScanningUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` records what the pickle imports and returns a
    :class:`_Stub`: nothing the pickle names is ever imported or called."""

    def __init__(self, file: BinaryIO, imports: list[str]) -> None:
        super().__init__(file)
        self.imports = imports

    def find_class(self, module: str, name: str) -> type:
        self.imports.append(f"{module}.{name}")
        return _Stub

    def persistent_load(self, pid: object) -> object:
        return _Stub()


def pickle_imports(fh: BinaryIO) -> list[str]:
    """Every ``module.name`` the pickles of a torch file import (zip: each ``*.pkl``
    member; the legacy format: its pickles one after the other), without running any.

    Raises:
        InvalidAdapterError: not a pickle nor a torch zip archive.
    """
    imports: list[str] = []
    if zipfile.is_zipfile(fh):
        fh.seek(0)
        with zipfile.ZipFile(fh) as archive:
            for member in archive.namelist():
                if member.endswith(".pkl"):
                    _scan(io.BytesIO(archive.read(member)), imports, first=True)
        return imports
    fh.seek(0)
    first = True
    while first or fh.read(1):
        if not first:
            fh.seek(-1, os.SEEK_CUR)
        if not _scan(fh, imports, first=first):
            break
        first = False
    return imports


def _scan(fh: BinaryIO, imports: list[str], *, first: bool) -> bool:
    """Read one pickle from ``fh``; False when what follows is not a pickle (a legacy torch
    file's raw storage bytes after its pickles)."""
    try:
        _ScanningUnpickler(fh, imports).load()
    except Exception as exc:  # noqa: BLE001 - any malformed pickle: bad bytes, not code
        if first and not imports:
            raise ValueError(f"not a pickle ({type(exc).__name__}: {exc})") from None
        return False
    return True


def _refuse_code(path: Path, fh: BinaryIO) -> None:
    """Refuse a pickle that imports anything torch's restricted loader would not."""
    try:
        imports = pickle_imports(fh)
    except (ValueError, zipfile.BadZipFile, OSError) as exc:
        raise InvalidAdapterError(f"{path}: truncated or not a torch file ({exc})", path=str(path)) from None
    allowed = _allowed_imports()
    unsafe = tuple(dict.fromkeys(name for name in imports if not _is_allowed(name, allowed)))
    if unsafe:
        names = ", ".join(unsafe[:5]) + (f" and {len(unsafe) - 5} more" if len(unsafe) > 5 else "")
        raise UnsafePickleError(
            f"{path}: refused: this pickle would run code when loaded (it imports {names})",
            path=str(path),
            imports=unsafe,
            hint="only load it if you trust its author; otherwise re-save the adapter from the model",
        )


def load_bin_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Load a legacy ``adapter_model.bin`` safely, on CPU.

    The pickle is first scanned (a restricted unpickler that records what it imports
    and calls nothing): one that imports anything but tensors and containers is refused,
    naming it. Then ``torch.load(weights_only=True)`` reads it.

    Args:
        path: the ``.bin`` file (a regular file: a symlink is refused, not followed).

    Returns:
        ``{name: tensor}``.

    Raises:
        UnsafePickleError: the pickle imports a function or class (it would run code).
        NotARegularFileError: a symlink, FIFO, device.
        InvalidAdapterError: missing, truncated or not a torch file, or not a flat
            ``{str: Tensor}`` mapping.

    Example:
        >>> load_bin_state_dict("old/adapter_model.bin")            # doctest: +SKIP
        {'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': tensor(...), ...}
    """
    path = Path(path)
    with open_regular(path) as fh:
        _refuse_code(path, fh)  # no torch needed to refuse a pickle that runs code
        torch = _import_torch()
        fh.seek(0)
        state = _torch_load(torch, path, fh)
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise InvalidAdapterError(
            f"{path}: expected a mapping of tensor names to tensors, got {type(state).__name__}", path=str(path)
        )
    return state


def _torch_load(torch: Any, path: Path, fh: BinaryIO) -> Any:
    try:
        return torch.load(fh, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Weights only load failed" in text and "GLOBAL " in text:
            # The scan above lets through only what torch allows; should torch still
            # refuse a global, its message is a page long: keep the line that names it.
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
        InvalidAdapterError: no config, no ``.bin``, or an unreadable one; tensors that do
            not fit the config (:func:`~adaptvc.formats.adapter_dir.check_tensors`).
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
    config = read_config(directory / CONFIG_NAME)  # an adapter directory, not any folder with a .bin
    source, target = directory / LEGACY_WEIGHTS_NAME, directory / WEIGHTS_NAME
    if target.exists():
        raise DestinationNotEmptyError(
            f"{directory}: already has {WEIGHTS_NAME}; nothing to convert"
            + (f" (the {LEGACY_WEIGHTS_NAME} next to it is ignored by PEFT)" if source.exists() else ""),
            path=str(directory),
            hint=f"remove {target} first to convert again from {LEGACY_WEIGHTS_NAME}" if source.exists() else None,
        )
    if not os.path.lexists(source):
        raise InvalidAdapterError(f"{directory}: no {LEGACY_WEIGHTS_NAME} to convert", path=str(directory))
    state = load_bin_state_dict(source)
    # The one validation's tensor checks (open_adapter_dir would load the pickle twice).
    check_tensors(config, {k: (str(v.dtype), tuple(v.shape)) for k, v in state.items()}, source)
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
