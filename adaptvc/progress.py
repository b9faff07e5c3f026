"""Transfer progress: events, the callback type, and the callback in force.

Kept apart from :mod:`adaptvc.storage.transfer` (which imports fsspec) so that the CLI
entry point can install a terminal progress bar for every command without paying for
those imports: a fetch that ``checkout`` or ``diff`` triggers deep inside the core then
reports to the same bar as ``adaptvc pull``.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class TransferEvent:
    """One progress report. ``kind`` is ``"start"`` (``nbytes`` = the object's size, or 0
    when unknown), ``"bytes"`` (``nbytes`` more were moved) or ``"done"``."""

    kind: str
    md5: str
    nbytes: int = 0


ProgressCallback = Callable[[TransferEvent], None]

# The progress callback used when a caller passes none (e.g. the fetch that `checkout`
# triggers deep inside the core): the CLI sets it for the duration of a command.
_DEFAULT_PROGRESS: contextvars.ContextVar[ProgressCallback | None] = contextvars.ContextVar(
    "adaptvc_transfer_progress", default=None
)


def default_progress() -> ProgressCallback | None:
    return _DEFAULT_PROGRESS.get()


@contextlib.contextmanager
def progress_to(callback: ProgressCallback | None) -> Iterator[None]:
    """Report every transfer in this block to ``callback`` (unless a call passes its own)."""
    token = _DEFAULT_PROGRESS.set(callback)
    try:
        yield
    finally:
        _DEFAULT_PROGRESS.reset(token)
