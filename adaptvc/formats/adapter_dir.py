"""A directory in PEFT format: validated (the one validation every command uses) and
summarised without loading any tensor.

:func:`open_adapter_dir` is the validation ``save``, ``convert``, ``inspect`` and ``diff``
share: what the official ``safetensors`` loader and PEFT's loader would refuse, adaptvc
refuses, with a typed error that names the file and the tensor or module.

:func:`inspect_adapter` is what ``adaptvc inspect`` prints. For safetensors weights it
reads only the header (no torch). Legacy ``adapter_model.bin`` needs torch
(``weights_only=True``) and is handled by :mod:`adaptvc.formats.legacy_bin`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from adaptvc.errors import ConfigWeightsMismatchError, EmptyTensorError, InvalidAdapterError
from adaptvc.formats import CONFIG_NAME, LEGACY_WEIGHTS_NAME, WEIGHTS_NAME
from adaptvc.formats.adapter_config import get_pattern_key, read_config, target_module_matches
from adaptvc.formats.safetensors_header import SafetensorsHeader, read_header

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


@dataclass(frozen=True)
class AdapterInfo:
    """What an adapter directory holds, from its config and its weights' header."""

    path: str
    weights_file: str
    weights_format: str  # "safetensors" or "bin"
    peft_type: str
    task_type: str | None
    r: int | None
    lora_alpha: float | None
    target_modules: list[str] | str | None
    base_model_name_or_path: str | None
    revision: str | None
    use_rslora: bool
    use_dora: bool
    tensor_count: int
    parameter_count: int
    bytes: int
    dtypes: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def weights_path(directory: str | os.PathLike[str]) -> Path:
    """The weights file of an adapter directory: safetensors first, then legacy .bin.

    A name that exists as anything (a symlink, a FIFO) is picked, so that reading it
    refuses it for what it is rather than report it missing.

    Raises:
        InvalidAdapterError: neither file exists.
    """
    directory = Path(directory)
    for name in (WEIGHTS_NAME, LEGACY_WEIGHTS_NAME):
        if os.path.lexists(directory / name):
            return directory / name
    raise InvalidAdapterError(
        f"{directory}: no {WEIGHTS_NAME} (or legacy {LEGACY_WEIGHTS_NAME}) in this directory",
        path=str(directory),
        hint="point at a directory written by save_pretrained / adaptvc.save_adapter",
    )


@dataclass(frozen=True)
class CheckedAdapter:
    """An adapter directory that passed :func:`open_adapter_dir`.

    ``header`` is None for a legacy ``.bin`` (whose tensors were loaded to check them);
    ``shapes`` maps every tensor to ``(dtype, shape)`` either way.
    """

    directory: Path
    config: dict[str, Any]
    weights: Path
    header: SafetensorsHeader | None
    shapes: dict[str, tuple[str, tuple[int, ...]]]


def open_adapter_dir(
    directory: str | os.PathLike[str], *, adapter_only: bool = False, safetensors_only: bool = False
) -> CheckedAdapter:
    """The one validation of an adapter directory (save, convert, inspect and diff use it).

    As strict as the official ``safetensors`` loader and PEFT's loader together: the
    config is a PEFT config; the weights are a regular file (a symlink, FIFO or device
    is refused unread) that ``safetensors`` would load (or a legacy ``.bin`` with no
    code in it); no tensor is empty; and the tensors fit the config
    (:func:`check_tensors`). With ``adapter_only`` (what ``save`` versions), tensors of
    the base model are refused too (:func:`check_adapter_only`); with
    ``safetensors_only`` (the diff, which memory-maps), a legacy ``.bin`` is refused
    before it is read, with the command that converts it.

    Raises:
        InvalidAdapterError: its subclasses name the problem (MalformedSafetensorsError,
            NotARegularFileError, UnsafePickleError, EmptyTensorError,
            ConfigWeightsMismatchError).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise InvalidAdapterError(f"{directory}: no such directory", path=str(directory))
    config = read_config(directory / CONFIG_NAME)
    weights = weights_path(directory)
    header: SafetensorsHeader | None = None
    if weights.name == WEIGHTS_NAME:
        header = read_header(weights, follow_symlinks=False)
        shapes = {name: (t.dtype, t.shape) for name, t in header.tensors.items()}
    elif safetensors_only:
        raise InvalidAdapterError(
            f"{directory}: only a legacy {LEGACY_WEIGHTS_NAME}; this reads {WEIGHTS_NAME} (memory-mapped, no torch)",
            path=str(directory),
            hint=f"adaptvc convert {directory}",
        )
    else:
        # Imported here: legacy_bin (pickle, the writer) adds ~3 ms to `adaptvc diff`,
        # which imports this module, and only a legacy .bin directory needs it.
        from adaptvc.formats.legacy_bin import load_bin_state_dict

        state = load_bin_state_dict(weights)
        shapes = {name: (_torch_dtype_name(t.dtype), tuple(t.shape)) for name, t in state.items()}
    check_tensors(config, shapes, weights)
    if adapter_only:
        check_adapter_only(config, shapes, weights)
    return CheckedAdapter(directory, config, weights, header, shapes)


# "<module>.lora_A.weight" (or "<module>.lora_A.<adapter>.weight"), "<module>.lora_embedding_A"
_LORA_FACTOR = re.compile(
    r"^(?P<module>.+)\.(?:(?P<kind>lora_A|lora_B)(?:\.[^.]+)?\.weight|(?P<ekind>lora_embedding_A|lora_embedding_B)"
    r"(?:\.[^.]+)?)$"
)
_MAGNITUDE = re.compile(r"^(?P<module>.+)\.lora_magnitude_vector(?:\.[^.]+)*$")
_MODEL_PREFIX = "base_model.model."
_ZERO3_HINT = (
    "the model was saved without its full weights: under DeepSpeed ZeRO-3 or FSDP each rank holds only a shard, "
    "so gather the full state dict before saving (ZeRO-3: stage3_gather_16bit_weights_on_model_save=true, or "
    "accelerator.get_state_dict(model); FSDP: state_dict_type FULL_STATE_DICT) and save from rank 0"
)


def check_tensors(config: dict[str, Any], shapes: dict[str, tuple[str, tuple[int, ...]]], path: Path) -> None:
    """Refuse what PEFT could not load, or would load without its data.

    - a tensor with no elements (an un-gathered ZeRO-3 / FSDP save, peft#2892);
    - for LoRA: half of an A/B pair; a rank other than the module's ``r`` (``rank_pattern``
      resolved as PEFT does); a DoRA magnitude missing under ``use_dora``; factors of a
      module ``target_modules`` does not select.

    Raises:
        EmptyTensorError, ConfigWeightsMismatchError.
    """
    empty = tuple(name for name, (_, shape) in shapes.items() if math.prod(shape) == 0)
    if empty:
        more = f" and {len(empty) - 3} more" if len(empty) > 3 else ""
        raise EmptyTensorError(
            f"{path}: {len(empty)} of {len(shapes)} tensors have no elements ({', '.join(empty[:3])}{more})",
            path=str(path),
            tensors=empty,
            hint=_ZERO3_HINT,
        )
    if str(config.get("peft_type", "")).upper() == "LORA":
        _check_lora(config, shapes, path)


def _lora_modules(shapes: dict[str, tuple[str, tuple[int, ...]]]) -> tuple[dict[str, dict[str, tuple[int, ...]]], set]:
    factors: dict[str, dict[str, tuple[int, ...]]] = {}
    magnitudes = set()
    for key, (_, shape) in shapes.items():
        m = _LORA_FACTOR.match(key)
        if m is not None:
            kind = m.group("kind") or m.group("ekind")
            factors.setdefault(m.group("module"), {})[kind[-1]] = shape
        elif (mag := _MAGNITUDE.match(key)) is not None:
            magnitudes.add(mag.group("module"))
    return factors, magnitudes


def _check_lora(config: dict[str, Any], shapes: dict[str, tuple[str, tuple[int, ...]]], path: Path) -> None:
    factors, magnitudes = _lora_modules(shapes)
    rank_pattern = config.get("rank_pattern") or {}
    targets = config.get("target_modules")
    check_targets = not config.get("target_parameters")
    for key, parts in sorted(factors.items()):
        module = key[len(_MODEL_PREFIX) :] if key.startswith(_MODEL_PREFIX) else key

        def bad(problem: str, hint: str, module: str = module) -> ConfigWeightsMismatchError:
            return ConfigWeightsMismatchError(
                f"{path}: module {module!r} {problem}", path=str(path), module=module, hint=hint
            )

        if set(parts) != {"A", "B"}:
            have, lack = ("A", "B") if "A" in parts else ("B", "A")
            raise bad(f"has lora_{have} but no lora_{lack}; the file lost half of a LoRA pair", _RESAVE)
        a, b = parts["A"], parts["B"]
        r_key = get_pattern_key(rank_pattern.keys(), module)
        r = rank_pattern[r_key] if r_key is not None else config.get("r", 8)
        stored = (a[0] if a else None, b[1] if len(b) > 1 else None)
        if stored != (r, r):
            where = f"rank_pattern[{r_key!r}]" if r_key is not None else "r"
            raise bad(
                f"has rank {stored[0]} (lora_A {list(a)}, lora_B {list(b)}) but adapter_config.json gives it {where}={r}",
                "the config and the weights come from different runs: save both from the same model "
                "(save_pretrained writes them together)",
            )
        if config.get("use_dora") and key not in magnitudes:
            raise bad("has no lora_magnitude_vector although use_dora is true", _RESAVE)
        if check_targets and not target_module_matches(targets, module):
            raise bad(
                f"has LoRA factors but target_modules {targets!r} does not select it",
                "the config and the weights come from different runs, or target_modules was edited by hand",
            )


_RESAVE = "re-save the adapter from the model (save_pretrained or adaptvc.save_adapter)"


def check_adapter_only(config: dict[str, Any], shapes: dict[str, tuple[str, tuple[int, ...]]], path: Path) -> None:
    """Refuse weights that hold no tensor at all, or tensors of the base model: adaptvc
    versions adapters only (PEFT copies base embedding matrices when embeddings are
    targeted, see the hint).

    Raises:
        InvalidAdapterError: no tensor, or base-model tensors (named).
    """
    if not shapes:
        raise InvalidAdapterError(f"{path}: holds no tensor", path=str(path))
    stray = base_weight_keys(shapes, config)
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
            f"{path} holds base-model weights ({len(stray)} of {len(shapes)} tensors are not adapter "
            f"parameters: {example}); adaptvc versions adapters only, never the base model",
            path=str(path),
            hint=hint,
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


def _target_modules(config: dict[str, Any]) -> list[str] | str | None:
    tm = config.get("target_modules")
    if isinstance(tm, (list, tuple, set)):
        return sorted(tm)
    return tm


def inspect_adapter(directory: str | os.PathLike[str]) -> AdapterInfo:
    """Summarise an adapter directory without loading its tensors.

    Args:
        directory: a folder holding ``adapter_config.json`` and the weights.

    Returns:
        An :class:`AdapterInfo`.

    Raises:
        InvalidAdapterError: a missing or malformed file (the message names it).

    Example:
        >>> inspect_adapter("adapters/task_a").r      # doctest: +SKIP
        16
    """
    directory = Path(directory)
    checked = open_adapter_dir(directory)
    config, wpath = checked.config, checked.weights
    if checked.header is not None:
        fmt, nbytes = "safetensors", checked.header.file_size
    else:
        fmt, nbytes = "bin", os.lstat(wpath).st_size
    shapes = {name: (dtype, math.prod(shape)) for name, (dtype, shape) in checked.shapes.items()}
    dtypes: dict[str, int] = {}
    for dtype, _ in shapes.values():
        dtypes[dtype] = dtypes.get(dtype, 0) + 1
    return AdapterInfo(
        path=str(directory),
        weights_file=wpath.name,
        weights_format=fmt,
        peft_type=str(config["peft_type"]),
        task_type=config.get("task_type"),
        r=config.get("r"),
        lora_alpha=config.get("lora_alpha"),
        target_modules=_target_modules(config),
        base_model_name_or_path=config.get("base_model_name_or_path"),
        revision=config.get("revision"),
        use_rslora=bool(config.get("use_rslora", False)),
        use_dora=bool(config.get("use_dora", False)),
        tensor_count=len(shapes),
        parameter_count=sum(n for _, n in shapes.values()),
        bytes=nbytes,
        dtypes=dict(sorted(dtypes.items())),
    )


# torch dtype → safetensors dtype name, so .bin and .safetensors summaries read alike.
_TORCH_TO_ST = {
    "float64": "F64",
    "float32": "F32",
    "float16": "F16",
    "bfloat16": "BF16",
    "int64": "I64",
    "int32": "I32",
    "int16": "I16",
    "int8": "I8",
    "uint8": "U8",
    "bool": "BOOL",
}


def _torch_dtype_name(dtype: Any) -> str:
    name = str(dtype).replace("torch.", "")
    return _TORCH_TO_ST.get(name, name.upper())
