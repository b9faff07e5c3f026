"""Checks on command-line values that Click's types do not make.

An empty string is a valid ``click.Path`` (and a valid string), but to adaptvc it would
mean the current directory (``export REF ""`` writing into it, ``remote add NAME ""``
pointing the remote at the repository itself): refused here, before any work, as a
usage error (exit 2).
"""

from __future__ import annotations

from typing import Any

import click


def not_empty(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Click callback: refuse ``""`` (and blank strings) for one value or each of several."""
    values = value if isinstance(value, (tuple, list)) else (value,)
    for v in values:
        if isinstance(v, str) and not v.strip():
            raise click.BadParameter("must not be empty", ctx=ctx, param=param)
    return value
