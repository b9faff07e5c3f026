"""The API for comparing versions: ``compare`` (the table) and ``best`` (no numpy: the
report, which diffs, is in ``_report``)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from adaptvc.overview.table import BestVersion, CompareTable, best_version, compare_table
from adaptvc.repo import AdapterRepo


def compare(
    targets: Sequence[str] = (),
    *,
    metrics: Sequence[str] | None = None,
    params: Sequence[str] | None = None,
    only_diff: bool = False,
    sort: str | None = None,
    descending: bool = False,
    repo: str | os.PathLike[str] = ".",
) -> CompareTable:
    """One row per version, its hyper-parameters (from its ``adapter_config.json``) and its
    metrics as columns.

    Args:
        targets: adapter names (all their versions) and refs (one version each); default:
            every adapter's versions. Rows come newest first per adapter.
        metrics: only these metric columns (default: every metric some version records).
        params: only these config keys (default: r, lora_alpha, target_modules, use_dora,
            use_rslora, ... whichever some version sets).
        only_diff: drop the columns whose value is the same in every row.
        sort: order rows by this metric, parameter or column (``ref``, ``date``, ...);
            ascending unless ``descending``; rows without a value last either way.

    Returns:
        A :class:`~adaptvc.overview.table.CompareTable`: ``rows`` (each with ``ref``,
        ``version``, ``params``, ``metrics``), ``columns``, ``dropped``; ``.to_dict()`` is
        the ``--json`` document.

    Raises:
        AdapterNotFoundError, VersionNotFoundError, InvalidRefError: a bad target.
        UnknownColumnError: ``sort`` names no column.

    Example:
        >>> t = adaptvc.compare(["task_a"], sort="eval_loss")          # doctest: +SKIP
        >>> [(r.ref, r.metrics.get("eval_loss"), r.params.get("r")) for r in t.rows]  # doctest: +SKIP
    """
    return compare_table(
        AdapterRepo.open(repo),
        targets,
        metrics=metrics,
        params=params,
        only_diff=only_diff,
        sort=sort,
        descending=descending,
    )


def best(adapter: str, *, metric: str, maximize: bool = False, repo: str | os.PathLike[str] = ".") -> BestVersion:
    """The version of ``adapter`` with the lowest ``metric`` (``maximize``: the highest);
    a tie goes to the newest. ``.ref`` is a ref every command takes.

    Raises:
        AdapterNotFoundError: no such adapter.
        MetricNotFoundError: no version records ``metric`` as a number (lists those that do).

    Example:
        >>> adaptvc.best("task_a", metric="eval_loss").ref                # doctest: +SKIP
        'task_a@v3'
    """
    return best_version(AdapterRepo.open(repo), adapter, metric, maximize=maximize)
