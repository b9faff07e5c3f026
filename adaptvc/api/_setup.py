"""The API for setting a repository up: init (DVC, adaptvc's configuration, merge rules,
and the per-clone git hooks, whose installer only init and clone need)."""

from __future__ import annotations

import os
from dataclasses import replace

from adaptvc.hooks import ensure_installed as ensure_hooks_installed
from adaptvc.versioning.init_repo import InitResult, init_repo


def init(path: str | os.PathLike[str] = ".") -> InitResult:
    """Set up adaptvc in an existing git repository: DVC (if absent), ``.adaptvc/config.toml``,
    merge rules in ``.gitattributes`` (committed) and the merge driver (per clone).

    Idempotent: a second run changes nothing (``result.changes == ()``).

    Raises:
        NotARepositoryError: ``path`` is not in a git repository (hint ``git init``).

    Example:
        >>> adaptvc.init(".").changes                                # doctest: +SKIP
        ('initialised DVC (.dvc/)', 'wrote .adaptvc/config.toml', ...)
    """
    result = init_repo(path)
    # Per clone too: git hooks that keep weights in step with git (adaptvc/hooks/).
    return replace(result, changes=result.changes + tuple(ensure_hooks_installed(result.root)))
