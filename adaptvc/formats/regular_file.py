"""Opening an adapter file only when it is a regular file, without following a link.

An adapter directory is input from anywhere (a training output, a colleague's folder):
a weights file that is a symbolic link to ``/etc/passwd``, or a FIFO that blocks every
reader, must be refused for what it is, before a byte of it is read. The check is
``lstat`` (for the message: what it is, where a link points) and then an ``open`` with
``O_NOFOLLOW | O_NONBLOCK`` whose ``fstat`` must say "regular file" (so a file swapped
for a link between the two is refused too, and opening a FIFO does not block).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from adaptvc.errors import InvalidAdapterError, NotARegularFileError

_KINDS = (
    (stat.S_ISLNK, "symlink", "is a symbolic link"),
    (stat.S_ISDIR, "directory", "is a directory"),
    (stat.S_ISFIFO, "fifo", "is a FIFO (named pipe)"),
    (stat.S_ISCHR, "device", "is a character device"),
    (stat.S_ISBLK, "device", "is a block device"),
    (stat.S_ISSOCK, "socket", "is a socket"),
)
_HINT = "adaptvc reads adapter files only as regular files: copy the real file into the adapter directory"


def _refuse(path: Path, mode: int) -> NotARegularFileError:
    for test, kind, words in _KINDS:
        if test(mode):
            target = None
            if kind == "symlink":
                try:
                    target = os.readlink(path)
                except OSError:
                    target = "?"
                words += f" to {target}; refused without reading it"
            else:
                words += ", not a regular file; refused without reading it"
            return NotARegularFileError(f"{path}: {words}", path=str(path), kind=kind, target=target, hint=_HINT)
    return NotARegularFileError(f"{path}: not a regular file", path=str(path), kind="other", hint=_HINT)


def check_regular(path: str | os.PathLike[str]) -> os.stat_result:
    """``lstat`` of ``path``, which must be a regular file (not a link to one).

    Raises:
        InvalidAdapterError: no such file (``FileNotFoundError`` is not raised).
        NotARegularFileError: a symlink, directory, FIFO, device or socket.
    """
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise InvalidAdapterError(f"{path}: no such file", path=str(path)) from None
    except PermissionError as exc:
        raise _permission(path, exc) from None
    if not stat.S_ISREG(st.st_mode):
        raise _refuse(path, st.st_mode)
    return st


def open_regular(path: str | os.PathLike[str], *, follow_symlinks: bool = False) -> BinaryIO:
    """Open ``path`` for reading in binary mode, only if it is a regular file.

    With ``follow_symlinks`` (files outside an adapter directory, e.g. a base model in the
    Hugging Face cache, whose files are links to blobs) a link to a regular file is fine.

    Raises:
        InvalidAdapterError: no such file, or permission denied.
        NotARegularFileError: what the path is instead.
    """
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise InvalidAdapterError(f"{path}: no such file", path=str(path)) from None
    except PermissionError as exc:
        raise _permission(path, exc) from None
    except OSError as exc:  # ELOOP (a link under O_NOFOLLOW), ENXIO (a socket), EISDIR...
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            raise InvalidAdapterError(f"{path}: cannot open ({exc.strerror})", path=str(path)) from None
        raise _refuse(path, mode) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise _refuse(path, mode)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _permission(path: Path, exc: PermissionError) -> InvalidAdapterError:
    return InvalidAdapterError(
        f"{path}: permission denied",
        path=str(path),
        hint=f"make it readable (chmod u+r {path}) or run as its owner",
    )
