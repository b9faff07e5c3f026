"""Remote faults: the S3 (moto) and SSH (OpenSSH) servers killed in the middle of a push
and of a pull, and a full disk during a fetch.

Each time: a clear error naming the remote (exit 1, one ``Error:`` line), nothing partial
under an object's final name on either side (so plain ``dvc pull`` never sees one), and a
re-run (after restarting the server) completes. The servers are killed when the transfer
is observed in progress (a temporary file or a first object appears: polled with a
deadline), never after a fixed delay.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import adaptvc
from adaptvc.storage.dvc_cache import DvcCache, file_md5
from tests.conftest import REPO_ROOT, run_cli
from tests.remote_servers import LOOPBACK, S3_BUCKET, S3Server, SshServer, _wait_for_port, find_sshd, free_port
from tests.test_remote_transfer import configure_remote
from tests.versioning_helpers import (  # noqa: F401
    _initialised_template,
    avc_repo,
    dvc,
    git,
    lora_tensors,
    repo_snapshot,
    write_adapter,
)

DEADLINE = 60.0  # seconds to wait for a condition before the test fails


def wait_for(condition: Callable[[], bool], what: str, proc: subprocess.Popen | None = None) -> None:
    """Poll ``condition`` until it holds; fail after :data:`DEADLINE` (or if ``proc`` ends first)."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the command ended before {what}: {proc.communicate()}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (sshd forks a process per connection)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


class KillableSsh(SshServer):
    """The test suite's OpenSSH server, killed outright (daemon and every session) and restarted."""

    def kill(self) -> None:
        assert self._proc is not None
        for pid in descendants(self._proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._proc.wait()

    def restart(self) -> None:
        self._proc = subprocess.Popen(
            [find_sshd(), "-D", "-e", "-f", str(self.config), "-p", str(self.port)],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, proc=self._proc, banner=b"SSH-")


class KillableS3(S3Server):
    """moto's S3 server in a process of its own, so it can be killed outright. Its objects
    live in memory: a restart starts empty (the bucket is created again)."""

    def __init__(self) -> None:  # noqa: D107 - S3Server's threaded server is not used
        self.port = free_port()
        self.endpoint = f"http://{LOOPBACK}:{self.port}"
        self._proc: subprocess.Popen | None = None

    def start(self) -> KillableS3:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, proc=self._proc)
        self.client().create_bucket(Bucket=S3_BUCKET)
        return self

    restart = start

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    stop = kill


@pytest.fixture(params=["s3", "ssh"])
def killable(request, tmp_path):
    """A server of each kind that this test alone uses (and may kill), and its remote."""
    (tmp_path / "sshd").mkdir()
    server = KillableS3().start() if request.param == "s3" else KillableSsh(tmp_path / "sshd").start()
    yield server, server.new_remote()
    server.stop() if request.param == "ssh" else server.kill()


def big_versions(root: Path, n: int, *, adapter: str = "task_a", first_seed: int = 1) -> list:
    """``n`` versions of ~16 MB each: big enough that a transfer is seen in progress."""
    out = []
    for seed in range(first_seed, first_seed + n):
        tensors = lora_tensors(seed, layers=4, hidden=4096, r=64, dtype=np.float32)
        write_adapter(root / "adapters" / adapter, config={"r": 64}, tensors=tensors)  # the rank the tensors have
        out.append(adaptvc.save(root / "adapters" / adapter, adapter=adapter, message=f"epoch {seed}", repo=root))
    return out


def start_cli(*args: str, cwd: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "adaptvc", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def temp_files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob(".*.tmp")] if directory.exists() else []


def assert_no_partial_objects(objects_dir: Path) -> int:
    """Every file under an object's final name hashes to that name; how many there are."""
    n = 0
    for path in objects_dir.rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            assert file_md5(path)[0] == path.parent.name + path.name, f"partial object {path}"
            n += 1
    return n


def remote_keys(server, spec) -> list[str]:
    if isinstance(server, KillableS3):
        return [k for k in server.keys(spec) if k.startswith("files/md5/")]
    return [p.relative_to(spec.root).as_posix() for p in spec.root.rglob("*") if p.is_file()]


def assert_one_error_naming(err: str, remote: str = "storage") -> None:
    errors = [line for line in err.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and f"'{remote}'" in errors[0], err
    assert "Traceback" not in err


# --- a push --------------------------------------------------------------------------------


def test_server_killed_during_a_push(avc_repo, killable):
    server, spec = killable
    configure_remote(avc_repo, spec)
    versions = big_versions(avc_repo, 3)

    proc = start_cli("push", "--no-git", "--jobs", "1", cwd=avc_repo)
    if isinstance(server, KillableSsh):  # seen in progress: a temporary file on the remote
        wait_for(lambda: bool(temp_files(spec.root)), "an upload in progress", proc)
    else:  # S3 publishes an object only when complete: the first one is there, the next under way
        wait_for(lambda: bool(remote_keys(server, spec)), "a first object on S3", proc)
    server.kill()
    code, out, err = finish(proc)

    assert code == 1 and out == ""
    assert_one_error_naming(err)
    server.restart()
    if isinstance(server, KillableSsh):
        assert assert_no_partial_objects(spec.root / "files" / "md5") < len(versions)
    assert "in sync" not in dvc(avc_repo, "status", "-c").stdout  # what is missing is missing

    again = run_cli("push", "--no-git", cwd=avc_repo)
    assert again.returncode == 0, again.stderr

    # A teammate's plain `dvc pull` gets every object whole.
    shutil.rmtree(DvcCache.for_repo(avc_repo).path / "files")
    dvc(avc_repo, "pull", "-f")
    for v in versions[-1:]:
        assert file_md5(avc_repo / "adapters" / "task_a" / "adapter_model.safetensors")[0] == v.id
    dvc(avc_repo, "fetch", "-A")  # -A: every version's objects (all commits)
    assert assert_no_partial_objects(DvcCache.for_repo(avc_repo).path / "files" / "md5") == len(versions)
    if isinstance(server, KillableSsh):
        assert assert_no_partial_objects(spec.root / "files" / "md5") == len(versions)


# --- a pull --------------------------------------------------------------------------------


def test_server_killed_during_a_pull(avc_repo, killable, tmp_path):
    server, spec = killable
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    configure_remote(avc_repo, spec)
    versions = [big_versions(avc_repo, 1, adapter=name, first_seed=i)[0] for i, name in enumerate("abc", 1)]
    git(avc_repo, "remote", "add", "origin", str(origin))
    run_cli("push", cwd=avc_repo, check=True)
    mate = tmp_path / "mate"
    git(tmp_path, "clone", "-q", str(origin), str(mate))
    for key, value in spec.local_config.items():  # personal settings are not cloned
        adaptvc.remote_modify("storage", key, value, repo=mate, local=True)
    cache = DvcCache.for_repo(mate).path

    proc = start_cli("pull", "--json", cwd=mate)  # three objects to fetch, ~16 MB each
    wait_for(lambda: bool(temp_files(cache)), "a download in progress", proc)
    server.kill()
    code, out, err = finish(proc)

    assert code == 1 and out == ""
    assert_one_error_naming(err)
    fetched = assert_no_partial_objects(cache / "files" / "md5") if cache.exists() else 0
    assert fetched < len(versions) and temp_files(cache) == []

    server.restart()
    if isinstance(server, KillableS3):  # moto kept its objects in memory: the owner pushes again
        run_cli("push", "--no-git", cwd=avc_repo, check=True)
    again = run_cli("pull", cwd=mate)
    assert again.returncode == 0, again.stderr
    for name, v in zip("abc", versions, strict=True):
        assert file_md5(mate / "adapters" / name / "adapter_model.safetensors")[0] == v.id
    assert run_cli("verify", cwd=mate).returncode == 0


# --- a full disk ------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 24 MB tmpfs, unmounted afterwards (the tests run as root)."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_during_a_fetch_leaves_the_repository_unchanged(avc_repo, tmp_path, small_disk):
    remote = tmp_path / "dvc-remote"
    adaptvc.remote_add("storage", str(remote), default=True)
    v1, v2, v3 = big_versions(avc_repo, 3)  # ~16 MB each: two do not fit on the small disk
    run_cli("push", "--no-git", cwd=avc_repo, check=True)
    # The cache moves to the small disk (personal setting, as `dvc cache dir --local` does).
    (avc_repo / ".dvc" / "config.local").write_text(f"[cache]\n    dir = {small_disk}\n")
    adaptvc.checkout("task_a@v3")  # the workspace is at v3; the versions' objects are on the remote only
    before = repo_snapshot(avc_repo)

    proc = run_cli("verify", "--repair", cwd=avc_repo)  # fetches all three: the disk fills up

    assert proc.returncode == 1
    assert "No space left on device" in proc.stdout + proc.stderr
    assert repo_snapshot(avc_repo) == before
    cache = DvcCache(small_disk)
    assert temp_files(small_disk) == []
    assert assert_no_partial_objects(small_disk / "files" / "md5") < 3
    assert sum(cache.has(v.id) for v in (v1, v2, v3)) < 3

    diff = run_cli("diff", "task_a@v1", "task_a@v2", cwd=avc_repo)  # a reader fetching on demand
    assert diff.returncode == 1
    assert_one_error_naming(diff.stderr)
    error, hint = diff.stderr.splitlines()
    assert error.startswith("Error: no space left in the DVC cache") and str(small_disk) in error
    assert hint.startswith("Hint: free some space there")
    assert repo_snapshot(avc_repo) == before and temp_files(small_disk) == []
