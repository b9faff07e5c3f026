"""The public Python API. The CLI calls only these functions.

Every function takes its subject first and the rest keyword-only, opens the repository
(the diff opens it itself, only when a ref needs one), calls the operation and returns
values (frozen dataclasses, paths); it never prints.

One module per concern, each importing its operations at the top: ``_adapters``
(adapter files, live models), ``_setup`` (init), ``_save``, ``_history`` (log, show,
status, alias), ``_checkout`` (checkout, export, resolve), ``_sharing``, ``_hooks``,
``_diff``, ``_storage`` (gc, du), ``_verify``, ``_compare`` (compare, best), ``_report`` and
``_algebra`` (merge, compress).
A name is looked up in its module on first use (PEP 562), so a command loads only its
own concern: ``adaptvc status`` does not import the transfer machinery, and nothing but
``diff`` imports numpy. torch, transformers and peft are imported inside the functions
that need them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> the module of this package that defines it. Each concern's public names, in
# the order of the docs; adaptvc.<name> resolves these too (see adaptvc/__init__.py).
_WHERE: dict[str, str] = {
    # adapter files and live models
    "inspect": "_adapters",
    "convert": "_adapters",
    "get_adapter_state_dict": "_adapters",
    "save_adapter": "_adapters",
    # team sharing: DVC remotes, push/pull/clone, git hooks
    "remote_add": "_sharing",
    "remote_list": "_sharing",
    "remote_modify": "_sharing",
    "remote_remove": "_sharing",
    "remote_default": "_sharing",
    "push": "_sharing",
    "pull": "_sharing",
    "clone": "_sharing",
    "hooks_install": "_hooks",
    "hooks_uninstall": "_hooks",
    "hooks_status": "_hooks",
    # diff
    "diff": "_diff",
    # adapter algebra
    "merge": "_algebra",
    "compress": "_algebra",
    # versioning: git + DVC + the manifest
    "init": "_setup",
    "save": "_save",
    "resolve": "_checkout",
    "log": "_history",
    "show": "_history",
    "status": "_history",
    "checkout": "_checkout",
    "export": "_checkout",
    "alias": "_history",
    # storage life: gc, du
    "gc": "_storage",
    "du": "_storage",
    # integrity: check and heal the stored weights
    "verify": "_verify",
    # seeing the history as a whole
    "compare": "_compare",
    "best": "_compare",
    "report": "_report",
}
# The command line's plumbing: reachable as adaptvc.api.NAME, not public API.
_CLI_ONLY: dict[str, str] = {"parse_metric": "_save", "hooks_run": "_hooks", "parse_duration": "_storage"}

__all__ = list(_WHERE)

if TYPE_CHECKING:  # pragma: no cover - what the lookup below returns, for type checkers (F401: re-exports)
    from adaptvc.api._adapters import convert, get_adapter_state_dict, inspect, save_adapter  # noqa: F401
    from adaptvc.api._algebra import compress, merge  # noqa: F401
    from adaptvc.api._checkout import checkout, export, resolve  # noqa: F401
    from adaptvc.api._compare import best, compare  # noqa: F401
    from adaptvc.api._diff import diff  # noqa: F401
    from adaptvc.api._history import alias, log, show, status  # noqa: F401
    from adaptvc.api._hooks import hooks_install, hooks_run, hooks_status, hooks_uninstall  # noqa: F401
    from adaptvc.api._report import report  # noqa: F401
    from adaptvc.api._save import parse_metric, save  # noqa: F401
    from adaptvc.api._setup import init  # noqa: F401
    from adaptvc.api._sharing import (  # noqa: F401
        clone,
        pull,
        push,
        remote_add,
        remote_default,
        remote_list,
        remote_modify,
        remote_remove,
    )
    from adaptvc.api._storage import du, gc, parse_duration  # noqa: F401
    from adaptvc.api._verify import verify  # noqa: F401


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name) or _CLI_ONLY.get(name)
    if where is None:
        raise AttributeError(f"module 'adaptvc.api' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"adaptvc.api.{where}"), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE, *_CLI_ONLY])
