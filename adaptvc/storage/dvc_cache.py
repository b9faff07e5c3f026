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
import os
import re
from dataclasses import dataclass
from pathlib import Path

from adaptvc.errors import CorruptObjectError, InvalidAdapterError, ObjectMissingError
from adaptvc.storage.dvc_config import read_dvc_config

CHUNK = 1 << 20
_MD5_RE = re.compile(r"^[0-9a-f]{32}$")
POINTER_SUFFIX = ".dvc"
# What to do about a damaged cache object: verify fetches a good copy from the DVC remote.
REPAIR_HINT = "adaptvc verify --repair (replaces it with a hash-checked copy from the DVC remote)"


def file_md5(path: str | os.PathLike[str]) -> tuple[str, int]:
    """``(md5 hex, size)`` of a file, streamed."""
    h = hashlib.md5()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


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

    def object_size(self, md5: str) -> int | None:
        """Bytes the object takes in the cache (its file's size), ``None`` when absent."""
        try:
            return self.object_path(md5).stat().st_size
        except FileNotFoundError:
            return None

    def remove(self, md5: str) -> int:
        """Delete the object (``adaptvc gc``); the bytes it took, 0 when it was absent.
        Objects are read-only files in writable directories, so ``unlink`` needs no chmod."""
        path = self.object_path(md5)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

    def object_files(self) -> dict[str, int]:
        """``md5 -> bytes`` of every object in the cache (``files/md5/ab/cdef...``), one
        ``scandir`` per prefix directory: what ``du`` counts."""
        base = self.path / "files" / "md5"
        out: dict[str, int] = {}
        try:
            prefixes = [e for e in os.scandir(base) if e.is_dir() and len(e.name) == 2]
        except FileNotFoundError:
            return out
        for prefix in prefixes:
            for entry in os.scandir(prefix.path):
                md5 = prefix.name + entry.name
                if _MD5_RE.match(md5) and entry.is_file():
                    out[md5] = entry.stat().st_size
        return out

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
        return self.corrupt_error(md5)

    def corrupt_error(self, md5: str, *, label: str | None = None) -> CorruptObjectError:
        """The error for an object that does not hash to ``md5`` (``label``: the version,
        ``task_a@v2``, to name in the message)."""
        path = self.object_path(md5)
        whose = f" (the weights of {label})" if label else ""
        return CorruptObjectError(
            f"the DVC cache object {path}{whose} is corrupt (its content does not hash to {md5})",
            what=f"DVC cache object {md5}",
            path=str(path),
            hint=REPAIR_HINT,
        )


# --- .dvc pointer files -------------------------------------------------------------


@dataclass(frozen=True)
class Pointer:
    """What a DVC 3 ``.dvc`` file says about its one output."""

    md5: str
    size: int | None
    path: str


def dumps_pointer(md5: str, size: int, path: str) -> str:
    """A ``.dvc`` file exactly as ``dvc add`` (DVC 3) writes it."""
    return f"outs:\n- md5: {md5}\n  size: {size}\n  hash: md5\n  path: {path}\n"


_PTR_MD5 = re.compile(r"^\s*-?\s*md5:\s*['\"]?([0-9a-f]{32})", re.M)
_ANY_MD5 = re.compile(r"\bmd5:\s*['\"]?([0-9a-f]{32})\b")


def referenced_md5s(text: str) -> set[str]:
    """Every md5 a ``.dvc`` file or a ``dvc.lock`` names (all outputs, all stages):
    what ``adaptvc gc`` must keep for the commits it protects, adapters or not."""
    return set(_ANY_MD5.findall(text))


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
