"""``adaptvc merge`` and ``adaptvc compress``: adapter algebra on saved versions.

Each command parses, calls one :mod:`adaptvc.api` function and prints: the new version
and the error a truncation dropped on stdout (one JSON document with ``--json``),
progress on stderr when it is a terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from adaptvc import api
from adaptvc.cli.diff_cmd import single_threaded_blas
from adaptvc.cli.output import emit_json, human_bytes, info, style

JSON_HELP = "Print one JSON document on stdout instead of text."
TOP_MODULES = 5  # modules with the largest error listed in the text report


def _parse_weights(ctx: click.Context, param: click.Parameter, value: str | None) -> list[float] | None:
    if value is None:
        return None
    try:
        return [float(x) for x in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of numbers (e.g. 0.7,0.3)") from None


def _module_progress(quiet: bool) -> Callable[[int, int], None] | None:
    if quiet or not sys.stderr.isatty():
        return None

    def progress(done: int, total: int) -> None:
        click.echo(f"\rmodules: {done}/{total}", nl=done == total, err=True)

    return progress


def _report(combined: Any, as_json: bool) -> None:
    if as_json:
        emit_json(combined.to_dict())
        return
    v, result = combined.version, combined.result
    if not v.new:
        info(f"No changes: the result is identical to {v.ref}; no version created.")
        return
    inputs = ", ".join(x.ref for x in combined.inputs)
    click.echo(
        f"Saved {style(v.ref, bold=True)} ({v.id[:12]}, {human_bytes(v.size)}) in commit {(v.commit or '')[:10]}"
    )
    click.echo(f"  {result.method} of {inputs}, weights {', '.join(f'{w:g}' for w in result.weights)}")
    ranks = sorted({m.rank for m in result.modules})
    rank_text = str(ranks[0]) if len(ranks) == 1 else f"{ranks[0]}..{ranks[-1]} (rank_pattern)"
    click.echo(f"  rank {rank_text} over {len(result.modules)} modules")
    if result.method == "svd":
        click.echo(f"  relative Frobenius error dropped: {result.relative_error:.4g} (all modules)")
        worst = sorted(result.modules, key=lambda m: m.relative_error, reverse=True)[:TOP_MODULES]
        for m in worst:
            click.echo(f"    {m.relative_error:10.4g}  r={m.rank:<4d} {m.name}")


@click.command("merge")
@click.argument("refs", nargs=-1, required=True)
@click.option("--adapter", "-a", required=True, metavar="NAME", help="Save the result as a version of NAME.")
@click.option("--weights", "-w", callback=_parse_weights, metavar="W1,W2,...", help="One weight per REF (default 1).")
@click.option(
    "--method", type=click.Choice(["cat", "svd"]), default="cat", show_default=True, help="Exact (cat) or rank-R (svd)."
)
@click.option("--rank", "-r", type=click.IntRange(min=1), help="Rank svd keeps (default: the largest input rank).")
@click.option("--message", "-m", metavar="MESSAGE", help="The version's message (default: inputs, weights, method).")
@click.option("--force", is_flag=True, help="Merge across base models; overwrite unsaved changes in adapters/NAME/.")
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def merge_command(
    refs: tuple[str, ...],
    adapter: str,
    weights: list[float] | None,
    method: str,
    rank: int | None,
    message: str | None,
    force: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Merge saved LoRA versions into one new version.

    Computes ΔW = Σ wᵢ·ΔWᵢ module by module without the base model. --method cat stacks
    the weighted factors: exact, rank Σ rᵢ. --method svd keeps the best rank-R
    approximation (QR of the factors and the SVD of a small core, never a full
    matrix) and prints the relative Frobenius error it dropped. The new version's
    parents are all the REFs; `adaptvc log` draws it as a merge. Inputs must be LoRA
    (no DoRA) on the same base model.

    \b
    Examples:
      adaptvc merge task_a@v3 task_b@v2 --adapter both --weights 0.7,0.3
      adaptvc merge task_a@v3 task_b@v2 --adapter both --method svd --rank 16
      adaptvc merge sweep@v4 sweep@v5 sweep@v6 --adapter sweep --weights 0.34,0.33,0.33
    """
    if method == "cat" and rank is not None:
        raise click.BadParameter("cat is exact and keeps rank Σ rᵢ; --rank goes with --method svd", param_hint="--rank")
    single_threaded_blas()  # thin QRs: one BLAS thread each, no spin-waiting pool (see diff)
    combined = api.merge(
        list(refs),
        adapter=adapter,
        weights=weights,
        method=method,
        rank=rank,
        message=message,
        force=force,
        progress=_module_progress(quiet or as_json),
    )
    _report(combined, as_json)


@click.command("compress")
@click.argument("ref")
@click.option("--rank", "-r", type=click.IntRange(min=1), help="Rank to keep in every module.")
@click.option(
    "--energy",
    type=click.FloatRange(min=0.0, max=1.0, min_open=True),
    help="Keep this share of each module's ‖ΔW‖²_F (per-module ranks, written as rank_pattern).",
)
@click.option("--adapter", "-a", metavar="NAME", help="Save to NAME (default: REF's own adapter).")
@click.option("--message", "-m", metavar="MESSAGE", help="The version's message (default: REF and the rank).")
@click.option("--force", is_flag=True, help="Overwrite unsaved changes in the adapter's directory.")
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def compress_command(
    ref: str,
    rank: int | None,
    energy: float | None,
    adapter: str | None,
    message: str | None,
    force: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Reduce a saved LoRA version's rank, as a new version.

    The best rank-R approximation of every module's ΔW (--rank R), or per module the
    least rank keeping a share of ‖ΔW‖²_F (--energy 0.99), computed from the factors
    without the base model; prints the relative Frobenius error dropped. The new
    version's parent is REF.

    \b
    Examples:
      adaptvc compress task_a@v3 --rank 16
      adaptvc compress task_a@v3 --energy 0.99 --adapter task_a_small
    """
    if (rank is None) == (energy is None):
        raise click.UsageError("give exactly one of --rank R and --energy E")
    single_threaded_blas()
    combined = api.compress(
        ref,
        rank=rank,
        energy=energy,
        adapter=adapter,
        message=message,
        force=force,
        progress=_module_progress(quiet or as_json),
    )
    _report(combined, as_json)


COMMANDS = [merge_command, compress_command]
