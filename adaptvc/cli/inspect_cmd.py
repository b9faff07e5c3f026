"""``adaptvc inspect``: what an adapter directory holds, without loading torch."""

from __future__ import annotations

import click

from adaptvc import api
from adaptvc.cli.output import emit_json, human_bytes, human_count
from adaptvc.cli.params import not_empty


@click.command("inspect")
@click.argument("directory", type=click.Path(file_okay=False, path_type=str), callback=not_empty)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout instead of text.")
def inspect_command(directory: str, as_json: bool) -> None:
    """Summarise the PEFT adapter in DIRECTORY, without torch.

    Reads adapter_config.json and the safetensors header only (no tensor data, no
    torch): PEFT type, rank, alpha, target modules, base model, tensor and parameter
    counts, size and dtypes.

    \b
    Examples:
      adaptvc inspect adapters/task_a
      adaptvc inspect outputs/checkpoint-500 --json | jq .r
    """
    info = api.inspect(directory)
    if as_json:
        emit_json(info)
        return
    targets = info.target_modules
    if isinstance(targets, list):
        targets = ", ".join(targets)
    base = info.base_model_name_or_path or "(not recorded)"
    if info.revision:
        base += f" @ {info.revision}"
    variant = [v for v, on in (("rsLoRA", info.use_rslora), ("DoRA", info.use_dora)) if on]
    rows = [
        ("adapter", info.path),
        ("type", info.peft_type + (f" ({', '.join(variant)})" if variant else "")),
        ("task", info.task_type or "-"),
        ("rank", "-" if info.r is None else str(info.r)),
        ("alpha", "-" if info.lora_alpha is None else f"{info.lora_alpha:g}"),
        ("targets", targets or "-"),
        ("base model", base),
        ("weights", f"{info.weights_file} ({info.weights_format})"),
        ("tensors", str(info.tensor_count)),
        ("parameters", f"{human_count(info.parameter_count)} ({info.parameter_count:,})"),
        ("size", human_bytes(info.bytes)),
        ("dtypes", ", ".join(f"{d}×{n}" for d, n in info.dtypes.items()) or "-"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key:<{width}}  {value}")


COMMANDS = [inspect_command]
