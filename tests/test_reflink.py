"""Reflinks between the DVC cache and the work tree, on a real XFS filesystem.

A loop-mounted XFS image (``mkfs.xfs -m reflink=1``; root mounts it, ``./dev.sh`` installs
xfsprogs) holds the repository, its DVC cache and a directory remote. Whether a copy is a
clone is read from the filesystem itself: ``filefrag -v`` lists each file's physical
extents, and two files that share them are one set of blocks (free space confirms it).
Writing the work-tree file in place, as training does, must leave the cached object alone.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import adaptvc
from adaptvc.storage.copying import clone, copy_hashing, file_md5
from adaptvc.storage.dvc_cache import DvcCache
from adaptvc.storage.transfer import fetch_objects
from tests.versioning_helpers import _initialised_template, write_adapter  # noqa: F401

WEIGHTS = "adapter_model.safetensors"
A = "adapters/task_a"


@pytest.fixture(scope="module")
def xfs(tmp_path_factory: pytest.TempPathFactory):
    """A fresh reflink-capable XFS filesystem, mounted for this module, then unmounted."""
    base = tmp_path_factory.mktemp("xfs")
    image, mnt = base / "xfs.img", base / "mnt"
    mnt.mkdir()
    with open(image, "wb") as fh:
        fh.truncate(512 << 20)  # sparse; XFS wants at least 300 MB
    subprocess.run(["mkfs.xfs", "-q", "-m", "reflink=1", str(image)], check=True, capture_output=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], check=True, capture_output=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False, capture_output=True)
        image.unlink(missing_ok=True)


def extents(path: Path) -> list[tuple[int, int, int]]:
    """``(logical start, physical start, length)`` of each extent, in blocks (filefrag -s -v: synced first)."""
    out = subprocess.run(["filefrag", "-s", "-v", str(path)], check=True, capture_output=True, text=True).stdout
    rows = re.findall(r"^\s*\d+:\s+(\d+)\.\.\s*\d+:\s+(\d+)\.\.\s*\d+:\s+(\d+):", out, re.M)
    assert rows, out
    return [(int(a), int(b), int(c)) for a, b, c in rows]


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def big_adapter(directory: Path, seed: int) -> Path:
    """An adapter of ~8 MB: large enough that a copy shows in the free space."""
    rng = np.random.default_rng(seed)
    tensors = {}
    for i in range(4):
        for m in ("q_proj", "v_proj"):
            pre = f"base_model.model.model.layers.{i}.self_attn.{m}"
            tensors[f"{pre}.lora_A.weight"] = rng.standard_normal((64, 2048)).astype(np.float32)
            tensors[f"{pre}.lora_B.weight"] = rng.standard_normal((2048, 64)).astype(np.float32)
    return write_adapter(directory, tensors=tensors, config={"r": 64})


@pytest.fixture
def xfs_repo(xfs: Path, _initialised_template: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: F811
    path = xfs / "repo"
    shutil.copytree(_initialised_template, path, symlinks=True)
    monkeypatch.chdir(path)
    yield path
    shutil.rmtree(path)
    shutil.rmtree(xfs / "out", ignore_errors=True)
    shutil.rmtree(xfs / "remote", ignore_errors=True)


def test_the_copy_routine_clones_on_xfs_and_copies_elsewhere(xfs, tmp_path):
    src = xfs / "src.bin"
    src.write_bytes(os.urandom(3 << 20) + b"tail")
    try:
        done = copy_hashing(src, [xfs / "clone.bin"])
        assert done.cloned and done.md5 == file_md5(src)[0] and done.size == (3 << 20) + 4
        assert extents(xfs / "clone.bin") == extents(src)
        # another filesystem (the test's tmp dir): a plain copy, same bytes and md5
        other = copy_hashing(src, [tmp_path / "copy.bin"])
        assert not other.cloned and other.md5 == done.md5
        assert (tmp_path / "copy.bin").read_bytes() == src.read_bytes()
        assert not clone(tmp_path / "copy.bin", xfs / "cross.bin")
    finally:
        for name in ("src.bin", "clone.bin", "cross.bin"):
            (xfs / name).unlink(missing_ok=True)


def test_save_from_and_checkout_are_reflinks_and_in_place_writes_spare_the_cache(xfs_repo, xfs):
    out = big_adapter(xfs / "out" / "epoch1", seed=1)
    size = (out / WEIGHTS).stat().st_size
    before = free_bytes(xfs)
    v1 = adaptvc.save(out, adapter="task_a", message="epoch 1")
    # the source, the cache object and the work-tree copy are one set of blocks
    obj = DvcCache.for_repo(xfs_repo).object_path(v1.id)
    work = xfs_repo / A / WEIGHTS
    assert extents(obj) == extents(work) == extents(out / WEIGHTS)
    assert before - free_bytes(xfs) < size // 2  # two "copies" of 8 MB cost metadata only

    # training writes the work-tree file in place: copy on write, the cached v1 is intact
    with open(work, "r+b") as fh:
        fh.seek(size // 2)
        fh.write(b"\x01" * 4096)
        os.fsync(fh.fileno())  # the copy-on-write remap happens when the block is written back
    assert file_md5(obj)[0] == v1.id
    assert extents(work) != extents(obj)
    assert adaptvc.status()[0].state == "modified"

    v2 = adaptvc.save(adapter="task_a", message="trained on in place")  # in place: the work tree is the source
    assert v2.id == file_md5(work)[0] != v1.id
    assert extents(DvcCache.for_repo(xfs_repo).object_path(v2.id)) == extents(work)

    before = free_bytes(xfs)
    adaptvc.checkout("task_a@v1")
    assert file_md5(work)[0] == v1.id
    assert extents(work) == extents(obj)
    assert before - free_bytes(xfs) < size // 2
    assert file_md5(DvcCache.for_repo(xfs_repo).object_path(v2.id))[0] == v2.id


def test_export_and_a_directory_remote_on_the_same_filesystem_clone_too(xfs_repo, xfs):
    v1 = adaptvc.save(big_adapter(xfs / "out" / "e1", seed=2), adapter="task_a", message="e1")
    obj = DvcCache.for_repo(xfs_repo).object_path(v1.id)
    adaptvc.export("task_a@v1", xfs / "out" / "exported")
    assert extents(xfs / "out" / "exported" / WEIGHTS) == extents(obj)

    adaptvc.remote_add("storage", str(xfs / "remote"), default=True)
    result = adaptvc.push(git_remote=None)
    remote_obj = xfs / "remote" / "files" / "md5" / v1.id[:2] / v1.id[2:]
    assert result.uploaded == ("task_a@v1",)
    assert extents(remote_obj) == extents(obj)

    # fetch back into an emptied cache (what pull, clone and checkout do): a clone again, MD5-checked
    os.chmod(obj, 0o644)
    obj.unlink()
    assert fetch_objects(xfs_repo, [v1.id]).transferred == (v1.id,)
    assert file_md5(obj)[0] == v1.id
    assert extents(obj) == extents(remote_obj)
