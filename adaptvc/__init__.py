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

import importlib
from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Names are resolved on first access from adaptvc.api (PEP 562): every name in
    # adaptvc.api.__all__ is public API. adaptvc.api itself imports nothing heavy.
    api = importlib.import_module("adaptvc.api")  # not `from adaptvc import api`: that re-enters here
    if name in api.__all__:
        return getattr(api, name)
    raise AttributeError(f"module 'adaptvc' has no attribute {name!r}")


def __dir__() -> list[str]:
    api = importlib.import_module("adaptvc.api")
    return sorted([*globals(), *api.__all__])
