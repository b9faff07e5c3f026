"""The DVC cache and pointer files adaptvc writes are exactly DVC's; the lock; git commits
of some paths only."""

from __future__ import annotations

import os
import stat
import threading
import time

import pytest

from adaptvc.errors import AdaptvcError, LockTimeoutError
from adaptvc.storage import git_ops
from adaptvc.storage.dvc_cache import DvcCache, dumps_pointer, file_md5, read_pointer
from adaptvc.storage.lock import repo_lock
from tests.versioning_helpers import dvc, git


@pytest.fixture
def dvc_repo(git_repo):
    root = git_repo.working_tree_dir
    dvc(root, "init", "-q")
    return root


def test_pointer_and_cache_object_match_dvc_add(dvc_repo, tmp_path):
    from pathlib import Path

    root = Path(dvc_repo)
    (root / "data").mkdir()
    payload = os.urandom(100_000)
    (root / "data" / "w.bin").write_bytes(payload)
    dvc(root, "add", "data/w.bin")
    dvc_pointer = (root / "data" / "w.bin.dvc").read_text()
    md5, size = file_md5(root / "data" / "w.bin")
    assert dumps_pointer(md5, size, "w.bin") == dvc_pointer
    assert read_pointer(root / "data" / "w.bin.dvc").md5 == md5
    cache = DvcCache.for_repo(root)
    assert cache.has(md5)
    assert cache.object_path(md5) == root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    # our add of the same bytes lands on the same object, read-only
    other = tmp_path / "copy.bin"
    other.write_bytes(payload)
    assert cache.add(other) == (md5, size)
    (root / "x.bin").write_bytes(b"new content")
    md5b, _ = cache.add(root / "x.bin")
    assert not stat.S_IMODE(cache.object_path(md5b).stat().st_mode) & 0o222


def test_cache_dir_from_dvc_config(dvc_repo, tmp_path):
    from pathlib import Path

    root = Path(dvc_repo)
    dvc(root, "cache", "dir", str(tmp_path / "shared-cache"))
    cache = DvcCache.for_repo(root)
    assert cache.path == (tmp_path / "shared-cache").resolve()
    f = tmp_path / "f"
    f.write_bytes(b"abc")
    md5, _ = cache.add(f)
    assert (tmp_path / "shared-cache" / "files" / "md5" / md5[:2] / md5[2:]).is_file()
    dvc(root, "config", "--local", "cache.dir", "../local-cache")  # relative to cwd; DVC rewrites it
    assert DvcCache.for_repo(root).path == Path(dvc(root, "cache", "dir").stdout.strip()).resolve()


def test_materialise_checks_the_hash(tmp_path):
    cache = DvcCache(tmp_path / "cache")
    src = tmp_path / "src"
    src.write_bytes(b"hello" * 1000)
    md5, _ = cache.add(src)
    out = cache.materialise(md5, tmp_path / "out" / "w")
    assert out.read_bytes() == src.read_bytes()
    obj = cache.object_path(md5)
    os.chmod(obj, 0o644)
    obj.write_bytes(b"corrupt")
    with pytest.raises(AdaptvcError, match="corrupt"):
        cache.materialise(md5, tmp_path / "out" / "w2")
    assert not (tmp_path / "out" / "w2").exists()
    with pytest.raises(AdaptvcError, match="not in the DVC cache"):
        cache.materialise("f" * 32, tmp_path / "out" / "w3")


def test_lock_waits_then_times_out(tmp_path):
    path = tmp_path / "lock"
    held = threading.Event()
    release = threading.Event()

    def holder():
        with repo_lock(path):
            held.set()
            release.wait(5)

    t = threading.Thread(target=holder)
    t.start()
    held.wait(5)
    start = time.monotonic()
    with pytest.raises(LockTimeoutError):
        with repo_lock(path, timeout=0.3):
            pass
    assert time.monotonic() - start >= 0.3
    release.set()
    t.join()
    with repo_lock(path, timeout=1):
        pass


def test_commit_paths_leaves_other_staged_and_modified_files(git_repo):
    from pathlib import Path

    root = Path(git_repo.working_tree_dir)
    (root / "staged.txt").write_text("staged\n")
    git(root, "add", "staged.txt")
    (root / "README.md").write_text("modified\n")
    (root / "mine.txt").write_text("mine\n")
    before_head = git(root, "rev-parse", "HEAD").strip()

    def commit_paths(paths, message, *, expected_head):  # what a transaction's commit does
        new = git_ops.make_commit(root, paths, message, parent=expected_head, tmp_dir=root / ".git" / "tmpidx")
        git_ops.update_head(root, new, expected_head, reason="test")
        return new

    commit = commit_paths(["mine.txt"], "only mine\n", expected_head=before_head)
    git_ops.refresh_index(root, ["mine.txt"])
    assert git(root, "show", "--name-only", "--format=", commit).split() == ["mine.txt"]
    assert git(root, "rev-parse", "HEAD~1").strip() == before_head
    status = git(root, "status", "--porcelain")
    assert "A  staged.txt" in status and " M README.md" in status and "mine.txt" not in status
    # compare-and-swap: a stale expected HEAD moves nothing
    with pytest.raises(git_ops.GitError):
        commit_paths(["mine.txt"], "x\n", expected_head=before_head)
    assert git(root, "rev-parse", "HEAD").strip() == commit
