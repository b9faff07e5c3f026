"""What :func:`adaptvc.diff` returns: frozen dataclasses, and their JSON form.

``DiffResult.to_dict()`` is exactly what ``adaptvc diff --json`` prints: ``a``, ``b``,
``config`` (changed key → ``[old, new]``), ``modules`` (``module``, ``norm_a``, ``norm_b``,
``delta_norm``, ``relative``, ``cosine``), ``tensors`` (the elementwise ones) and
``summary``. Values JSON cannot hold (an infinite relative change when ``ΔW_a = 0``, an
undefined cosine) are ``null``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adaptvc.formats.companions import CompanionChange


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def relative_change(delta: float, base: float) -> float:
    """``delta / base``; ``inf`` when ``base`` is 0 and ``delta`` is not (0 when both are)."""
    if base > 0:
        return delta / base
    return math.inf if delta > 0 else 0.0


@dataclass(frozen=True)
class ModuleDiff:
    """One LoRA module present in both adapters with the same shape.

    ``relative`` is ``delta_norm / norm_a`` (``inf`` when ``ΔW_a`` is zero and ``ΔW_b`` is
    not); ``cosine`` is None when either update is zero.
    """

    module: str
    norm_a: float
    norm_b: float
    delta_norm: float
    relative: float
    cosine: float | None
    kind: str = "linear"
    shape: tuple[int, ...] = ()
    rank_a: int = 0
    rank_b: int = 0
    scale_a: float = 1.0
    scale_b: float = 1.0
    inner: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "norm_a": self.norm_a,
            "norm_b": self.norm_b,
            "delta_norm": self.delta_norm,
            "relative": _num(self.relative),
            "cosine": _num(self.cosine),
        }


@dataclass(frozen=True)
class TensorDiff:
    """One non-factor tensor present in both adapters with the same shape."""

    tensor: str
    shape: tuple[int, ...]
    dtype_a: str
    dtype_b: str
    norm_a: float
    norm_b: float
    delta_norm: float
    max_abs_diff: float
    relative: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "tensor": self.tensor,
            "shape": list(self.shape),
            "dtype_a": self.dtype_a,
            "dtype_b": self.dtype_b,
            "norm_a": self.norm_a,
            "norm_b": self.norm_b,
            "delta_norm": self.delta_norm,
            "max_abs_diff": _num(self.max_abs_diff),
            "relative": _num(self.relative),
        }


@dataclass(frozen=True)
class OneSided:
    """A module or tensor only one side has; ``norm`` is its ‖ΔW‖ (or ‖t‖)."""

    name: str
    shape: tuple[int, ...]
    norm: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "norm": self.norm}


@dataclass(frozen=True)
class ShapeChange:
    """A module or tensor both sides have, with different shapes (not comparable)."""

    name: str
    shape_a: tuple[int, ...]
    shape_b: tuple[int, ...]
    norm_a: float
    norm_b: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "shape_a": list(self.shape_a),
            "shape_b": list(self.shape_b),
            "norm_a": self.norm_a,
            "norm_b": self.norm_b,
        }


@dataclass(frozen=True)
class BaseModelCheck:
    """What each side records of its base model, and whether they agree.

    ``status`` is ``"match"`` (fingerprints, or names and revisions, agree), ``"unknown"``
    (not enough recorded to tell) or ``"mismatch"`` (only reachable with ``force=True``);
    ``detail`` says on what basis.
    """

    a: dict[str, Any]
    b: dict[str, Any]
    status: str
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "status": self.status, "detail": self.detail}


@dataclass(frozen=True)
class DiffSummary:
    """Counts, one-sided and reshaped entries, and totals over the whole adapter.

    Totals treat the adapter's update as one long vector (every module's ΔW side by
    side): ``norm_a = √Σ‖ΔW_a‖²``, ``delta_norm = √Σ‖ΔW_b − ΔW_a‖²`` where a module only one
    side has counts with its full norm (the other side's update is zero) and a reshaped
    module counts as removed plus added; ``cosine`` is the cosine of those long vectors.
    """

    modules_compared: int
    modules_changed: int
    modules_added: tuple[OneSided, ...]
    modules_removed: tuple[OneSided, ...]
    modules_reshaped: tuple[ShapeChange, ...]
    tensors_compared: int
    tensors_changed: int
    tensors_added: tuple[OneSided, ...]
    tensors_removed: tuple[OneSided, ...]
    tensors_reshaped: tuple[ShapeChange, ...]
    norm_a: float
    norm_b: float
    delta_norm: float
    relative: float
    cosine: float | None
    base_model: BaseModelCheck

    def to_dict(self) -> dict[str, Any]:
        return {
            "modules_compared": self.modules_compared,
            "modules_changed": self.modules_changed,
            "modules_added": [m.to_dict() for m in self.modules_added],
            "modules_removed": [m.to_dict() for m in self.modules_removed],
            "modules_reshaped": [m.to_dict() for m in self.modules_reshaped],
            "tensors_compared": self.tensors_compared,
            "tensors_changed": self.tensors_changed,
            "tensors_added": [t.to_dict() for t in self.tensors_added],
            "tensors_removed": [t.to_dict() for t in self.tensors_removed],
            "tensors_reshaped": [t.to_dict() for t in self.tensors_reshaped],
            "norm_a": self.norm_a,
            "norm_b": self.norm_b,
            "delta_norm": self.delta_norm,
            "relative": _num(self.relative),
            "cosine": _num(self.cosine),
            "base_model": self.base_model.to_dict(),
        }


@dataclass(frozen=True)
class DiffResult:
    """The difference between two adapters: config, LoRA updates, other tensors.

    Attributes:
        a, b: the refs or directories as given.
        origin_a, origin_b: where each side was read from, for people (a directory, or
            "saved version <id>: <message>").
        config: changed config keys → ``(old, new)`` (a key one side lacks is None there).
        modules: per-module comparison of the effective updates ΔW, in module order.
        tensors: elementwise comparison of the other tensors.
        summary: totals, counts, added/removed/reshaped, base-model check.
        companions: companion files (tokenizer files, README.md, ...) added, removed or
            changed, with a unified diff for text files.
    """

    a: str
    b: str
    origin_a: str
    origin_b: str
    config: dict[str, tuple[Any, Any]]
    modules: tuple[ModuleDiff, ...]
    tensors: tuple[TensorDiff, ...]
    summary: DiffSummary
    notes: tuple[str, ...] = field(default=())
    companions: tuple[CompanionChange, ...] = field(default=())  # tokenizer, model card, ... that differ

    @property
    def identical(self) -> bool:
        """No config change, no tensor change, no companion file change, nothing added,
        removed or reshaped."""
        s = self.summary
        return not (
            self.config
            or self.companions
            or s.modules_changed
            or s.tensors_changed
            or s.modules_added
            or s.modules_removed
            or s.modules_reshaped
            or s.tensors_added
            or s.tensors_removed
            or s.tensors_reshaped
        )

    def top(self, n: int = 10) -> list[ModuleDiff]:
        """The ``n`` modules with the largest relative change (ties: larger ‖ΔW_b − ΔW_a‖ first)."""
        ranked = sorted(self.modules, key=lambda m: (-m.relative, -m.delta_norm, m.module))
        return ranked[: max(n, 0)]

    def to_dict(self, *, top: int = 10) -> dict[str, Any]:
        """The ``--json`` document; ``summary.top`` lists the ``top`` modules by relative change;
        ``companions`` (only when some differ) lists companion files with their diffs."""
        summary = self.summary.to_dict()
        summary["top"] = [{"module": m.module, "relative": _num(m.relative)} for m in self.top(top)]
        doc = {
            "a": self.a,
            "b": self.b,
            "config": {k: [v[0], v[1]] for k, v in self.config.items()},
            "modules": [m.to_dict() for m in self.modules],
            "tensors": [t.to_dict() for t in self.tensors],
            "summary": summary,
        }
        if self.companions:  # the key appears when companion files differ (documents stay as they were)
            doc["companions"] = [c.to_dict() for c in self.companions]
        return doc

    def plot(self, path: str | os.PathLike[str]) -> Path:
        """Write a heatmap of relative change (layers × module types) to ``path`` (PNG).

        Raises:
            MissingDependencyError: matplotlib is not installed (``pip install 'adaptvc[plot]'``).
        """
        # Imported here, not at the top: ~1 ms on every `adaptvc diff`, which only --plot
        # needs (plot imports nothing from this module at run time: no cycle).
        from adaptvc.adapter_diff.plot import plot_heatmap

        return plot_heatmap(self, path)
