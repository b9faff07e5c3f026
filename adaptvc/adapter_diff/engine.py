"""Compare two adapters: config, base-model link, LoRA updates (factored), other tensors.

Streaming: both weight files are memory-mapped; modules are visited in the order of the
first file, each module's factors decoded to float64, compared, and the mapped pages
dropped every few MB, so peak memory is about one module's factors per worker thread (plus
one elementwise chunk), whatever the file size.

Threads: modules are compared by one worker thread per CPU (at most
:data:`MAX_WORKERS`). Decoding (numpy casts) and the Gram products (``np.dot``) release
the GIL, so on two cores a 7B adapter's 128 modules take about 60% of the time of one
thread. Results are consumed, and totals summed, in file order: the output does not
depend on the number of threads.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Generator, Sequence
from functools import partial
from typing import Any, TypeVar

from adaptvc.adapter_diff.config_diff import check_base_models, config_changes
from adaptvc.adapter_diff.elementwise import compare_tensors, norm_of
from adaptvc.adapter_diff.lora_modules import AdapterLayout, LoraModule, split_adapter
from adaptvc.adapter_diff.lowrank import Buffers, LowRankUpdate, compare, squared_norm
from adaptvc.adapter_diff.result import (
    BaseModelCheck,
    DiffResult,
    DiffSummary,
    ModuleDiff,
    OneSided,
    ShapeChange,
    TensorDiff,
    relative_change,
)
from adaptvc.adapter_diff.sources import AdapterSource
from adaptvc.formats.companions import compare_companions
from adaptvc.formats.safetensors_reader import SafetensorsReader

Progress = Callable[[int, int], None]

T = TypeVar("T")
R = TypeVar("R")

# Worker threads for the module loop: one per CPU, at most this many (memory: about one
# module's float64 factors each).
MAX_WORKERS = 4

# Mapped pages are dropped once this many bytes of a file have been decoded since the
# last drop (a 7B rank-16 module's factors are 256 KB in fp16): RSS stays within a few
# MB of one module, without a page-table walk per module.
RELEASE_BYTES = 2 << 20


def _read_update(reader: SafetensorsReader, m: LoraModule, buffers: Buffers, side: str) -> LowRankUpdate:
    """Decode a module's factors into this side's reusable buffers (see :class:`Buffers`)."""
    a = reader.read(m.a.name, out=buffers.get(side + "A", (m.a.numel,)))
    b = reader.read(m.b.name, out=buffers.get(side + "B", (m.b.numel,)))
    return m.update(a, b)


def _workers() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_WORKERS))


def _in_order(fn: Callable[[T, Buffers], R], items: Sequence[T], workers: int) -> Generator[R, None, None]:
    """``fn(item, buffers)`` for every item, computed by ``workers`` threads (each with
    its own :class:`Buffers`), yielded in the items' order. The first exception is
    raised in the caller; the threads are joined before this generator finishes."""
    if workers <= 1 or len(items) < 2:
        buffers = Buffers()
        for item in items:
            yield fn(item, buffers)
        return
    results: list = [None] * len(items)
    failed: list[BaseException | None] = [None] * len(items)
    ready = [threading.Event() for _ in items]
    todo = iter(range(len(items)))  # next() on a list iterator is atomic under the GIL
    lock = threading.Lock()
    stop = False

    def run() -> None:
        buffers = Buffers()
        while not stop:
            with lock:
                i = next(todo, None)
            if i is None:
                return
            try:
                results[i] = fn(items[i], buffers)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                failed[i] = exc
            ready[i].set()

    threads = [
        threading.Thread(target=run, name=f"adaptvc-diff-{k}", daemon=True) for k in range(min(workers, len(items)))
    ]
    for t in threads:
        t.start()
    try:
        for i in range(len(items)):
            ready[i].wait()
            exc = failed[i]
            if exc is not None:
                raise exc
            yield results[i]
            results[i] = None
    finally:
        stop = True
        for t in threads:
            t.join()


def _module_norm(reader: SafetensorsReader, m: LoraModule, buffers: Buffers, side: str) -> float:
    u = _read_update(reader, m, buffers, side)
    reader.release_after(RELEASE_BYTES)
    return math.sqrt(squared_norm(u))


def diff_sources(
    a: AdapterSource, b: AdapterSource, *, force: bool = False, progress: Progress | None = None
) -> DiffResult:
    """Compare two resolved adapters. See :func:`adaptvc.api.diff` for the public entry.

    Raises:
        BaseModelMismatchError: different base models and ``force`` is False.
        InvalidAdapterError: unreadable weights, or a factor rank the config contradicts.
    """
    base_check = check_base_models(a, b, force=force)
    config = config_changes(a.config, b.config)
    notes: list[str] = []
    if a.config.get("use_dora") or b.config.get("use_dora"):
        notes.append(
            "DoRA: the effective weight m·(W+ΔW)/‖W+ΔW‖ needs the base weight W; modules compare the "
            "LoRA update ΔW, and the magnitude vectors are compared elementwise under tensors"
        )
    with SafetensorsReader(a.weights) as ra, SafetensorsReader(b.weights) as rb:
        la = split_adapter(ra.tensors, a.config, source=a.label)
        lb = split_adapter(rb.tensors, b.config, source=b.label)
        modules = _walk_modules(ra, rb, la, lb, progress)
        tensors = _walk_others(ra, rb, la, lb)
    return DiffResult(
        a=a.label,
        b=b.label,
        origin_a=a.origin,
        origin_b=b.origin,
        config=config,
        modules=tuple(modules.modules),
        tensors=tuple(tensors.tensors),
        summary=_summary(modules, tensors, base_check),
        notes=tuple(notes),
        companions=compare_companions(a.companions, b.companions, label_a=a.label, label_b=b.label),
    )


class _ModuleTally:
    """The LoRA modules' side of a diff: per-module results, modules only one side has or
    whose shapes differ, and running totals over the whole adapter (squared norms of
    ``ΔW_a``, ``ΔW_b``, of their difference, and their inner product)."""

    __slots__ = ("modules", "removed", "added", "reshaped", "a2", "b2", "d2", "inner", "done", "steps", "progress")

    def __init__(self, steps: int, progress: Progress | None) -> None:
        self.modules: list[ModuleDiff] = []
        self.removed: list[OneSided] = []
        self.added: list[OneSided] = []
        self.reshaped: list[ShapeChange] = []
        self.a2 = self.b2 = self.d2 = self.inner = 0.0
        self.done, self.steps, self.progress = 0, steps, progress

    def record(self, ma: LoraModule, mb: LoraModule | None, result: Any) -> None:
        """``result`` is what :func:`_compare_pair` returned for ``(ma, mb)``."""
        if mb is None:
            n = result
            self.removed.append(OneSided(ma.name, ma.shape, n))
            self.a2 += n * n
            self.d2 += n * n
        elif mb.shape != ma.shape:
            na, nb = result
            self.reshaped.append(ShapeChange(ma.name, ma.shape, mb.shape, na, nb))
            self.a2 += na * na
            self.b2 += nb * nb
            self.d2 += na * na + nb * nb
        else:
            st = result
            self.modules.append(
                ModuleDiff(
                    module=ma.name,
                    norm_a=st.norm_a,
                    norm_b=st.norm_b,
                    delta_norm=st.delta_norm,
                    relative=st.relative,
                    cosine=st.cosine,
                    kind=ma.kind,
                    shape=ma.shape,
                    rank_a=ma.rank,
                    rank_b=mb.rank,
                    scale_a=ma.scale,
                    scale_b=mb.scale,
                    inner=st.inner,
                )
            )
            self.a2 += st.norm_a**2
            self.b2 += st.norm_b**2
            self.d2 += st.delta_norm**2
            self.inner += st.inner
        self._step()

    def record_added(self, mb: LoraModule, n: float) -> None:
        self.added.append(OneSided(mb.name, mb.shape, n))
        self.b2 += n * n
        self.d2 += n * n
        self._step()

    def _step(self) -> None:
        self.done += 1
        if self.progress:
            self.progress(self.done, self.steps)


def _compare_pair(
    ra: SafetensorsReader, rb: SafetensorsReader, pair: tuple[LoraModule, LoraModule | None], buffers: Buffers
) -> Any:
    """One module of ``a`` against its namesake in ``b`` (run on a worker thread): the
    :class:`PairStats`, or ``‖ΔW_a‖`` when ``b`` lacks it, or both norms when the shapes differ."""
    ma, mb = pair
    if mb is None:
        return _module_norm(ra, ma, buffers, "a")
    if mb.shape != ma.shape:
        return _module_norm(ra, ma, buffers, "a"), _module_norm(rb, mb, buffers, "b")
    ua = _read_update(ra, ma, buffers, "a")
    ub = _read_update(rb, mb, buffers, "b")
    st = compare(ua, ub, buffers=buffers)
    del ua, ub
    ra.release_after(RELEASE_BYTES)
    rb.release_after(RELEASE_BYTES)
    return st


def _walk_modules(
    ra: SafetensorsReader, rb: SafetensorsReader, la: AdapterLayout, lb: AdapterLayout, progress: Progress | None
) -> _ModuleTally:
    """Every LoRA module: ``a``'s in its file order (sequential reads of the mapping), on
    worker threads, results taken in order; then those only ``b`` has."""
    tally = _ModuleTally(len(la.modules) + len(set(lb.modules) - set(la.modules)), progress)
    order = sorted(la.modules.values(), key=lambda m: m.a.begin)
    pairs = [(ma, lb.modules.get(ma.name)) for ma in order]
    results = _in_order(partial(_compare_pair, ra, rb), pairs, _workers())
    try:
        for (ma, mb), res in zip(pairs, results, strict=True):
            tally.record(ma, mb, res)
    finally:
        results.close()  # joins the worker threads before the files are closed
    buffers = Buffers()
    for mb in sorted(lb.modules.values(), key=lambda m: m.a.begin):
        if mb.name not in la.modules:
            tally.record_added(mb, _module_norm(rb, mb, buffers, "b"))
    return tally


class _TensorTally:
    """The other tensors' side of a diff (compared elementwise)."""

    __slots__ = ("tensors", "removed", "added", "reshaped")

    def __init__(self) -> None:
        self.tensors: list[TensorDiff] = []
        self.removed: list[OneSided] = []
        self.added: list[OneSided] = []
        self.reshaped: list[ShapeChange] = []


def _walk_others(ra: SafetensorsReader, rb: SafetensorsReader, la: AdapterLayout, lb: AdapterLayout) -> _TensorTally:
    tally = _TensorTally()
    for name, ia in sorted(la.others.items(), key=lambda kv: kv[1].begin):
        ib = lb.others.get(name)
        if ib is None:
            tally.removed.append(OneSided(name, ia.shape, norm_of(ra, ia.name)))
        elif ib.shape != ia.shape:
            tally.reshaped.append(ShapeChange(name, ia.shape, ib.shape, norm_of(ra, ia.name), norm_of(rb, ib.name)))
        else:
            es = compare_tensors(ra, ia.name, rb, ib.name)
            tally.tensors.append(
                TensorDiff(
                    tensor=name,
                    shape=ia.shape,
                    dtype_a=ia.dtype,
                    dtype_b=ib.dtype,
                    norm_a=es.norm_a,
                    norm_b=es.norm_b,
                    delta_norm=es.delta_norm,
                    max_abs_diff=es.max_abs_diff,
                    relative=relative_change(es.delta_norm, es.norm_a),
                )
            )
    for name, ib in sorted(lb.others.items(), key=lambda kv: kv[1].begin):
        if name not in la.others:
            tally.added.append(OneSided(name, ib.shape, norm_of(rb, ib.name)))
    return tally


def _summary(m: _ModuleTally, t: _TensorTally, base_check: BaseModelCheck) -> DiffSummary:
    norm_a, norm_b, delta = math.sqrt(m.a2), math.sqrt(m.b2), math.sqrt(m.d2)
    return DiffSummary(
        modules_compared=len(m.modules),
        modules_changed=sum(1 for x in m.modules if x.delta_norm > 0),
        modules_added=tuple(m.added),
        modules_removed=tuple(m.removed),
        modules_reshaped=tuple(m.reshaped),
        tensors_compared=len(t.tensors),
        tensors_changed=sum(1 for x in t.tensors if x.delta_norm > 0 or x.dtype_a != x.dtype_b),
        tensors_added=tuple(t.added),
        tensors_removed=tuple(t.removed),
        tensors_reshaped=tuple(t.reshaped),
        norm_a=norm_a,
        norm_b=norm_b,
        delta_norm=delta,
        relative=relative_change(delta, norm_a),
        cosine=(max(-1.0, min(1.0, m.inner / (norm_a * norm_b))) if norm_a > 0 and norm_b > 0 else None),
        base_model=base_check,
    )
