"""The compare table: one row per version, its hyper-parameters (from its
``adapter_config.json`` in git) and its metrics as columns; and the best version by a metric.

Every version's config is read with ONE ``git cat-file --batch`` over the distinct blob ids,
so a table of 1,000 versions costs one git process, not 1,000.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from adaptvc.errors import MetricNotFoundError, UnknownColumnError
from adaptvc.manifest import AdapterVersion, recency
from adaptvc.refs import parse_ref, resolve_version
from adaptvc.repo import AdapterRepo
from adaptvc.storage import git_ops
from adaptvc.versioning.history import log_versions

# The columns every row has, before the hyper-parameters and the metrics.
META_COLUMNS = ("ref", "date", "author", "message", "parents")
# The config keys shown by default (when at least one version sets them): what people tune.
DEFAULT_PARAMS = (
    "peft_type",
    "r",
    "lora_alpha",
    "lora_dropout",
    "target_modules",
    "use_dora",
    "use_rslora",
    "bias",
    "modules_to_save",
    "rank_pattern",
    "alpha_pattern",
    "layers_to_transform",
    "init_lora_weights",
    "task_type",
)


@dataclass(frozen=True)
class CompareRow:
    """One version: its own fields, ``params`` (config key → value) and ``metrics``."""

    version: AdapterVersion
    ref: str  # NAME@vN, or NAME@<id> when two merged branches both minted vN
    params: dict[str, Any] = field(hash=False)
    metrics: dict[str, Any] = field(hash=False)

    def value(self, column: str) -> Any:
        """The cell of ``column`` (``None`` when missing)."""
        v = self.version
        if column == "ref":
            return self.ref
        if column == "date":
            return v.created_at
        if column == "author":
            return v.author
        if column == "message":
            return v.message
        if column == "parents":
            return ", ".join(p.ref for p in v.parents) or None
        if column.startswith("param:"):
            return self.params.get(column[6:])
        if column.startswith("metric:"):
            return self.metrics.get(column[7:])
        raise KeyError(column)

    def text(self, column: str) -> str:
        """The cell of ``column`` as text (see :func:`cell_text`)."""
        return cell_text(self.value(column))

    def to_dict(self) -> dict[str, Any]:
        v = self.version
        return {
            "ref": self.ref,
            "adapter": v.adapter,
            "version": v.version,
            "id": v.id,
            "date": v.created_at,
            "author": v.author,
            "message": v.message,
            "parents": [p.ref for p in v.parents],
            "aliases": list(v.aliases),
            "params": dict(self.params),
            "metrics": dict(self.metrics),
        }


@dataclass(frozen=True)
class CompareTable:
    """Rows in display order; ``columns`` are ``META_COLUMNS``, then ``param:KEY``, then
    ``metric:NAME``; ``dropped`` the columns ``only_diff`` removed (same in every row)."""

    rows: tuple[CompareRow, ...]
    columns: tuple[str, ...]
    dropped: tuple[str, ...] = ()
    sort: str | None = None
    descending: bool = False

    @property
    def params(self) -> list[str]:
        return [c[6:] for c in self.columns if c.startswith("param:")]

    @property
    def metrics(self) -> list[str]:
        return [c[7:] for c in self.columns if c.startswith("metric:")]

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` document."""
        return {
            "columns": list(self.columns),
            "params": self.params,
            "metrics": self.metrics,
            "dropped": list(self.dropped),
            "sort": self.sort,
            "descending": self.descending,
            "rows": [r.to_dict() for r in self.rows],
        }


def cell_text(value: Any) -> str:
    """A cell as text (tables, CSV): lists joined with ``,``, floats with ``%g``, missing empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return ",".join(cell_text(x) for x in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def _param_value(value: Any) -> Any:
    """Config values made comparable: sets stored as lists are sorted; empty means unset."""
    if isinstance(value, list):
        try:
            return sorted(value)
        except TypeError:
            return value
    if value in ({}, [], ""):
        return None
    return value


def version_configs(repo: AdapterRepo, versions: Iterable[AdapterVersion]) -> dict[str, dict[str, Any]]:
    """``config blob id → parsed adapter_config.json`` for every version, in ONE git process.
    A blob missing or not matching its manifest hash maps to ``{}`` (no parameters shown)."""
    wanted: dict[str, str] = {}
    for v in versions:
        if v.config_blob and v.config_blob not in wanted:
            wanted[v.config_blob] = v.config_sha256
    blobs = list(wanted)
    out: dict[str, dict[str, Any]] = {}
    for blob, data in zip(blobs, git_ops.cat_blobs(repo.root, blobs), strict=True):
        sha = wanted[blob]
        if data is None or (sha and hashlib.sha256(data).hexdigest() != sha):
            out[blob] = {}
            continue
        try:
            parsed = json.loads(data)
        except (UnicodeDecodeError, ValueError):
            parsed = {}
        out[blob] = parsed if isinstance(parsed, dict) else {}
    return out


def display_refs(versions: Sequence[AdapterVersion]) -> dict[tuple[str, int, str], str]:
    """``NAME@vN`` per version, or ``NAME@<id>`` where merged branches both minted vN (O(n))."""
    ids: dict[tuple[str, int], set[str]] = {}
    for v in versions:
        ids.setdefault((v.adapter, v.version), set()).add(v.id)
    return {
        (v.adapter, v.version, v.id): (f"{v.adapter}@{v.id}" if len(ids[(v.adapter, v.version)]) > 1 else v.ref)
        for v in versions
    }


def select_versions(repo: AdapterRepo, targets: Sequence[str] = ()) -> list[AdapterVersion]:
    """The versions ``targets`` name, newest first per adapter: an adapter name means all its
    versions, a ref (``NAME@...``) that one version; nothing means every adapter's."""
    if not targets:
        return log_versions(repo)
    out: list[AdapterVersion] = []
    seen: set[tuple[str, int, str, str]] = set()
    for target in targets:
        ref = parse_ref(target)
        if ref.selector is None:
            found = log_versions(repo, ref.adapter)
        else:
            found = [resolve_version(repo, ref, with_commit=False)]
        for v in found:
            key = (v.adapter, v.version, v.id, v.created_at)
            if key not in seen:
                seen.add(key)
                out.append(v)
    return out


def _sort_key(value: Any) -> tuple[int, Any]:
    """Numbers before text, missing last (the caller keeps missing last when reversing)."""
    if isinstance(value, bool):
        return (0, float(value))
    if isinstance(value, (int, float)):
        return (0, float(value)) if not (isinstance(value, float) and math.isnan(value)) else (2, 0.0)
    return (1, cell_text(value))


def resolve_column(name: str, columns: Sequence[str]) -> str:
    """``eval_loss`` → ``metric:eval_loss`` (metrics first, then parameters, then own fields)."""
    for candidate in (name, f"metric:{name}", f"param:{name}"):
        if candidate in columns:
            return candidate
    names = [c.split(":", 1)[-1] for c in columns]
    raise UnknownColumnError(
        f"no column {name!r} to sort by; columns: {', '.join(names)}",
        column=name,
        columns=tuple(names),
        hint="adaptvc compare --json | jq '.columns'",
    )


def sort_rows(rows: list[CompareRow], column: str, *, descending: bool) -> list[CompareRow]:
    """Rows ordered by ``column``; rows without a value go last either way (stable)."""
    present = [r for r in rows if r.value(column) is not None]
    missing = [r for r in rows if r.value(column) is None]
    present.sort(key=lambda r: _sort_key(r.value(column)), reverse=descending)
    return present + missing


def _same_everywhere(rows: Sequence[CompareRow], column: str) -> bool:
    first = cell_text(rows[0].value(column)) if rows else ""
    return all(cell_text(r.value(column)) == first for r in rows)


def compare_table(
    repo: AdapterRepo,
    targets: Sequence[str] = (),
    *,
    metrics: Sequence[str] | None = None,
    params: Sequence[str] | None = None,
    only_diff: bool = False,
    sort: str | None = None,
    descending: bool = False,
    versions: Sequence[AdapterVersion] | None = None,
) -> CompareTable:
    """The compare table of the versions ``targets`` name (see :func:`select_versions`).

    ``metrics``/``params``: only those columns (default: every metric recorded, and the
    :data:`DEFAULT_PARAMS` some version sets); ``only_diff``: drop the columns whose value
    is the same in every row; ``sort``: a metric, parameter or own column to order by
    (ascending unless ``descending``; rows without it last). ``versions``: the rows'
    versions when the caller has loaded them already (``targets`` is then not read).
    """
    versions = select_versions(repo, targets) if versions is None else list(versions)
    configs = version_configs(repo, versions)
    refs = display_refs(versions)
    rows = [
        CompareRow(
            version=v,
            ref=refs[(v.adapter, v.version, v.id)],
            params={
                k: pv for k, val in configs.get(v.config_blob, {}).items() if (pv := _param_value(val)) is not None
            },
            metrics=dict(v.metrics),
        )
        for v in versions
    ]
    if params is None:
        present = {k for r in rows for k in r.params}
        param_cols = [k for k in DEFAULT_PARAMS if k in present]
    else:
        param_cols = list(dict.fromkeys(params))
    if metrics is None:
        metric_cols = sorted({k for r in rows for k in r.metrics})
    else:
        metric_cols = list(dict.fromkeys(metrics))
    columns = [*META_COLUMNS, *(f"param:{k}" for k in param_cols), *(f"metric:{k}" for k in metric_cols)]
    dropped: list[str] = []
    if only_diff and rows:
        dropped = [c for c in columns if c != "ref" and _same_everywhere(rows, c)]
        columns = [c for c in columns if c not in dropped]
    column = None
    if sort:
        column = resolve_column(sort, [*META_COLUMNS, *columns, *(c for c in dropped if c not in META_COLUMNS)])
        rows = sort_rows(rows, column, descending=descending)
    return CompareTable(tuple(rows), tuple(columns), tuple(dropped), column, descending)


@dataclass(frozen=True)
class BestVersion:
    """The best version by ``metric``; ``candidates``: how many versions record it."""

    version: AdapterVersion
    ref: str
    metric: str
    value: float
    maximize: bool
    candidates: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "adapter": self.version.adapter,
            "version": self.version.version,
            "id": self.version.id,
            "metric": self.metric,
            "value": self.value,
            "maximize": self.maximize,
            "candidates": self.candidates,
            "message": self.version.message,
        }


def _numeric(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def best_version(repo: AdapterRepo, adapter: str, metric: str, *, maximize: bool = False) -> BestVersion:
    """The version of ``adapter`` with the lowest (``maximize``: highest) numeric ``metric``;
    a tie goes to the newest of the tied versions.

    Raises:
        AdapterNotFoundError: no such adapter.
        MetricNotFoundError: no version of it records ``metric`` as a number.
    """
    versions = log_versions(repo, parse_ref(adapter).adapter)
    scored = [(x, v) for v in versions if (x := _numeric(v.metrics.get(metric))) is not None]
    if not scored:
        known = sorted({k for v in versions for k, x in v.metrics.items() if _numeric(x) is not None})
        name = parse_ref(adapter).adapter
        raise MetricNotFoundError(
            f"no version of {name} records the metric {metric!r}"
            + (f"; metrics recorded: {', '.join(known)}" if known else "; no version records any metric"),
            metric=metric,
            adapter=name,
            known=tuple(known),
            hint=f"adaptvc best {name} --metric {known[0]}"
            if known
            else f"adaptvc save --adapter {name} -m MESSAGE --metric {metric}=VALUE",
        )
    sign = -1.0 if maximize else 1.0
    # Newest first, so that min() keeps the newest of tied versions.
    scored.sort(key=lambda s: recency(s[1]), reverse=True)
    value, best = min(scored, key=lambda s: sign * s[0])
    ref = display_refs(versions)[(best.adapter, best.version, best.id)]
    return BestVersion(best, ref, metric, value, maximize, len(scored))
