"""The API for the diff (numpy: this module is loaded only when a diff runs)."""

from __future__ import annotations

import os

from adaptvc.adapter_diff import diff_adapters
from adaptvc.adapter_diff.result import DiffResult

# --- diff (numpy, no torch, no base model) ----------------------------------------------


def diff(
    a: str | os.PathLike[str],
    b: str | os.PathLike[str] | None = None,
    *,
    repo: str | os.PathLike[str] = ".",
    force: bool = False,
) -> DiffResult:
    """Compare two adapters layer by layer, without the base model.

    Compares the effective LoRA updates ``ΔW = s·B·A`` (never the raw factors, which are
    only defined up to ``B·M, M⁻¹·A``) from r×r products in float64, streaming the
    memory-mapped weights module by module; other tensors (``modules_to_save``, biases,
    DoRA magnitudes, non-LoRA PEFT types) elementwise. See docs/diff.md.

    Args:
        a: a ref (``task_a@v2``) or a directory in PEFT format.
        b: the same; default: the workspace (unsaved) state of ``a``'s adapter.
        repo: the repository refs are resolved in.
        force: compare even when the base models differ.

    Returns:
        A :class:`~adaptvc.adapter_diff.result.DiffResult`: ``config`` changes, per-module
        ``modules`` (norms, distance, relative change, cosine), elementwise ``tensors``,
        ``summary`` (totals, added/removed/reshaped, base-model check); ``.top(n)``,
        ``.to_dict()`` (the ``--json`` document) and ``.plot(path)``.

    Raises:
        BaseModelMismatchError: recorded base models differ and ``force`` is False.
        InvalidAdapterError: unreadable or inconsistent adapter files.
        InvalidRefError, AdapterNotFoundError, VersionNotFoundError: a bad ref.

    Example:
        >>> r = adaptvc.diff("task_a@v2", "task_a@v3")          # doctest: +SKIP
        >>> [(m.module, round(m.relative, 3)) for m in r.top(3)]  # doctest: +SKIP
    """
    return diff_adapters(a, b, repo=repo, force=force)
