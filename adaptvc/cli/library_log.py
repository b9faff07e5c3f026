"""The library's log, rendered by the CLI while a command runs.

adaptvc's library code warns through ``logging.getLogger("adaptvc")`` and installs no
handler. While a command runs, :func:`rendering_library_log` gives that logger one
handler: each WARNING-and-above record is printed once by
:func:`adaptvc.cli.output.warn` (``Warning: …`` on stderr, and listed in a ``--json``
document) and goes no further (``propagate = False``, so Python's fallback handler does
not print it a second time). INFO records stay silent, as before the CLI had a handler
(there is no verbose flag).

A module of its own, imported when a command runs: ``logging`` costs ~3 ms to import,
which ``adaptvc --help`` does not pay.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from adaptvc.cli.output import collecting_warnings, warn

LIBRARY_LOGGER = "adaptvc"


class _WarningRenderer(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not break the command
            self.handleError(record)
            return
        warn(message)


@contextlib.contextmanager
def rendering_library_log() -> Iterator[list[str]]:
    """For the duration of a command: the library's warnings printed once and collected
    (with every other :func:`~adaptvc.cli.output.warn`) in the list yielded."""
    logger = logging.getLogger(LIBRARY_LOGGER)
    handler = _WarningRenderer(logging.WARNING)
    propagate = logger.propagate
    with collecting_warnings() as warnings:
        logger.addHandler(handler)
        logger.propagate = False
        try:
            yield warnings
        finally:
            logger.removeHandler(handler)
            logger.propagate = propagate
