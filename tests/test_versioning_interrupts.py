"""A save killed part-way (SIGINT, SIGTERM, SIGHUP, SIGKILL), in a real process: the
repository ends up as it was (or, when HEAD had already moved to the new commit, with the
version completed), the lock is free, and the DVC cache holds no partial object; an
interrupted checkout; and saving in an unusual git state (detached HEAD)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import pytest

import adaptvc
from adaptvc.repo import AdapterRepo
from tests.conftest import run_cli
from tests.versioning_helpers import (  # noqa: F401 - fixtures
    _initialised_template,
    avc_repo,
    git,
    repo_snapshot,
    write_adapter,
)

A = "adapters/task_a"

# Runs `adaptvc save` with a pause just before or just after the commit moves HEAD, and
# says "paused" on stdout, so the test knows the transaction is half-way when it kills.
_SLOW_SAVE = textwrap.dedent("""
    import sys, time
    from adaptvc.storage import git_ops
    where = sys.argv[1]
    real = git_ops.update_head  # the step that moves HEAD to the new commit

    def paused(*args, **kwargs):  # only the first move: a rollback moves HEAD back unpaused
        git_ops.update_head = real
        if where == "before":
            print("paused", flush=True); time.sleep(60)
        real(*args, **kwargs)
        if where == "after":
            print("paused", flush=True); time.sleep(60)

    git_ops.update_head = paused
    from adaptvc.cli.main import main
    sys.argv = ["adaptvc", "save", "--adapter", "task_a", "-m", "interrupted"]
    main()
""")


def _default_signal_handling() -> None:
    # The save is run as a terminal would run it: a test runner started under nohup (or
    # as a background job) passes SIGHUP/SIGINT on ignored, and adaptvc keeps a disposition
    # it inherits, so the signal would never arrive.
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


def _kill_mid_save(root, where: str, sig: int) -> subprocess.CompletedProcess:
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_SAVE, where],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_signal_handling,
    )
    assert proc.stdout.readline().strip() == "paused"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _partial_cache_files(root) -> list:
    return [p for p in (root / ".dvc" / "cache").rglob("*") if p.is_file() and p.name.endswith(".tmp")]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
@pytest.mark.parametrize("where", ["before", "after"])
def test_a_signal_mid_save_rolls_it_back(avc_repo, where, sig):
    write_adapter(A, 0)
    adaptvc.save(adapter="task_a", message="v1")
    write_adapter(A, 1)
    before = repo_snapshot(avc_repo)
    proc = _kill_mid_save(avc_repo, where, sig)
    assert proc.returncode == 130, proc.stderr  # handled like Ctrl-C, not cut off
    after = repo_snapshot(avc_repo)
    assert after == before  # HEAD, refs, index, status and every file's bytes
    assert not (avc_repo / ".git" / "adaptvc" / "transaction.json").exists()
    assert not _partial_cache_files(avc_repo)
    with AdapterRepo.open(avc_repo).lock(timeout=1):  # the lock is free
        pass
    assert adaptvc.save(adapter="task_a", message="again").ref == "task_a@v2"
    assert git(avc_repo, "status", "--porcelain") == ""


def test_sigkill_before_the_commit_is_rolled_back_by_the_next_command(avc_repo):
    write_adapter(A, 0)
    adaptvc.save(adapter="task_a", message="v1")
    write_adapter(A, 1)
    before = repo_snapshot(avc_repo)
    _kill_mid_save(avc_repo, "before", signal.SIGKILL)
    assert (avc_repo / ".git" / "adaptvc" / "transaction.json").exists()  # nothing could be undone yet
    status = run_cli("status", cwd=avc_repo, check=True)  # takes the lock, sees the journal
    assert "rolled it back" in status.stderr and "task_a@v1" in status.stdout
    assert repo_snapshot(avc_repo) == before
    assert not list((avc_repo / ".git" / "adaptvc").glob("save-*"))
    assert adaptvc.save(adapter="task_a", message="again").ref == "task_a@v2"


def test_sigkill_after_the_commit_is_completed_by_the_next_command(avc_repo):
    write_adapter(A, 0)
    adaptvc.save(adapter="task_a", message="v1")
    write_adapter(A, 1)
    _kill_mid_save(avc_repo, "after", signal.SIGKILL)
    # HEAD moved, but the tag and the real index were not done
    assert git(avc_repo, "tag", "--list").split() == ["task_a@v1"]
    log = run_cli("log", "task_a", "--json", cwd=avc_repo, check=True)
    assert "completed it" in log.stderr
    assert [d["ref"] for d in json.loads(log.stdout)] == ["task_a@v2", "task_a@v1"]
    assert git(avc_repo, "tag", "--list").split() == ["task_a@v1", "task_a@v2"]
    assert git(avc_repo, "status", "--porcelain") == ""
    assert adaptvc.status()[0].state == "clean"
    git(avc_repo, "fsck", "--strict")


@pytest.mark.parametrize("fail_on", ["adapter_config.json", "adapter_model.safetensors.dvc"])
def test_an_interrupted_checkout_leaves_the_directory_as_it_was(avc_repo, monkeypatch, fail_on):
    from adaptvc.transaction import Transaction

    write_adapter(A, 0)
    adaptvc.save(adapter="task_a", message="rank 4")
    write_adapter(A, 1, config={"r": 8})
    adaptvc.save(adapter="task_a", message="rank 8")
    before = repo_snapshot(avc_repo)
    real = Transaction.write_bytes

    def interrupted(self, path, data, **kwargs):
        if path.name == fail_on:  # Ctrl-C after the weights (and maybe the config) were replaced
            raise KeyboardInterrupt
        return real(self, path, data, **kwargs)

    with monkeypatch.context() as patched, pytest.raises(KeyboardInterrupt):
        patched.setattr(Transaction, "write_bytes", interrupted)
        adaptvc.checkout("task_a@v1")
    assert repo_snapshot(avc_repo) == before  # r=8 config still next to r=8 weights
    status = adaptvc.status()[0]
    assert (status.state, status.version.ref) == ("clean", "task_a@v2")
    assert not list((avc_repo / ".git" / "adaptvc").glob("checkout-*"))
    assert adaptvc.checkout("task_a@v1").peft.r == 4
    assert json.loads((avc_repo / A / "adapter_config.json").read_text())["r"] == 4


def test_save_on_a_detached_head_warns_that_the_version_is_on_no_branch(avc_repo):
    write_adapter(A, 0)
    adaptvc.save(adapter="task_a", message="v1")
    git(avc_repo, "checkout", "-q", "--detach")
    write_adapter(A, 1)
    proc = run_cli("save", "--adapter", "task_a", "-m", "detached", cwd=avc_repo, check=True)
    assert "HEAD is detached" in proc.stderr and "git switch -c" in proc.stderr
    assert git(avc_repo, "status", "--porcelain") == ""


def test_worktrees_of_one_repository_share_the_lock(avc_repo, tmp_path):
    from adaptvc.errors import LockTimeoutError

    write_adapter(A, 0)
    adaptvc.save(adapter="task_a", message="v1")
    other = tmp_path / "other-worktree"
    git(avc_repo, "worktree", "add", "-q", "-b", "other", str(other))
    # both would number the next version from the shared tags: one save at a time
    with AdapterRepo.open(avc_repo).lock():
        with pytest.raises(LockTimeoutError):
            with AdapterRepo.open(other).lock(timeout=0.3):
                pass
    write_adapter(other / A, 1)
    assert adaptvc.save(adapter="task_a", message="in the worktree", repo=other).ref == "task_a@v2"
    assert adaptvc.status(repo=avc_repo)[0].version.ref == "task_a@v1"  # per-worktree state stays apart


def test_status_does_not_wait_for_a_save_that_is_still_running(avc_repo):
    import time

    write_adapter(A, 0)
    adaptvc.save(adapter="task_a", message="v1")
    write_adapter(A, 1)
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_SAVE, "before"],
        cwd=avc_repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "paused"  # journal written, lock held, alive
        start = time.monotonic()
        status = run_cli("status", cwd=avc_repo, check=True)
        assert time.monotonic() - start < 10 and "interrupted" not in status.stderr
        assert (avc_repo / ".git" / "adaptvc" / "transaction.json").exists()  # not "recovered" under its feet
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert not (avc_repo / ".git" / "adaptvc" / "transaction.json").exists()


def test_a_copy_left_in_the_cache_by_a_killed_process_is_swept(avc_repo):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    md5_dir = avc_repo / ".dvc" / "cache" / "files" / "md5"
    md5_dir.mkdir(parents=True, exist_ok=True)
    stale = md5_dir / f".adaptvc-{dead}-0badf00d.tmp"  # what SIGKILL during the copy leaves
    stale.write_bytes(b"partial")
    live = md5_dir / f".adaptvc-{1}-0badf00d.tmp"  # pid 1 is alive: not ours to remove
    live.write_bytes(b"partial")
    write_adapter(A, 0)
    adaptvc.save(adapter="task_a", message="v1")
    assert not stale.exists() and live.exists()


_SLOW_CHECKOUT = textwrap.dedent("""
    import sys, time
    from adaptvc.transaction import Transaction
    real = Transaction.write_bytes

    def paused(self, path, data, **kwargs):
        if path.name == "adapter_config.json":  # the weights have been replaced already
            print("paused", flush=True); time.sleep(60)
        return real(self, path, data, **kwargs)

    Transaction.write_bytes = paused
    import adaptvc
    adaptvc.checkout(sys.argv[1])
""")


def test_sigkill_mid_checkout_is_rolled_back_by_the_next_command(avc_repo):
    write_adapter(A, 0)
    adaptvc.save(adapter="task_a", message="rank 4")
    write_adapter(A, 1, config={"r": 8})
    adaptvc.save(adapter="task_a", message="rank 8")
    before = repo_snapshot(avc_repo)
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_CHECKOUT, "task_a@v1"],
        cwd=avc_repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "paused"
    proc.kill()
    proc.communicate(timeout=60)
    assert repo_snapshot(avc_repo) != before  # r=4 weights next to the r=8 config, for now
    status = run_cli("status", cwd=avc_repo, check=True)
    assert "checkout of task_a@v1 was interrupted" in status.stderr and "clean" in status.stdout
    assert repo_snapshot(avc_repo) == before
    assert not list((avc_repo / ".git" / "adaptvc").glob("checkout-*"))


@pytest.mark.parametrize("where", ["before", "after"])
def test_an_alias_killed_outright_is_settled_by_the_next_command(avc_repo, where):
    write_adapter(A, 0)
    adaptvc.save(adapter="task_a", message="v1")
    before = repo_snapshot(avc_repo)
    script = _SLOW_SAVE.replace(
        'sys.argv = ["adaptvc", "save", "--adapter", "task_a", "-m", "interrupted"]',
        'sys.argv = ["adaptvc", "alias", "task_a@v1", "production"]',
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, where], cwd=avc_repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "paused"
    proc.kill()
    proc.communicate(timeout=60)
    shown = run_cli("show", "task_a@v1", "--json", cwd=avc_repo)
    assert "alias of task_a@production was interrupted" in shown.stderr
    if where == "before":
        assert repo_snapshot(avc_repo) == before
        assert json.loads(shown.stdout)["aliases"] == []
    else:
        assert json.loads(shown.stdout)["aliases"] == ["production"]
        assert git(avc_repo, "status", "--porcelain") == ""
