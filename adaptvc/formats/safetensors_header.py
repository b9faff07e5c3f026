"""Parse a safetensors file's header without torch.

A safetensors file is ``<u64 little-endian header length N><N bytes of JSON><data>``.
The JSON maps tensor names to ``{"dtype", "shape", "data_offsets": [begin, end]}``
(offsets relative to the start of the data section) plus an optional
``"__metadata__"`` of string → string. Reading it costs one small read, whatever the
file's size, which is what makes ``adaptvc inspect``/``log``/``status`` fast.

Every file the official ``safetensors`` loader refuses is refused here too, as
:class:`~adaptvc.errors.MalformedSafetensorsError` naming the file (and the tensor): a
truncated file, an absurd header length, JSON that is not strict JSON or not an object,
an unknown dtype, a shape or offset that is not an unsigned integer, a byte count that is
not the shape's, offsets that overlap, leave a gap or stop short of the end of the file,
a ``__metadata__`` that is not string → string. tests/test_safetensors_fuzz.py holds the
two to that with mutated files.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adaptvc.errors import MalformedSafetensorsError
from adaptvc.formats.regular_file import open_regular

# The reference implementation refuses headers over 100 MB; so do we, before reading.
MAX_HEADER_BYTES = 100_000_000
_U64 = 2**64
_UNLOADABLE = frozenset({"F6_E2M3", "F6_E3M2"})

# Bits per element for every dtype safetensors defines.
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "I64": 64,
    "U64": 64,
    "F64": 64,
    "C64": 64,
}


@dataclass(frozen=True)
class TensorInfo:
    """One tensor's entry in the header. ``begin``/``end`` are absolute file offsets."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


@dataclass(frozen=True)
class SafetensorsHeader:
    """The parsed header: tensors in file order, metadata, and the data section's start."""

    path: Path
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str] = field(default_factory=dict)
    data_start: int = 0
    file_size: int = 0

    @property
    def parameter_count(self) -> int:
        return sum(t.numel for t in self.tensors.values())


_HINT = (
    "the official safetensors loader refuses this file too: it is damaged or was not written by safetensors; "
    "write it again (save_pretrained) or copy it again from where it was made"
)


def _bad(path: Path, problem: str, tensor: str | None = None) -> MalformedSafetensorsError:
    return MalformedSafetensorsError(f"{path}: {problem}", path=str(path), tensor=tensor, hint=_HINT)


def read_header(path: str | os.PathLike[str], *, follow_symlinks: bool = True) -> SafetensorsHeader:
    """Read and validate the header of a safetensors file, as strictly as the official
    ``safetensors`` loader: every file it would refuse is refused here.

    Args:
        path: the ``.safetensors`` file.
        follow_symlinks: False for adapter files (a link is refused, not followed).

    Returns:
        A :class:`SafetensorsHeader`; no tensor data is read.

    Raises:
        MalformedSafetensorsError: the file is truncated or malformed.
        NotARegularFileError: a symlink (when not followed), FIFO, device, directory.
        InvalidAdapterError: the file is missing or unreadable.
    """
    path = Path(path)
    raw, size = _read_raw_header(path, follow_symlinks=follow_symlinks)
    header = _parse_json(path, raw)
    metadata = header.pop("__metadata__", None)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _bad(path, "safetensors __metadata__ must map strings to strings")

    data_start = 8 + len(raw)
    data_len = size - data_start
    tensors = {name: _tensor_info(path, name, entry, data_start, data_len) for name, entry in header.items()}
    _check_layout(path, tensors, data_start, size)
    return SafetensorsHeader(path=path, tensors=tensors, metadata=dict(metadata), data_start=data_start, file_size=size)


def _read_raw_header(path: Path, *, follow_symlinks: bool) -> tuple[bytes, int]:
    """The header's JSON bytes and the file's size, after checking the length prefix."""
    with open_regular(path, follow_symlinks=follow_symlinks) as fh:
        size = os.fstat(fh.fileno()).st_size
        prefix = fh.read(8)
        if len(prefix) < 8:
            raise _bad(path, f"truncated safetensors file ({size} bytes, no header length)")
        (n,) = struct.unpack("<Q", prefix)
        if n > MAX_HEADER_BYTES:
            raise _bad(
                path, f"safetensors header length {n} is absurd (limit {MAX_HEADER_BYTES}); not a safetensors file?"
            )
        if 8 + n > size:
            raise _bad(path, f"truncated safetensors file: header says {n} bytes but the file has {size}")
        return fh.read(n), size


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_json(path: Path, raw: bytes) -> dict[str, Any]:
    """The header as a JSON object: strict JSON (no NaN, no duplicate keys, no lone
    surrogates), as the reference parser (serde_json) reads it."""
    try:
        text = raw.decode("utf-8")
        header = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
        if "\\u" in text:  # an escaped lone surrogate (\ud800) is not UTF-8: encoding it fails
            json.dumps(header, ensure_ascii=False).encode("utf-8")
    except (UnicodeError, ValueError) as exc:
        raise _bad(path, f"safetensors header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise _bad(path, "safetensors header is not a JSON object")
    return header


def _is_count(value: Any) -> bool:
    """An unsigned 64-bit integer, as the reference loader's ``usize`` (not a bool, not 2.0)."""
    return type(value) is int and 0 <= value < _U64


def _tensor_info(path: Path, name: str, entry: Any, data_start: int, data_len: int) -> TensorInfo:
    """One header entry, validated: a known dtype, and offsets inside the data section
    that hold exactly the bytes its shape needs."""
    try:
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        valid = (
            isinstance(dtype, str)
            and isinstance(shape, list)
            and all(_is_count(d) for d in shape)
            and isinstance(offsets, list)
            and len(offsets) == 2
            and all(_is_count(o) for o in offsets)
        )
    except (TypeError, KeyError):
        valid = False
    if not valid:
        raise _bad(path, f"tensor {name!r}: malformed header entry {entry!r}", name)
    if dtype not in DTYPE_BITS:
        raise _bad(path, f"tensor {name!r}: unknown dtype {dtype!r}", name)
    begin, end = offsets
    if not begin <= end <= data_len:
        raise _bad(
            path,
            f"tensor {name!r}: data offsets [{begin}, {end}] outside the data section ({data_len} bytes); truncated file?",
            name,
        )
    nbits = DTYPE_BITS[dtype]
    for d in shape:  # left to right, as the reference loader multiplies (an overflow is refused)
        nbits *= d
        if nbits >= _U64:
            raise _bad(path, f"tensor {name!r}: shape {shape} of {dtype} overflows a 64-bit size", name)
    if nbits % 8:
        raise _bad(path, f"tensor {name!r}: {dtype}{shape} does not fill whole bytes", name)
    if dtype in _UNLOADABLE or (dtype == "F4" and (not shape or shape[-1] % 2)):
        # torch (which PEFT loads with) has no 6-bit floats, and packs F4 two to a byte
        # along the last dimension: the official loader refuses to hand these out.
        raise _bad(path, f"tensor {name!r}: {dtype}{shape} cannot be loaded by torch", name)
    if end - begin != nbits // 8:
        raise _bad(path, f"tensor {name!r}: {end - begin} bytes for {dtype}{shape}, expected {nbits // 8}", name)
    return TensorInfo(name, dtype, tuple(shape), data_start + begin, data_start + end)


def _check_layout(path: Path, tensors: dict[str, TensorInfo], data_start: int, size: int) -> None:
    """Tensors tile the data section: in offset order, each starts where the one before
    ended (no overlap, no gap), and the last ends at the end of the file."""
    at, before = data_start, None
    for t in sorted(tensors.values(), key=lambda t: (t.begin, t.end)):
        if t.begin != at:
            where = f"[{t.begin - data_start}, {t.end - data_start}]"
            if t.begin < at:
                problem = f"data offsets {where} overlap tensor {before!r}" if before else "bad data offsets"
            else:
                problem = f"{t.begin - at} bytes of gap before its data offsets {where}"
            raise _bad(path, f"tensor {t.name!r}: {problem}", t.name)
        at, before = t.end, t.name
    if at != size:
        raise _bad(path, f"{size - at} bytes after the last tensor's data that no header entry covers", None)
