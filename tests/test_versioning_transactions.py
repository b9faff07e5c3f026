"""One save is one transaction: a failure at any step leaves the repository as it was;
concurrent processes wait for the lock and every version ends up recorded."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

import adaptvc
from adaptvc import transaction
from adaptvc.errors import LockTimeoutError
from adaptvc.repo import AdapterRepo
from adaptvc.storage import git_ops
from adaptvc.storage.dvc_cache import DvcCache
from adaptvc.storage.state import CloneState
from tests.conftest import REPO_ROOT, run_cli
from tests.versioning_helpers import (  # noqa: F401 - fixtures
    _initialised_template,
    avc_repo,
    git,
    repo_snapshot,
    write_adapter,
)

A = "adapters/task_a"


class Boom(RuntimeError):
    pass


def _fail(*args, **kwargs):
    raise Boom("injected failure")


def _fail_on_git(subcommand):
    real = git_ops.run_git

    def run(root, *args, **kwargs):
        if args and args[0] == subcommand:
            raise Boom(f"injected failure in git {subcommand}")
        return real(root, *args, **kwargs)

    return run


def _fail_writing(name):
    real = transaction.write_atomic

    def write(path, data, **kw):
        if path.name == name:
            raise Boom(f"injected failure writing {name}")
        return real(path, data, **kw)

    return write


STEPS = {
    "cache add": (DvcCache, "add", _fail),
    "hash config blob": (git_ops, "hash_object", _fail),
    "write config": (transaction, "write_atomic", _fail_writing("adapter_config.json")),
    "write pointer": (transaction, "write_atomic", _fail_writing("adapter_model.safetensors.dvc")),
    "write manifest": (transaction, "write_atomic", _fail_writing("versions.jsonl")),
    "build tree": (git_ops, "run_git", _fail_on_git("write-tree")),
    "commit object": (git_ops, "run_git", _fail_on_git("commit-tree")),
    "move HEAD": (git_ops, "run_git", _fail_on_git("update-ref")),
    "tag": (git_ops, "create_tag", _fail),
    "refresh index": (git_ops, "refresh_index", _fail),
    "record workspace state": (CloneState, "set_at", _fail),
    "remember hash": (CloneState, "remember", _fail),
}


@pytest.mark.parametrize("from_dir", [False, True], ids=["in-place", "from-dir"])
@pytest.mark.parametrize("step", list(STEPS))
def test_failure_at_any_step_leaves_the_repository_as_it_was(avc_repo, tmp_path, step, from_dir):
    write_adapter(A, 0)
    adaptvc.save(adapter="task_a", message="v1")
    (avc_repo / "README.md").write_text("user edit\n")
    (avc_repo / "staged.txt").write_text("staged\n")
    git(avc_repo, "add", "staged.txt")
    source = None
    if from_dir:
        source = write_adapter(tmp_path / "train-out", 1, config={"lora_alpha": 8})
    else:
        write_adapter(A, 1, config={"lora_alpha": 8})
    before = repo_snapshot(avc_repo)
    target, attr, replacement = STEPS[step]
    with pytest.MonkeyPatch.context() as mp, pytest.raises(Boom):
        mp.setattr(target, attr, replacement)
        adaptvc.save(source, adapter="task_a", message="v2")
    after = repo_snapshot(avc_repo)
    assert after["head"] == before["head"]
    assert after["refs"] == before["refs"]  # no tag, no branch move
    assert after["index"] == before["index"]
    assert after["status"] == before["status"]
    assert after["files"] == before["files"]  # no half-written manifest, workspace restored
    assert [v.ref for v in adaptvc.log("task_a")] == ["task_a@v1"]
    assert not list((avc_repo / ".git" / "adaptvc").glob("save-*"))  # staging cleaned up
    # and the repository still works
    assert adaptvc.save(source, adapter="task_a", message="v2 again").ref == "task_a@v2"


def _save_proc(root, adapter, source, message):
    env = dict(__import__("os").environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "adaptvc", "save", "--adapter", adapter, "--from", str(source), "-m", message],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_concurrent_saves_all_end_up_recorded(avc_repo, tmp_path):
    sources = [write_adapter(tmp_path / f"src{i}", i) for i in range(4)]
    procs = [
        _save_proc(avc_repo, "task_a", sources[0], "a from p0"),
        _save_proc(avc_repo, "task_a", sources[1], "a from p1"),
        _save_proc(avc_repo, "task_b", sources[2], "b from p2"),
        _save_proc(avc_repo, "task_b", sources[3], "b from p3"),
    ]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    log = adaptvc.log()
    assert sorted(v.ref for v in log) == ["task_a@v1", "task_a@v2", "task_b@v1", "task_b@v2"]
    assert all(v.commit for v in log)
    assert len(git(avc_repo, "log", "--format=%H", "--", "adapters").split()) == 4
    git(avc_repo, "fsck", "--strict")
    assert git(avc_repo, "status", "--porcelain") == ""
    for name in ("task_a", "task_b"):
        lines = (avc_repo / "adapters" / name / "versions.jsonl").read_text().splitlines()
        assert [json.loads(line)["version"] for line in lines] == [1, 2]
    assert {s.state for s in adaptvc.status()} == {"clean"}


def test_a_second_process_waits_for_the_lock(avc_repo, tmp_path):
    src = write_adapter(tmp_path / "src", 0)
    repo = AdapterRepo.open(avc_repo)
    with repo.lock():
        proc = _save_proc(avc_repo, "task_a", src, "waited")
        time.sleep(1.5)
        assert proc.poll() is None  # still waiting, not failed
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert [v.ref for v in adaptvc.log("task_a")] == ["task_a@v1"]


def test_lock_timeout_is_a_clear_error(avc_repo, tmp_path):
    (avc_repo / ".adaptvc" / "config.toml").write_text("[adaptvc]\nlock_timeout = 0.5\n")
    src = write_adapter(tmp_path / "src", 0)
    repo = AdapterRepo.open(avc_repo)
    with repo.lock():
        proc = run_cli("save", "--adapter", "task_a", "--from", str(src), "-m", "x")
    assert proc.returncode == 1 and "another adaptvc process" in proc.stderr
    with repo.lock(), pytest.raises(LockTimeoutError):
        adaptvc.save(src, adapter="task_a", message="x")
