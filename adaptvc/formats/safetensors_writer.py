"""Write a safetensors file from numpy arrays, one tensor at a time, without torch.

The header (names, dtypes, shapes, offsets) is known before any data is computed, so it
is written first and each tensor streamed after it in the declared order: memory stays at
one tensor, whatever the file's size. The layout is the format's (``<u64 header length>``,
JSON padded with spaces to a multiple of 8, then the data back to back) with PEFT's
metadata ``{"format": "pt"}``, which transformers' loaders check.

Float tensors are rounded to the declared dtype (``F64``, ``F32``, ``F16``, ``BF16``)
to nearest-even, as torch's casts do; numpy has no bfloat16, so BF16 is the top half of
the rounded float32 bits.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import numpy as np

from adaptvc.formats.safetensors_header import DTYPE_BITS
from adaptvc.storage.files import replacing

METADATA = {"format": "pt"}
_FLOAT_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2"}


def float_to_bf16_bits(values: np.ndarray) -> np.ndarray:
    """bfloat16 encodings (little-endian uint16) of ``values``, rounded to nearest even."""
    bits = np.ascontiguousarray(values, dtype="<f4").view("<u4")
    rounding = ((bits >> 16) & 1) + 0x7FFF
    return ((bits + rounding) >> 16).astype("<u2")


def encode(values: np.ndarray, dtype: str) -> bytes:
    """``values`` as the little-endian bytes of a safetensors float ``dtype``."""
    if dtype == "BF16":
        return float_to_bf16_bits(values).tobytes()
    if dtype not in _FLOAT_DTYPES:
        raise ValueError(f"cannot write dtype {dtype} (floats only: F64, F32, F16, BF16)")
    return np.ascontiguousarray(values, dtype=_FLOAT_DTYPES[dtype]).tobytes()


class SafetensorsWriter:
    """Stream tensors into ``path`` (atomically: a temporary file renamed on success).

    ::

        specs = [("x.lora_A.weight", "F16", (8, 64)), ("x.lora_B.weight", "F16", (64, 8))]
        with SafetensorsWriter(path, specs) as out:
            out.write("x.lora_A.weight", encode(a, "F16"))   # in the order of specs
            out.write("x.lora_B.weight", encode(b, "F16"))
    """

    def __init__(self, path: Path, specs: Sequence[tuple[str, str, tuple[int, ...]]]) -> None:
        self.path = path
        self._order = [name for name, _, _ in specs]
        self._sizes: dict[str, int] = {}
        header: dict[str, object] = {"__metadata__": dict(METADATA)}
        offset = 0
        for name, dtype, shape in specs:
            size = self._sizes[name] = math.prod(shape) * DTYPE_BITS[dtype] // 8
            header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
            offset += size
        raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
        raw += b" " * (-len(raw) % 8)
        self._header = struct.pack("<Q", len(raw)) + raw
        self._next = 0
        self._replacing = replacing(path)
        self._file: BinaryIO | None = None

    def __enter__(self) -> SafetensorsWriter:
        tmp = self._replacing.__enter__()
        self._file = open(tmp, "wb")
        self._file.write(self._header)
        return self

    def write(self, name: str, data: bytes) -> None:
        """Write the next tensor's bytes (:func:`encode`); ``name`` must be the next declared."""
        assert self._file is not None, "use SafetensorsWriter as a context manager"
        if self._next >= len(self._order) or self._order[self._next] != name:
            raise ValueError(f"tensor {name!r} written out of the declared order")
        if len(data) != self._sizes[name]:
            raise ValueError(f"tensor {name!r}: {len(data)} bytes, declared {self._sizes[name]}")
        self._file.write(data)
        self._next += 1

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._file is not None
        self._file.close()
        if exc_type is None and self._next != len(self._order):
            exc_type = ValueError
            exc = ValueError(f"{self.path}: {len(self._order) - self._next} declared tensors never written")
            self._replacing.__exit__(exc_type, exc, None)
            raise exc
        self._replacing.__exit__(exc_type, exc, tb)
