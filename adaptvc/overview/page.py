"""The report: one self-contained HTML file about the versions of some adapters.

Everything is inline (CSS, a few lines of JS to sort the table, SVG figures); the page
loads nothing at view time, and its Content-Security-Policy says so to the browser:
``default-src 'none'``, styles inline, and only the page's own script (by its hash). User
text (messages, names, authors, metric names) is escaped wherever it lands; even if some
text escaped escaping, a ``<script>`` it smuggled in would not match the hash and would
not run.

Sections: lineage graph, metrics across versions, the compare table (sortable), diff
heatmaps (layers × module types) and storage (sizes from the manifest, shared weights
counted once).
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adaptvc.adapter_diff import diff_adapters
from adaptvc.adapter_diff.plot import heatmap_grid
from adaptvc.errors import AdaptvcError
from adaptvc.manifest import AdapterVersion, recency
from adaptvc.overview.svg import (
    GraphNode,
    Series,
    bars_svg,
    clip,
    colour,
    esc,
    heatmap_svg,
    line_chart_svg,
    lineage_svg,
)
from adaptvc.overview.table import CompareTable, cell_text, compare_table, display_refs, select_versions
from adaptvc.repo import AdapterRepo
from adaptvc.storage.files import write_atomic

# Diffs drawn when no pair is given: each version against its first parent, newest first,
# as many as this (each reads two weight files), and only where both are in the local cache.
DEFAULT_DIFFS = 8


@dataclass(frozen=True)
class ReportResult:
    """What :func:`write_report` wrote: the file, its size, and what it shows."""

    path: Path
    bytes: int
    versions: int
    adapters: tuple[str, ...]
    metrics: tuple[str, ...]
    diffs: tuple[tuple[str, str], ...]
    notes: tuple[str, ...]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "bytes": self.bytes,
            "versions": self.versions,
            "adapters": list(self.adapters),
            "metrics": list(self.metrics),
            "diffs": [list(p) for p in self.diffs],
            "notes": list(self.notes),
            "seconds": round(self.seconds, 3),
        }


def write_report(
    repo: AdapterRepo,
    adapters: Sequence[str] = (),
    *,
    output: str | os.PathLike[str] = "report.html",
    diffs: Sequence[tuple[str, str]] | None = None,
    max_diffs: int = DEFAULT_DIFFS,
) -> ReportResult:
    """Write the report of ``adapters`` (default: all) to ``output`` and return what it holds.

    ``diffs``: the pairs ``(ref_a, ref_b)`` to draw heatmaps for (their weights are fetched
    like ``adaptvc diff`` does); default: up to ``max_diffs`` versions against their first
    parent, newest first, among those whose weights are in the local cache.

    Raises:
        AdapterNotFoundError, InvalidRefError, VersionNotFoundError: a bad adapter or ref.
        BaseModelMismatchError, InvalidAdapterError: a given pair cannot be diffed.
    """
    started = time.perf_counter()
    versions = select_versions(repo, adapters)
    table = compare_table(repo, versions=versions)
    refs = display_refs(versions)
    notes: list[str] = []
    pairs, diff_html = _diffs_section(repo, versions, refs, diffs, max_diffs, notes)
    names = tuple(dict.fromkeys(v.adapter for v in versions))
    body = "".join(
        [
            _header(repo, versions, names),
            _lineage_section(versions, refs, names),
            _metrics_section(versions, refs, names),
            _table_section(table),
            diff_html,
            _storage_section(versions, refs, names),
        ]
    )
    page = _page(f"adaptvc report: {repo.root.name}", body)
    path = Path(output)
    if not path.is_absolute():
        path = Path.cwd() / path
    data = page.encode("utf-8")
    write_atomic(path, data)
    return ReportResult(
        path=path,
        bytes=len(data),
        versions=len(versions),
        adapters=names,
        metrics=tuple(table.metrics),
        diffs=tuple(pairs),
        notes=tuple(notes),
        seconds=time.perf_counter() - started,
    )


# --- sections ---------------------------------------------------------------------------


def _header(repo: AdapterRepo, versions: list[AdapterVersion], names: tuple[str, ...]) -> str:
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    nav = "".join(
        f'<a href="#{k}">{t}</a>'
        for k, t in (
            ("lineage", "Lineage"),
            ("metrics", "Metrics"),
            ("versions", "Versions"),
            ("diffs", "Diffs"),
            ("storage", "Storage"),
        )
    )
    return (
        f"<header><h1>{esc(repo.root.name)}: adapter versions</h1>"
        f'<p class="meta">{len(versions)} version{"s" if len(versions) != 1 else ""} of '
        f"{len(names)} adapter{'s' if len(names) != 1 else ''} ({esc(', '.join(names)) or 'none'}) · "
        f"generated {esc(now)} by adaptvc report</p><nav>{nav}</nav></header>"
    )


def _base_text(v: AdapterVersion) -> str:
    b = v.base_model
    text = b.name_or_path or "base not recorded"
    if b.revision:
        text += f"@{b.revision}"
    return text


def _lineage_section(versions: list[AdapterVersion], refs: dict, names: tuple[str, ...]) -> str:
    group = {n: i for i, n in enumerate(names)}
    oldest_first = sorted(versions, key=recency)
    by_link: dict[tuple[str, int, str], tuple[str, int, str]] = {}
    for v in oldest_first:
        by_link[(v.adapter, v.version, v.id)] = (v.adapter, v.version, v.id)
    nodes: list[GraphNode] = []
    seen: set[tuple[str, int, str]] = set()
    for v in oldest_first:
        key = (v.adapter, v.version, v.id)
        if key in seen:
            continue
        seen.add(key)
        parents = tuple((p.adapter, p.version, p.id) for p in v.parents if (p.adapter, p.version, p.id) in by_link)
        first_line = v.message.splitlines()[0] if v.message else ""
        second = (f"({', '.join(v.aliases)}) · " if v.aliases else "") + f"base: {_base_text(v)}"
        title = "\n".join(
            [
                refs[key] + (f"  ({', '.join(v.aliases)})" if v.aliases else ""),
                v.message,
                f"{v.author} · {v.created_at[:16].replace('T', ' ')}",
                "parents: " + (", ".join(p.ref for p in v.parents) or "none"),
                f"base model: {_base_text(v)}" + (f" [{v.base_model.fingerprint}]" if v.base_model.fingerprint else ""),
                f"id: {v.id}",
            ]
        )
        nodes.append(
            GraphNode(
                key=key,
                ref=refs[key],
                lines=(first_line, second),
                title=title,
                parents=parents,
                group=group[v.adapter],
                cross=frozenset(p for p in parents if p[0] != v.adapter),
            )
        )
    legend = " ".join(
        f'<span class="key" style="border-color:{colour(i)}">{esc(n)}</span>' for i, n in enumerate(names)
    )
    return (
        '<section id="lineage"><h2>Lineage</h2>'
        f'<p class="note">Newest at the top; a line joins a version to its parent (dashed: forked from '
        f"another adapter; dotted: a merged second parent). Hover a node for its details. {legend}</p>"
        f'<div class="scroll">{lineage_svg(nodes)}</div></section>'
    )


def _numeric(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None


def _metrics_section(versions: list[AdapterVersion], refs: dict, names: tuple[str, ...]) -> str:
    oldest_first = sorted(versions, key=recency)
    metrics = sorted({k for v in versions for k, x in v.metrics.items() if _numeric(x) is not None})
    charts = []
    for metric in metrics:
        series = []
        for i, name in enumerate(names):
            points = tuple(
                (refs[(v.adapter, v.version, v.id)], x)
                for v in oldest_first
                if v.adapter == name and (x := _numeric(v.metrics.get(metric))) is not None
            )
            if points:
                series.append(Series(name, points, i))
        charts.append(f'<figure class="chart-box">{line_chart_svg(metric, series)}</figure>')
    inner = "".join(charts) if charts else '<p class="note">No version records a numeric metric.</p>'
    return (
        '<section id="metrics"><h2>Metrics across versions</h2>'
        '<p class="note">x: each adapter\'s versions in the order they were saved; hover a point for its version.</p>'
        f'<div class="charts">{inner}</div></section>'
    )


def _column_title(column: str) -> str:
    return column.split(":", 1)[-1]


def _table_section(table: CompareTable) -> str:
    numeric = {
        c: all(
            isinstance(r.value(c), (int, float)) and not isinstance(r.value(c), bool)
            for r in table.rows
            if r.value(c) is not None
        )
        for c in table.columns
    }
    head = "".join(
        f'<th scope="col" aria-sort="none" data-type="{"num" if numeric[c] and c != "ref" else "text"}" '
        f'class="{c.split(":", 1)[0] if ":" in c else "own"}"><button type="button">{esc(_column_title(c))}'
        "</button></th>"
        for c in table.columns
    )
    rows = []
    for r in table.rows:
        cells = []
        for c in table.columns:
            value = r.value(c)
            text = cell_text(value)
            if c == "ref":
                key = f"{r.version.adapter}@{r.version.version:09d}@{r.version.id}"
                shown = esc(text) + "".join(f' <span class="alias">{esc(a)}</span>' for a in r.version.aliases)
                cells.append(f'<th scope="row" data-v="{esc(key)}">{shown}</th>')
            elif c == "date":
                cells.append(f'<td data-v="{esc(text)}" title="{esc(text)}">{esc(text[:16].replace("T", " "))}</td>')
            elif c == "message":
                cells.append(f'<td data-v="{esc(text)}" title="{esc(text)}">{esc(clip(text, 60))}</td>')
            elif c == "author":
                cells.append(f'<td data-v="{esc(text)}">{esc(text.split(" <")[0])}</td>')
            else:
                v = repr(float(value)) if numeric[c] and value is not None else text
                cells.append(f'<td data-v="{esc(v)}">{esc(clip(text, 60))}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (
        '<section id="versions"><h2>Versions</h2>'
        '<p class="note">Click a column header to sort (again to reverse); versions without a value go last.</p>'
        f'<div class="scroll"><table id="compare" class="compare"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def _ref_for(refs: dict, v: AdapterVersion) -> str:
    ref = refs[(v.adapter, v.version, v.id)]
    return ref if "@v" in ref else f"{v.adapter}@{v.id}"


def _default_pairs(
    repo: AdapterRepo, versions: list[AdapterVersion], refs: dict, max_diffs: int, notes: list[str]
) -> list[tuple[str, str]]:
    """Up to ``max_diffs`` ``(parent, version)`` pairs, newest first, whose weights are both
    in the local cache (nothing is fetched for a default); how many were skipped goes to ``notes``."""
    by_link = {(v.adapter, v.version, v.id): v for v in versions}
    pairs: list[tuple[str, str]] = []
    missing = 0
    for v in sorted(versions, key=recency, reverse=True):
        if len(pairs) >= max_diffs:
            break
        parent = next((by_link.get((p.adapter, p.version, p.id)) for p in v.parents), None)
        if parent is None:
            continue
        if not (repo.dvc_cache.has(v.id) and repo.dvc_cache.has(parent.id)):
            missing += 1
            continue
        pairs.append((_ref_for(refs, parent), _ref_for(refs, v)))
    if missing:
        notes.append(
            f"{missing} version{'s' if missing != 1 else ''} not diffed: weights not in the local cache "
            "(adaptvc pull, or name pairs with --diff to fetch them)"
        )
    return pairs


def _diffs_section(
    repo: AdapterRepo,
    versions: list[AdapterVersion],
    refs: dict,
    given: Sequence[tuple[str, str]] | None,
    max_diffs: int,
    notes: list[str],
) -> tuple[list[tuple[str, str]], str]:
    """The pairs drawn and the section's HTML: ``given`` pairs fail loudly, default ones that
    cannot be diffed (e.g. different base models) are noted and skipped."""
    pairs = list(given) if given is not None else _default_pairs(repo, versions, refs, max_diffs, notes)
    figures = []
    done: list[tuple[str, str]] = []
    for a, b in pairs:
        try:
            result = diff_adapters(a, b, repo=repo.root)
        except AdaptvcError as exc:
            if given is not None:
                raise
            notes.append(f"{a} → {b} not diffed: {exc.message}")
            continue
        done.append((a, b))
        rows, cols, values = heatmap_grid(result)
        s = result.summary
        rel = "n/a" if not math.isfinite(s.relative) else f"{s.relative:.3g}"
        config = ", ".join(f"{k}: {cell_text(o)} → {cell_text(n)}" for k, (o, n) in result.config.items())
        caption = (
            f"<figcaption><b>{esc(a)} → {esc(b)}</b><br>relative change {esc(rel)} · "
            f"{s.modules_changed}/{s.modules_compared} modules changed"
            + (f" · config: {esc(config)}" if config else "")
            + "</figcaption>"
        )
        svg = (
            heatmap_svg(f"relative change {a} to {b}", rows, cols, values)
            if rows
            else ('<p class="note">No LoRA module present in both adapters.</p>')
        )
        figures.append(f'<figure class="diff" data-a="{esc(a)}" data-b="{esc(b)}">{caption}{svg}</figure>')
    note = "".join(f'<p class="note">{esc(n)}</p>' for n in notes if "not diffed" in n)
    inner = "".join(figures) or '<p class="note">No diff to show.</p>'
    return done, (
        '<section id="diffs"><h2>What changed</h2>'
        '<p class="note">Relative change of each module\'s effective update, ‖ΔW<sub>b</sub> − ΔW<sub>a</sub>‖ / '
        "‖ΔW<sub>a</sub>‖, by layer (rows) and module type (columns); grey: no such module. "
        f'Hover a cell for its value.</p>{note}<div class="diffs">{inner}</div></section>'
    )


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover


def _storage_section(versions: list[AdapterVersion], refs: dict, names: tuple[str, ...]) -> str:
    rows, figures = [], []
    everywhere: dict[str, int] = {}
    for name in names:
        own = sorted((v for v in versions if v.adapter == name), key=recency)
        seen: dict[str, int] = {}
        bars = []
        for v in own:
            bars.append((refs[(v.adapter, v.version, v.id)], v.size, v.id not in seen))
            seen.setdefault(v.id, v.size)
            everywhere.setdefault(v.id, v.size)
        logical, stored = sum(v.size for v in own), sum(seen.values())
        rows.append(
            f'<tr><th scope="row">{esc(name)}</th><td>{len(own)}</td><td>{len(seen)}</td>'
            f"<td>{_size(logical)}</td><td>{_size(stored)}</td></tr>"
        )
        figures.append(
            f"<figure>{bars_svg(f'{name}: size of each version (hollow: stored once already)', bars)}</figure>"
        )
    total_logical = sum(v.size for v in versions)
    rows.append(
        f'<tr class="total"><th scope="row">all</th><td>{len(versions)}</td><td>{len(everywhere)}</td>'
        f"<td>{_size(total_logical)}</td><td>{_size(sum(everywhere.values()))}</td></tr>"
    )
    return (
        '<section id="storage"><h2>Storage</h2>'
        '<p class="note">Weights sizes from the manifests; versions with the same weights (same md5) are stored '
        "once in the DVC cache and remote. Configs, pointers and manifests (a few KB) live in git.</p>"
        '<table class="storage"><thead><tr><th scope="col">adapter</th><th scope="col">versions</th>'
        '<th scope="col">distinct weights</th><th scope="col">sum of sizes</th><th scope="col">stored</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>{''.join(figures)}</section>"
    )


# --- the page ---------------------------------------------------------------------------

CSS = """
:root{--fg:#1d2330;--muted:#5b6475;--line:#d5d9e0;--bg:#fff;--soft:#f4f6f9;--accent:#0072B2}
*{box-sizing:border-box}
body{margin:0;padding:0 24px 48px;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
color:var(--fg);background:var(--bg)}
header{position:sticky;top:0;background:var(--bg);border-bottom:1px solid var(--line);padding:12px 0 8px;z-index:2}
h1{font-size:20px;margin:0 0 2px}
h2{font-size:17px;margin:28px 0 6px;border-bottom:1px solid var(--line);padding-bottom:4px}
.meta,.note{color:var(--muted);margin:2px 0 8px}
nav a{margin-right:14px;color:var(--accent);text-decoration:none}
nav a:hover{text-decoration:underline}
.scroll{overflow:auto;max-height:80vh;border:1px solid var(--line);border-radius:6px}
.key{border-left:6px solid;padding:0 6px;margin-right:6px}
svg text{font-family:inherit}
.lineage .node rect{fill:#fff;stroke-width:1.5}
.lineage .ref{font-size:12px;font-weight:600;fill:var(--fg)}
.lineage .sub{font-size:10.5px;fill:var(--muted)}
.lineage .edge{fill:none;stroke:#8a93a3;stroke-width:1.4}
.lineage .edge.fork{stroke-dasharray:6 4}
.lineage .edge.merge{stroke-dasharray:2 3}
.charts{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:8px 0}
.chart-box{border:1px solid var(--line);border-radius:6px;padding:4px;max-width:100%}
.chart .title{font-size:13px;font-weight:600;fill:var(--fg)}
.chart .axis{stroke:#444}.chart .grid{stroke:#e6e8ec}
.chart .ytick{font-size:10px;text-anchor:end;dominant-baseline:middle;fill:var(--muted)}
.chart .xtick{font-size:10px;text-anchor:middle;fill:var(--muted)}
.chart .series{fill:none;stroke-width:2}
.legend{font-size:10px;fill:var(--muted)}
svg{max-width:100%;height:auto}
.lineage{max-width:none}
table{border-collapse:collapse;font-size:12.5px}
.compare th,.compare td,.storage th,.storage td{border-bottom:1px solid var(--line);padding:3px 8px;text-align:left;
white-space:nowrap;vertical-align:top}
.compare thead th{position:sticky;top:0;background:var(--soft);z-index:1}
.compare thead th button{all:unset;cursor:pointer;font-weight:600}
.compare thead th[aria-sort=ascending] button::after{content:" \\25B2"}
.compare thead th[aria-sort=descending] button::after{content:" \\25BC"}
.compare thead th.metric{color:var(--accent)}
.compare tbody tr:nth-child(even){background:#fafbfc}
.compare tbody th{font-weight:600}
.alias{font-size:11px;background:#e8f1f8;border-radius:8px;padding:0 6px;font-weight:400}
.storage td{text-align:right}.storage tr.total{font-weight:600}
.diffs{display:flex;flex-wrap:wrap;gap:16px}
.diff figcaption{font-size:12.5px;margin-bottom:4px;max-width:560px}
.heatmap .col{font-size:10px;text-anchor:middle;fill:var(--muted)}
.heatmap .row{font-size:10px;text-anchor:end;fill:var(--muted)}
.bars .bar{fill:var(--accent)}.bars .bar.shared{fill:none;stroke:var(--accent)}
@media print{
body{padding:0;font-size:10pt;color:#000}
header{position:static}nav{display:none}
.scroll{overflow:visible;max-height:none;border:0}
.compare thead th{position:static}
.compare th,.compare td{font-size:8pt;padding:1px 4px;white-space:normal}
figure,.chart-box,tr{break-inside:avoid}
h2{break-after:avoid}
.lineage{max-width:100%;height:auto}
a{color:#000}
}
"""

# Sorting the compare table: numbers numerically, text with localeCompare, missing last.
SCRIPT = """(function () {
  var table = document.getElementById("compare");
  if (!table) { return; }
  var heads = table.tHead.rows[0].cells;
  function value(row, col) {
    var v = row.cells[col].getAttribute("data-v");
    return v === null || v === "" ? null : v;
  }
  Array.prototype.forEach.call(heads, function (th, col) {
    th.querySelector("button").addEventListener("click", function () {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      var numeric = th.getAttribute("data-type") === "num";
      Array.prototype.forEach.call(heads, function (h) { h.setAttribute("aria-sort", "none"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = value(a, col), y = value(b, col);
        if (x === null || y === null) { return x === y ? 0 : (x === null ? 1 : -1); }
        var c = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
        return ascending ? c : -c;
      });
      var frag = document.createDocumentFragment();
      rows.forEach(function (r) { frag.appendChild(r); });
      body.appendChild(frag);
    });
  });
})();"""


def _page(title: str, body: str) -> str:
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")
    csp = f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'sha256-{digest}'"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>{body}"
        f"<script>{SCRIPT}</script></body></html>\n"
    )
