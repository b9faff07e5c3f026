"""Combine LoRA adapters' files into a new PEFT adapter directory, module by module.

The walk: check the inputs (LoRA without DoRA, nothing but factors, one base model,
the same update shape per module), then for every module read each input's factors
(float64), form the weighted sum exactly or truncated (:mod:`.factored`), and cast the
new factors to the inputs' dtype. The new ``adapter_config.json`` makes PEFT's scale 1
for every module: ``lora_alpha = r``, no rsLoRA, and ``rank_pattern``/``alpha_pattern``
(exact, escaped module names) where a module's rank differs from ``r``. A module that
only some inputs adapt is a zero update in the others.

The inputs are read memory-mapped, one module at a time; each module's new factors are
cast to their final dtype at once and kept so until the file is written (``--energy``
learns each module's rank only from its singular values, and the header, which comes
first, needs it): memory is about the output's size plus one module in float64.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from adaptvc.adapter_algebra.factored import Factors, concatenated, truncated
from adaptvc.adapter_algebra.result import AlgebraResult, ModuleResult
from adaptvc.adapter_diff.config_diff import check_base_models
from adaptvc.adapter_diff.lora_modules import AdapterLayout, LoraModule, split_adapter
from adaptvc.adapter_diff.lowrank import LowRankUpdate
from adaptvc.adapter_diff.sources import AdapterSource
from adaptvc.errors import IncompatibleAdaptersError, InvalidAlgebraArgumentError, NotMergeableError
from adaptvc.formats import CONFIG_NAME, WEIGHTS_NAME
from adaptvc.formats.adapter_config import normalize_config
from adaptvc.formats.safetensors_header import read_header
from adaptvc.formats.safetensors_reader import SafetensorsReader
from adaptvc.formats.safetensors_writer import SafetensorsWriter, encode
from adaptvc.formats.writer import write_config

Progress = Callable[[int, int], None]
METHODS = ("cat", "svd")
# Config keys that say which modules are adapted; kept only when every input agrees.
_TARGETING = ("target_modules", "layers_to_transform", "layers_pattern", "exclude_modules")


def combine(
    sources: Sequence[AdapterSource],
    out: Path,
    *,
    weights: Sequence[float] | None = None,
    method: str = "cat",
    rank: int | None = None,
    energy: float | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> AlgebraResult:
    """Write ``Σ w_i·ΔW_i`` of the inputs to the PEFT directory ``out``.

    Args:
        sources: the inputs (at least one).
        weights: one per input (default 1 each).
        method: ``"cat"`` (exact, rank Σ r_i) or ``"svd"`` (``rank`` or ``energy``).
        force: combine inputs whose base models differ.

    Raises:
        NotMergeableError, IncompatibleAdaptersError, InvalidAlgebraArgumentError,
        BaseModelMismatchError.
    """
    ws = check_arguments(len(sources), weights, method=method, rank=rank, energy=energy)
    layouts = [_layout(src) for src in sources]
    for src in sources[1:]:
        check_base_models(sources[0], src, force=force)
    names = _module_table(sources, layouts)
    readers = [SafetensorsReader(src.weights) for src in sources]
    results: list[ModuleResult] = []
    tensors: list[tuple[str, str, tuple[int, ...], bytes]] = []  # the output, already in its dtype
    try:
        for i, name in enumerate(names):
            updates, module_ws = [], []
            for reader, layout, w in zip(readers, layouts, ws, strict=True):
                m = layout.modules.get(name)
                if m is not None:
                    updates.append(m.update(reader.read(m.a.name), reader.read(m.b.name)))
                    module_ws.append(w)
                    reader.release_after(2 << 20)
            first = next(layout.modules[name] for layout in layouts if name in layout.modules)
            f = _combine_module(updates, module_ws, method, rank, energy)
            tensors += _encoded(first, f)
            results.append(
                ModuleResult(name=name, rank=f.rank, dropped=f.dropped, norm=f.total, relative_error=f.relative_error)
            )
            if progress is not None:
                progress(i + 1, len(names))
    finally:
        for reader in readers:
            reader.close()
    out.mkdir(parents=True, exist_ok=True)
    with SafetensorsWriter(out / WEIGHTS_NAME, [(key, dtype, shape) for key, dtype, shape, _ in tensors]) as writer:
        for key, _, _, data in tensors:
            writer.write(key, data)
    ranks = {m.name: m.rank for m in results}
    write_config(_config(sources, ranks), out / CONFIG_NAME)
    return _result(method, ws, results, rank=rank, energy=energy, r=_common_rank(ranks))


def check_arguments(
    count: int, weights: Sequence[float] | None, *, method: str, rank: int | None, energy: float | None
) -> list[float]:
    """The weights as floats, after checking every argument.

    Raises:
        InvalidAlgebraArgumentError: naming the argument at fault.
    """
    if method not in METHODS:
        raise InvalidAlgebraArgumentError(f"unknown method {method!r}; use cat or svd", argument="method")
    if count < 1:
        raise InvalidAlgebraArgumentError("nothing to combine: give at least one input", argument="refs")
    ws = [1.0] * count if weights is None else [float(w) for w in weights]
    if len(ws) != count:
        raise InvalidAlgebraArgumentError(
            f"{len(ws)} weights for {count} inputs; give one weight per input", argument="weights"
        )
    if not all(math.isfinite(w) for w in ws):
        raise InvalidAlgebraArgumentError(f"weights must be finite numbers, got {ws}", argument="weights")
    if method == "cat" and (rank is not None or energy is not None):
        raise InvalidAlgebraArgumentError(
            "cat is exact and keeps rank Σ r_i; --rank and --energy go with --method svd", argument="rank"
        )
    if method == "svd" and (rank is None) == (energy is None):
        raise InvalidAlgebraArgumentError("svd needs exactly one of --rank R and --energy E", argument="rank")
    if rank is not None and rank < 1:
        raise InvalidAlgebraArgumentError(f"rank must be at least 1, got {rank}", argument="rank")
    if energy is not None and not 0.0 < energy <= 1.0:
        raise InvalidAlgebraArgumentError(f"energy is a share in (0, 1], got {energy}", argument="energy")
    return ws


def _layout(src: AdapterSource) -> AdapterLayout:
    """The input's LoRA modules, refusing what cannot be combined exactly."""
    config = src.config
    peft_type = str(config.get("peft_type", "")).upper()
    if peft_type != "LORA":
        raise NotMergeableError(
            f"{src.label} is a {peft_type or 'non-PEFT'} adapter; merge and compress combine LoRA adapters only",
            label=src.label,
            reason="peft_type",
        )
    if config.get("use_dora"):
        raise NotMergeableError(
            f"{src.label} uses DoRA: its update is renormalised by the base weights' column norms, "
            "so it is not a sum of low-rank factors and cannot be combined from the files",
            label=src.label,
            reason="dora",
        )
    layout = split_adapter(read_header(src.weights).tensors, config, source=src.label)
    if layout.others:
        listed = ", ".join(sorted(layout.others)[:3]) + (", ..." if len(layout.others) > 3 else "")
        raise NotMergeableError(
            f"{src.label} holds {len(layout.others)} tensor(s) that are not LoRA factors ({listed}): "
            "copies of whole modules (modules_to_save), biases or trainable tokens have no weighted sum "
            "that keeps the adapter's meaning",
            label=src.label,
            reason="tensors",
        )
    return layout


def _module_table(sources: Sequence[AdapterSource], layouts: Sequence[AdapterLayout]) -> list[str]:
    """Every module any input adapts (sorted), after checking their update shapes agree."""
    shapes: dict[str, dict[str, tuple[int, ...]]] = {}
    for src, layout in zip(sources, layouts, strict=True):
        for name, m in layout.modules.items():
            shapes.setdefault(name, {})[src.label] = m.shape
    for name, by_label in shapes.items():
        if len(set(by_label.values())) > 1:
            described = ", ".join(f"{label}: {shape}" for label, shape in by_label.items())
            raise IncompatibleAdaptersError(
                f"module {name!r} has updates of different shapes ({described}); "
                "the adapters were not trained on the same architecture",
                module=name,
                shapes=dict(by_label),
            )
    return sorted(shapes)


def _combine_module(
    updates: list[LowRankUpdate], weights: list[float], method: str, rank: int | None, energy: float | None
) -> Factors:
    if method == "cat":
        return concatenated(updates, weights)
    return truncated(updates, weights, rank=rank, energy=energy)


def _stored(m: LoraModule, f: Factors) -> tuple[np.ndarray, np.ndarray]:
    """``(A, B)`` as PEFT stores them for the module's layout (inverse of ``LoraModule.update``)."""
    r = f.rank
    if m.kind == "linear":
        return f.right, f.left
    if m.kind == "conv":
        return f.right.reshape(r, *m.a.shape[1:]), f.left.reshape(f.left.shape[0], r, *m.b.shape[2:])
    return f.left.T, f.right.T  # conv1d, embedding: ΔW = Aᵀ·Bᵀ


def _encoded(m: LoraModule, f: Factors) -> list[tuple[str, str, tuple[int, ...], bytes]]:
    """The module's new tensors as ``(key, dtype, shape, bytes)``: the key names and dtype of
    the first input that has the module (float32 if that was not a float dtype)."""
    a, b = _stored(m, f)
    out = []
    for info, values in ((m.a, a), (m.b, b)):
        dtype = info.dtype if info.dtype in ("F64", "F32", "F16", "BF16") else "F32"
        out.append((info.name, dtype, tuple(values.shape), encode(values, dtype)))
    return out


def _common_rank(ranks: dict[str, int]) -> int:
    return Counter(ranks.values()).most_common(1)[0][0] if ranks else 1


def _config(sources: Sequence[AdapterSource], ranks: dict[str, int]) -> dict[str, Any]:
    """The first input's config with every module's scale 1 and every module targeted."""
    config = dict(sources[0].config)
    r = _common_rank(ranks)
    pattern = {re.escape(name): rank for name, rank in ranks.items() if rank != r}
    config.update(
        r=r,
        lora_alpha=r,
        use_rslora=False,
        use_dora=False,
        rank_pattern=pattern,
        alpha_pattern=dict(pattern),
    )
    first = normalize_config(config)
    if any(normalize_config(src.config).get(k) != first.get(k) for src in sources[1:] for k in _TARGETING):
        # The inputs adapt different modules: name exactly those the weights hold.
        config.update(target_modules=sorted(ranks), layers_to_transform=None, layers_pattern=None)
        config.pop("exclude_modules", None)
    return config


def _result(
    method: str,
    weights: list[float],
    results: list[ModuleResult],
    *,
    rank: int | None,
    energy: float | None,
    r: int,
) -> AlgebraResult:
    modules = tuple(results)
    dropped = math.sqrt(sum(x.dropped**2 for x in modules))
    norms = [x.norm for x in modules if x.norm is not None]
    norm = math.sqrt(sum(n * n for n in norms)) if len(norms) == len(modules) else None
    return AlgebraResult(
        method=method,
        weights=tuple(weights),
        rank=r,
        requested_rank=rank,
        energy=energy,
        modules=modules,
        dropped=dropped,
        norm=norm,
        relative_error=(dropped / norm if norm else 0.0) if method == "svd" else 0.0,
    )
