"""The repository lock: one adaptvc transaction at a time per repository (its worktrees
share it: the lock file is in the common git dir).

An ``fcntl.flock`` on ``.git/adaptvc/lock``. The kernel releases it when the process
dies, so a crashed process never leaves a stale lock behind. A second process polls
until the lock is free or the timeout passes (:class:`LockTimeoutError`).

While the lock is held, SIGTERM and SIGHUP (``kill``, a closed terminal, a job scheduler
stopping the run) raise :class:`Terminated`, a ``KeyboardInterrupt``, as Ctrl-C does, so
a transaction is rolled back instead of being cut off half-way; :func:`signals_deferred`
holds all three off while a rollback runs. (SIGKILL cannot be caught: every transaction
keeps a journal for that, see :mod:`adaptvc.transaction`.)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from adaptvc.errors import LockTimeoutError

DEFAULT_TIMEOUT = 60.0
_CAUGHT = (signal.SIGTERM, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived during a transaction (handled like Ctrl-C)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by {signal.Signals(signum).name}")
        self.signum = signum


def _raise_terminated(signum, frame):  # noqa: ARG001 - signal handler signature
    raise Terminated(signum)


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """SIGTERM/SIGHUP raise :class:`Terminated` inside the block (main thread only:
    Python runs signal handlers there; elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for sig in _CAUGHT:
        old = signal.getsignal(sig)
        if old in (signal.SIG_DFL, None):  # keep a handler someone else installed (or SIG_IGN)
            previous[sig] = old
            signal.signal(sig, _raise_terminated)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold off SIGINT, SIGTERM and SIGHUP for the block (a rollback must finish); one
    that arrived meanwhile is delivered when the block ends."""
    sigs = {signal.SIGINT, *_CAUGHT}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


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
            with signals_raise():
                yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
