"""``adaptvc convert``: a legacy ``adapter_model.bin`` becomes ``adapter_model.safetensors``."""

from __future__ import annotations

import click

from adaptvc import api
from adaptvc.cli.output import emit_json, info
from adaptvc.cli.params import not_empty


@click.command("convert")
@click.argument("directory", type=click.Path(file_okay=False, path_type=str), callback=not_empty)
@click.option("--keep-bin", is_flag=True, help="Keep adapter_model.bin next to the new file (default: remove it).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout instead of text.")
def convert_command(directory: str, keep_bin: bool, as_json: bool) -> None:
    """Convert a legacy adapter_model.bin to safetensors.

    The pickle is read with torch's restricted loader (weights_only): one that would
    run code is refused. The new adapter_model.safetensors holds the same tensors
    (checked by reading it back); the .bin is then removed unless --keep-bin.
    Needs torch.

    \b
    Example:
      adaptvc convert outputs/old-run
    """
    target = api.convert(directory, keep_bin=keep_bin)
    summary = api.inspect(directory)
    if as_json:
        emit_json(
            {
                "directory": directory,
                "weights_file": str(target),
                "bin_removed": not keep_bin,
                "tensor_count": summary.tensor_count,
                "parameter_count": summary.parameter_count,
            }
        )
        return
    kept = "kept" if keep_bin else "removed"
    click.echo(f"{target}  ({summary.tensor_count} tensors, {summary.parameter_count:,} parameters)")
    info(f"Converted adapter_model.bin to safetensors; the .bin was {kept}.")


COMMANDS = [convert_command]
