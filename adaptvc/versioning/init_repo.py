"""``init``: DVC, adaptvc's configuration and merge rules in an existing git repository.

Idempotent: each step checks before it writes, and the commit is made only when a
committed file changed. What is committed (one commit, those paths only):
``.adaptvc/config.toml``, ``.gitattributes`` and DVC's own files. What is per clone
(``.git/config``): the ``adaptvc`` merge driver - run ``adaptvc init`` once in every
clone (it commits nothing there when the repository is already set up).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adaptvc.manifest import ALIASES_NAME, MANIFEST_NAME
from adaptvc.repo import CONFIG_FILE, AdapterRepo, find_git_root
from adaptvc.storage import git_ops
from adaptvc.transaction import transaction
from adaptvc.versioning.workspace import POINTER_NAME

CONFIG_TEMPLATE = """\
# adaptvc configuration (committed; see docs/versioning.md)
[adaptvc]
# where adapters/<name>/ live, relative to the repository root
adapters_dir = "adapters"
# seconds a second adaptvc process waits for the repository lock
lock_timeout = 60

# The team's retention policy for `adaptvc gc` (docs/storage.md); flags override it.
# [gc]
# keep_last = 5          # the 5 newest versions of each adapter stay
# older_than = "30d"     # only versions older than this may go
# keep_aliased = true    # versions an alias points at stay
# keep = []              # refs that always stay, e.g. ["task_a@v1"]
# grace_period = "14d"   # remote objects younger than this are never removed
"""

DRIVER_NAME = "adaptvc: keep our side's current adapter files (every version stays in the manifest)"
# "Ours": the pointer and config of one side form a consistent pair, and the versions of
# the other side stay addressable through the union-merged manifest.
DRIVER_COMMAND = "true"
DVC_FILES = (".dvc/config", ".dvc/.gitignore", ".dvcignore")


def _pattern(text: str) -> str:
    """A .gitattributes pattern: C-quoted when it holds whitespace (git would split it
    into pattern + attribute names and the rule would never match)."""
    if any(c.isspace() or c in '"\\' for c in text) or text.startswith(("#", "!")):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t") + '"'
    return text


def gitattributes_lines(adapters_dir: str) -> list[str]:
    d = adapters_dir.strip("/")
    return [
        "# adaptvc: manifests are append-only (union merge); current adapter files keep our side",
        f"{_pattern(f'{d}/*/{MANIFEST_NAME}')} merge=union",
        f"{_pattern(f'{d}/*/{ALIASES_NAME}')} merge=union",
        f"{_pattern(f'{d}/*/{POINTER_NAME}')} merge=adaptvc",
        f"{_pattern(f'{d}/*/adapter_config.json')} merge=adaptvc",
    ]


def _unquoted_lines(adapters_dir: str) -> set[str]:
    """What earlier versions wrote for a directory needing quotes (broken: see _pattern)."""
    d = adapters_dir.strip("/")
    return {
        f"{d}/*/{MANIFEST_NAME} merge=union",
        f"{d}/*/{ALIASES_NAME} merge=union",
        f"{d}/*/{POINTER_NAME} merge=adaptvc",
        f"{d}/*/adapter_config.json merge=adaptvc",
    } - set(gitattributes_lines(adapters_dir))


@dataclass(frozen=True)
class InitResult:
    """What ``init`` did: ``changes`` is empty when the repository was already set up."""

    root: Path
    changes: tuple[str, ...] = field(default=())
    commit: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"root": str(self.root), "changes": list(self.changes), "commit": self.commit}


def init_repo(path: str | os.PathLike[str] = ".") -> InitResult:
    """Set up adaptvc in the git repository containing ``path`` (see module docstring).
    The git hooks are installed apart (:func:`adaptvc.hooks.install.ensure_installed`).

    Raises:
        NotARepositoryError: not inside a git repository (hint ``git init``).
    """
    root, git_dir = find_git_root(path)
    repo = AdapterRepo(root, git_dir)
    changes: list[str] = []
    with transaction(repo, "init", str(root)) as txn:
        if not (root / ".dvc").is_dir():
            _init_dvc(root)
            changes.append("initialised DVC (.dvc/)")
        if not (root / CONFIG_FILE).is_file():
            txn.write_bytes(root / CONFIG_FILE, CONFIG_TEMPLATE.encode())
            changes.append(f"wrote {CONFIG_FILE}")
        attributes = _gitattributes(root, repo.config.adapters_dir)
        if attributes is not None:
            txn.write_bytes(root / ".gitattributes", attributes)
            changes.append("declared merge rules in .gitattributes")
        if git_ops.config_get(root, "merge.adaptvc.driver") != DRIVER_COMMAND:
            git_ops.config_set(root, "merge.adaptvc.name", DRIVER_NAME)
            git_ops.config_set(root, "merge.adaptvc.driver", DRIVER_COMMAND)
            changes.append("configured the adaptvc merge driver in .git/config")
        paths = [p for p in (CONFIG_FILE, ".gitattributes", *DVC_FILES) if (root / p).exists()]
        commit = txn.commit(paths, "adaptvc init: DVC, adaptvc config and merge rules\n", skip_if_unchanged=True)
        if commit:
            changes.append(f"committed {', '.join(paths)}")
    return InitResult(root, tuple(changes), commit)


def _init_dvc(root: Path) -> None:
    from dvc.repo import Repo as DvcRepo  # only here: opening dvc costs ~1 s

    # DVC prints "Initialized DVC repository..." on stdout; our result says it.
    dvc_logger = logging.getLogger("dvc")
    level = dvc_logger.level
    dvc_logger.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            DvcRepo.init(str(root))
    finally:
        dvc_logger.setLevel(level)


def _gitattributes(root: Path, adapters_dir: str) -> bytes | None:
    """``.gitattributes`` with adaptvc's merge rules, or ``None`` when it has them."""
    attrs = root / ".gitattributes"
    old = attrs.read_text(encoding="utf-8") if attrs.is_file() else ""
    wanted = gitattributes_lines(adapters_dir)
    broken = _unquoted_lines(adapters_dir)
    if broken & set(old.splitlines()):  # drop the unquoted rules an older adaptvc wrote
        old = "".join(line for line in old.splitlines(keepends=True) if line.rstrip("\r\n") not in broken)
    missing = [line for line in wanted if line not in old.splitlines()]
    if not [m for m in missing if not m.startswith("#")]:
        return None
    return (old + ("" if not old or old.endswith("\n") else "\n") + "\n".join(missing) + "\n").encode()
