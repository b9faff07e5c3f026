"""Printing for the CLI: stdout is data, stderr is talk.

- ``emit_json`` prints exactly one JSON document on stdout.
- ``info`` / ``warn`` go to stderr, so ``adaptvc log --json | jq`` always works.
- Colour only on a terminal and never when ``NO_COLOR`` is set.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import pathlib
import sys
from typing import Any

import click


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
    """Print one JSON document on stdout."""
    click.echo(json.dumps(to_jsonable(obj), indent=2, sort_keys=False, ensure_ascii=False))


def info(message: str) -> None:
    click.echo(message, err=True)


def warn(message: str) -> None:
    click.echo(style("Warning: ", err=True, fg="yellow", bold=True) + message, err=True)


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
