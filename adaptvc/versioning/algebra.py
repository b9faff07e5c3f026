"""``merge`` and ``compress``: adapter algebra on saved versions, recorded as a version.

One transaction: the inputs' weights (already in the local cache, fetched before the
lock is taken) are combined into the transaction's scratch directory
(:func:`adaptvc.adapter_algebra.combine`), and that directory is saved as a new version
of the target adapter through the save path (:func:`~adaptvc.versioning.save.save_derived`)
with every input as a parent. A failure anywhere leaves the repository as it was.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from adaptvc.adapter_algebra import AlgebraResult, check_arguments, combine
from adaptvc.adapter_algebra.combine import Progress
from adaptvc.adapter_diff.sources import version_source
from adaptvc.errors import DirtyWorkspaceError
from adaptvc.formats import WEIGHTS_NAME
from adaptvc.manifest import AdapterVersion
from adaptvc.refs import resolve_version, validate_name
from adaptvc.repo import AdapterRepo
from adaptvc.storage.fetch import ensure_versions
from adaptvc.transaction import transaction
from adaptvc.versioning.save import save_derived, warn_about_unusual_git_state
from adaptvc.versioning.workspace import MODIFIED, NEVER_SAVED, adapter_status

log = logging.getLogger("adaptvc")


@dataclass(frozen=True)
class CombinedVersion:
    """A version written by ``merge`` or ``compress`` and how it was computed.

    Attributes:
        version: the new version (``new=False``: identical to the version the adapter's
            directory is at; nothing was recorded).
        inputs: the input versions, in the order given.
        result: per-module ranks and the error a truncation dropped.
    """

    version: AdapterVersion
    inputs: tuple[AdapterVersion, ...]
    result: AlgebraResult

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.version.to_dict(),
            "created": self.version.new,
            "inputs": [v.ref for v in self.inputs],
            "algebra": self.result.to_dict(),
        }


def merge_versions(
    repo: AdapterRepo,
    refs: Sequence[str],
    *,
    adapter: str,
    weights: Sequence[float] | None = None,
    method: str = "cat",
    rank: int | None = None,
    energy: float | None = None,
    message: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> CombinedVersion:
    """Record ``Σ w_i·ΔW_i`` of the versions ``refs`` as a new version of ``adapter``.

    ``force``: combine inputs whose base models differ, and overwrite unsaved changes in
    ``adapters/<adapter>/``.

    Raises:
        NotMergeableError, IncompatibleAdaptersError, InvalidAlgebraArgumentError,
        BaseModelMismatchError, DirtyWorkspaceError, and what resolving a ref raises.
    """
    validate_name(adapter)
    inputs = [resolve_version(repo, ref, with_commit=False) for ref in refs]
    if method == "svd" and rank is None and energy is None:
        rank = max((_largest_rank(repo, v) for v in inputs), default=1)
    ws = check_arguments(len(refs), weights, method=method, rank=rank, energy=energy)
    ensure_versions(repo, inputs)  # a slow remote does not hold the lock
    text = message or _default_message(inputs, ws, method, rank, energy)
    with transaction(repo, "merge" if len(inputs) > 1 else "compress", adapter) as txn:
        _refuse_unsaved_changes(repo, adapter, force=force)
        sources = [version_source(repo, v, label=ref) for v, ref in zip(inputs, refs, strict=True)]
        out = txn.workdir / "combined"
        result = combine(
            sources, out, weights=ws, method=method, rank=rank, energy=energy, force=force, progress=progress
        )
        version = save_derived(txn, out, adapter=adapter, message=text, parents=inputs, metrics=_metrics(result))
    if version.new:
        warn_about_unusual_git_state(repo, version)
        log.info("%s: %s of %s", version.ref, method, ", ".join(v.ref for v in inputs))
    return CombinedVersion(version, tuple(inputs), result)


def compress_version(
    repo: AdapterRepo,
    ref: str,
    *,
    rank: int | None = None,
    energy: float | None = None,
    adapter: str | None = None,
    message: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> CombinedVersion:
    """Record the best rank-``rank`` (or ``energy``-keeping) approximation of ``ref`` as a
    new version of ``adapter`` (default: ``ref``'s own adapter) whose parent is ``ref``."""
    target = adapter or resolve_version(repo, ref, with_commit=False).adapter
    return merge_versions(
        repo,
        [ref],
        adapter=target,
        method="svd",
        rank=rank,
        energy=energy,
        message=message,
        force=force,
        progress=progress,
    )


def _largest_rank(repo: AdapterRepo, version: AdapterVersion) -> int:
    """The largest rank in a version's config (``r`` and ``rank_pattern``): PEFT's svd default."""
    try:
        config = json.loads(repo.version_config(version))
        return max([int(config.get("r") or 8), *(int(r) for r in (config.get("rank_pattern") or {}).values())])
    except (ValueError, TypeError, AttributeError):
        return int(version.peft.r or 1)


def _refuse_unsaved_changes(repo: AdapterRepo, adapter: str, *, force: bool) -> None:
    """The new version's files replace ``adapters/<adapter>/``'s: never over unsaved work."""
    status = adapter_status(repo, adapter, repo.versions(adapter))
    rel = repo.adapter_rel(adapter)
    unsaved = status.state == MODIFIED or (
        status.state == NEVER_SAVED and (repo.adapter_dir(adapter) / WEIGHTS_NAME).exists()
    )
    if unsaved and not force:
        raise DirtyWorkspaceError(
            f"{rel}/ has unsaved changes ({', '.join(status.changes) or 'never saved'}); "
            "the new version's files would replace them",
            hint=f'save them first (adaptvc save --adapter {adapter} -m "...") or overwrite them with --force',
        )


def _default_message(
    inputs: Sequence[AdapterVersion], weights: Sequence[float], method: str, rank: int | None, energy: float | None
) -> str:
    terms = ", ".join(f"{w:g}·{v.ref}" for v, w in zip(inputs, weights, strict=True))
    how = method if method == "cat" else (f"svd r={rank}" if rank is not None else f"svd energy={energy:g}")
    verb = "merge" if len(inputs) > 1 else "compress"
    return f"{verb} of {terms} ({how})"


def _metrics(result: AlgebraResult) -> dict[str, Any]:
    """What ``log`` shows of the computation: the method, and the error svd dropped."""
    metrics: dict[str, Any] = {"algebra": result.method, "algebra_weights": ",".join(f"{w:g}" for w in result.weights)}
    if result.method == "svd":
        metrics["algebra_relative_error"] = result.relative_error
    return metrics
