"""``adapter_config.json``: read, validate, and write it byte-for-byte as PEFT does.

PEFT writes ``json.dumps(config_dict, indent=2, sort_keys=True)`` with sets turned into
lists. Sets have no order, so two saves of the same config may differ; adaptvc sorts
set-valued fields (``target_modules``, ``modules_to_save``, ...) so that saving twice
gives identical bytes — and identical bytes mean identical content ids.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from adaptvc.errors import InvalidAdapterError

# Fields that PEFT keeps as sets (or lists whose order carries no meaning).
SET_VALUED_FIELDS = frozenset(
    {
        "target_modules",
        "modules_to_save",
        "exclude_modules",
        "feedforward_modules",
        "layers_to_transform",
    }
)
# Not here on purpose: ``trainable_token_indices``. Its order is the row order of the
# saved ``trainable_tokens_delta`` tensor, so sorting it would misalign config and weights.


def read_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load and validate an ``adapter_config.json``.

    Raises:
        InvalidAdapterError: missing file, invalid JSON, not an object, or no ``peft_type``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidAdapterError(
            f"{path}: no such file; not a PEFT adapter directory",
            path=str(path),
            hint="point at a directory written by save_pretrained (it holds adapter_config.json)",
        ) from None
    except UnicodeDecodeError:
        raise InvalidAdapterError(f"{path}: not UTF-8 text", path=str(path)) from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidAdapterError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", path=str(path)
        ) from None
    if not isinstance(config, dict):
        raise InvalidAdapterError(f"{path}: expected a JSON object, got {type(config).__name__}", path=str(path))
    if not config.get("peft_type"):
        raise InvalidAdapterError(
            f"{path}: missing 'peft_type'; not a PEFT adapter config",
            path=str(path),
            hint="save the adapter with PeftModel.save_pretrained or adaptvc.save_adapter",
        )
    return config


def normalize_config(config: dict[str, Any]) -> dict[str, Any]:
    """Return a copy with set-valued fields as sorted lists (PEFT stores sets in any order)."""
    out = dict(config)
    for key in SET_VALUED_FIELDS:
        value = out.get(key)
        if isinstance(value, (set, frozenset, list, tuple)):
            try:
                out[key] = sorted(value)
            except TypeError:  # mixed types: keep a stable, documented order anyway
                out[key] = sorted(value, key=repr)
    return out


def dumps_config(config: dict[str, Any]) -> str:
    """Serialise as PEFT does (``indent=2, sort_keys=True``) with sets sorted."""
    return json.dumps(normalize_config(_jsonable(config)), indent=2, sort_keys=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(_jsonable(v) for v in value)
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
