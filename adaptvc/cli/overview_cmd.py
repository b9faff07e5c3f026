"""Seeing the history as a whole: compare, best, report.

``compare`` prints a table that fits the terminal (columns elided with a note on stderr)
and is plain, complete text when piped; ``--json``/``--csv`` for scripts. ``best`` prints
just a ref, for ``$(adaptvc best ...)``. ``report`` writes one HTML file and prints its path.
"""

from __future__ import annotations

import csv
import shutil
import sys
from typing import Any

import click

from adaptvc import api
from adaptvc.cli.output import emit_json, human_bytes, info, style, warn
from adaptvc.cli.params import not_empty

JSON_HELP = "Print one JSON document on stdout instead of text."
MESSAGE_WIDTH = 40
# When the terminal is too narrow, columns go in this order (first: the first to go);
# the ref always stays.
ELIDE_ORDER = ("author", "parents", "date", "message", "param", "metric")


def _cell(row: Any, column: str) -> str:
    value = row.value(column)
    if value is None:
        return "-"
    if column == "date":
        return str(value)[:16].replace("T", " ")
    if column == "author":
        return str(value).split(" <")[0]
    if column == "message":
        text = next((line for line in str(value).splitlines() if line.strip()), "")
        return text if len(text) <= MESSAGE_WIDTH else text[: MESSAGE_WIDTH - 1] + "…"
    return row.text(column)


def _numeric(rows: list, column: str) -> bool:
    values = [r.value(column) for r in rows if r.value(column) is not None]
    return bool(values) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _fit(columns: list[str], widths: dict[str, int], limit: int) -> list[str]:
    """The columns that fit in ``limit`` characters (two spaces between), dropping by
    :data:`ELIDE_ORDER`, the rightmost of a kind first."""
    shown = list(columns)

    def total() -> int:
        return sum(widths[c] for c in shown) + 2 * (len(shown) - 1)

    for kind in ELIDE_ORDER:
        for c in reversed([c for c in shown if c.split(":", 1)[0] == kind]):
            if total() <= limit:
                return shown
            shown.remove(c)
    return shown


def _render_table(table: Any) -> None:
    rows = list(table.rows)
    columns = list(table.columns)
    title = {c: c.split(":", 1)[-1] for c in columns}
    cells = [{c: _cell(r, c) for c in columns} for r in rows]
    widths = {c: max([len(title[c]), *(len(row[c]) for row in cells)]) for c in columns}
    shown = columns
    if sys.stdout.isatty():
        shown = _fit(columns, widths, shutil.get_terminal_size((120, 24)).columns)
    right = {c for c in shown if _numeric(rows, c)}

    def line(values: dict[str, str]) -> str:
        return "  ".join(values[c].rjust(widths[c]) if c in right else values[c].ljust(widths[c]) for c in shown)

    click.echo(style(line(title), bold=True).rstrip())
    for row in cells:
        click.echo(line(row).rstrip())
    hidden = [title[c] for c in columns if c not in shown]
    if hidden:
        info(
            f"({len(hidden)} column{'s' if len(hidden) != 1 else ''} not shown: {', '.join(hidden)}; "
            "widen the terminal, pick columns with --metric/--param, or use --csv / --json)"
        )
    if table.dropped:
        info(f"(--only-diff: {len(table.dropped)} columns the same in every row left out)")


def _write_csv(table: Any) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow([c.split(":", 1)[-1] for c in table.columns])
    for r in table.rows:
        writer.writerow([r.text(c) for c in table.columns])


@click.command("compare")
@click.argument("targets", nargs=-1, metavar="[ADAPTER|REF]...", callback=not_empty)
@click.option("--metric", "metrics", multiple=True, metavar="NAME", help="Only this metric column (repeatable).")
@click.option("--param", "params", multiple=True, metavar="KEY", help="Only this config key (repeatable).")
@click.option("--only-diff", is_flag=True, help="Leave out the columns that are the same in every row.")
@click.option("--sort", metavar="COLUMN", help="Order rows by a metric, config key or column (ascending).")
@click.option("--desc", "descending", is_flag=True, help="With --sort: descending. Rows without a value stay last.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (one header row, one row per version).")
def compare_command(
    targets: tuple[str, ...],
    metrics: tuple[str, ...],
    params: tuple[str, ...],
    only_diff: bool,
    sort: str | None,
    descending: bool,
    as_json: bool,
    as_csv: bool,
) -> None:
    """Compare versions side by side: hyper-parameters and metrics.

    One row per version (ref, date, author, message, parents), then the adapter's
    hyper-parameters from its adapter_config.json (r, lora_alpha, target_modules,
    use_dora, use_rslora, ...) and its metrics as columns. An ADAPTER means all its
    versions, a REF one version; none means every adapter. The table fits the terminal
    (the columns left out are named on stderr); piped, it is complete plain text.

    \b
    Examples:
      adaptvc compare task_a --sort eval_loss
      adaptvc compare task_a --only-diff --metric eval_loss --metric loss
      adaptvc compare task_a@v2 task_a@v5 task_b --param r --param lora_alpha
      adaptvc compare task_a --csv > versions.csv
      adaptvc compare --json | jq '.rows[] | {ref, eval_loss: .metrics.eval_loss}'
    """
    if as_json and as_csv:
        raise click.UsageError("--json and --csv are alternatives: choose one")
    if descending and not sort:
        raise click.UsageError("--desc orders by --sort: give --sort COLUMN too")
    table = api.compare(
        targets,
        metrics=metrics or None,
        params=params or None,
        only_diff=only_diff,
        sort=sort,
        descending=descending,
    )
    for name in metrics:
        if not any(name in r.metrics for r in table.rows):
            warn(f"no version in the table records the metric {name!r}")
    if as_json:
        emit_json(table.to_dict())
    elif as_csv:
        _write_csv(table)
    elif not table.rows:
        info("No versions saved yet. Save one: adaptvc save --adapter NAME -m MESSAGE")
    else:
        _render_table(table)


@click.command("best")
@click.argument("adapter")
@click.option("--metric", required=True, metavar="NAME", help="The metric to rank versions by, e.g. eval_loss.")
@click.option("--max", "maximize", is_flag=True, help="Highest wins (accuracy, BLEU); default: lowest (loss).")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def best_command(adapter: str, metric: str, maximize: bool, as_json: bool) -> None:
    """Print the ref of the best version of ADAPTER by a metric.

    Lowest value wins (a loss) unless --max; a tie goes to the newest version. Only the
    ref goes to stdout, so the command composes in scripts.

    \b
    Examples:
      adaptvc best task_a --metric eval_loss
      adaptvc best task_a --metric eval_accuracy --max --json
      adaptvc alias $(adaptvc best task_a --metric eval_loss) production
    """
    found = api.best(adapter, metric=metric, maximize=maximize)
    if as_json:
        emit_json(found.to_dict())
        return
    click.echo(found.ref)
    if sys.stderr.isatty():
        info(f"{metric} = {found.value:g} ({'highest' if maximize else 'lowest'} of {found.candidates} versions)")


@click.command("report")
@click.argument("adapters", nargs=-1, metavar="[ADAPTER]...", callback=not_empty)
@click.option(
    "--output",
    "-o",
    default="report.html",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=str),
    callback=not_empty,
    help="The HTML file to write (replaced).",
)
@click.option(
    "--diff",
    "diffs",
    multiple=True,
    nargs=2,
    metavar="REF_A REF_B",
    help="Draw the diff heatmap of this pair (repeatable); default: recent versions against their parent.",
)
@click.option(
    "--max-diffs",
    default=8,
    show_default=True,
    type=click.IntRange(min=0),
    help="Without --diff: how many versions to diff against their parent (newest first).",
)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def report_command(adapters: tuple[str, ...], output: str, diffs: tuple, max_diffs: int, as_json: bool) -> None:
    """Write a self-contained HTML report of the versions.

    One file (no network when viewed: styles, script and figures inline)
    with the lineage graph of every version (branches, forks, merges; ref, message,
    aliases, base model on each node), each metric plotted across versions, the compare
    table (click a header to sort), diff heatmaps (layers x module types) and storage per
    adapter and version. Every adapter when ADAPTER is not given. Prints the file's path.

    \b
    Examples:
      adaptvc report
      adaptvc report task_a -o task_a.html
      adaptvc report task_a --diff task_a@v1 task_a@v5 --diff task_a@v5 task_a@production
    """
    result = api.report(
        adapters, output=output, diffs=[tuple(p) for p in diffs] if diffs else None, max_diffs=max_diffs
    )
    if as_json:
        emit_json(result.to_dict())
        return
    for note in result.notes:
        info(f"Note: {note}")
    info(
        f"{result.versions} versions, {len(result.metrics)} metrics, {len(result.diffs)} diffs; "
        f"{human_bytes(result.bytes)} in {result.seconds:.2f} s"
    )
    click.echo(str(result.path))


COMMANDS = [compare_command, best_command, report_command]
