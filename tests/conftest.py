"""Shared fixtures: an isolated HOME and git identity, real git repos, tiny real models.

Everything here is real: git repositories made with GitPython, transformers models
built from a config (nothing is downloaded), peft adapters on top of them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# Set by ./dev.sh's install jobs: the tests then run the adaptvc installed in the virtual
# environment (pip install ., no source tree on the path), as a user would get it.
TEST_INSTALLED = os.environ.get("ADAPTVC_TEST_INSTALLED") == "1"


def _source_path(env: dict[str, str]) -> dict[str, str]:
    """``env`` with the source tree first on PYTHONPATH (unless testing the installed package)."""
    if not TEST_INSTALLED:
        env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def read_terminal(leader: int) -> str:
    """Everything written to a pseudo-terminal, read from its ``leader`` side once the
    writer has exited and closed its end (then ``leader`` is closed too)."""
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: no writer left
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return b"".join(chunks).decode(errors="replace")


@pytest.fixture(autouse=True, scope="session")
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory):
    """No test reads or writes the developer's HOME, git config or hub caches."""
    if TEST_INSTALLED:
        import adaptvc

        where = Path(adaptvc.__file__).resolve().parent
        assert where != REPO_ROOT / "adaptvc", f"testing the installed adaptvc, but imported {where}"
    home = tmp_path_factory.mktemp("home")
    saved = dict(os.environ)
    os.environ.update(
        {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
            "GIT_AUTHOR_NAME": "Test User",
            "GIT_AUTHOR_EMAIL": "test@example.com",
            "GIT_COMMITTER_NAME": "Test User",
            "GIT_COMMITTER_EMAIL": "test@example.com",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_HOME": str(home / ".cache" / "huggingface"),
            "DVC_NO_ANALYTICS": "1",
            "DVC_SITE_CACHE_DIR": str(home / ".cache" / "dvc-site"),
            "NO_COLOR": "1",
        }
    )
    (home / ".gitconfig").write_text(
        "[init]\n\tdefaultBranch = main\n[user]\n\tname = Test User\n\temail = test@example.com\n"
    )
    yield
    os.environ.clear()
    os.environ.update(saved)


def run_cli(
    *args: str,
    cwd: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
    check: bool = False,
    input: str | None = None,
    prefix: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m adaptvc ARGS`` in a subprocess, the way a user would (``prefix``:
    a command that runs it, e.g. ``setpriv ...`` to drop privileges)."""
    full_env = _source_path(dict(os.environ))
    if env:
        full_env.update(env)
    proc = subprocess.run(
        [*prefix, sys.executable, "-m", "adaptvc", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        input=input,
        timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"adaptvc {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def git_repo(tmp_path: Path):
    """A fresh git repository with one commit, as a GitPython ``Repo``."""
    import git

    path = tmp_path / "repo"
    path.mkdir()
    repo = git.Repo.init(path, initial_branch="main")
    (path / "README.md").write_text("# project\n")
    repo.index.add(["README.md"])
    repo.index.commit("initial commit")
    return repo


# Real remote servers (moto S3, OpenSSH) and the `dvc_remote` fixture parametrised over
# directory / S3 / SSH remotes: see tests/remote_servers.py.
from tests.remote_servers import dvc_remote, s3_server, ssh_server  # noqa: E402, F401


def imported_modules(*args: str, check: bool = False) -> set[str]:
    """The modules ``adaptvc ARGS`` has imported when it finishes, from a fresh process.

    With ``check``, the command must also succeed (exit 0).
    """
    code = (
        "import sys\n"
        "from adaptvc.cli.main import main\n"
        "try:\n"
        f"    main({list(args)!r})\n"
        "except SystemExit as e:\n"
        f"    assert not ({check!r} and e.code), e.code\n"
        "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    env = _source_path(dict(os.environ, PYTHONPATH=""))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stderr.split())
