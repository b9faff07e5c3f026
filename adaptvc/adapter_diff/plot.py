"""``adaptvc diff --plot``: a heatmap of relative change, layers × module types.

Rows are layer indices (the first ``.<number>.`` in the module path, e.g.
``model.layers.12.self_attn.q_proj`` → 12), columns module types (the last path part,
``q_proj``); modules without a layer index share a row of their own at the bottom. A
cell with no module (or a module ``ΔW_a = 0``, where relative change is undefined) is
blank. matplotlib is an optional extra (``pip install 'adaptvc[plot]'``).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from adaptvc.errors import MissingDependencyError

if TYPE_CHECKING:  # pragma: no cover - result imports this module (DiffResult.plot)
    from adaptvc.adapter_diff.result import DiffResult

NO_LAYER = "other"
_LAYER_INDEX = re.compile(r"\.(\d+)\.")


def layer_and_type(module: str) -> tuple[int | None, str]:
    """``model.layers.12.self_attn.q_proj`` → ``(12, "q_proj")``; no index → ``(None, name)``."""
    m = _LAYER_INDEX.search(f".{module}.")
    return (int(m.group(1)) if m else None), module.rsplit(".", 1)[-1]


def _import_pyplot():
    # matplotlib is an optional extra and slow to import: only when a plot is asked for.
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: never needs a display
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingDependencyError("matplotlib", extra="plot", purpose="adaptvc diff --plot") from None
    return plt


def heatmap_grid(result: DiffResult) -> tuple[list[str], list[str], list[list[float]]]:
    """``(row labels, column labels, values)``; NaN where there is nothing to show."""
    cells: dict[tuple[str, str], float] = {}
    layers: set[int] = set()
    other_row = False
    types: list[str] = []
    for m in result.modules:
        layer, mtype = layer_and_type(m.module)
        if layer is None:
            other_row = True
        else:
            layers.add(layer)
        if mtype not in types:
            types.append(mtype)
        row = NO_LAYER if layer is None else str(layer)
        value = m.relative if math.isfinite(m.relative) else math.nan
        # Two modules mapping to one cell (e.g. two towers): show the larger change.
        old = cells.get((row, mtype))
        cells[(row, mtype)] = value if old is None or math.isnan(old) else max(old, value)
    rows = [str(i) for i in sorted(layers)] + ([NO_LAYER] if other_row else [])
    values = [[cells.get((r, t), math.nan) for t in types] for r in rows]
    return rows, types, values


def plot_heatmap(result: DiffResult, path: str | os.PathLike[str]) -> Path:
    """Write the heatmap as a PNG and return its path.

    Raises:
        MissingDependencyError: matplotlib is not installed.
    """
    plt = _import_pyplot()

    rows, cols, values = heatmap_grid(result)
    out = Path(path)
    if not rows:  # still write a file: scripts that expect one should not break
        fig, ax = plt.subplots(figsize=(5, 2), dpi=100)
        ax.axis("off")
        ax.text(0.5, 0.5, "no LoRA module present in both adapters", ha="center", va="center")
        fig.savefig(out, format="png")
        plt.close(fig)
        return out
    data = np.ma.masked_invalid(np.array(values, dtype=float))
    height = min(2 + 0.22 * len(rows), 40)
    width = min(3 + 0.9 * len(cols), 30)
    fig, ax = plt.subplots(figsize=(width, height), dpi=100)
    try:
        image = ax.imshow(data, aspect="auto", cmap="viridis", interpolation="nearest")
        ax.set_xticks(range(len(cols)), labels=cols, rotation=45, ha="right")
        step = max(1, len(rows) // 40)
        ax.set_yticks(range(0, len(rows), step), labels=rows[::step])
        ax.set_xlabel("module type")
        ax.set_ylabel("layer")
        ax.set_title(f"relative change ‖ΔW_b − ΔW_a‖ / ‖ΔW_a‖\n{result.a} → {result.b}", fontsize=9)
        fig.colorbar(image, ax=ax, label="relative change")
        fig.tight_layout()
        fig.savefig(out, format="png")
    finally:
        plt.close(fig)
    return out
