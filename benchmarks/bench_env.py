"""The environment the benchmarks run their whole-process commands in (imported by the
bench_*.py scripts, which run with this directory first on ``sys.path``)."""

from __future__ import annotations

import os
from pathlib import Path


def command_env(*, pycache: Path | None = None, pythonpath: Path | None = None) -> dict[str, str]:
    """``os.environ`` plus: no DVC analytics, no system git config, a fixed git identity,
    and bytecode cached as for any installed package (dvc's is compiled at install time)
    under ``pycache``, out of the source tree; ``pythonpath``: the adaptvc code to run."""
    env = dict(
        os.environ,
        DVC_NO_ANALYTICS="1",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="Bench",
        GIT_AUTHOR_EMAIL="bench@example.com",
        GIT_COMMITTER_NAME="Bench",
        GIT_COMMITTER_EMAIL="bench@example.com",
    )
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if pycache is not None:
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return env
