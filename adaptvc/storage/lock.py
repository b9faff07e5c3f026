"""The repository lock: one adaptvc transaction at a time per clone.

An ``fcntl.flock`` on ``.git/adaptvc/lock``. The kernel releases it when the process
dies, so a crashed process never leaves a stale lock behind. A second process polls
until the lock is free or the timeout passes (:class:`LockTimeoutError`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Iterator

from adaptvc.errors import LockTimeoutError

DEFAULT_TIMEOUT = 60.0


@contextlib.contextmanager
def repo_lock(path: Path, *, timeout: float = DEFAULT_TIMEOUT, poll: float = 0.05) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` for the ``with`` block.

    Raises:
        LockTimeoutError: another process held it for ``timeout`` seconds.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                    raise LockTimeoutError(
                        f"another adaptvc process (pid {holder}) has held {path} for over {timeout:g} s",
                        hint="wait for it to finish, or raise lock_timeout in .adaptvc/config.toml",
                    ) from None
                time.sleep(poll)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
