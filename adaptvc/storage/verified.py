"""A record of DVC cache objects already hashed and found intact, so that readers do not
rehash them on every read.

``adaptvc diff`` reads a version's weights in place from the DVC cache; hashing a 34 MB
object costs about as much as the diff itself. So the first read of an object hashes it,
and when the bytes are right, its file identity is written to ``.git/adaptvc/verified.json``
(per clone, never committed)::

    {"<st_dev>:<st_ino>:<st_size>:<st_mtime_ns>": "<md5>", ...}

A later read whose ``stat`` gives the same key skips the hash.

What it trusts: **a file whose device, inode, size and modification time (in
nanoseconds) are unchanged has unchanged bytes.** Any write through the filesystem moves
the mtime, and replacing the file (as DVC, git and adaptvc do: a new file renamed into
place) gives a new inode, so either misses the record and the next read rehashes. What
the record cannot see: bits that rot on the disk without a write, a tool that writes
and then sets the mtime back (``touch -d``), or a write within the filesystem's
timestamp granularity after the hash (entries are recorded only for files last modified
more than two seconds before the hash began, as git does with its index). ``adaptvc verify``
never trusts the record: it rehashes everything and drops entries of damaged objects.

Losing the file costs only rehashes; it is rewritten atomically, and two processes
writing it at once only lose each other's entries.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from adaptvc.errors import ObjectMissingError
from adaptvc.storage.dvc_cache import DvcCache, file_md5
from adaptvc.storage.files import write_atomic

RECORD_NAME = "verified.json"
# Files modified this recently may still be written within one mtime tick (git's "racy" files).
RACY_NS = 2_000_000_000
# Entries kept at most (the oldest go first): objects of a few thousand versions.
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class Hashed:
    """One file hashed: its md5, its stat before the hash, and when the hash began."""

    path: Path
    md5: str
    before: os.stat_result
    started_ns: int


def _key(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


class VerifiedRecord:
    """The record of one clone (``state_dir`` is ``.git/adaptvc``)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / RECORD_NAME

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _store(self, data: dict[str, str]) -> None:
        if len(data) > MAX_ENTRIES:
            data = dict(list(data.items())[-MAX_ENTRIES:])
        try:
            # No fsync: a lost record only costs a rehash.
            write_atomic(self.path, json.dumps(data, separators=(",", ":")).encode(), fsync=False)
        except OSError:  # a read-only clone: the record is an optimisation only
            pass

    def vouches(self, path: Path, md5: str) -> bool:
        """Whether ``path``, as it is now, was hashed to ``md5`` (no hashing here)."""
        try:
            st = path.stat()
        except OSError:
            return False
        return self._load().get(_key(st)) == md5

    def hashes_to(self, path: Path, md5: str) -> bool:
        """Whether ``path`` hashes to ``md5``: from the record when it vouches, else by
        hashing it (and recording what it hashed to).

        Raises:
            FileNotFoundError: ``path`` does not exist.
        """
        before = path.stat()
        data = self._load()
        if data.get(_key(before)) == md5:
            return True
        start = time.time_ns()
        actual, _ = file_md5(path)
        self.update([Hashed(path, actual, before, start)], data=data)
        return actual == md5

    def update(self, hashed: Iterable[Hashed], *, data: dict[str, str] | None = None) -> None:
        """Record what each file hashed to. A file is recorded only if its stat did not
        change while it was hashed and it was last modified more than :data:`RACY_NS`
        before the hash began."""
        data = self._load() if data is None else data
        changed = False
        for h in hashed:
            try:
                st = h.path.stat()
            except OSError:
                continue
            if _key(h.before) != _key(st) or h.started_ns - st.st_mtime_ns < RACY_NS:
                continue
            data.pop(_key(st), None)  # re-inserted last: the newest entries survive trimming
            data[_key(st)] = h.md5
            changed = True
        if changed:
            self._store(data)

    def forget(self, paths: Iterable[Path]) -> None:
        """Drop the entries for ``paths`` as they are now (found damaged by a full hash)."""
        data = self._load()
        keys = []
        for path in paths:
            try:
                keys.append(_key(path.stat()))
            except OSError:
                continue
        if any(k in data for k in keys):
            for k in keys:
                data.pop(k, None)
            self._store(data)


def check_objects(
    cache: DvcCache, record: VerifiedRecord, md5s: Iterable[str], *, labels: Mapping[str, str] | None = None
) -> None:
    """Make sure each cache object in ``md5s`` hashes to its md5, rehashing only the
    ones the record does not vouch for: what readers of objects in place call (``diff``).

    Raises:
        ObjectMissingError: an object is not in the cache.
        CorruptObjectError: an object does not hash to its md5 (hint: ``adaptvc verify --repair``).
    """
    for md5 in dict.fromkeys(md5s):
        path = cache.object_path(md5)
        try:
            intact = record.hashes_to(path, md5)
        except FileNotFoundError:
            name = (labels or {}).get(md5, md5)
            raise ObjectMissingError(
                f"weights of {name} are not in the local cache ({cache.path})", md5s=(md5,), hint="adaptvc pull"
            ) from None
        if not intact:
            raise cache.corrupt_error(md5, label=(labels or {}).get(md5))
