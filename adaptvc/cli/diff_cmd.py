"""``adaptvc diff``: what changed between two adapters, layer by layer, without the base model."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from adaptvc import api
from adaptvc.cli.output import emit_json, info
from adaptvc.cli.params import not_empty

if TYPE_CHECKING:  # pragma: no cover
    from adaptvc.adapter_diff.result import DiffResult


def _g(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "-"
    if math.isinf(x):
        return "inf"
    return f"{x:.{digits}g}"


def _pct(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return _g(x)
    return f"{100 * x:.3g}%"


def _value(v: Any) -> str:
    return json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else repr(v) if isinstance(v, str) else str(v)


def _table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def fmt(row: tuple[str, ...]) -> str:
        return "  " + "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )

    return [fmt(header), *(fmt(r) for r in rows)]


def render_text(result: DiffResult, top: int) -> list[str]:
    """The human report, as lines."""
    lines = _header_lines(result)
    lines += ["", *_config_lines(result)]
    lines += ["", *_module_lines(result, top)]
    lines += _tensor_lines(result, top)
    lines += _companion_lines(result)
    if result.identical:
        lines += ["", "identical: no change in config, weights or companion files"]
    return lines


def _companion_lines(result: DiffResult) -> list[str]:
    """Companion files (tokenizer, model card, ...) that differ, with their text diffs."""
    if not result.companions:
        return []
    lines = ["", "companion files:"]
    lines += [
        f"  {c.change:<8} {c.name}" + ("" if c.diff is not None else "  (binary or large)") for c in result.companions
    ]
    for c in result.companions:
        if c.diff:
            lines += ["", *c.diff.rstrip("\n").splitlines()]
    return lines


def _header_lines(result: DiffResult) -> list[str]:
    """Both sides, the base-model check and the notes."""
    lines = [
        f"{side}: {name}" + ("" if str(origin) == str(name) else f"  ({origin})")
        for side, name, origin in (("a", result.a, result.origin_a), ("b", result.b, result.origin_b))
    ]
    bm = result.summary.base_model
    names = {n for n in (bm.a.get("name_or_path"), bm.b.get("name_or_path")) if n is not None}
    base = " / ".join(sorted(names)) or "(not recorded)"
    status = {"match": "", "unknown": "unchecked: ", "mismatch": "DIFFERENT, compared with --force: "}[bm.status]
    lines.append(f"base model: {base}  [{status}{bm.detail}]")
    lines += [f"note: {note}" for note in result.notes]
    return lines


def _config_lines(result: DiffResult) -> list[str]:
    if not result.config:
        return ["config: unchanged"]
    return ["config:", *(f"  {key}: {_value(old)} -> {_value(new)}" for key, (old, new) in result.config.items())]


def _module_lines(result: DiffResult, top: int) -> list[str]:
    """Totals over the LoRA updates, the ranking, and modules one side lacks."""
    s = result.summary
    parts = [f"{s.modules_compared} compared", f"{s.modules_changed} changed"]
    parts += [
        f"{len(x)} {w}"
        for x, w in ((s.modules_added, "added"), (s.modules_removed, "removed"), (s.modules_reshaped, "reshaped"))
        if x
    ]
    lines = [
        "LoRA updates ΔW: " + ", ".join(parts),
        f"  total  ‖ΔW_a‖ {_g(s.norm_a)}  ‖ΔW_b‖ {_g(s.norm_b)}  ‖ΔW_b−ΔW_a‖ {_g(s.delta_norm)}"
        f"  relative {_pct(s.relative)}  cosine {_g(s.cosine, 6)}",
    ]
    # Unchanged modules would only pad the ranking with 0% rows: list the changed ones
    # and count the rest.
    ranked = [m for m in result.top(top) if m.delta_norm > 0]
    unchanged = sum(1 for m in result.modules if m.delta_norm == 0)
    if ranked:
        lines += ["", f"top {len(ranked)} of {len(result.modules)} modules by relative change:"]
        rows = [
            (
                m.module,
                _g(m.norm_a),
                _g(m.norm_b),
                _g(m.delta_norm),
                _pct(m.relative),
                _g(m.cosine, 6),
                str(m.rank_a) if m.rank_a == m.rank_b else f"{m.rank_a}->{m.rank_b}",
            )
            for m in ranked
        ]
        lines += _table(rows, ("module", "‖ΔW_a‖", "‖ΔW_b‖", "‖Δ‖", "relative", "cosine", "r"))
        if unchanged:
            lines.append(f"  ({unchanged} other module{'s' if unchanged != 1 else ''} unchanged)")
    for title, items in (("added modules", s.modules_added), ("removed modules", s.modules_removed)):
        if items:
            lines += ["", f"{title}:", *(f"  {m.name}  {list(m.shape)}  ‖ΔW‖ {_g(m.norm)}" for m in items)]
    if s.modules_reshaped:
        lines += ["", "reshaped modules (not comparable):"]
        lines += [f"  {m.name}  {list(m.shape_a)} -> {list(m.shape_b)}" for m in s.modules_reshaped]
    return lines


def _tensor_lines(result: DiffResult, top: int) -> list[str]:
    """The other tensors (compared elementwise), if there are any."""
    s = result.summary
    if not (result.tensors or s.tensors_added or s.tensors_removed or s.tensors_reshaped):
        return []
    lines = ["", f"other tensors (elementwise): {s.tensors_compared} compared, {s.tensors_changed} changed"]
    changed = sorted((t for t in result.tensors if t.delta_norm > 0), key=lambda t: -t.relative)[: max(top, 0)]
    if changed:
        rows = [
            (t.tensor, _g(t.norm_a), _g(t.norm_b), _g(t.delta_norm), _g(t.max_abs_diff), _pct(t.relative))
            for t in changed
        ]
        lines += _table(rows, ("tensor", "‖a‖", "‖b‖", "‖b−a‖", "max|b−a|", "relative"))
    for word, items in (("added", s.tensors_added), ("removed", s.tensors_removed)):
        lines += [f"  {word}: {t.name}  {list(t.shape)}" for t in items]
    lines += [f"  reshaped: {t.name}  {list(t.shape_a)} -> {list(t.shape_b)}" for t in s.tensors_reshaped]
    return lines


def single_threaded_blas() -> None:
    # The diff's matrix products are thin (4096×16): one BLAS thread does each in ~0.06 ms,
    # while a thread pool on a busy machine spin-waits and takes 5-30x longer (the diff
    # runs its own worker threads, one module each, instead). BLAS reads
    # these variables when numpy is first imported, which in the CLI is still ahead of
    # us (adaptvc imports numpy lazily); a value the user set is kept.
    if "numpy" not in sys.modules:
        for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")


@click.command("diff")
@click.argument("ref_a", metavar="REF_A")
@click.argument("ref_b", metavar="[REF_B]", required=False)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON document on stdout instead of text (a, b, config, modules, tensors, summary).",
)
@click.option(
    "--top",
    "top",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="How many modules to list, by relative change.",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    metavar="FILE.png",
    callback=not_empty,
    help="Also write a heatmap of relative change (layers x module types); needs adaptvc[plot].",
)
@click.option("--force", "-f", is_flag=True, help="Compare even if the adapters were trained on different base models.")
def diff_command(ref_a: str, ref_b: str | None, as_json: bool, top: int, plot_path: str | None, force: bool) -> None:
    """Compare two adapters layer by layer, without the base model.

    REF_A and REF_B are refs (task_a@v2, task_a@<alias>, ...) or directories in PEFT
    format; REF_B defaults to the workspace (unsaved) state of REF_A's adapter. Compares
    config keys and the effective updates ΔW = (alpha/r)·B·A per module: ‖ΔW_a‖,
    ‖ΔW_b‖, ‖ΔW_b − ΔW_a‖, relative change and cosine, computed from r×r products
    (never the dense matrix). Other tensors (modules_to_save, biases, DoRA magnitudes)
    are compared elementwise.

    \b
    Examples:
      adaptvc diff task_a@v2 task_a@v3
      adaptvc diff task_a@v3                  # v3 vs the unsaved workspace
      adaptvc diff runs/a runs/b --json | jq '.summary.relative'
      adaptvc diff task_a@v1 task_a@v5 --top 5 --plot change.png
    """
    if plot_path:
        # Checked before the diff runs, so that a typo in the path does not cost the
        # computed result (the plot is written before the report is printed).
        parent = os.path.dirname(os.path.abspath(plot_path))
        if not os.path.isdir(parent):
            raise click.BadParameter(f"{parent} is not a directory (create it first)", param_hint="'--plot'")
    single_threaded_blas()
    result = api.diff(ref_a, ref_b, force=force)
    if plot_path:
        written = result.plot(plot_path)
        info(f"wrote {written}")
    if as_json:
        emit_json(result.to_dict(top=top))
        return
    for line in render_text(result, top):
        click.echo(line)


COMMANDS = [diff_command]
