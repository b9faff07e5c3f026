"""A full disk during save: the repository lives on a small tmpfs (mounted by the test;
root may mount here) with room for its files but not for another copy of the weights.
The save must fail with one clear error, leave the repository as it was, leave no partial
object under its final name, and succeed once there is room."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli
from tests.versioning_helpers import (  # noqa: F401 - fixtures
    _initialised_template,
    lora_tensors,
    repo_snapshot,
    write_adapter,
)

WEIGHTS_MB = 8


def _big_adapter(directory: Path, seed: int) -> Path:
    """About WEIGHTS_MB of LoRA factors (hidden 1024, r 64, 16 modules, float32)."""
    tensors = lora_tensors(seed, layers=8, hidden=1024, r=64, dtype=np.float32)
    return write_adapter(directory, seed, config={"r": 64}, tensors=tensors)


def _used_bytes(path: Path) -> int:
    out = subprocess.run(["df", "-B1", "--output=used", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


@pytest.fixture
def small_fs(tmp_path: Path):
    """A tmpfs mount point; the test sets its size with ``resize(bytes)``."""
    mount = tmp_path / "fs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], check=True)

    def resize(size: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(mount)], check=True)

    try:
        yield mount, resize
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def _assert_no_bad_objects(root: Path) -> None:
    """Every object under its final name holds its bytes, and no temporary is left."""
    assert list((root / ".dvc" / "cache").rglob("*.tmp")) == []
    for obj in (root / ".dvc" / "cache" / "files" / "md5").glob("[0-9a-f][0-9a-f]/*"):
        assert hashlib.md5(obj.read_bytes()).hexdigest() == obj.parent.name + obj.name, obj


def _assert_one_clear_error(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith("Error: no space left on device"), errors[0]
    assert "unexpected" not in proc.stderr
    assert "Hint: free space on the disk" in proc.stderr


@pytest.mark.torchless
@pytest.mark.parametrize("source", ["in place", "--from"])
def test_save_on_a_full_disk_changes_nothing(source, small_fs, _initialised_template, tmp_path):
    mount, resize = small_fs
    root = mount / "repo"
    shutil.copytree(_initialised_template, root, symlinks=True)
    _big_adapter(root / "adapters" / "task_a", 1)
    run_cli("save", "--adapter", "task_a", "-m", "v1", cwd=root, check=True)

    if source == "in place":
        _big_adapter(root / "adapters" / "task_a", 2)  # the cache copy is what will not fit
        args = ["save", "--adapter", "task_a", "-m", "v2"]
    else:
        _big_adapter(tmp_path / "outputs", 2)  # outside the small disk: the workspace copy will not fit
        args = ["save", "--adapter", "task_a", "--from", str(tmp_path / "outputs"), "-m", "v2"]
    # Room for about half of the new weights.
    resize(_used_bytes(mount) + WEIGHTS_MB * 1024 * 1024 // 2)
    before = repo_snapshot(root)

    proc = run_cli(*args, cwd=root)

    _assert_one_clear_error(proc)
    assert repo_snapshot(root) == before
    _assert_no_bad_objects(root)

    resize(256 * 1024 * 1024)
    run_cli(*args, cwd=root, check=True)
    log = run_cli("log", "task_a", cwd=root, check=True).stdout
    assert "task_a@v2" in log
    _assert_no_bad_objects(root)


@pytest.mark.torchless
def test_save_on_a_read_only_mount_says_so(small_fs, _initialised_template):
    mount, _ = small_fs
    root = mount / "repo"
    shutil.copytree(_initialised_template, root, symlinks=True)
    write_adapter(root / "adapters" / "task_a", 1)
    subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
    before = repo_snapshot(root)

    proc = run_cli("save", "--adapter", "task_a", "-m", "v1", cwd=root)

    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "unexpected" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("Error: "), proc.stderr
    assert "read-only file system" in proc.stderr, proc.stderr
    assert repo_snapshot(root) == before


@pytest.mark.torchless
def test_the_operating_systems_refusals_are_typed():
    import errno

    from adaptvc.errors import DiskFullError, PermissionDeniedError, from_os_error

    full = from_os_error(OSError(errno.ENOSPC, "No space left on device", "/data/.dvc/cache/x"))
    assert isinstance(full, DiskFullError) and full.path == "/data/.dvc/cache/x"
    assert full.message == "no space left on device: /data/.dvc/cache/x"
    denied = from_os_error(PermissionError(errno.EACCES, "Permission denied", "adapters/task_a"))
    assert isinstance(denied, PermissionDeniedError) and "ls -ld" in (denied.hint or "")
    assert from_os_error(OSError(errno.EIO, "Input/output error")) is None
