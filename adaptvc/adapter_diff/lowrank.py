"""Norms, distances and cosines of low-rank updates, without the dense matrix.

A LoRA module's effective update is ``ΔW = s·L·R`` with ``L`` (m×r) and ``R`` (r×n) in
the base weight's own layout (see :mod:`adaptvc.adapter_diff.lora_modules` for how PEFT's
``lora_A``/``lora_B`` map onto ``L``/``R``). Frobenius inner products of such products
reduce to r×r matrices:

    ⟨P·Q, U·V⟩_F = tr(Qᵀ Pᵀ U V) = Σ_ij (PᵀU)_ij · (Q Vᵀ)_ij

so ``‖LR‖² = Σ (LᵀL) ∘ (RRᵀ)`` and ``⟨L1R1, L2R2⟩ = Σ (L1ᵀL2) ∘ (R1R2ᵀ)``: two thin
Gram products (O((m+n)·r²) flops) instead of an m×n matrix (O(m·n·r)).

The distance is where care is needed. The textbook expansion
``‖ΔW_b − ΔW_a‖² = ‖ΔW_a‖² + ‖ΔW_b‖² − 2⟨ΔW_a, ΔW_b⟩`` subtracts two nearly equal numbers
when the update barely moved (consecutive checkpoints): its absolute error is about
``ε·‖ΔW‖²``, so a relative change of 1e-6 would come out with 1e-4 relative error even in
float64. When both sides have the same rank (the usual case) we instead factor the
difference itself, exactly:

    s_b·L_b·R_b − s_a·L_a·R_a = (s_b·L_b − s_a·L_a)·R_b + s_a·L_a·(R_b − R_a)

The factor differences are computed elementwise from the stored values (exact for
fp16/bf16 inputs widened to float64), so when training moved both factors a little every
term of the resulting sum is of the size of the change, not of ΔW, and the distance
keeps full relative precision. Identical factors give exactly 0.

One case still cancels: factors that moved a lot while their product did not (a
re-parametrisation ``B·M, M⁻¹·A``, e.g. an adapter "rebalanced" through an SVD). Any
Gram formula then bottoms out near ``√ε·‖ΔW‖ ≈ 1e-8·‖ΔW‖``. When the Gram sum has
cancelled more than six digits, the distance is recomputed from thin QR factorisations
of the stacked factors, ``L = Q_L·T_L``, ``Rᵀ = Q_R·T_R``, ``‖L·R‖ = ‖T_L·T_Rᵀ‖`` (T are
2r×2r), which is backward stable: error about ``ε·‖ΔW‖``. QR costs ~10x a Gram product,
so it is used only where it is needed. Different ranks use the plain expansion with the
same fallback.
"""

from __future__ import annotations

import math
from typing import cast

import numpy as np


class LowRankUpdate:
    """``ΔW = scale · left @ right``: ``left`` (m×r) and ``right`` (r×n), float64.

    A plain class, not a dataclass: every ``adaptvc diff`` imports this module, and
    creating a dataclass costs about 1 ms.
    """

    __slots__ = ("left", "right", "scale")

    def __init__(self, left: np.ndarray, right: np.ndarray, scale: float) -> None:
        if left.ndim != 2 or right.ndim != 2 or left.shape[1] != right.shape[0]:
            raise ValueError(f"not a low-rank pair: left {left.shape}, right {right.shape}")
        self.left, self.right, self.scale = left, right, scale

    def __repr__(self) -> str:
        return f"LowRankUpdate(left={self.left.shape}, right={self.right.shape}, scale={self.scale!r})"

    @property
    def rank(self) -> int:
        return self.left.shape[1]

    @property
    def shape(self) -> tuple[int, int]:
        return (self.left.shape[0], self.right.shape[1])

    def dense(self) -> np.ndarray:
        """The m×n matrix (for tests and small cases only)."""
        return self.scale * (self.left @ self.right)


class PairStats:
    """Frobenius quantities of two updates ``a`` and ``b`` of the same shape."""

    __slots__ = ("norm_a", "norm_b", "delta_norm", "inner")

    def __init__(self, norm_a: float, norm_b: float, delta_norm: float, inner: float) -> None:
        self.norm_a = norm_a
        self.norm_b = norm_b
        self.delta_norm = delta_norm  # ‖ΔW_b − ΔW_a‖_F
        self.inner = inner  # ⟨ΔW_a, ΔW_b⟩_F

    def __repr__(self) -> str:
        return (
            f"PairStats(norm_a={self.norm_a!r}, norm_b={self.norm_b!r}, delta_norm={self.delta_norm!r}, "
            f"inner={self.inner!r})"
        )

    @property
    def relative(self) -> float:
        """‖ΔW_b − ΔW_a‖ / ‖ΔW_a‖ (inf if ΔW_a is zero and ΔW_b is not, 0 if both are)."""
        if self.norm_a > 0:
            return self.delta_norm / self.norm_a
        return math.inf if self.delta_norm > 0 else 0.0

    @property
    def cosine(self) -> float | None:
        """⟨ΔW_a, ΔW_b⟩ / (‖ΔW_a‖·‖ΔW_b‖), or None when either update is zero."""
        if self.norm_a > 0 and self.norm_b > 0:
            return max(-1.0, min(1.0, self.inner / (self.norm_a * self.norm_b)))
        return None


# Below this ratio of result to the size of its terms, the Gram sum has lost > 6 digits.
CANCELLATION = 1e-6


def _sum_product(x: np.ndarray, y: np.ndarray) -> float:
    """Σ_ij x_ij·y_ij of two small matrices (contiguous ones take the BLAS dot path)."""
    if x.flags.c_contiguous and y.flags.c_contiguous:
        return float(np.vdot(x, y))
    return float(np.einsum("ij,ij->", x, y))


# np.dot, not the @ operator: for 2-d float64 arrays both call the same BLAS routine
# (syrk for x.T·x), but np.dot releases the GIL while it runs, so another thread (the
# engine's reader, decoding the next module) proceeds meanwhile.
_dot = np.dot


def _qr_norm(left: np.ndarray, right: np.ndarray) -> float:
    """‖left @ right‖_F via the triangular factors of thin QRs (backward stable)."""
    # mode="r" returns the triangular factor alone (numpy's stubs say a QRResult)
    t_left = cast(np.ndarray, np.linalg.qr(left, mode="r"))
    t_right = cast(np.ndarray, np.linalg.qr(right.T, mode="r"))
    return float(np.linalg.norm(t_left @ t_right.T))


def squared_norm(u: LowRankUpdate) -> float:
    """‖scale·L·R‖²_F from r×r Gram matrices."""
    return u.scale * u.scale * max(_sum_product(u.left.T @ u.left, u.right @ u.right.T), 0.0)


class Buffers:
    """Reusable float64 scratch arrays, one per role.

    A 7B adapter has a few hundred modules whose factors share a handful of shapes;
    allocating fresh megabyte-sized temporaries for each one page-faults the memory in
    again every time, which costs as much as the arithmetic. Arrays handed out for a
    role are overwritten by the next request for that role.
    """

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, role: str, shape: tuple[int, ...]) -> np.ndarray:
        n = math.prod(shape)
        buf = self._arrays.get(role)
        if buf is None or buf.size < n:
            buf = self._arrays[role] = np.empty(n, dtype=np.float64)
        return buf[:n].reshape(shape)


def compare(a: LowRankUpdate, b: LowRankUpdate, *, buffers: Buffers | None = None) -> PairStats:
    """Norms, distance and inner product of two updates of the same shape.

    Args:
        a, b: the updates.
        buffers: scratch space to reuse across calls (optional; faster on many modules).

    Raises:
        ValueError: the shapes differ (compare those as added + removed instead).
    """
    if a.shape != b.shape:
        raise ValueError(f"updates of different shapes: {a.shape} vs {b.shape}")
    if a.rank == b.rank:
        na2, nb2, delta, inner = _compare_same_rank(a, b, buffers or Buffers())
    else:
        na2, nb2, delta, inner = _compare_other_rank(a, b)
    return PairStats(
        norm_a=math.sqrt(max(na2, 0.0)),
        norm_b=math.sqrt(max(nb2, 0.0)),
        delta_norm=delta,
        inner=inner,
    )


def _difference_factors(a: LowRankUpdate, b: LowRankUpdate, buffers: Buffers) -> tuple[np.ndarray, np.ndarray]:
    """``(dL, dR) = (s_b·L_b − s_a·L_a, R_b − R_a)``, elementwise from the stored values."""
    sa, sb = float(a.scale), float(b.scale)
    la, lb = a.left, b.left
    d_left = buffers.get("d_left", lb.shape)
    if sa == sb:  # the usual case: one rounding fewer, no temporary
        np.subtract(lb, la, out=d_left)
        d_left *= sb
    else:
        np.multiply(lb, sb, out=d_left)
        d_left -= np.multiply(la, sa, out=buffers.get("scaled", la.shape))
    d_right = np.subtract(b.right, a.right, out=buffers.get("d_right", b.right.shape))
    return d_left, d_right


def _compare_same_rank(a: LowRankUpdate, b: LowRankUpdate, buffers: Buffers) -> tuple[float, float, float, float]:
    """``(‖ΔW_a‖², ‖ΔW_b‖², ‖ΔW_b − ΔW_a‖, ⟨ΔW_a, ΔW_b⟩)`` through the factored difference."""
    sa, sb = float(a.scale), float(b.scale)
    la, lb, ra, rb = a.left, b.left, a.right, b.right
    d_left, d_right = _difference_factors(a, b, buffers)
    # Six thin products with r×r results (four of them symmetric): the differences
    # against a's left and b's right factor. Both norms follow from the same Grams,
    # since s_b·L_b = dL + s_a·L_a and R_a = R_b − dR; where that sum cancels (one
    # update much smaller than the other) the norm is taken from its own factors.
    gl_aa, gl_dd, gl_da = _dot(la.T, la), _dot(d_left.T, d_left), _dot(d_left.T, la)
    gr_bb, gr_dd, gr_bd = _dot(rb, rb.T), _dot(d_right, d_right.T), _dot(rb, d_right.T)
    # ‖dL·R_b + s_a·L_a·dR‖² = ‖dL·R_b‖² + s_a²‖L_a·dR‖² + 2·s_a⟨dL·R_b, L_a·dR⟩
    t1 = _sum_product(gl_dd, gr_bb)
    w = _sum_product(gl_aa, gr_dd)  # ‖L_a·dR‖²
    t2 = sa * sa * w
    d2 = t1 + t2 + 2.0 * sa * _sum_product(gl_da, gr_bd)
    if d2 < CANCELLATION * (t1 + t2) and t1 + t2 > 0:
        delta = _qr_norm(np.concatenate([d_left, sa * la], axis=1), np.concatenate([rb, d_right], axis=0))
    else:
        delta = math.sqrt(max(d2, 0.0))
    y = _sum_product(gl_aa, gr_bb)  # ‖L_a·R_b‖²
    # ‖s_b·L_b·R_b‖² = ‖dL·R_b‖² + 2·s_a⟨dL·R_b, L_a·R_b⟩ + s_a²‖L_a·R_b‖²
    nb2 = t1 + 2.0 * sa * _sum_product(gl_da, gr_bb) + sa * sa * y
    if nb2 < CANCELLATION * (t1 + sa * sa * y):  # b's update is tiny next to a's (e.g. B = 0)
        nb2 = sb * sb * _sum_product(lb.T @ lb, gr_bb)
    # ‖s_a·L_a·R_a‖² = s_a²(‖L_a·R_b‖² − 2⟨L_a·R_b, L_a·dR⟩ + ‖L_a·dR‖²)
    na2 = sa * sa * (y - 2.0 * _sum_product(gl_aa, gr_bd) + w)
    if na2 < CANCELLATION * sa * sa * (y + w):  # a's update is tiny next to b's
        na2 = sa * sa * _sum_product(gl_aa, ra @ ra.T)
    # ⟨a, b⟩ = (‖a‖² + ‖b‖² − ‖b − a‖²)/2: same absolute accuracy (ε·‖ΔW‖²) as its own
    # Gram product, two products fewer.
    return na2, nb2, delta, 0.5 * (na2 + nb2 - delta * delta)


def _compare_other_rank(a: LowRankUpdate, b: LowRankUpdate) -> tuple[float, float, float, float]:
    """As :func:`_compare_same_rank`, from the plain expansion (ranks differ), QR where it cancels."""
    sa, sb = float(a.scale), float(b.scale)
    na2 = squared_norm(a)
    nb2 = squared_norm(b)
    inner = sa * sb * _sum_product(a.left.T @ b.left, a.right @ b.right.T)
    d2 = na2 + nb2 - 2.0 * inner
    if d2 < CANCELLATION * (na2 + nb2) and na2 + nb2 > 0:
        delta = _qr_norm(
            np.concatenate([sb * b.left, -sa * a.left], axis=1), np.concatenate([b.right, a.right], axis=0)
        )
    else:
        delta = math.sqrt(max(d2, 0.0))
    return na2, nb2, delta, inner
