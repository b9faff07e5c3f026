"""Writing files so that a reader sees the old bytes or the new ones, never a part.

The one way adaptvc replaces a file: a temporary file beside the target (same directory,
so same filesystem), written, fsync'ed (unless the file can be rebuilt), then renamed
over the target with ``os.replace``. A crash leaves at most the temporary file.
"""

from __future__ import annotations

import contextlib
import os
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
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
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
