"""What a merge or compress produced: per-module ranks and the error a truncation dropped."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModuleResult:
    """One module of the result.

    Attributes:
        name: the module path (without ``base_model.model.``).
        rank: its rank in the written adapter.
        dropped: ‖Σ w_i·ΔW_i − ΔW_written‖_F (0 for ``cat``, up to rounding to the file's dtype).
        norm: ‖Σ w_i·ΔW_i‖_F (``svd`` only; None for ``cat``).
        relative_error: dropped / norm (0 when the sum is zero).
    """

    name: str
    rank: int
    dropped: float
    norm: float | None
    relative_error: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "module": self.name,
            "rank": self.rank,
            "dropped": self.dropped,
            "norm": self.norm,
            "relative_error": self.relative_error,
        }


@dataclass(frozen=True)
class AlgebraResult:
    """The combination written, before it is recorded as a version.

    Attributes:
        method: ``"cat"`` or ``"svd"``.
        weights: one per input, in the inputs' order.
        rank: the config's ``r`` (the most common module rank; others in ``rank_pattern``).
        requested_rank, energy: what ``svd`` was asked for.
        modules: per module, in name order.
        dropped: ‖error‖_F over all modules (√Σ dropped²).
        norm: ‖Σ w_i·ΔW_i‖_F over all modules (``svd`` only).
        relative_error: dropped / norm over all modules (0 for ``cat``).
    """

    method: str
    weights: tuple[float, ...]
    rank: int
    requested_rank: int | None
    energy: float | None
    modules: tuple[ModuleResult, ...]
    dropped: float
    norm: float | None
    relative_error: float

    @property
    def ranks(self) -> dict[str, int]:
        return {m.name: m.rank for m in self.modules}

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "weights": list(self.weights),
            "rank": self.rank,
            "requested_rank": self.requested_rank,
            "energy": self.energy,
            "dropped": self.dropped,
            "norm": self.norm,
            "relative_error": self.relative_error,
            "modules": [m.to_dict() for m in self.modules],
        }
