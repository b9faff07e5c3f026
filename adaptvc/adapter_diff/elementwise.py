"""Elementwise comparison of two stored tensors, in bounded memory.

For tensors that are not LoRA factors (``modules_to_save`` copies, biases, DoRA
magnitudes, other PEFT types' weights) the stored values are the quantity itself, so
the difference is taken entry by entry. A ``modules_to_save`` copy of a 128k×4096
``lm_head`` is half a billion entries; it is streamed in chunks of ``CHUNK`` elements
through three reused float64 buffers (float64 accumulation), never held whole.
"""

from __future__ import annotations

import math

import numpy as np

from adaptvc.formats.safetensors_reader import SafetensorsReader

CHUNK = 1 << 19  # elements per step: 4 MB of float64 per array, three arrays


class ElementwiseStats:
    __slots__ = ("norm_a", "norm_b", "delta_norm", "max_abs_diff", "inner")

    def __init__(self, norm_a: float, norm_b: float, delta_norm: float, max_abs_diff: float, inner: float) -> None:
        self.norm_a, self.norm_b, self.delta_norm = norm_a, norm_b, delta_norm
        self.max_abs_diff, self.inner = max_abs_diff, inner


def norm_of(reader: SafetensorsReader, name: str) -> float:
    """‖t‖_F of one stored tensor, streamed."""
    info = reader.info(name)
    total = 0.0
    buf = np.empty(min(CHUNK, info.numel))
    for start in range(0, info.numel, CHUNK):
        x = reader.read(name, start=start, stop=start + CHUNK, out=buf)
        total += float(np.dot(x, x))
        reader.release()
    return math.sqrt(total)


def compare_tensors(ra: SafetensorsReader, name_a: str, rb: SafetensorsReader, name_b: str) -> ElementwiseStats:
    """Norms, ‖b − a‖_F, max |b − a| and ⟨a, b⟩ of two tensors with the same element count."""
    ia, ib = ra.info(name_a), rb.info(name_b)
    if ia.numel != ib.numel:
        raise ValueError(f"{name_a}: {ia.numel} vs {ib.numel} elements")
    na2 = nb2 = d2 = inner = 0.0
    max_abs = 0.0
    n = min(CHUNK, ia.numel)
    bx, by, bd = np.empty(n), np.empty(n), np.empty(n)  # reused: no fresh memory per chunk
    for start in range(0, ia.numel, CHUNK):
        x = ra.read(name_a, start=start, stop=start + CHUNK, out=bx)
        y = rb.read(name_b, start=start, stop=start + CHUNK, out=by)
        na2 += float(np.dot(x, x))
        nb2 += float(np.dot(y, y))
        inner += float(np.dot(x, y))
        d = np.subtract(y, x, out=bd[: x.size])
        d2 += float(np.dot(d, d))
        if d.size:
            max_abs = max(max_abs, float(np.max(np.abs(d, out=d))))
        ra.release()  # per chunk: a 1 GB lm_head copy must not end up resident
        rb.release()
    return ElementwiseStats(math.sqrt(na2), math.sqrt(nb2), math.sqrt(d2), max_abs, inner)
