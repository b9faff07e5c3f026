"""AdapterRepo: a git work tree in which adaptvc is initialised.

It knows where things are (root, ``.git``, the adapters directory, the DVC cache, the
per-clone state), reads adaptvc's configuration, lists adapters and their versions, and
provides the transaction lock. The operations themselves (save, checkout, ...) live in
:mod:`adaptvc.versioning`.

Configuration: ``.adaptvc/config.toml``, committed, read with tomllib (tomli before 3.11)::

    [adaptvc]
    adapters_dir = "adapters"   # where adapters/<name>/ live, relative to the repo root
    lock_timeout = 60           # seconds a second process waits for the lock

    [gc]                        # the team's retention policy: see adaptvc.versioning.retention
    keep_last = 5
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from adaptvc.errors import AdapterNotFoundError, CorruptObjectError, InvalidAdapterError, NotARepositoryError
from adaptvc.manifest import (
    ALIASES_NAME,
    MANIFEST_NAME,
    PRUNED_RECORD,
    AdapterVersion,
    prune_records,
    read_jsonl,
    read_manifest,
    with_prune_records,
)
from adaptvc.refs import validate_name
from adaptvc.storage import git_ops
from adaptvc.storage.dvc_cache import DvcCache
from adaptvc.storage.lock import repo_lock
from adaptvc.storage.state import CloneState

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_DIR = ".adaptvc"
CONFIG_FILE = f"{CONFIG_DIR}/config.toml"
STATE_DIR = "adaptvc"  # inside the git dir
DEFAULT_CONFIG: dict[str, Any] = {"adapters_dir": "adapters", "lock_timeout": 60.0}


@dataclass(frozen=True)
class RepoConfig:
    adapters_dir: str = "adapters"
    lock_timeout: float = 60.0
    gc: dict[str, Any] = field(default_factory=dict)  # [gc]: the retention policy (adaptvc.versioning.retention)


def find_git_root(start: str | os.PathLike[str] = ".") -> tuple[Path, Path]:
    """``(work tree root, git dir)`` of the repository containing ``start``.

    Walks up looking for ``.git`` (a directory, or a file ``gitdir: ...`` in worktrees
    and submodules) without running git, so read-only commands start fast.

    Raises:
        NotARepositoryError: not inside a git work tree (hint: ``git init``).
    """
    here = Path(start).resolve()
    for d in (here, *here.parents):
        dotgit = d / ".git"
        if dotgit.is_dir():
            return d, dotgit
        if dotgit.is_file():
            text = dotgit.read_text(encoding="utf-8").strip()
            if text.startswith("gitdir:"):
                gd = Path(text.split(":", 1)[1].strip())
                return d, (gd if gd.is_absolute() else (d / gd)).resolve()
    raise NotARepositoryError(f"{here} is not inside a git repository", hint="git init && adaptvc init")


def lock_path(git_dir: Path) -> Path:
    """``<common git dir>/adaptvc/lock`` (a worktree's git dir names its common dir in
    ``commondir``)."""
    try:
        common = (git_dir / "commondir").read_text(encoding="utf-8").strip()
    except OSError:
        common = ""
    base = (git_dir / common).resolve() if common else git_dir
    return base / STATE_DIR / "lock"


class AdapterRepo:
    """A git repository with adaptvc initialised (or about to be, for ``init``)."""

    def __init__(self, root: Path, git_dir: Path) -> None:
        self.root = root
        self.git_dir = git_dir

    # -- opening ------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike[str] = ".", *, require_init: bool = True) -> AdapterRepo:
        """The repository containing ``path``.

        Raises:
            NotARepositoryError: not in a git repo (hint ``git init``) or, with
                ``require_init``, adaptvc is not initialised there (hint ``adaptvc init``).
        """
        root, git_dir = find_git_root(path)
        repo = cls(root, git_dir)
        if require_init and not repo.is_initialised:
            raise NotARepositoryError(f"adaptvc is not initialised in {root}", hint="adaptvc init")
        return repo

    @property
    def is_initialised(self) -> bool:
        return (self.root / CONFIG_FILE).is_file() and (self.root / ".dvc").is_dir()

    # -- configuration ------------------------------------------------------------------
    @cached_property
    def config(self) -> RepoConfig:
        path = self.root / CONFIG_FILE
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            data = {}
        except tomllib.TOMLDecodeError as exc:
            raise InvalidAdapterError(f"{path}: invalid TOML ({exc})", path=str(path)) from None
        section = data.get("adaptvc", {})
        adapters_dir = str(section.get("adapters_dir", DEFAULT_CONFIG["adapters_dir"])).strip("/") or "adapters"
        if ".." in Path(adapters_dir).parts or Path(adapters_dir).is_absolute():
            raise InvalidAdapterError(f"{path}: adapters_dir must be a path inside the repository", path=str(path))
        gc = data.get("gc", {})
        if not isinstance(gc, dict):
            raise InvalidAdapterError(f"{path}: [gc] must be a table", path=str(path))
        return RepoConfig(adapters_dir=adapters_dir, lock_timeout=float(section.get("lock_timeout", 60.0)), gc=gc)

    # -- places -------------------------------------------------------------------------
    @property
    def adapters_path(self) -> Path:
        return self.root / self.config.adapters_dir

    def adapter_dir(self, name: str) -> Path:
        return self.adapters_path / validate_name(name)

    def rel(self, path: Path) -> str:
        """Repo-relative posix path."""
        return path.resolve().relative_to(self.root.resolve()).as_posix() if path.is_absolute() else path.as_posix()

    def adapter_rel(self, name: str) -> str:
        return f"{self.config.adapters_dir}/{name}"

    @property
    def state_dir(self) -> Path:
        return self.git_dir / STATE_DIR

    @property
    def lock_path(self) -> Path:
        """The lock file, in the *common* git dir: worktrees of one repository share
        branches, tags (``NAME@vN`` numbering) and the DVC cache, so they share the lock too
        (the per-clone state stays per worktree)."""
        return lock_path(self.git_dir)

    @cached_property
    def dvc_cache(self) -> DvcCache:
        return DvcCache.for_repo(self.root)

    @cached_property
    def state(self) -> CloneState:
        return CloneState(self.state_dir)

    # -- the lock -----------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, timeout: float | None = None) -> Iterator[None]:
        """The repository lock alone (see :mod:`adaptvc.storage.lock`). Operations take it
        through :func:`adaptvc.transaction.transaction`, which also settles a transaction
        that a killed process left behind."""
        with repo_lock(self.lock_path, timeout=self.config.lock_timeout if timeout is None else timeout):
            yield

    # -- adapters and versions ----------------------------------------------------------
    def list_adapters(self, *, committed: bool = False) -> list[str]:
        """Names of the adapters with a directory under the adapters dir (saved or not).

        ``committed``: also those whose manifest is gone from the work tree (the directory
        deleted) but is in HEAD's tree — their versions are still committed (one
        ``git ls-tree``). A deletion that was committed, or an adapter never saved, is not
        listed.
        """
        names = []
        try:
            entries = sorted(self.adapters_path.iterdir())
        except FileNotFoundError:
            entries = []
        for d in entries:
            if d.is_dir() and any((d / f).exists() for f in (MANIFEST_NAME, "adapter_config.json")):
                with contextlib.suppress(Exception):
                    names.append(validate_name(d.name))
        if committed:
            prefix = self.config.adapters_dir + "/"
            for p in git_ops.head_paths(self.root, self.config.adapters_dir):
                parts = p[len(prefix) :].split("/") if p.startswith(prefix) else []
                if len(parts) == 2 and parts[1] == MANIFEST_NAME and parts[0] not in names:
                    with contextlib.suppress(Exception):
                        names.append(validate_name(parts[0]))
            names.sort()
        return names

    def manifest_path(self, name: str) -> Path:
        return self.adapter_dir(name) / MANIFEST_NAME

    def committed_files(
        self, name: str, files: tuple[str, ...] = (MANIFEST_NAME, ALIASES_NAME)
    ) -> dict[str, bytes | None]:
        """``file name → bytes`` of the adapter's files as committed in HEAD (``None``:
        not in HEAD); one ``git cat-file --batch``, no history walk."""
        rel = self.adapter_rel(validate_name(name))
        got = git_ops.head_files(self.root, [f"{rel}/{f}" for f in files])
        return {f: got[f"{rel}/{f}"] for f in files}

    def _committed_records(self, name: str) -> tuple[str, str] | None:
        """``(manifest text, aliases text)`` from HEAD when the work tree lacks the
        adapter's manifest (its directory was deleted) and HEAD has it; else ``None``."""
        if self.manifest_path(name).exists():
            return None
        head = self.committed_files(name)
        manifest = head[MANIFEST_NAME]
        if manifest is None:
            return None
        return (
            manifest.decode("utf-8", errors="replace"),
            (head[ALIASES_NAME] or b"").decode("utf-8", errors="replace"),
        )

    def versions(self, name: str, *, with_commits: bool = False, must_exist: bool = False) -> list[AdapterVersion]:
        """Every recorded version of ``name`` in manifest order, aliases attached.

        Args:
            with_commits: fill ``commit`` with ONE ``git log`` over the manifest.
            must_exist: raise if the adapter has no directory at all.

        Raises:
            AdapterNotFoundError: ``must_exist`` and no such adapter (lists the adapters).
        """
        path = self.manifest_path(name)
        # Deleted from the work tree (rm -rf adapters/NAME) but committed: the versions
        # live in HEAD's tree, read from there (checkout NAME restores the directory).
        head = self._committed_records(name)
        if must_exist and head is None and not path.exists() and not self.adapter_dir(name).is_dir():
            known = self.list_adapters(committed=True)
            raise AdapterNotFoundError(
                f"no adapter {name!r} in {self.rel(self.adapters_path)}/"
                + (f"; adapters: {', '.join(known)}" if known else "; no adapter saved yet"),
                name=name,
                hint=f"adaptvc save --adapter {name} -m MESSAGE" if not known else "adaptvc log",
            )
        if head is None:
            versions = read_manifest(path, directory=self.adapter_rel(name))
        else:
            versions = read_manifest(
                Path(f"HEAD:{self.adapter_rel(name)}/{MANIFEST_NAME}"), directory=self.adapter_rel(name), text=head[0]
            )
        if with_commits and versions:
            versions = self.attach_commits(versions, [self.adapter_rel(name) + "/" + MANIFEST_NAME])
        return self._attach_aliases(name, versions, None if head is None else self._parse_aliases(name, head[1]))

    def version_config(self, version: AdapterVersion) -> bytes:
        """The version's ``adapter_config.json`` bytes, from git, checked against the manifest."""
        data = git_ops.cat_blob(self.root, version.config_blob)
        if version.config_sha256 and hashlib.sha256(data).hexdigest() != version.config_sha256:
            raise CorruptObjectError(
                f"the config of {version.ref} in git does not match its manifest record",
                what=f"git blob {version.config_blob}",
                hint="git fsck; the repository may be damaged",
            )
        return data

    def versions_at(self, rev: str) -> list[AdapterVersion]:
        """Every version recorded in the manifests of ``rev`` (a commit, tag or branch),
        without checking it out: one ``git ls-tree`` and one ``git cat-file --batch``. A
        damaged line is skipped here (``log`` reports it)."""
        paths = [
            p for p in git_ops.tree_paths(self.root, rev, self.config.adapters_dir) if p.endswith("/" + MANIFEST_NAME)
        ]
        out: list[AdapterVersion] = []
        for path, blob in zip(paths, git_ops.cat_blobs(self.root, [f"{rev}:{p}" for p in paths]), strict=True):
            if blob is None:
                continue
            directory = path.rsplit("/", 1)[0]
            text = blob.decode("utf-8", errors="replace")
            found: list[AdapterVersion] = []
            for line in text.splitlines():
                try:
                    rec = json.loads(line) if line.strip() else None
                    if isinstance(rec, dict) and rec.get("record") != PRUNED_RECORD:
                        found.append(AdapterVersion.from_record(rec, directory=directory))
                except (ValueError, KeyError, TypeError):
                    continue
            out.extend(with_prune_records(found, prune_records(text)))
        return out

    def attach_commits(self, versions: list[AdapterVersion], pathspecs: list[str]) -> list[AdapterVersion]:
        commits = git_ops.version_commits(self.root, pathspecs)
        return [
            replace(v, commit=commits.get(git_ops.trailer_value(v.adapter, v.version, v.id, v.created_at)))
            for v in versions
        ]

    def alias_records(self, name: str) -> list[dict[str, Any]]:
        head = self._committed_records(name)
        if head is not None:
            return self._parse_aliases(name, head[1])
        return read_jsonl(self.adapter_dir(name) / ALIASES_NAME)

    def _parse_aliases(self, name: str, text: str) -> list[dict[str, Any]]:
        return read_jsonl(Path(f"HEAD:{self.adapter_rel(name)}/{ALIASES_NAME}"), text=text)

    def aliases(
        self, name: str, versions: list[AdapterVersion] | None = None, records: list[dict[str, Any]] | None = None
    ) -> dict[str, AdapterVersion]:
        """``alias → version``: the newest record of each alias wins (records are
        append-only, so branches merge them with the union driver)."""
        versions = self.versions(name) if versions is None else versions
        by_key: dict[tuple[Any, Any], AdapterVersion] = {(v.version, v.id): v for v in versions}
        current: dict[str, tuple[str, AdapterVersion | None]] = {}
        for rec in self.alias_records(name) if records is None else records:
            alias, at = rec.get("alias"), str(rec.get("created_at") or "")
            if not alias:
                continue
            target = by_key.get((rec.get("version"), rec.get("id")))
            if alias not in current or at >= current[alias][0]:
                current[alias] = (at, target)
        return {a: v for a, (_, v) in sorted(current.items()) if v is not None}

    def _attach_aliases(
        self, name: str, versions: list[AdapterVersion], records: list[dict[str, Any]] | None = None
    ) -> list[AdapterVersion]:
        if not versions or (records is None and not (self.adapter_dir(name) / ALIASES_NAME).exists()) or records == []:
            return versions
        names: dict[tuple[int, str, str], list[str]] = {}
        for alias, v in self.aliases(name, versions, records).items():
            names.setdefault((v.version, v.id, v.created_at), []).append(alias)
        return [replace(v, aliases=tuple(names.get((v.version, v.id, v.created_at), ()))) for v in versions]
