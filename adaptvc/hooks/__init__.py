"""adaptvc's git hooks: installing them (:mod:`.install`, git alone) and what each does
(:mod:`.actions`, built on sharing and versioning). The package sits above sharing;
what :mod:`adaptvc.api` needs for ``init`` and ``clone`` is the installation only.
"""

from __future__ import annotations

from adaptvc.hooks.install import (
    CHAINED_SUFFIX,
    HOOK_NAMES,
    MARKER,
    HookStatus,
    ensure_installed,
    hooks_dir,
    install,
    render,
    status,
    uninstall,
)

__all__ = [
    "CHAINED_SUFFIX",
    "HOOK_NAMES",
    "MARKER",
    "HookStatus",
    "ensure_installed",
    "hooks_dir",
    "install",
    "render",
    "status",
    "uninstall",
]
