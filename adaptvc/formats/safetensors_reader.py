"""Read tensors out of a safetensors file with numpy, memory-mapped, one at a time.

No torch: the header comes from :func:`~adaptvc.formats.safetensors_header.read_header`
(absolute byte offsets per tensor) and each tensor is decoded straight from the mapped
bytes. numpy has no bfloat16, but bf16 is the top half of an IEEE float32, so
``uint16 << 16`` viewed as float32 is exact.

Memory: a mapped page that has been touched counts in the process's RSS until it is
unmapped, so reading a whole 100 MB file through one mapping would end with 100 MB
resident even though we only ever need one module. :meth:`SafetensorsReader.release`
tells the kernel (``MADV_DONTNEED``) to drop our mapped pages; for a read-only file
mapping that only drops our view of them, the page cache keeps them and a later read
faults them back in. Callers release after each module (or chunk), so
peak RSS stays near one module's tensors.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import numpy as np

from adaptvc.errors import InvalidAdapterError
from adaptvc.formats.safetensors_header import SafetensorsHeader, TensorInfo, read_header

# safetensors dtype → little-endian numpy dtype (safetensors data is always little-endian).
# BF16 is handled apart: numpy has no such type.
NUMPY_DTYPES: dict[str, str] = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U64": "<u8",
    "U32": "<u4",
    "U16": "<u2",
    "U8": "u1",
    "BOOL": "?",
}
SUPPORTED_DTYPES = frozenset({*NUMPY_DTYPES, "BF16"})


def bf16_to_float32(raw: np.ndarray) -> np.ndarray:
    """Decode bfloat16 values given as little-endian uint16 into float32 (exact)."""
    return (raw.astype("<u4") << 16).view("<f4")


class SafetensorsReader:
    """A memory-mapped safetensors file that hands out tensors as float64 numpy arrays.

    Use as a context manager::

        with SafetensorsReader("adapter_model.safetensors") as st:
            a = st.read("base_model.model.x.lora_A.weight")   # float64 copy
            st.release()                                          # between modules

    Every array returned is an independent copy (never a view of the mapping), so the
    file can be closed while arrays are still in use.
    """

    def __init__(self, path: str | os.PathLike[str], header: SafetensorsHeader | None = None) -> None:
        self.path = Path(path)
        self.header = header if header is not None else read_header(self.path)
        self._file: BinaryIO | None = None
        self._map: mmap.mmap | None = None
        self._unreleased = 0  # bytes decoded from the mapping since the last release()

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> SafetensorsReader:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def open(self) -> None:
        if self._map is not None:
            return
        self._file = open(self.path, "rb")
        if self.header.file_size > 0:
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._file is not None:
            self._file.close()
            self._file = None

    # -- reading ---------------------------------------------------------------------

    @property
    def tensors(self) -> dict[str, TensorInfo]:
        return self.header.tensors

    def info(self, name: str) -> TensorInfo:
        try:
            return self.header.tensors[name]
        except KeyError:
            raise InvalidAdapterError(f"{self.path}: no tensor {name!r}", path=str(self.path)) from None

    def read(
        self,
        name: str,
        dtype: np.dtype | type = np.float64,
        *,
        start: int = 0,
        stop: int | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Decode one tensor (or the flat element range ``[start, stop)`` of it) as ``dtype``.

        Args:
            out: a flat, contiguous array of ``dtype`` with room for the elements to decode
                into (reusing one buffer per role avoids page-faulting fresh memory for
                every tensor); the result is then a view of it.

        Returns:
            An array shaped like the tensor (flat when a range is asked for), never a
            view of the file.

        Raises:
            InvalidAdapterError: unknown tensor or a dtype numpy cannot represent (fp8, fp4).
        """
        t = self.info(name)
        if t.dtype not in SUPPORTED_DTYPES:
            raise InvalidAdapterError(
                f"{self.path}: tensor {name!r} has dtype {t.dtype}, which adaptvc cannot decode without torch",
                path=str(self.path),
            )
        whole = stop is None and start == 0
        stop = t.numel if stop is None else min(stop, t.numel)
        count = max(stop - start, 0)
        if self._map is None:
            self.open()
        result = np.empty(count, dtype=dtype) if out is None else out[:count]
        if out is not None and (result.size != count or result.dtype != np.dtype(dtype)):
            raise ValueError(f"out buffer of {out.size} {out.dtype} cannot hold {count} {np.dtype(dtype)}")
        if count and self._map is not None:
            itemsize = 2 if t.dtype == "BF16" else np.dtype(NUMPY_DTYPES[t.dtype]).itemsize
            offset = t.begin + start * itemsize
            if t.dtype == "BF16":
                raw = np.frombuffer(self._map, dtype="<u2", count=count, offset=offset)
                np.copyto(result, bf16_to_float32(raw), casting="unsafe")
            else:
                raw = np.frombuffer(self._map, dtype=NUMPY_DTYPES[t.dtype], count=count, offset=offset)
                np.copyto(result, raw, casting="unsafe")
            del raw  # drop the view so the mapping can be closed
            self._unreleased += count * itemsize
        elif count:
            result[...] = 0
        return result.reshape(t.shape) if whole else result

    def release(self) -> None:
        """Drop every mapped page of the file from this process's resident memory.

        Called between modules. Only the whole mapping is dependable: a page fault maps
        more than the faulting page (the kernel's fault-around window, and since Linux
        6.x whole large folios of the page cache, up to megabytes), so releasing just the
        tensors' own byte ranges leaves their neighbours' pages mapped, and RSS creeps
        up to the whole file. On a mapping with few resident pages this costs
        microseconds; pages needed next are faulted back in from the page cache.
        """
        self._unreleased = 0
        if self._map is None or not hasattr(mmap, "MADV_DONTNEED"):
            return
        try:
            self._map.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):  # advisory only: never fail a read over it
            pass

    def release_after(self, nbytes: int) -> None:
        """:meth:`release` once more than ``nbytes`` have been decoded since the last one.

        Between small modules: each release costs a page-table walk of the whole mapping
        and re-faulting the pages around the next tensor, about 20 µs, as much as a
        module's arithmetic; a budget of a few MB keeps RSS just as bounded.
        """
        if self._unreleased > nbytes:
            self.release()
