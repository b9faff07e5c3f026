"""Workspace sync: make each adapter's weights match its checked-out ``.dvc`` pointer.

What ``pull`` and ``clone`` do after git has moved the pointers, and what the
``post-checkout``/``post-merge`` hooks do after ``git checkout``/``git merge``. Weights
come from the local DVC cache, fetched from the DVC remote when missing. The writes go
through :func:`adaptvc.transaction.transaction` as checkout's do (work-tree copies:
``commits=False, durable=False``), so they take the repository lock and a process
killed half-way has them undone by the next adaptvc command.

Problems never make a checkout fail: each is a warning on the ``adaptvc`` logger
(the CLI prints it as ``Warning: …``) naming the version and the command that fixes it.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adaptvc.errors import AdaptvcError, CorruptObjectError, ObjectMissingError, RemoteError
from adaptvc.formats import CONFIG_NAME, WEIGHTS_NAME
from adaptvc.manifest import MANIFEST_NAME, AdapterVersion, newest
from adaptvc.repo import AdapterRepo
from adaptvc.storage.dvc_cache import read_pointer
from adaptvc.storage.fetch import ensure_objects
from adaptvc.transaction import Transaction, transaction
from adaptvc.versioning.workspace import POINTER_NAME, state_record

log = logging.getLogger("adaptvc")


@dataclass(frozen=True)
class SyncResult:
    """What :func:`sync_workspace` did (its warnings went to the ``adaptvc`` logger)."""

    updated: tuple[str, ...] = ()  # adapters whose weights were (re)written
    unchanged: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()  # adapters the checked-out commit lacks: saved weights removed

    def to_dict(self) -> dict[str, Any]:
        return {"updated": list(self.updated), "unchanged": list(self.unchanged), "removed": list(self.removed)}


@dataclass(frozen=True)
class _Wanted:
    """An adapter whose weights file must be (re)written to match its pointer."""

    name: str
    weights: Path
    md5: str
    version: AdapterVersion | None

    @property
    def label(self) -> str:
        return self.version.ref if self.version else self.name


def sync_workspace(repo: AdapterRepo, *, fetch: bool = True, strict: bool = False) -> SyncResult:
    """Make every adapter's weights file match its checked-out ``.dvc`` pointer.

    Weights come from the local cache, fetched from the default DVC remote when missing
    (``fetch=True``). Weights in the workspace that were never saved (their md5 is in no
    cache) are kept, with a warning: a ``git checkout`` must not destroy work.

    ``strict`` (``pull``): a DVC remote that cannot be reached or fails part-way is an
    error instead of a warning (the hooks, which must never fail a git command, warn).

    Raises:
        LockTimeoutError: another adaptvc process held the repository lock too long.
        RemoteError, CorruptObjectError: with ``strict``, the fetch failed (nothing was written).
    """
    # Objects come into the cache before the lock is taken: a slow or unreachable remote
    # must not hold up other adaptvc commands (the cache's own writes are atomic renames).
    # What is still missing then is decided, and warned about, under the lock.
    if fetch:
        _prefetch(repo, strict=strict)
    with transaction(repo, "sync", "the adapters' weights", commits=False, durable=False) as txn:
        wanted, unchanged = _plan(repo)
        removed = _drop_orphan_weights(txn)
        missing = _missing(repo, wanted)
        updated = [w for w in wanted if w.md5 not in missing and _write(txn, w)]
    for w in updated:
        repo.state.remember(w.weights, w.md5, written_by_us=True)
    for d in removed:
        with contextlib.suppress(OSError):
            d.rmdir()  # only when nothing else is left in it
    return SyncResult(tuple(w.name for w in updated), tuple(unchanged), tuple(d.name for d in removed))


def _plan(repo: AdapterRepo, *, quiet: bool = False) -> tuple[list[_Wanted], list[str]]:
    """The adapters whose weights must be written, and those already right (``quiet``: no
    warning about unsaved weights, for a look before the lock)."""
    wanted: list[_Wanted] = []
    unchanged: list[str] = []
    for name in repo.list_adapters():
        try:
            pointer = read_pointer(repo.adapter_dir(name) / POINTER_NAME)
        except AdaptvcError as exc:
            if not quiet:
                log.warning("%s: %s", name, exc.message)
            continue
        if pointer is None:
            continue
        weights = repo.adapter_dir(name) / WEIGHTS_NAME
        version = newest(v for v in repo.versions(name) if v.id == pointer.md5)
        if weights.is_file():
            current, _ = repo.state.md5(weights)
            if current == pointer.md5:
                unchanged.append(name)
                continue
            if not repo.dvc_cache.has(current):
                if not quiet:
                    _warn_unsaved(name, version, pointer.md5)
                continue
        wanted.append(_Wanted(name, weights, pointer.md5, version))
    return wanted, unchanged


def _warn_unsaved(name: str, version: AdapterVersion | None, md5: str) -> None:
    label = version.ref if version else f"{name} ({md5[:8]})"
    log.warning(
        "%s: kept the weights in the workspace, which were never saved; the checked-out pointer is %s. "
        "Save them (adaptvc save --adapter %s -m ...) or discard them (adaptvc checkout %s --force)",
        name,
        label,
        name,
        version.ref if version else name,
    )


def _prefetch(repo: AdapterRepo, *, strict: bool = False) -> None:
    """Fetch the objects the checked-out pointers name into the cache (no lock held).
    Objects still missing afterwards are reported under the lock (:func:`_missing`)."""
    wanted, _ = _plan(repo, quiet=True)
    if not wanted:
        return
    try:
        ensure_objects(repo, [w.md5 for w in wanted], labels={w.md5: w.label for w in wanted})
    except ObjectMissingError:
        pass  # reported by _missing
    except (RemoteError, CorruptObjectError) as exc:  # unreachable, or failed part-way: keep what we have
        if strict:
            raise
        log.warning("could not fetch from the DVC remote: %s", exc.message)


def _missing(repo: AdapterRepo, wanted: list[_Wanted]) -> set[str]:
    """The wanted objects not in the cache, each warned about."""
    missing = {w.md5 for w in wanted if not repo.dvc_cache.has(w.md5)}
    for w in wanted:
        if w.md5 in missing:
            log.warning(
                "%s: weights are neither in the local cache nor on the DVC remote; %s was left as it was. "
                "Fix: adaptvc pull (or ask whoever saved %s to run adaptvc push), then adaptvc checkout %s",
                w.label,
                w.weights.relative_to(repo.root),
                w.label,
                w.label,
            )
    return missing


def _write(txn: Transaction, w: _Wanted) -> bool:
    """Write one adapter's weights from the cache (md5-checked); whether it worked."""
    try:
        txn.put(w.weights, lambda p: txn.repo.dvc_cache.materialise(w.md5, p))
    except AdaptvcError as exc:
        log.warning("%s: %s", w.label, exc.message + (f" ({exc.hint})" if exc.hint else ""))
        return False
    if w.version is not None:
        txn.set_state(w.name, state_record(w.version))
    return True


def _drop_orphan_weights(txn: Transaction) -> list[Path]:
    """Weights left in ``adapters/NAME/`` after git removed that adapter's pointer, config,
    manifest and ``.gitignore`` (a checkout of a branch without NAME): untracked, they
    would show in ``git status`` and go into git with ``git add -A``. Weights that are
    in the DVC cache come back with the branch, so they are removed; others are kept,
    with a warning. Returns the directories whose weights were removed."""
    repo = txn.repo
    removed: list[Path] = []
    try:
        dirs = sorted(d for d in repo.adapters_path.iterdir() if d.is_dir())
    except FileNotFoundError:
        return removed
    for d in dirs:
        weights = d / WEIGHTS_NAME
        if not weights.is_file() or any((d / n).exists() for n in (POINTER_NAME, CONFIG_NAME, MANIFEST_NAME)):
            continue
        md5, _ = repo.state.md5(weights)
        if not repo.dvc_cache.has(md5):
            log.warning(
                "%s: this branch has no adapter %s, and these weights were never saved; kept (save them "
                "on a branch that has it, or delete the file)",
                weights.relative_to(repo.root).as_posix(),
                d.name,
            )
            continue
        txn.remove(weights)
        removed.append(d)
    return removed
