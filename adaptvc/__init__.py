"""adaptvc: version control for fine-tuned LoRA-style adapters, built on git and DVC.

The public Python API lives in :mod:`adaptvc.api` and is re-exported here lazily, so
``import adaptvc`` stays cheap (no torch, no dvc) until a function that needs them is
called.

    >>> import adaptvc
    >>> adaptvc.save_adapter(peft_model, "out/task_a")          # doctest: +SKIP
    >>> adaptvc.inspect("out/task_a").peft_type                 # doctest: +SKIP
    'LORA'
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# Names resolved on first access from adaptvc.api (PEP 562). Add new public API
# functions to adaptvc.api and list them here.
_API_NAMES = (
    "get_adapter_state_dict",
    "save_adapter",
    "inspect",
    "load_adapter_weights",
    "convert",
)


def __getattr__(name: str) -> Any:
    if name in _API_NAMES:
        from adaptvc import api

        return getattr(api, name)
    raise AttributeError(f"module 'adaptvc' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API_NAMES])


__all__ = ["__version__", *_API_NAMES]
