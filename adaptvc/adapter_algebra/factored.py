"""Weighted sums of low-rank updates, exactly (``cat``) or truncated (``svd``), from the factors.

Each input update is ``ΔW_i = s_i·L_i·R_i`` (``L_i`` m×r_i, ``R_i`` r_i×n, in the base
weight's layout: :class:`~adaptvc.adapter_diff.lowrank.LowRankUpdate`). The weighted sum
is itself a product of stacked factors:

    Σ w_i·ΔW_i = [w_1·s_1·L_1 | … | w_k·s_k·L_k] · [R_1; …; R_k]  =  L·R   (rank ≤ Σ r_i)

``cat`` writes ``L`` and ``R`` as they are (exact). ``svd`` keeps the best rank-``R``
approximation of ``L·R`` (Eckart–Young) without forming the m×n matrix: thin QRs
``L = Q_L·T_L`` and ``Rᵀ = Q_R·T_R`` leave a small core ``T_L·T_Rᵀ`` (at most Σr_i × Σr_i)
whose SVD ``U·S·Vᵀ`` is the SVD of ``L·R = (Q_L·U)·S·(Q_R·V)ᵀ``, because ``Q_L`` and
``Q_R`` have orthonormal columns. Cost O((m+n)·(Σr)²) instead of O(m·n·min(m, n)).

All arithmetic is float64; callers cast the factors to the file's dtype when writing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from adaptvc.adapter_diff.lowrank import LowRankUpdate


class Factors:
    """``ΔW = left @ right`` (scale 1), with what a truncation dropped.

    ``singular_values``: all of them (kept first) when computed by :func:`truncated`,
    else None. ``dropped``: ‖ΔW_exact − left·right‖_F (0 for ``cat``); ``total``: ‖ΔW_exact‖_F
    when known.
    """

    __slots__ = ("left", "right", "dropped", "total", "singular_values")

    def __init__(
        self,
        left: np.ndarray,
        right: np.ndarray,
        *,
        dropped: float = 0.0,
        total: float | None = None,
        singular_values: np.ndarray | None = None,
    ) -> None:
        self.left, self.right = left, right
        self.dropped, self.total, self.singular_values = dropped, total, singular_values

    @property
    def rank(self) -> int:
        return self.left.shape[1]

    @property
    def relative_error(self) -> float:
        """dropped / total (0 when the update is zero)."""
        return self.dropped / self.total if self.total else 0.0


def stacked(updates: Sequence[LowRankUpdate], weights: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """``(L, R)`` with ``L·R = Σ w_i·s_i·L_i·R_i``: the weight and scale split as √|w·s|
    between the two factors (sign on the left), so neither factor's magnitude drifts far
    from the inputs' when written back in fp16."""
    lefts, rights = [], []
    for u, w in zip(updates, weights, strict=True):
        c = float(w) * float(u.scale)
        root = math.sqrt(abs(c))
        lefts.append(u.left * (math.copysign(root, c) if c else 0.0))
        rights.append(u.right * root)
    return np.concatenate(lefts, axis=1), np.concatenate(rights, axis=0)


def concatenated(updates: Sequence[LowRankUpdate], weights: Sequence[float]) -> Factors:
    """The exact weighted sum, of rank Σ r_i."""
    left, right = stacked(updates, weights)
    return Factors(left, right)


def truncated(
    updates: Sequence[LowRankUpdate],
    weights: Sequence[float],
    *,
    rank: int | None = None,
    energy: float | None = None,
) -> Factors:
    """The best approximation of ``Σ w_i·ΔW_i`` of rank ``rank``, or of the least rank that
    keeps ``energy`` of ``‖ΔW‖²_F`` (exactly one of the two).

    The rank is capped by what the sum can have (``min(m, n, Σ r_i)``): asking for more
    keeps it exact. A zero update keeps rank 1 (zero factors): PEFT needs r ≥ 1.
    """
    if (rank is None) == (energy is None):
        raise ValueError("give exactly one of rank and energy")
    left, right = stacked(updates, weights)
    q_left, t_left = np.linalg.qr(left)  # reduced: m×k', k'×k
    q_right, t_right = np.linalg.qr(right.T)  # n×k'', k''×k
    u, s, vt = np.linalg.svd(t_left @ t_right.T, full_matrices=False)
    squares = s * s
    total2 = float(squares.sum())
    if rank is not None:
        keep = min(rank, len(s))
    else:
        assert energy is not None
        keep = int(np.searchsorted(np.cumsum(squares), energy * total2 * (1 - 1e-12)) + 1) if total2 else 1
        keep = min(keep, len(s))
    keep = max(keep, 1)
    root = np.sqrt(s[:keep])
    out_left = (q_left @ u[:, :keep]) * root
    out_right = root[:, None] * (vt[:keep] @ q_right.T)
    dropped = math.sqrt(float(squares[keep:].sum()))
    return Factors(out_left, out_right, dropped=dropped, total=math.sqrt(total2), singular_values=s)
