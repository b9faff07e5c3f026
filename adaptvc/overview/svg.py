"""Inline SVG for the report: the lineage graph, line charts, heatmaps and bar charts.

Every string that reaches the markup goes through :func:`esc` (messages, names, refs are
user text); numbers are formatted here. No fonts, images or scripts are referenced: the
figures are plain ``<svg>`` elements styled by the page's own CSS.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from html import escape

from adaptvc.overview.layout import layered_layout

# Colour-blind-safe categorical palette (Okabe-Ito), and viridis stops for heatmaps.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
_VIRIDIS = ((68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37))


def esc(text: object) -> str:
    """Text for HTML/SVG content and attribute values (quotes escaped too)."""
    return escape(str(text), quote=True)


def clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def num(x: float) -> str:
    """A coordinate: short, and never in exponent form."""
    return f"{x:.1f}".rstrip("0").rstrip(".")


def fmt(x: float) -> str:
    return f"{x:.4g}"


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def viridis(t: float) -> str:
    t = min(max(t, 0.0), 1.0) * (len(_VIRIDIS) - 1)
    i = min(int(t), len(_VIRIDIS) - 2)
    f = t - i
    a, b = _VIRIDIS[i], _VIRIDIS[i + 1]
    return "#" + "".join(f"{round(a[k] + (b[k] - a[k]) * f):02x}" for k in range(3))


# --- lineage ----------------------------------------------------------------------------


@dataclass(frozen=True)
class GraphNode:
    """One version in the lineage graph: ``key`` identifies it, ``parents`` are keys."""

    key: Hashable
    ref: str
    lines: tuple[str, ...]  # shown under the ref: message, aliases, base model
    title: str  # the tooltip: everything in full
    parents: tuple[Hashable, ...]
    group: int  # colour: the adapter's index
    cross: frozenset[Hashable] = frozenset()  # parents in another adapter (a fork)


NODE_W, NODE_H, LANE_W, ROW_H, PAD = 230, 50, 250, 66, 12


def lineage_svg(nodes: Sequence[GraphNode]) -> str:
    """The DAG of versions, newest at the top; one ``<g class="node">`` per version, one
    ``<path class="edge">`` per parent link (``fork``: across adapters, ``merge``: a
    second parent)."""
    place = layered_layout([n.key for n in nodes], {n.key: n.parents for n in nodes})
    width = PAD * 2 + max(place.lanes, 1) * LANE_W - (LANE_W - NODE_W)
    height = PAD * 2 + max(place.layers, 1) * ROW_H - (ROW_H - NODE_H)

    def xy(key: Hashable) -> tuple[float, float]:
        return PAD + place.lane[key] * LANE_W, PAD + (place.layers - 1 - place.layer[key]) * ROW_H

    edges: list[str] = []
    body: list[str] = []
    for n in nodes:
        x, y = xy(n.key)
        for i, p in enumerate(k for k in n.parents if k in place.lane):
            px, py = xy(p)
            x1, y1, x2, y2 = x + NODE_W / 2, y + NODE_H, px + NODE_W / 2, py
            kind = "fork" if p in n.cross else ("merge" if i else "")
            mid = (y1 + y2) / 2
            edges.append(
                f'<path class="edge {kind}" d="M{num(x1)} {num(y1)} C{num(x1)} {num(mid)} '
                f'{num(x2)} {num(mid)} {num(x2)} {num(y2)}"/>'
            )
        text = "".join(
            f'<text x="{num(x + 8)}" y="{num(y + 28 + 11 * i)}" class="sub">{esc(clip(line, 38))}</text>'
            for i, line in enumerate(n.lines[:2])
        )
        body.append(
            f'<g class="node" data-ref="{esc(n.ref)}"><title>{esc(n.title)}</title>'
            f'<rect x="{num(x)}" y="{num(y)}" width="{NODE_W}" height="{NODE_H}" rx="6" '
            f'style="stroke:{colour(n.group)}"/>'
            f'<rect x="{num(x)}" y="{num(y)}" width="5" height="{NODE_H}" rx="2" style="fill:{colour(n.group)}"/>'
            f'<text x="{num(x + 8)}" y="{num(y + 15)}" class="ref">{esc(clip(n.ref, 34))}</text>{text}</g>'
        )
    return (
        f'<svg class="lineage" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="lineage graph of {len(nodes)} versions">'
        f'<g class="edges">{"".join(edges)}</g>{"".join(body)}</svg>'
    )


# --- line charts ------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """One line: ``points`` are ``(label, value)`` in x order (e.g. ``("task_a@v3", 1.92)``)."""

    name: str
    points: tuple[tuple[str, float], ...]
    group: int


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    step = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * step:
            step *= m
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def line_chart_svg(metric: str, series: Sequence[Series], *, width: int = 520, height: int = 200) -> str:
    """One chart per metric: x = the adapter's versions in order of creation, one
    ``<polyline class="series">`` per adapter; points get tooltips while they are few."""
    left, right, top, bottom = 58, 14, 26, 34
    values = [v for s in series for _, v in s.points]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if hi == lo:
        lo, hi = lo - (abs(lo) * 0.1 or 1.0), hi + (abs(hi) * 0.1 or 1.0)
    pad = (hi - lo) * 0.06
    lo, hi = lo - pad, hi + pad
    n = max((len(s.points) for s in series), default=1)
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def py(v: float) -> float:
        return top + plot_h * (hi - v) / (hi - lo)

    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" data-metric="{esc(metric)}" '
        f'aria-label="{esc(metric)} across versions">',
        f'<text x="{left}" y="16" class="title">{esc(metric)}</text>',
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}"/>',
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}"/>',
    ]
    for t in _ticks(lo, hi):
        y = num(py(t))
        out.append(f'<line class="grid" x1="{left}" y1="{y}" x2="{left + plot_w}" y2="{y}"/>')
        out.append(f'<text x="{left - 6}" y="{y}" class="ytick">{esc(fmt(t))}</text>')
    longest = max(series, key=lambda s: len(s.points), default=None)
    if longest is not None:
        step = max(1, math.ceil(len(longest.points) / 8))
        for i in range(0, len(longest.points), step):
            label = longest.points[i][0].split("@", 1)[-1]
            out.append(f'<text x="{num(px(i))}" y="{top + plot_h + 16}" class="xtick">{esc(label)}</text>')
    for s in series:
        pts = " ".join(f"{num(px(i))},{num(py(v))}" for i, (_, v) in enumerate(s.points))
        out.append(
            f'<polyline class="series" data-metric="{esc(metric)}" data-adapter="{esc(s.name)}" points="{pts}" '
            f'style="stroke:{colour(s.group)}"><title>{esc(s.name)}</title></polyline>'
        )
        if len(s.points) <= 150:
            for i, (label, v) in enumerate(s.points):
                out.append(
                    f'<circle cx="{num(px(i))}" cy="{num(py(v))}" r="3" style="fill:{colour(s.group)}">'
                    f"<title>{esc(label)}: {esc(metric)} = {esc(fmt(v))}</title></circle>"
                )
    if len(series) > 1:
        for i, s in enumerate(series):
            x = left + 10 + 130 * i
            out.append(f'<rect x="{x}" y="{height - 10}" width="10" height="4" style="fill:{colour(s.group)}"/>')
            out.append(f'<text x="{x + 14}" y="{height - 5}" class="legend">{esc(clip(s.name, 18))}</text>')
    out.append("</svg>")
    return "".join(out)


# --- heatmaps ---------------------------------------------------------------------------


def heatmap_svg(title: str, rows: Sequence[str], cols: Sequence[str], values: Sequence[Sequence[float]]) -> str:
    """Relative change per (layer, module type); blank cells: no such module, or undefined."""
    cell_w, cell_h, left, top, steps = 64, 16, 52, 34, 10
    finite = [v for row in values for v in row if math.isfinite(v)]
    top_value = max(finite, default=0.0) or 1.0
    width = left + cell_w * max(len(cols), 1) + 90
    height = max(top + cell_h * max(len(rows), 1), top + steps * 10) + 12
    out = [
        f'<svg class="heatmap" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{esc(title)}">',
    ]
    for j, c in enumerate(cols):
        out.append(f'<text x="{left + cell_w * j + cell_w / 2}" y="{top - 6}" class="col">{esc(clip(c, 10))}</text>')
    for i, r in enumerate(rows):
        y = top + cell_h * i
        out.append(f'<text x="{left - 6}" y="{y + cell_h - 3}" class="row">{esc(r)}</text>')
        for j, c in enumerate(cols):
            v = values[i][j]
            fill = viridis(v / top_value) if math.isfinite(v) else "#eeeeee"
            shown = fmt(v) if math.isfinite(v) else "n/a"
            out.append(
                f'<rect class="cell" x="{left + cell_w * j}" y="{y}" width="{cell_w - 1}" height="{cell_h - 1}" '
                f'style="fill:{fill}"><title>layer {esc(r)} · {esc(c)}: {esc(shown)}</title></rect>'
            )
    scale_x = left + cell_w * max(len(cols), 1) + 14
    for k in range(steps):
        t = 1 - k / (steps - 1)
        out.append(f'<rect x="{scale_x}" y="{top + k * 10}" width="12" height="10" style="fill:{viridis(t)}"/>')
    out.append(f'<text x="{scale_x + 16}" y="{top + 9}" class="legend">{esc(fmt(top_value))}</text>')
    out.append(f'<text x="{scale_x + 16}" y="{top + steps * 10}" class="legend">0</text>')
    out.append("</svg>")
    return "".join(out)


# --- bars (storage) ---------------------------------------------------------------------


def bars_svg(label: str, bars: Sequence[tuple[str, int, bool]], *, width: int = 620, height: int = 120) -> str:
    """Size per version in order of creation; ``bars`` are ``(ref, bytes, new object)`` and a
    version whose weights another version already stored is drawn hollow (it costs nothing)."""
    left, top, bottom = 8, 8, 18
    top_value = max((b for _, b, _ in bars), default=0) or 1
    n = max(len(bars), 1)
    slot = min((width - 2 * left) / n, 24.0)
    out = [
        f'<svg class="bars" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{esc(label)}">'
    ]
    plot_h = height - top - bottom
    for i, (ref, size, new) in enumerate(bars):
        h = max(plot_h * size / top_value, 1.0)
        cls = "bar" if new else "bar shared"
        out.append(
            f'<rect class="{cls}" x="{num(left + i * slot)}" y="{num(top + plot_h - h)}" '
            f'width="{num(max(slot - 1, 0.6))}" height="{num(h)}"><title>{esc(ref)}: {size:,} bytes'
            f"{'' if new else ' (same weights as an earlier version: stored once)'}</title></rect>"
        )
    out.append(f'<text x="{left}" y="{height - 4}" class="legend">{esc(label)}</text></svg>')
    return "".join(out)
