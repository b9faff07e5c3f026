"""The local DVC cache and DVC's ``.dvc`` pointer files, without opening a DVC Repo.

DVC 3 stores a file whose md5 is ``abcdef...`` at ``<cache>/files/md5/ab/cdef...``, where
``<cache>`` is ``.dvc/cache`` unless ``cache.dir`` is set in ``.dvc/config`` or
``.dvc/config.local`` (a relative ``dir`` is relative to the ``.dvc`` directory). The md5
is the plain md5 of the file's bytes (``hash: md5`` in the pointer). Objects are
read-only, as DVC leaves them.

Writing these ourselves instead of calling ``dvc add`` saves the cost of opening a DVC
Repo (about a second) while producing exactly what ``dvc add`` would: ``dvc status``,
``dvc checkout``, ``dvc push`` and ``dvc pull`` work on the result.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from adaptvc.errors import CorruptObjectError, InvalidAdapterError, ObjectMissingError
from adaptvc.storage.dvc_config import read_dvc_config

CHUNK = 1 << 20
# An object key: a file's md5, or a DVC directory object's md5 with ".dir" appended.
_MD5_RE = re.compile(r"^[0-9a-f]{32}(\.dir)?$")
DIR_SUFFIX = ".dir"
POINTER_SUFFIX = ".dvc"


def file_md5(path: str | os.PathLike[str]) -> tuple[str, int]:
    """``(md5 hex, size)`` of a file, streamed."""
    h = hashlib.md5()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def content_md5(key: str) -> str:
    """The md5 an object's bytes hash to: its key without DVC's ``.dir`` suffix."""
    return key.removesuffix(DIR_SUFFIX)


def dir_object_bytes(entries: Iterable[tuple[str, str]]) -> bytes:
    """A DVC 3 directory object (``<md5>.dir``) listing ``(relpath, md5)`` entries, exactly
    as ``dvc add DIR`` writes it: a JSON list sorted by path, keys sorted."""
    listing = [{"md5": md5, "relpath": rel} for rel, md5 in sorted(entries)]
    return json.dumps(listing, sort_keys=True).encode("utf-8")


def dir_object_key(entries: Iterable[tuple[str, str]]) -> str:
    """The key DVC gives the directory object of ``entries``: ``<md5 of its bytes>.dir``."""
    return hashlib.md5(dir_object_bytes(entries)).hexdigest() + DIR_SUFFIX


def _copy_hashing(src: Path, dst_fh, *, fsync: bool = True) -> tuple[str, int]:
    h = hashlib.md5()
    size = 0
    with open(src, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            dst_fh.write(chunk)
            size += len(chunk)
    dst_fh.flush()
    if fsync:
        os.fsync(dst_fh.fileno())
    return h.hexdigest(), size


def _sweep_dead_temps(tmp_dir: Path) -> None:
    """Remove ``.adaptvc-<pid>-*.tmp`` files of processes that no longer run (killed while
    copying into the cache: never an object, only wasted space)."""
    try:
        names = [e.name for e in os.scandir(tmp_dir) if e.name.startswith(".adaptvc-") and e.name.endswith(".tmp")]
    except OSError:
        return
    for name in names:
        try:
            pid = int(name.split("-")[1])
            os.kill(pid, 0)
        except ProcessLookupError:  # dead: its copy can go
            with contextlib.suppress(OSError):
                (tmp_dir / name).unlink()
        except (ValueError, IndexError, PermissionError, OSError):
            continue  # not ours to judge, or alive (another user's process)


@dataclass(frozen=True)
class DvcCache:
    """The local DVC cache of one repository."""

    path: Path  # the cache root (".dvc/cache" by default)

    @classmethod
    def for_repo(cls, root: str | os.PathLike[str]) -> DvcCache:
        dvc_dir = Path(root) / ".dvc"
        cache_dir = read_dvc_config(dvc_dir).get("cache", {}).get("dir")
        if cache_dir:
            p = Path(os.path.expanduser(cache_dir))
            return cls((p if p.is_absolute() else dvc_dir / p).resolve())
        return cls(dvc_dir / "cache")

    def object_path(self, md5: str) -> Path:
        """Where DVC 3 keeps the object: ``files/md5/ab/cdef...``."""
        if not _MD5_RE.match(md5):
            raise ValueError(f"not an md5: {md5!r}")
        return self.path / "files" / "md5" / md5[:2] / md5[2:]

    def has(self, md5: str) -> bool:
        return self.object_path(md5).is_file()

    def add(self, src: str | os.PathLike[str]) -> tuple[str, int]:
        """Put a copy of ``src`` in the cache; returns ``(md5, size)``.

        One pass: the file is hashed while copied to a temp file inside the cache, which is
        then renamed to its md5 (or dropped when the cache already holds it). A crash
        leaves at most a temp file, never a wrong object.
        """
        src = Path(src)
        tmp_dir = self.path / "files" / "md5"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        _sweep_dead_temps(tmp_dir)
        tmp = tmp_dir / f".adaptvc-{os.getpid()}-{os.urandom(4).hex()}.tmp"
        try:
            with open(tmp, "wb") as out:
                md5, size = _copy_hashing(src, out)
            dest = self.object_path(md5)
            if dest.is_file():
                tmp.unlink()
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(tmp, 0o444)  # DVC keeps cache objects read-only
                os.replace(tmp, dest)
        finally:
            if tmp.exists():
                tmp.unlink()
        return md5, size

    def add_directory(self, files: Mapping[str, Path]) -> tuple[str, list[tuple[str, str, int]]]:
        """Put a set of files in the cache as ONE DVC directory object (what ``dvc add DIR``
        makes), so one ``.dvc`` pointer names the set.

        Args:
            files: relpath (posix, inside the directory) → the file to copy in.

        Returns:
            ``(key, [(relpath, md5, size), ...])`` where ``key`` is ``<md5>.dir``.
        """
        entries = [(rel, *self.add(src)) for rel, src in sorted(files.items())]
        data = dir_object_bytes((rel, md5) for rel, md5, _ in entries)
        key = hashlib.md5(data).hexdigest() + DIR_SUFFIX
        dest = self.object_path(key)
        if not dest.is_file():
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".adaptvc-{os.getpid()}-{os.urandom(4).hex()}.tmp")
            try:
                tmp.write_bytes(data)
                os.chmod(tmp, 0o444)
                os.replace(tmp, dest)
            finally:
                tmp.unlink(missing_ok=True)
        return key, entries

    def materialise(self, md5: str, dest: str | os.PathLike[str], *, link: bool = False) -> Path:
        """Write the object to ``dest`` (atomically), checking its md5 on the way.

        Args:
            md5: the object's md5.
            dest: the file to create or replace.
            link: hard-link instead of copying when possible (for read-only uses such as
                ``resolve``); the cache object is read-only, so the link is too.

        Raises:
            ObjectMissingError: the object is not in the cache.
            CorruptObjectError: its content does not hash to ``md5``.
        """
        src = self.object_path(md5)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        try:
            if link:
                try:
                    if file_md5(src)[0] != md5:
                        raise self._corrupt(md5)
                    os.link(src, tmp)
                    os.replace(tmp, dest)
                    return dest
                except OSError:
                    pass  # another filesystem, or links not allowed: copy
            with open(tmp, "wb") as out:
                # No fsync: the cache object stays the durable copy (as with dvc checkout);
                # the rename still means nobody sees a partial file.
                got, _ = _copy_hashing(src, out, fsync=False)
            if got != md5:
                raise self._corrupt(md5)
            os.replace(tmp, dest)
        except FileNotFoundError:
            if not src.exists():
                raise ObjectMissingError(
                    f"object {md5} is not in the DVC cache {self.path}", md5s=(md5,), hint="adaptvc pull"
                ) from None
            raise
        finally:
            if tmp.exists():
                tmp.unlink()
        return dest

    def _corrupt(self, md5: str) -> CorruptObjectError:
        path = self.object_path(md5)
        return CorruptObjectError(
            f"the DVC cache object {path} is corrupt (its content does not hash to {md5})",
            what=f"DVC cache object {md5}",
            path=str(path),
            hint="delete it and fetch it again: adaptvc pull",
        )


# --- .dvc pointer files -------------------------------------------------------------


@dataclass(frozen=True)
class Pointer:
    """What a DVC 3 ``.dvc`` file says about its one output."""

    md5: str
    size: int | None
    path: str


def dumps_pointer(md5: str, size: int, path: str, *, nfiles: int | None = None) -> str:
    """A ``.dvc`` file exactly as ``dvc add`` (DVC 3) writes it; ``nfiles`` for a
    directory (``md5`` then ends in ``.dir``)."""
    files = f"  nfiles: {nfiles}\n" if nfiles is not None else ""
    return f"outs:\n- md5: {md5}\n  size: {size}\n{files}  hash: md5\n  path: {path}\n"


_PTR_MD5 = re.compile(r"^\s*-?\s*md5:\s*['\"]?([0-9a-f]{32}(?:\.dir)?)", re.M)
_PTR_SIZE = re.compile(r"^\s*-?\s*size:\s*([0-9]+)", re.M)
_PTR_PATH = re.compile(r"^\s*-?\s*path:\s*['\"]?([^'\"\n]+)", re.M)


def read_pointer(path: str | os.PathLike[str]) -> Pointer | None:
    """Parse a single-output ``.dvc`` file; ``None`` when it does not exist.

    A regular expression rather than a YAML parser: these files are machine-written and
    the commands that read them (``status``) must start fast.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return parse_pointer(text, path=str(path))


def parse_pointer(text: str, *, path: str = ".dvc pointer") -> Pointer:
    """The output a ``.dvc`` file's text describes (``path`` names it in errors).

    Raises:
        InvalidAdapterError: git's conflict markers in it, or no md5.
    """
    if "\n<<<<<<< " in f"\n{text}" or "\n>>>>>>> " in text:
        # git's conflict markers: a merge in a clone without adaptvc's merge driver
        name, parent = Path(path).name, Path(path).parent
        raise InvalidAdapterError(
            f"{path}: unresolved merge conflict (this clone has no adaptvc merge driver)",
            path=path,
            hint=f"adaptvc init (once per clone, for the next merges); now keep one side's pair: git checkout "
            f"--ours -- {name} adapter_config.json (in {parent}), git add both, commit",
        )
    m = _PTR_MD5.search(text)
    if not m:
        raise InvalidAdapterError(f"{path}: no md5 in this DVC pointer", path=path)
    size = _PTR_SIZE.search(text)
    p = _PTR_PATH.search(text)
    return Pointer(m.group(1), int(size.group(1)) if size else None, p.group(1).strip() if p else "")
