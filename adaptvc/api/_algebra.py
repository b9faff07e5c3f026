"""The API for adapter algebra: ``merge`` and ``compress`` (numpy; loaded only when they run)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from adaptvc.repo import AdapterRepo
from adaptvc.versioning.algebra import CombinedVersion, compress_version, merge_versions


def merge(
    refs: Sequence[str],
    *,
    adapter: str,
    weights: Sequence[float] | None = None,
    method: str = "cat",
    rank: int | None = None,
    message: str | None = None,
    force: bool = False,
    repo: str | os.PathLike[str] = ".",
    progress: Callable[[int, int], None] | None = None,
) -> CombinedVersion:
    """Merge saved LoRA versions into a new version whose parents are all of them.

    Computes ``ΔW = Σ w_i·ΔW_i`` module by module from the factors in the files (no base
    model, no torch, float64). ``cat`` stacks the weighted factors: exact, rank Σ r_i.
    ``svd`` keeps the best rank-``rank`` approximation, from thin QRs of the stacked
    factors and the SVD of a small core (never a d_out × d_in matrix), and reports the
    relative Frobenius error it dropped, per module and in total. A module that only some
    inputs adapt is a zero update in the others. The result is an ordinary PEFT adapter
    (``PeftModel.from_pretrained`` loads it) saved as ``adapter``'s next version. See
    docs/algebra.md.

    Args:
        refs: the versions to merge (``task_a@v3``, ``task_b@production``, ...).
        adapter: the adapter the result is saved to (new or existing).
        weights: one per ref (default 1 each); negative weights subtract.
        method: ``"cat"`` or ``"svd"``.
        rank: the rank ``svd`` keeps (default: the largest input rank, as PEFT's default).
        message: the version's message (default: names the inputs, weights and method).
        force: merge inputs whose base models differ; overwrite unsaved changes in
            ``adapters/<adapter>/``.
        repo: a path inside the repository.
        progress: called with (modules done, modules in all).

    Returns:
        A :class:`~adaptvc.versioning.algebra.CombinedVersion`: ``.version`` (the new
        :class:`~adaptvc.manifest.AdapterVersion`), ``.inputs``, ``.result`` (per-module
        ranks and errors; ``.result.relative_error`` in total).

    Raises:
        NotMergeableError: an input is not LoRA, uses DoRA, or holds other tensors.
        IncompatibleAdaptersError: a module's update has different shapes in two inputs.
        BaseModelMismatchError: the inputs' base models differ and ``force`` is False.
        InvalidAlgebraArgumentError: weights, method or rank do not fit.
        DirtyWorkspaceError: ``adapters/<adapter>/`` has unsaved changes and ``force`` is False.
        InvalidRefError, AdapterNotFoundError, VersionNotFoundError: a bad ref.

    Example:
        >>> m = adaptvc.merge(["task_a@v3", "task_b@v2"], adapter="both",
        ...                   weights=[0.7, 0.3], method="svd", rank=16)   # doctest: +SKIP
        >>> m.version.ref, round(m.result.relative_error, 4)             # doctest: +SKIP
        ('both@v1', 0.0123)
    """
    return merge_versions(
        AdapterRepo.open(repo),
        refs,
        adapter=adapter,
        weights=weights,
        method=method,
        rank=rank,
        message=message,
        force=force,
        progress=progress,
    )


def compress(
    ref: str,
    *,
    rank: int | None = None,
    energy: float | None = None,
    adapter: str | None = None,
    message: str | None = None,
    force: bool = False,
    repo: str | os.PathLike[str] = ".",
    progress: Callable[[int, int], None] | None = None,
) -> CombinedVersion:
    """Reduce a saved LoRA version's rank, as a new version whose parent is ``ref``.

    The same SVD as ``merge --method svd`` on one input: the best approximation of each
    module's ``ΔW`` of rank ``rank``, or (``energy``) of the least rank per module that
    keeps that share of ``‖ΔW‖²_F``, written as ``rank_pattern``. Reports the relative
    Frobenius error dropped, per module and in total.

    Args:
        ref: the version to compress.
        rank: the rank to keep (exactly one of ``rank`` and ``energy``).
        energy: the share of ``‖ΔW‖²_F`` to keep per module, in (0, 1], e.g. 0.99.
        adapter: save to this adapter (default: ``ref``'s own, as its next version).
        message, force, repo, progress: as for :func:`merge`.

    Returns:
        A :class:`~adaptvc.versioning.algebra.CombinedVersion`.

    Raises:
        As :func:`merge`.

    Example:
        >>> c = adaptvc.compress("task_a@v3", energy=0.99)              # doctest: +SKIP
        >>> c.result.ranks["model.layers.0.self_attn.q_proj"]             # doctest: +SKIP
        11
    """
    r = AdapterRepo.open(repo)
    return compress_version(
        r, ref, rank=rank, energy=energy, adapter=adapter, message=message, force=force, progress=progress
    )
