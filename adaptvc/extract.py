"""Live model → one adapter's tensors and config, written exactly as PEFT writes them.

Two kinds of live model carry adapters:

- a ``peft.PeftModel`` (from ``get_peft_model`` or ``PeftModel.from_pretrained``);
  the oracle is ``PeftModel.save_pretrained``;
- a transformers model with adapters from ``add_adapter`` / ``load_adapter``
  (``PeftAdapterMixin``: ``model.peft_config``, ``model.active_adapters()``,
  ``model._hf_peft_config_loaded``); the oracle is the adapter branch of
  ``PreTrainedModel.save_pretrained``.

Which parameters belong to an adapter is method-specific (LoRA, DoRA, IA3, LoHa, LoKr,
``modules_to_save`` copies, ``bias="all"``...). PEFT answers that in
``peft.get_peft_model_state_dict``, the very function both oracles call, so we call it
too instead of re-deriving per-method key rules that change between PEFT releases.
What adaptvc adds around it: choosing the adapter (and refusing ambiguity), the
``base_model.model.`` prefix for transformers models, de-aliasing and contiguity, the
config exactly as the oracle writes it but with set-valued fields sorted (so two saves
give identical bytes), and atomic writes (:mod:`adaptvc.formats.writer`).

One deliberate difference, on by default: PEFT's ``save_embedding_layers="auto"`` copies
the *whole* base embedding matrix (``embed_tokens.base_layer.weight``) whenever an
embedding layer is targeted. That is a base weight (for a 7B model, hundreds of MB per
version), so adaptvc saves only ``lora_embedding_A/B`` unless asked:
``save_embedding_layers=True`` after resizing the vocabulary, ``"auto"`` for PEFT's
own decision (which may query the Hub).

This is the only module of adaptvc that imports peft; torch comes with it (and with
:mod:`adaptvc.formats.writer` when it writes tensors).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from adaptvc.errors import (
    AdapterNotFoundError,
    AmbiguousAdapterError,
    MissingDependencyError,
    NotADirectoryPathError,
)
from adaptvc.formats import CONFIG_NAME, LEGACY_WEIGHTS_NAME, WEIGHTS_NAME
from adaptvc.formats.writer import write_config, write_state_dict

if TYPE_CHECKING:  # pragma: no cover
    import torch


# --- which model, which adapter -------------------------------------------------------


def _is_peft_model(model: Any) -> bool:
    try:
        from peft import PeftModel  # torch + peft: seconds; versioning.save imports this module
    except ImportError:  # pragma: no cover - peft is an extra
        raise MissingDependencyError("peft", extra="torch", purpose="saving adapters from live models") from None
    return isinstance(model, PeftModel)


def _is_transformers_with_adapters(model: Any) -> bool:
    return bool(getattr(model, "_hf_peft_config_loaded", False)) and isinstance(
        getattr(model, "peft_config", None), dict
    )


def _active_adapters(model: Any, peft_model: bool) -> list[str]:
    # PeftModel.active_adapters is a property, PeftAdapterMixin.active_adapters a method.
    active = model.active_adapters if peft_model else model.active_adapters()
    if isinstance(active, str):
        active = [active]
    return list(active)


def resolve_adapter_name(model: Any, adapter_name: str | None = None) -> str:
    """The adapter to save: ``adapter_name`` if given, else the single active adapter.

    Raises:
        AdapterNotFoundError: the model has no adapters, or none named ``adapter_name``.
        AmbiguousAdapterError: several adapters are active and no name was given.
    """
    peft_model = _is_peft_model(model)
    if not peft_model and not _is_transformers_with_adapters(model):
        raise AdapterNotFoundError(
            f"{type(model).__name__} has no adapters: expected a peft.PeftModel or a transformers "
            "model with adapters added through add_adapter/load_adapter",
            hint="wrap it first, e.g. model = peft.get_peft_model(model, LoraConfig(...))",
        )
    names = list(model.peft_config)
    if not names:
        raise AdapterNotFoundError(f"{type(model).__name__} has no adapters loaded")
    if adapter_name is not None:
        if adapter_name not in model.peft_config:
            raise AdapterNotFoundError(
                f"no adapter named {adapter_name!r} in this model; it has: {', '.join(map(repr, names))}",
                name=adapter_name,
                hint=f"pass adapter_name={names[0]!r} (or another of the names above)",
            )
        return adapter_name
    active = _active_adapters(model, peft_model)
    if len(active) > 1:
        raise AmbiguousAdapterError(
            f"several adapters are active ({', '.join(map(repr, active))}); a saved adapter holds exactly one",
            hint=f"pass adapter_name=, e.g. adapter_name={active[0]!r}; save each adapter as its own version",
        )
    if not active:
        raise AdapterNotFoundError(
            f"no active adapter; the model has: {', '.join(map(repr, names))}",
            hint=f"pass adapter_name={names[0]!r}",
        )
    return active[0]


# --- tensors --------------------------------------------------------------------------


def get_adapter_state_dict(
    model: Any,
    adapter_name: str | None = None,
    *,
    save_embedding_layers: bool | Literal["auto"] = False,
) -> dict[str, torch.Tensor]:
    """Only the adapter's tensors of a live model, keyed exactly as PEFT saves them.

    Keys carry no adapter name (``...q_proj.lora_A.weight``, not ``lora_A.default``) and
    start with ``base_model.model.``, for both PEFT and transformers models. The values
    are the live parameters (no copy), as in PEFT; clone them if you mutate the model
    before you are done with them.

    Args:
        model: a ``peft.PeftModel`` or a transformers model with adapters.
        adapter_name: which adapter; ``None`` means the active one.
        save_embedding_layers: also include full embedding matrices (base weights).
            ``False`` (default): never. ``True``: after resizing the vocabulary.
            ``"auto"``: PEFT's own default (whole matrix when an embedding is targeted).

    Returns:
        ``{name: tensor}``, no base-model weight unless ``save_embedding_layers`` asks.

    Raises:
        AdapterNotFoundError: no adapters, or none of that name.
        AmbiguousAdapterError: several active adapters and no name.

    Example:
        >>> sd = get_adapter_state_dict(peft_model)                 # doctest: +SKIP
        >>> next(iter(sd))                                            # doctest: +SKIP
        'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'
    """
    name = resolve_adapter_name(model, adapter_name)
    from peft import get_peft_model_state_dict  # loaded by resolve_adapter_name already

    state = get_peft_model_state_dict(model, adapter_name=name, save_embedding_layers=save_embedding_layers)
    if not _is_peft_model(model):
        # The PeftModel wrapper is what puts `base_model.model.` in front; transformers
        # adds it by hand when saving in PEFT format (save_peft_format=True).
        state = {f"base_model.model.{key}": value for key, value in state.items()}
    return state


# --- config ---------------------------------------------------------------------------


def adapter_config_dict(model: Any, adapter_name: str | None = None) -> dict[str, Any]:
    """The ``adapter_config.json`` content the model's own ``save_pretrained`` would write.

    For a PeftModel, as ``PeftModel.save_pretrained``: ``inference_mode`` set to true,
    ``base_model_name_or_path`` filled from the base model when unset, ``auto_mapping``
    recorded when there is no ``task_type``. For a transformers model, as its
    ``save_pretrained``: the config as it is. The live config is never modified (PEFT's
    own save fills ``base_model_name_or_path`` in place).
    """
    name = resolve_adapter_name(model, adapter_name)
    config = copy.deepcopy(model.peft_config[name])
    auto_mapping = None
    if _is_peft_model(model):
        if config.base_model_name_or_path is None:
            base = model.base_model if config.is_prompt_learning else model.base_model.model
            config.base_model_name_or_path = base.__dict__.get("name_or_path", None) or None
        config.inference_mode = True
        if config.task_type is None:
            cls = model._get_base_model_class(is_prompt_tuning=config.is_prompt_learning)
            auto_mapping = {"base_model_class": cls.__name__, "parent_library": cls.__module__}
    out = config.to_dict()
    if auto_mapping is not None:
        out["auto_mapping"] = auto_mapping
    return out


# --- saving ---------------------------------------------------------------------------


def save_adapter(
    model: Any,
    save_directory: str | os.PathLike[str],
    *,
    adapter_name: str | None = None,
    safe_serialization: bool = True,
    save_embedding_layers: bool | Literal["auto"] = False,
) -> Path:
    """Write one adapter of a live model in PEFT format into ``save_directory`` itself.

    Writes ``adapter_model.safetensors`` (or, only with ``safe_serialization=False``,
    the legacy ``adapter_model.bin``) and ``adapter_config.json``: the same tensors and
    the same config PEFT's ``save_pretrained`` writes, loadable by
    ``PeftModel.from_pretrained`` and transformers' ``load_adapter``. Unlike PEFT, a
    named adapter is not put in a sub-folder, no README.md model card is written, and a
    weights file of the *other* format left in the directory is removed, since loaders
    would otherwise pick stale weights (PEFT prefers safetensors).

    Args:
        model: a ``peft.PeftModel`` or a transformers model with adapters.
        save_directory: created if missing.
        adapter_name: which adapter; ``None`` means the active one.
        safe_serialization: ``False`` writes the legacy pickle format.
        save_embedding_layers: see :func:`get_adapter_state_dict`.

    Returns:
        ``save_directory`` as a :class:`~pathlib.Path`.

    Raises:
        AdapterNotFoundError: no adapters, or none of that name.
        AmbiguousAdapterError: several active adapters and no name.
        NotADirectoryPathError: ``save_directory`` is a file.

    Example:
        >>> save_adapter(peft_model, "adapters/task_a")             # doctest: +SKIP
        PosixPath('adapters/task_a')
    """
    directory = Path(save_directory)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryPathError(
            f"{directory} is a file; save_adapter needs a directory", path=str(directory), hint="pass a directory path"
        )
    name = resolve_adapter_name(model, adapter_name)
    state = get_adapter_state_dict(model, name, save_embedding_layers=save_embedding_layers)
    config = adapter_config_dict(model, name)
    directory.mkdir(parents=True, exist_ok=True)
    weights, stale = (WEIGHTS_NAME, LEGACY_WEIGHTS_NAME) if safe_serialization else (LEGACY_WEIGHTS_NAME, WEIGHTS_NAME)
    write_state_dict(state, directory / weights, safe_serialization=safe_serialization)
    write_config(config, directory / CONFIG_NAME)
    (directory / stale).unlink(missing_ok=True)
    return directory
