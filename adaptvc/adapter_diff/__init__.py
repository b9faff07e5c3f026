"""Diffing adapters without the base model: config changes and factored update norms.

The package behind :func:`adaptvc.diff`, named apart so that importing it never shadows
that function on the ``adaptvc`` package.

The public entry is :func:`adaptvc.api.diff`; this package holds the parts:

- :mod:`~adaptvc.adapter_diff.sources`: a directory or a ref → config + weights file;
- :mod:`~adaptvc.adapter_diff.lora_modules`: which tensors are LoRA factors, their layout and scale;
- :mod:`~adaptvc.adapter_diff.lowrank`: norms, distances and cosines from r×r Gram products;
- :mod:`~adaptvc.adapter_diff.elementwise`: streamed comparison of the other tensors;
- :mod:`~adaptvc.adapter_diff.engine`: the walk over both files, module by module;
- :mod:`~adaptvc.adapter_diff.result`: the frozen result and its JSON form;
- :mod:`~adaptvc.adapter_diff.plot`: the heatmap (matplotlib, optional).
"""

from __future__ import annotations

import os

from adaptvc.adapter_diff.engine import Progress, diff_sources
from adaptvc.adapter_diff.result import DiffResult, DiffSummary, ModuleDiff, TensorDiff
from adaptvc.adapter_diff.sources import AdapterSource, resolve_source, workspace_source

__all__ = [
    "AdapterSource",
    "DiffResult",
    "DiffSummary",
    "ModuleDiff",
    "TensorDiff",
    "diff_adapters",
    "diff_sources",
]


def diff_adapters(
    a: str | os.PathLike[str],
    b: str | os.PathLike[str] | None = None,
    *,
    repo: str | os.PathLike[str] = ".",
    force: bool = False,
    progress: Progress | None = None,
) -> DiffResult:
    """Resolve both sides (``b`` defaults to ``a``'s workspace) and compare them."""
    src_a = resolve_source(str(a), repo=repo)
    src_b = workspace_source(str(a), repo=repo) if b is None else resolve_source(str(b), repo=repo)
    return diff_sources(src_a, src_b, force=force, progress=progress)
