"""Per-clone state in ``.git/adaptvc/`` (never committed).

- ``workspace.json``: for each adapter, the version its directory was last set to by
  ``save`` or ``checkout`` (what the next save records as its parent, and what
  ``status`` compares against).
- ``hashes.json``: a stat cache, ``path → [size, mtime_ns, inode, md5]``, so ``status``
  and ``checkout`` do not re-hash unchanged weights (DVC keeps a similar cache).

Both are written atomically; losing ``hashes.json`` only costs a re-hash.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from adaptvc.storage.dvc_cache import file_md5
from adaptvc.storage.files import write_atomic

RACY_NS = 2_000_000_000


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


class CloneState:
    """Read/write the per-clone state of one repository."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir

    # -- the version each adapter's directory is at -------------------------------------
    def workspace(self) -> dict[str, dict[str, Any]]:
        return _load(self.dir / "workspace.json")

    def at(self, adapter: str) -> dict[str, Any] | None:
        return self.workspace().get(adapter)

    def set_at(self, adapter: str, record: dict[str, Any] | None) -> None:
        data = self.workspace()
        if record is None:
            data.pop(adapter, None)
        else:
            data[adapter] = record
        # No fsync: after a crash the .dvc pointer still tells which version is checked out.
        write_atomic(self.dir / "workspace.json", json.dumps(data, indent=1, sort_keys=True).encode(), fsync=False)

    # -- stat cache of weights md5s ------------------------------------------------------
    def md5(self, path: Path) -> tuple[str, int]:
        """``(md5, size)`` of ``path``, from the stat cache when size/mtime/inode match."""
        st = path.stat()
        key = str(path.resolve())
        cache = _load(self.dir / "hashes.json")
        hit = cache.get(key)
        if hit and hit[:3] == [st.st_size, st.st_mtime_ns, st.st_ino]:
            return hit[3], st.st_size
        md5, size = file_md5(path)
        self.remember(path, md5, cache=cache)
        return md5, size

    def remember(
        self, path: Path, md5: str, *, cache: dict[str, Any] | None = None, written_by_us: bool = False
    ) -> None:
        """Record that ``path`` (as it is now on disk) hashes to ``md5``.

        ``written_by_us``: adaptvc just created the file (a new inode, renamed into place
        after its md5 was checked), so it is recorded even though its mtime is recent.
        """
        try:
            st = path.stat()
        except FileNotFoundError:
            return
        # "Racy" entries (as git calls them): a file someone else is still writing could
        # change again within the filesystem's timestamp granularity, keeping its mtime.
        if not written_by_us and time.time_ns() - st.st_mtime_ns < RACY_NS:
            return
        cache = _load(self.dir / "hashes.json") if cache is None else cache
        cache[str(path.resolve())] = [st.st_size, st.st_mtime_ns, st.st_ino, md5]
        try:
            write_atomic(self.dir / "hashes.json", json.dumps(cache).encode(), fsync=False)
        except OSError:  # a read-only clone: the cache is an optimisation only
            pass

    def recorded_md5(self, path: Path) -> str | None:
        """The md5 the stat cache holds for ``path`` as it is now (size, mtime and inode
        unchanged), without hashing; ``None`` when it holds none."""
        try:
            st = path.stat()
        except OSError:
            return None
        hit = _load(self.dir / "hashes.json").get(str(path.resolve()))
        return hit[3] if hit and hit[:3] == [st.st_size, st.st_mtime_ns, st.st_ino] else None
