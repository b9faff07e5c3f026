"""Moving weights between the DVC cache and real remotes (directory, moto S3, OpenSSH):
hash-checked, never a partial object under a final name, resumable, and DVC agrees."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

import adaptvc
from adaptvc.storage import transfer
from adaptvc.storage.dvc_cache import DvcCache, file_md5
from tests.conftest import read_terminal, run_cli
from tests.remote_servers import RemoteSpec
from tests.versioning_helpers import _initialised_template, avc_repo, dvc, write_adapter  # noqa: F401


def configure_remote(root: Path, spec: RemoteSpec, name: str = "storage") -> None:
    adaptvc.remote_add(name, spec.url, default=True, repo=root)
    for key, value in spec.team_config.items():
        adaptvc.remote_modify(name, key, value, repo=root)
    for key, value in spec.local_config.items():
        adaptvc.remote_modify(name, key, value, repo=root, local=True)


def save_versions(root: Path, n: int, adapter: str = "task_a", first_seed: int = 1) -> list:
    versions = []
    for seed in range(first_seed, first_seed + n):
        write_adapter(root / "adapters" / adapter, seed)
        versions.append(adaptvc.save(root / "adapters" / adapter, adapter=adapter, message=f"epoch {seed}", repo=root))
    return versions


def remote_object_exists(spec: RemoteSpec, md5: str, s3_server=None) -> bool:
    if spec.root is not None:
        return spec.object_path(md5).is_file()
    return f"files/md5/{md5[:2]}/{md5[2:]}" in s3_server.keys(spec)


def corrupt_remote_object(spec: RemoteSpec, md5: str, s3_server=None) -> None:
    if spec.root is not None:
        path = spec.object_path(md5)
        path.chmod(0o644)
        path.write_bytes(b"not the weights")
    else:
        key = spec.url.split("/", 3)[3] + f"/files/md5/{md5[:2]}/{md5[2:]}"
        s3_server.client().put_object(Bucket="adaptvc-test", Key=key, Body=b"not the weights")


def leftovers(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*.tmp")] if directory.exists() else []


@pytest.fixture
def shared(avc_repo, dvc_remote, request):
    configure_remote(avc_repo, dvc_remote)
    s3 = request.getfixturevalue("s3_server") if dvc_remote.kind == "s3" else None
    return avc_repo, dvc_remote, s3


def test_push_fetch_round_trip_and_dvc_agrees(shared):
    root, spec, s3 = shared
    versions = save_versions(root, 3)
    md5s = [v.id for v in versions]

    pushed = transfer.push_objects(root, md5s)
    assert pushed.ok and sorted(pushed.transferred) == sorted(md5s) and pushed.bytes == sum(v.size for v in versions)
    assert all(remote_object_exists(spec, m, s3) for m in md5s)
    assert "in sync" in dvc(root, "status", "-c", "-A").stdout

    again = transfer.push_objects(root, md5s)  # a re-run resumes: nothing left to send
    assert again.transferred == () and sorted(again.skipped) == sorted(md5s)

    cache = DvcCache.for_repo(root)
    shutil.rmtree(cache.path / "files")
    fetched = transfer.fetch_objects(root, md5s)
    assert fetched.ok and sorted(fetched.transferred) == sorted(md5s)
    for m in md5s:
        obj = cache.object_path(m)
        assert file_md5(obj)[0] == m
        assert not obj.stat().st_mode & stat.S_IWUSR  # read-only, as DVC keeps its cache
    assert leftovers(cache.path) == []
    assert "in sync" in dvc(root, "status", "-c", "-A").stdout


def test_plain_dvc_push_is_seen_by_adaptvc(shared):
    root, spec, s3 = shared
    (v,) = save_versions(root, 1)
    dvc(root, "push")
    assert transfer.remote_has(root, [v.id]) == {v.id}
    assert transfer.push_objects(root, [v.id]).skipped == (v.id,)


def test_damaged_object_on_the_remote_never_enters_the_cache(shared):
    root, spec, s3 = shared
    (v,) = save_versions(root, 1)
    transfer.push_objects(root, [v.id])
    corrupt_remote_object(spec, v.id, s3)
    cache = DvcCache.for_repo(root)
    shutil.rmtree(cache.path / "files")

    result = transfer.fetch_objects(root, [v.id])

    assert not result.ok and "damaged" in result.failed[v.id].message
    assert not cache.has(v.id) and leftovers(cache.path) == []


def test_interrupted_download_leaves_no_object_and_a_rerun_completes(shared, monkeypatch):
    root, spec, s3 = shared
    (v,) = save_versions(root, 1)
    transfer.push_objects(root, [v.id])
    cache = DvcCache.for_repo(root)
    shutil.rmtree(cache.path / "files")
    original = transfer.RemoteStore.download

    def cut_short(self, md5, dest, callback):
        original(self, md5, dest, callback)
        with open(dest, "r+b") as fobj:
            fobj.truncate(100)  # the connection dropped half-way
        raise KeyboardInterrupt

    monkeypatch.setattr(transfer.RemoteStore, "download", cut_short)
    with pytest.raises(KeyboardInterrupt):
        transfer.fetch_objects(root, [v.id])
    assert not cache.has(v.id) and leftovers(cache.path) == []

    monkeypatch.setattr(transfer.RemoteStore, "download", original)
    assert transfer.fetch_objects(root, [v.id]).transferred == (v.id,)
    assert file_md5(cache.object_path(v.id))[0] == v.id


@pytest.mark.parametrize("dvc_remote", ["dir", "ssh"], indirect=True)
def test_interrupted_upload_leaves_nothing_under_the_final_name(shared, monkeypatch):
    # (S3 publishes an object only when its upload completes: nothing to test there.)
    root, spec, _ = shared
    (v,) = save_versions(root, 1)
    store_cls = transfer.RemoteStore
    original = store_cls.upload

    def cut_short(self, local, md5, size, callback):
        real_put = self.fs.put_file

        def partial_put(src, dst, **kwargs):
            real_put(src, dst, **kwargs)
            with self.fs.open(dst, "wb") as fobj:  # only part of it arrived
                fobj.write(b"half")
            raise ConnectionResetError("connection lost")

        def partial_copy(src, dests, **kwargs):  # a directory remote: adaptvc's own hashed copy
            dests[0].write_bytes(b"half")
            raise ConnectionResetError("connection lost")

        monkeypatch.setattr(self.fs, "put_file", partial_put)
        monkeypatch.setattr(transfer, "copy_hashing", partial_copy)
        return original(self, local, md5, size, callback)

    monkeypatch.setattr(store_cls, "upload", cut_short)
    result = transfer.push_objects(root, [v.id])
    assert not result.ok and "connection lost" in result.failed[v.id].message
    assert not spec.object_path(v.id).exists() and leftovers(spec.root) == []
    assert "in sync" not in dvc(root, "status", "-c").stdout  # DVC agrees: the object is missing

    monkeypatch.undo()  # the real upload and copy again
    assert transfer.push_objects(root, [v.id]).transferred == (v.id,)
    assert file_md5(spec.object_path(v.id))[0] == v.id
    assert "in sync" in dvc(root, "status", "-c").stdout


@pytest.mark.parametrize("dvc_remote", ["dir"], indirect=True)
def test_damaged_local_object_is_not_uploaded(shared):
    root, spec, _ = shared
    (v,) = save_versions(root, 1)
    obj = DvcCache.for_repo(root).object_path(v.id)
    obj.chmod(0o644)
    obj.write_bytes(b"bit rot")
    result = transfer.push_objects(root, [v.id])
    assert "damaged" in result.failed[v.id].message and not spec.object_path(v.id).exists()


@pytest.mark.parametrize("dvc_remote", ["dir"], indirect=True)
def test_progress_on_a_terminal_and_silence_otherwise(shared):
    import fcntl
    import pty
    import struct
    import subprocess
    import sys
    import termios

    from tests.conftest import REPO_ROOT

    root, _, _ = shared
    save_versions(root, 2)
    quiet = run_cli("push", "--no-git", cwd=root, check=True)
    assert quiet.stderr.count("\n") == 1 and "Uploaded 2 version(s)" in quiet.stderr

    save_versions(root, 1, first_seed=7)
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal has a size
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    env.pop("NO_COLOR", None)
    proc = subprocess.run(
        [sys.executable, "-m", "adaptvc", "push", "--no-git"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=follower,
        timeout=120,
    )
    os.close(follower)
    tty_err = read_terminal(leader)
    assert proc.returncode == 0 and proc.stdout == b""
    assert "weights" in tty_err and "B/s" in tty_err  # the bar
