"""``adapter_config.json``: read, validate, and write it byte-for-byte as PEFT does.

PEFT writes ``json.dumps(config_dict, indent=2, sort_keys=True)`` with sets turned into
lists. Sets have no order, so two saves of the same config may differ; adaptvc sorts
set-valued fields (``target_modules``, ``modules_to_save``, ...) so that saving twice
gives identical bytes — and identical bytes mean identical content ids.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from adaptvc.errors import InvalidAdapterError
from adaptvc.formats.regular_file import open_regular

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


_FIX_HINT = "fix the file by hand, or write it again with save_pretrained (it writes the config with the weights)"


def read_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load and validate an ``adapter_config.json``.

    Raises:
        InvalidAdapterError: missing file, invalid JSON, not an object, or no ``peft_type``.
        NotARegularFileError: a symlink, FIFO or device (refused without reading it).
    """
    path = Path(path)
    if not os.path.lexists(path):
        raise InvalidAdapterError(
            f"{path}: no such file; not a PEFT adapter directory",
            path=str(path),
            hint="point at a directory written by save_pretrained (it holds adapter_config.json)",
        )
    try:
        with open_regular(path) as fh:  # a symlink, FIFO or device is refused unread
            text = fh.read().decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidAdapterError(f"{path}: not UTF-8 text", path=str(path), hint=_FIX_HINT) from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidAdapterError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", path=str(path), hint=_FIX_HINT
        ) from None
    if not isinstance(config, dict):
        raise InvalidAdapterError(
            f"{path}: expected a JSON object, got {type(config).__name__}", path=str(path), hint=_FIX_HINT
        )
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


def get_pattern_key(pattern_keys: Any, key_to_match: str) -> str | None:
    """The first pattern that matches ``key_to_match``, as PEFT resolves ``rank_pattern``
    and ``alpha_pattern``: the first key ``k`` in the pattern's order with
    ``re.match(rf"(.*\\.)?({k})$", module)`` (``peft.utils.other.get_pattern_key``; PEFT
    returns the key itself when nothing matches, this returns None).

    Raises:
        InvalidAdapterError: a pattern that is not a regular expression.
    """
    for key in pattern_keys:
        try:
            if re.match(rf"(.*\.)?({key})$", key_to_match):
                return key
        except re.error as exc:
            raise InvalidAdapterError(
                f"adapter_config.json: pattern {key!r} is not a valid regular expression ({exc})"
            ) from None
    return None


def target_module_matches(target_modules: Any, module: str) -> bool:
    """Whether PEFT's ``target_modules`` selects ``module`` (its path in the base model):
    a string is a regular expression the whole path must match (``"all-linear"`` selects
    every linear layer, which a file cannot tell: True); a list matches a name exactly or
    as the path's last components (``q_proj`` matches ``model.layers.0.self_attn.q_proj``),
    as ``peft.tuners.tuners_utils.check_target_module_exists`` does.

    Raises:
        InvalidAdapterError: a string that is not a regular expression.
    """
    if target_modules is None or target_modules == "all-linear":
        return True
    if isinstance(target_modules, str):
        try:
            return re.fullmatch(target_modules, module) is not None
        except re.error as exc:
            raise InvalidAdapterError(
                f"adapter_config.json: target_modules {target_modules!r} is not a valid regular expression ({exc})"
            ) from None
    names = [str(t) for t in target_modules]
    return module in names or any(module.endswith(f".{t}") for t in names)
