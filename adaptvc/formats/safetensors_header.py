"""Parse a safetensors file's header without torch.

A safetensors file is ``<u64 little-endian header length N><N bytes of JSON><data>``.
The JSON maps tensor names to ``{"dtype", "shape", "data_offsets": [begin, end]}``
(offsets relative to the start of the data section) plus an optional
``"__metadata__"`` of string → string. Reading it costs one small read, whatever the
file's size, which is what makes ``adaptvc inspect``/``log``/``status`` fast.

Every problem is reported as :class:`~adaptvc.errors.InvalidAdapterError` naming the
file: a truncated file, an absurd header length, bad JSON, offsets outside the data.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adaptvc.errors import InvalidAdapterError

# The reference implementation refuses headers over 100 MB; so do we, before reading.
MAX_HEADER_BYTES = 100_000_000

# Bits per element for every dtype safetensors defines.
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
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


def _bad(path: Path, problem: str) -> InvalidAdapterError:
    return InvalidAdapterError(f"{path}: {problem}", path=str(path))


def read_header(path: str | os.PathLike[str]) -> SafetensorsHeader:
    """Read and validate the header of a safetensors file.

    Args:
        path: the ``.safetensors`` file.

    Returns:
        A :class:`SafetensorsHeader`; no tensor data is read.

    Raises:
        InvalidAdapterError: the file is missing, truncated or malformed.
    """
    path = Path(path)
    raw, size = _read_raw_header(path)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(path, f"safetensors header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise _bad(path, "safetensors header is not a JSON object")

    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _bad(path, "safetensors __metadata__ must map strings to strings")

    data_start = 8 + len(raw)
    data_len = size - data_start
    tensors = {name: _tensor_info(path, name, entry, data_start, data_len) for name, entry in header.items()}
    return SafetensorsHeader(path=path, tensors=tensors, metadata=dict(metadata), data_start=data_start, file_size=size)


def _read_raw_header(path: Path) -> tuple[bytes, int]:
    """The header's JSON bytes and the file's size, after checking the length prefix."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
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
    except FileNotFoundError:
        raise _bad(path, "no such file") from None
    except IsADirectoryError:
        raise _bad(path, "is a directory, expected a safetensors file") from None


def _tensor_info(path: Path, name: str, entry: Any, data_start: int, data_len: int) -> TensorInfo:
    """One header entry, validated: a known dtype, and offsets inside the data section
    that hold exactly the bytes its shape needs."""
    try:
        dtype = entry["dtype"]
        shape = tuple(int(d) for d in entry["shape"])
        begin, end = (int(o) for o in entry["data_offsets"])
    except (TypeError, KeyError, ValueError):
        raise _bad(path, f"tensor {name!r}: malformed header entry {entry!r}") from None
    if dtype not in DTYPE_BITS:
        raise _bad(path, f"tensor {name!r}: unknown dtype {dtype!r}")
    if any(d < 0 for d in shape) or not 0 <= begin <= end <= data_len:
        raise _bad(
            path,
            f"tensor {name!r}: data offsets [{begin}, {end}] outside the data section ({data_len} bytes); truncated file?",
        )
    expected = (math.prod(shape) * DTYPE_BITS[dtype] + 7) // 8
    if end - begin != expected:
        raise _bad(path, f"tensor {name!r}: {end - begin} bytes for {dtype}{list(shape)}, expected {expected}")
    return TensorInfo(name, dtype, shape, data_start + begin, data_start + end)
