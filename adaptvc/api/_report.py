"""The API for the HTML report (its diffs load numpy: this module is loaded only by it)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from adaptvc.overview.page import DEFAULT_DIFFS, ReportResult, write_report
from adaptvc.repo import AdapterRepo


def report(
    adapters: Sequence[str] = (),
    *,
    output: str | os.PathLike[str] = "report.html",
    diffs: Sequence[tuple[str, str]] | None = None,
    max_diffs: int = DEFAULT_DIFFS,
    repo: str | os.PathLike[str] = ".",
) -> ReportResult:
    """Write one self-contained HTML page about the versions of ``adapters`` (default: all):
    lineage graph, metrics across versions, the compare table (sortable), diff heatmaps
    (layers × module types) and storage. Everything is inline; it loads nothing at view time.

    Args:
        output: the file to write (replaced atomically).
        diffs: ``(ref_a, ref_b)`` pairs to draw; default: up to ``max_diffs`` versions
            against their parent, newest first, whose weights are in the local cache.

    Returns:
        A :class:`~adaptvc.overview.page.ReportResult` (``path``, ``bytes``, ``versions``,
        ``diffs`` drawn, ``notes`` on what was left out).

    Example:
        >>> adaptvc.report(["task_a"], output="report.html").path          # doctest: +SKIP
    """
    return write_report(AdapterRepo.open(repo), adapters, output=output, diffs=diffs, max_diffs=max_diffs)
