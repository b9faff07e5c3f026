"""The API for storage life: ``gc`` (remove the weights of versions nobody keeps) and
``du`` (where the bytes are)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from adaptvc.repo import AdapterRepo
from adaptvc.versioning.du import DiskUsage, disk_usage
from adaptvc.versioning.gc import GcResult, run_gc
from adaptvc.versioning.retention import parse_duration as _parse_duration
from adaptvc.versioning.retention import policy_from


def gc(
    adapters: Sequence[str] = (),
    *,
    repo: str | os.PathLike[str] = ".",
    keep_last: int | None = None,
    keep_aliased: bool | None = None,
    keep: Sequence[str] = (),
    older_than: str | float | None = None,
    remote: str | None = None,
    git_remote: str | None = "origin",
    grace_period: str | float | None = None,
    dry_run: bool = True,
    drop_training_state: bool = False,
) -> GcResult:
    """Remove the weights of versions that are not kept, from the local DVC cache and,
    with ``remote``, from that DVC remote too. A dry run unless ``dry_run=False``.

    Always kept: what a branch, a tag (not ``NAME@vN``), HEAD or the work tree points at
    (with ``remote``: every ref of ``git_remote`` too, fetched first), aliased versions
    (unless ``keep_aliased=False``) and ``keep`` refs. The policy (``keep_last`` newest per
    adapter, versions younger than ``older_than``) decides among the rest; each setting
    left ``None`` comes from ``[gc]`` in ``.adaptvc/config.toml``. Remote objects younger
    than ``grace_period`` (default 14 days; ``0`` turns it off) stay on the remote. A
    version whose weights are left nowhere is marked pruned in its manifest (committed).
    See docs/storage.md.

    Args:
        adapters: only these adapters' versions may go.
        older_than, grace_period: durations, ``"30d"``, ``"12h"``, ``"2w"`` (or seconds).
        drop_training_state: the versions that go lose only their training state
            (optimizer, scheduler, RNG: 2-3x the adapter); every version keeps its weights.

    Returns:
        A :class:`~adaptvc.versioning.gc.GcResult`: every version with its decision and
        reason, what was (or would be) removed where, bytes freed, versions pruned.

    Raises:
        NoRetentionPolicyError: no ``keep_last``/``older_than`` given nor configured.
        InvalidRetentionError: a bad duration or ``[gc]`` setting.
        RemoteNotFoundError, RemoteError, GitError: a remote is unknown or unreachable.

    Example:
        >>> adaptvc.gc(keep_last=3).local_bytes               # what a real run would free  # doctest: +SKIP
        104857600
        >>> adaptvc.gc(keep_last=3, remote="storage", dry_run=False).pruned    # doctest: +SKIP
        ('task_a@v1', 'task_a@v2')
    """
    r = AdapterRepo.open(repo)
    policy = policy_from(
        r.config.gc,
        keep_last=keep_last,
        older_than=older_than,
        keep_aliased=keep_aliased,
        keep=tuple(keep),
        grace_period=grace_period,
    )
    return run_gc(
        r,
        policy,
        adapters=tuple(adapters),
        remote=remote,
        git_remote=git_remote,
        dry_run=dry_run,
        training_state_only=drop_training_state,
    )


def du(adapters: Sequence[str] = (), *, repo: str | os.PathLike[str] = ".", remote: str | None = None) -> DiskUsage:
    """Bytes per adapter and per version, in the local DVC cache and (``remote``) on the
    DVC remote; what versions share; what ``gc`` would free under the configured policy;
    the base model's size beside the adapter's when it was measured at save.

    Example:
        >>> [(a.adapter, a.local_bytes) for a in adaptvc.du().adapters]   # doctest: +SKIP
        [('task_a', 104857600)]
    """
    return disk_usage(AdapterRepo.open(repo), tuple(adapters), remote=remote)


def parse_duration(text: str) -> float:
    """``"14d"`` → seconds (``--older-than``, ``--grace-period``)."""
    return _parse_duration(text)
