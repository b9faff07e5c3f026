"""Printing for the CLI: stdout is data, stderr is talk.

- ``emit_json`` prints exactly one JSON document on stdout.
- ``info`` / ``warn`` go to stderr, so ``adaptvc log --json | jq`` always works.
- Warnings have one renderer, :func:`warn`: ``Warning: …`` on stderr, and collected
  while a command runs so that ``emit_json`` adds them to a JSON object document as
  ``"warnings"``. The library's own warnings (``logging.getLogger("adaptvc")``) reach
  it through :mod:`adaptvc.cli.library_log`.
- Colour only on a terminal and never when ``NO_COLOR`` is set.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import os
import pathlib
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import click

# The warnings of the running command (a stack: in-process callers may nest commands).
# A plain list under a lock, not a ContextVar: transfers warn from worker threads.
_collected: list[list[str]] = []
_collected_lock = threading.Lock()


def use_color(stream=None) -> bool:
    stream = stream if stream is not None else sys.stdout
    if os.environ.get("NO_COLOR"):
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def style(text: str, *, err: bool = False, **kwargs: Any) -> str:
    """``click.style`` when colour is allowed on the target stream, else the plain text."""
    return click.style(text, **kwargs) if use_color(sys.stderr if err else sys.stdout) else text


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, paths, datetimes, sets and tuples → plain JSON values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        if hasattr(obj, "to_dict"):
            return to_jsonable(obj.to_dict())
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted(to_jsonable(v) for v in obj)
    if isinstance(obj, pathlib.PurePath):
        return str(obj)
    if isinstance(obj, (_dt.datetime, _dt.date)):
        return obj.isoformat()
    return obj


def emit_json(obj: Any) -> None:
    """Print one JSON document on stdout; an object also carries the command's warnings."""
    doc = to_jsonable(obj)
    if isinstance(doc, dict):
        doc = with_warnings(doc, collected_warnings())
    click.echo(json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False))


def with_warnings(doc: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """``doc`` with ``warnings`` appended to its ``"warnings"`` list (a result that
    reports warnings itself keeps them first; none is repeated). Without warnings the
    document is left as it is: a quiet run's keys stay what they were (tests pin them)."""
    if not warnings:
        return doc
    own = doc.get("warnings")
    merged = list(own) if isinstance(own, list) else []
    merged += [w for w in warnings if w not in merged]
    return {**doc, "warnings": merged}


def info(message: str) -> None:
    click.echo(message, err=True)


def warn(message: str) -> None:
    """Print ``Warning: message`` on stderr; a ``--json`` document will list it too."""
    with _collected_lock:
        if _collected:
            _collected[-1].append(message)
    click.echo(style("Warning: ", err=True, fg="yellow", bold=True) + message, err=True)


def collected_warnings() -> list[str]:
    """The warnings of the running command so far."""
    with _collected_lock:
        return list(_collected[-1]) if _collected else []


@contextlib.contextmanager
def collecting_warnings() -> Iterator[list[str]]:
    """Collect what :func:`warn` prints in this block (for ``emit_json``) into the list yielded."""
    warnings: list[str] = []
    with _collected_lock:
        _collected.append(warnings)
    try:
        yield warnings
    finally:
        with _collected_lock:
            for i in range(len(_collected) - 1, -1, -1):
                if _collected[i] is warnings:
                    del _collected[i]
                    break


def human_bytes(n: int | float) -> str:
    n = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def human_count(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def terminal_progress(*, quiet: bool) -> Callable[[Any], None] | None:
    """A transfer progress callback drawing one bar on stderr, or None when stderr is
    not a terminal or with --quiet (then transfers print nothing extra).

    The bar (tqdm, installed with dvc) is created on the first event, so commands that
    transfer nothing pay nothing for it.
    """
    if quiet or not sys.stderr.isatty():
        return None
    lock = threading.Lock()
    counted: dict[str, int] = {}
    state: dict[str, Any] = {}

    def bar():
        if "bar" not in state:
            from tqdm import tqdm  # 25-30 ms to import: only once there is something to draw

            state["bar"] = tqdm(
                total=0,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                file=sys.stderr,
                desc="weights",
                leave=False,
                dynamic_ncols=True,
            )
        return state["bar"]

    def progress(event) -> None:
        with lock:
            b = bar()
            if event.kind == "start" and event.nbytes:
                b.total += event.nbytes
                b.refresh()
            elif event.kind == "bytes":
                counted[event.md5] = counted.get(event.md5, 0) + event.nbytes
                b.update(event.nbytes)
            elif event.kind == "done":
                # Some filesystems report no byte counts: account for the whole object.
                missing = event.nbytes - counted.pop(event.md5, 0)
                if missing > 0:
                    b.update(missing)
                if b.total and b.n >= b.total:
                    b.close()

    return progress
