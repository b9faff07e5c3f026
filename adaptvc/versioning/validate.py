"""Finding and checking the adapter files a ``save`` versions, before anything is written.

- :func:`pick_source`: a directory in PEFT format, or one of PEFT's ``<adapter_name>/``
  subfolders (what ``save_pretrained`` writes for non-default adapters).
- :func:`base_weight_keys`: tensors that are not adapter parameters. adaptvc never
  stores a base model, so weights holding any are refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from adaptvc.errors import InvalidAdapterError
from adaptvc.formats import CONFIG_NAME, LEGACY_WEIGHTS_NAME, WEIGHTS_NAME
from adaptvc.formats.safetensors_header import read_header

# Name prefixes of PEFT's adapter parameters (each tuner's ``prefix``) and the other
# names PEFT saves for adapters: prompt-learning embeddings, shared VeRA matrices.
ADAPTER_MARKERS = (
    "lora_",
    "ia3_",
    "hada_",
    "lokr_",
    "oft_",
    "boft_",
    "vera_",
    "pvera_",
    "fourierft_",
    "ln_tuning_",
    "poly_",
    "vblora_",
    "hra_",
    "bone_",
    "miss_",
    "randlora_",
    "shira_",
    "c3a_",
    "road_",
    "delora_",
    "adamss_",
    "beft_",
    "deft_",
    "frod_",
    "glora_",
    "gralora_",
    "hira_",
    "lily_",
    "osf_",
    "peanut_",
    "psoft_",
    "shadow_",
    "supertuning_",
    "tinylora_",
    "trainable_tokens_",
    "unilora_",
    "waveft_",
    "adaption_",
    "modules_to_save",
    "prompt_embeddings",
    "prefix_task_cols",
    "prefix_task_rows",
)
_MARKER_RE = re.compile(r"(?:^|\.)(?:" + "|".join(re.escape(m) for m in ADAPTER_MARKERS) + ")")


def has_adapter_files(directory: Path) -> bool:
    return (directory / CONFIG_NAME).is_file()


def pick_source(directory: Path, adapter: str) -> Path:
    """The folder holding the adapter to save.

    ``directory`` itself when it holds ``adapter_config.json``; otherwise its
    ``<adapter>/`` subfolder, or its only adapter subfolder.

    Raises:
        InvalidAdapterError: no adapter there, or several and ``adapter`` names none.
    """
    if not directory.is_dir():
        raise InvalidAdapterError(
            f"{directory}: no such directory",
            path=str(directory),
            hint="train first, or point --from at the training output",
        )
    if has_adapter_files(directory):
        return directory
    subs = sorted(d for d in directory.iterdir() if d.is_dir() and has_adapter_files(d))
    for d in subs:
        if d.name == adapter:
            return d
    if len(subs) == 1:
        return subs[0]
    if subs:
        raise InvalidAdapterError(
            f"{directory} holds several adapters ({', '.join(d.name for d in subs)}) and none is named {adapter!r}",
            path=str(directory),
            hint=f"adaptvc save --adapter {subs[0].name} --from {directory} -m MESSAGE",
        )
    raise InvalidAdapterError(
        f"{directory}: no {CONFIG_NAME} here (nor in a subfolder); not a PEFT adapter directory",
        path=str(directory),
        hint="save the adapter with save_pretrained or adaptvc.save_adapter first",
    )


def base_weight_keys(keys: Iterable[str], config: dict[str, Any]) -> list[str]:
    """The keys that are not adapter parameters.

    Adapter parameters carry a PEFT marker (``lora_A``, ``lora_magnitude_vector``,
    ``ia3_l``, ``hada_w1_a``...), belong to a module listed in ``modules_to_save``
    (PEFT saves those copies under the plain module name), or are biases when the
    config asks for them (``bias="all"`` / ``"lora_only"``).
    """
    modules_to_save = set(config.get("modules_to_save") or ())
    bias = str(config.get("bias") or "none") != "none"
    out = []
    for key in keys:
        if _MARKER_RE.search(key):
            continue
        parts = key.split(".")
        if any(p in modules_to_save for p in parts[:-1]):
            continue
        if any(f".{m}." in f".{key}" for m in modules_to_save if "." in m):  # dotted module paths
            continue
        if bias and parts[-1] == "bias":
            continue
        out.append(key)
    return out


def check_weights(weights: Path, config: dict[str, Any]) -> None:
    """Refuse weights that hold base-model tensors or no tensor at all."""
    header = read_header(weights)
    if not header.tensors:
        raise InvalidAdapterError(f"{weights}: holds no tensor", path=str(weights))
    stray = base_weight_keys(header.tensors, config)
    if stray:
        example = ", ".join(stray[:3]) + (f" and {len(stray) - 3} more" if len(stray) > 3 else "")
        hint = "save only the adapter: peft_model.save_pretrained(DIR) or adaptvc.save_adapter(model, DIR)"
        if all(k.endswith(".base_layer.weight") for k in stray):
            # PEFT's save_embedding_layers="auto" copies the base embedding matrix when an
            # embedding layer is targeted and it cannot tell whether the vocabulary changed.
            hint = (
                "these are base embedding matrices that save_pretrained copies when embeddings are targeted: "
                "save with save_pretrained(DIR, save_embedding_layers=False) or adaptvc.save(model, ...); "
                "if you resized the vocabulary, list the layer in modules_to_save or use trainable_token_indices"
            )
        raise InvalidAdapterError(
            f"{weights} holds base-model weights ({len(stray)} of {len(header.tensors)} tensors are not adapter "
            f"parameters: {example}); adaptvc versions adapters only, never the base model",
            path=str(weights),
            hint=hint,
        )


def weights_file(directory: Path) -> Path:
    """The weights of an adapter folder (safetensors first, then the legacy .bin)."""
    for name in (WEIGHTS_NAME, LEGACY_WEIGHTS_NAME):
        if (directory / name).is_file():
            return directory / name
    raise InvalidAdapterError(
        f"{directory}: no {WEIGHTS_NAME} (or legacy {LEGACY_WEIGHTS_NAME})",
        path=str(directory),
        hint="point at a directory written by save_pretrained / adaptvc.save_adapter",
    )
