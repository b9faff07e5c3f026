"""Writing files so that a reader sees the old bytes or the new ones, never a part.

The one way adaptvc replaces a file: a temporary file beside the target (same directory,
so same filesystem), written, fsync'ed (unless the file can be rebuilt), then renamed
over the target with ``os.replace``. A crash leaves at most the temporary file, ``.NAME.PID.tmp``, which
:func:`sweep_dead_temporaries` removes once process PID is gone (the transaction's
recovery calls it for every file the killed transaction was writing).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replacing(path: Path, *, fsync: bool = True, mode: int | None = None, same_name: bool = False) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to; when the block ends without
    an exception it is fsync'ed (``fsync=False``: for copies that can be rebuilt, the
    rename alone keeps them whole), given ``mode`` and renamed over ``path``.

    ``same_name``: the temporary file has ``path``'s own name, in a temporary directory
    beside it (``torch.save`` records the file's stem inside the archive).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if same_name:
        tmpdir = Path(tempfile.mkdtemp(prefix=".adaptvc-tmp-", dir=path.parent))
        try:
            with replacing(path, fsync=fsync, mode=mode) as tmp:
                yield tmpdir / path.name
                os.replace(tmpdir / path.name, tmp)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
        return
    tmp = _temporary(path, os.getpid())
    try:
        yield tmp
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: Path, data: bytes, *, fsync: bool = True, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` atomically (see :func:`replacing`)."""
    with replacing(path, fsync=fsync, mode=mode) as tmp:
        tmp.write_bytes(data)


def _temporary(path: Path, pid: int) -> Path:
    return path.with_name(f".{path.name}.{pid}.tmp")


_PID_OF_TEMPORARY = re.compile(r"\.(?P<pid>[0-9]+)\.tmp$")


def process_is_gone(pid: int) -> bool:
    """True when no process ``pid`` runs (a process of another user counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # e.g. EPERM: alive, as someone else's
        return False
    return False


def sweep_dead_temporaries(path: Path) -> None:
    """Remove the temporaries of ``path`` (see :func:`replacing`) whose writer was killed."""
    prefix = f".{path.name}."
    try:
        names = [e.name for e in os.scandir(path.parent) if e.name.startswith(prefix)]
    except OSError:
        return
    for name in names:
        match = _PID_OF_TEMPORARY.search(name)
        if match and name == _temporary(path, int(match["pid"])).name and process_is_gone(int(match["pid"])):
            with contextlib.suppress(OSError):
                (path.parent / name).unlink()
