"""The transaction primitive on its own (adaptvc/transaction.py): what a block that fails
leaves, what a killed process leaves and how the next one settles it, in a real git
repository with adaptvc initialised."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from adaptvc import transaction as txn_module
from adaptvc.repo import AdapterRepo
from adaptvc.storage import git_ops
from adaptvc.transaction import JOURNAL_NAME, Journal, recover, settle_interrupted, transaction
from tests.conftest import REPO_ROOT
from tests.versioning_helpers import (  # noqa: F401 - fixtures
    _initialised_template,
    avc_repo,
    git,
    repo_snapshot,
)


class Boom(RuntimeError):
    pass


def _journal(root) -> Journal | None:
    return Journal.read(root / ".git" / "adaptvc" / JOURNAL_NAME)


@pytest.mark.parametrize("fail_after", ["writes", "commit", "state"])
def test_a_failing_block_leaves_files_head_tags_index_and_state_as_they_were(avc_repo, fail_after):
    repo = AdapterRepo.open(avc_repo)
    (avc_repo / "kept.txt").write_text("old\n")
    (avc_repo / "gone.txt").write_text("will be removed\n")
    git(avc_repo, "add", "kept.txt", "gone.txt")
    git(avc_repo, "commit", "-q", "-m", "two files")
    (avc_repo / "staged.txt").write_text("the user's\n")
    git(avc_repo, "add", "staged.txt")
    repo.state.set_at("task_a", {"version": 1, "id": "a" * 32, "created_at": "t", "ref": "task_a@v1"})
    before, state_before = repo_snapshot(avc_repo), repo.state.workspace()
    with pytest.raises(Boom), transaction(repo, "test", "a test") as txn:
        txn.write_bytes(avc_repo / "kept.txt", b"new\n")
        txn.write_bytes(avc_repo / "created.txt", b"created\n")
        txn.remove(avc_repo / "gone.txt")
        txn.set_state("task_a", None)
        if fail_after == "writes":
            raise Boom
        commit = txn.commit(["kept.txt", "created.txt", "gone.txt"], "a commit\n", tags=[("t@v9", "tag")])
        assert git_ops.head_commit(avc_repo) == commit and git_ops.tag_exists(avc_repo, "t@v9")
        if fail_after == "commit":
            raise Boom
        repo.state.set_at = _boom  # type: ignore[method-assign]  # the state step at the end fails
    assert repo_snapshot(avc_repo) == before  # HEAD, refs (no tag), index, status, every file
    assert AdapterRepo.open(avc_repo).state.workspace() == state_before
    assert _journal(avc_repo) is None
    assert not list((avc_repo / ".git" / "adaptvc").glob("test-*"))  # scratch space removed


def _boom(*args, **kwargs):
    raise Boom


def test_a_block_that_writes_nothing_leaves_no_journal(avc_repo):
    repo = AdapterRepo.open(avc_repo)
    before = repo_snapshot(avc_repo)
    with transaction(repo, "test") as txn:
        assert txn.head == git_ops.head_commit(avc_repo)
    assert repo_snapshot(avc_repo) == before and _journal(avc_repo) is None


def test_commit_is_by_compare_and_swap_of_head(avc_repo):
    repo = AdapterRepo.open(avc_repo)
    (avc_repo / "mine.txt").write_text("mine\n")
    with pytest.raises(git_ops.GitError) as err, transaction(repo, "test") as txn:
        txn.write_bytes(avc_repo / "mine.txt", b"ours\n")
        git(avc_repo, "commit", "-q", "--allow-empty", "-m", "someone else's commit, meanwhile")
        moved = git_ops.head_commit(avc_repo)
        txn.commit(["mine.txt"], "ours\n")
    assert "HEAD moved" in (err.value.hint or "")
    assert git_ops.head_commit(avc_repo) == moved  # theirs kept, ours not forced on top
    assert (avc_repo / "mine.txt").read_text() == "mine\n"


def test_stage_updates_the_index_undoably(avc_repo):
    repo = AdapterRepo.open(avc_repo)
    (avc_repo / "f.txt").write_text("one\n")
    git(avc_repo, "add", "f.txt")
    index = git(avc_repo, "ls-files", "-s", "f.txt")
    with pytest.raises(Boom), transaction(repo, "test", commits=False) as txn:
        txn.write_bytes(avc_repo / "f.txt", b"two\n")
        txn.stage(["f.txt"])
        assert git(avc_repo, "ls-files", "-s", "f.txt") != index
        raise Boom
    assert git(avc_repo, "ls-files", "-s", "f.txt") == index
    assert (avc_repo / "f.txt").read_text() == "one\n"


def test_a_damaged_journal_is_dropped_as_written_before_any_file(avc_repo):
    repo = AdapterRepo.open(avc_repo)
    path = repo.state_dir / JOURNAL_NAME
    path.write_text('{"operation": "save", "lab')  # cut short
    assert recover(repo) is None and not path.exists()


# A transaction in a process of its own that says "paused" at a chosen point and waits to be
# killed; what it wrote is what a process killed outright (SIGKILL, OOM, power loss) leaves.
_KILLED = textwrap.dedent("""
    import sys, time
    from adaptvc.repo import AdapterRepo
    from adaptvc.transaction import transaction
    where, root = sys.argv[1], sys.argv[2]
    repo = AdapterRepo.open(root)
    with transaction(repo, "test", "a test", commits=where != "workspace") as txn:
        txn.write_bytes(repo.root / "f.txt", b"theirs\\n")
        txn.set_state("task_a", {"version": 2, "id": "b" * 32, "created_at": "t2", "ref": "task_a@v2"})
        if where in ("after", "below"):
            txn.commit(["f.txt"], "f: theirs\\n", tags=[("t@v2", "the tag")])
        print("paused", flush=True)
        time.sleep(60)
""")


def _commit_f(root) -> None:
    (root / "f.txt").write_text("ours\n")
    git(root, "add", "f.txt")
    git(root, "commit", "-q", "-m", "f")


def _killed_mid_transaction(root, where: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED, where, str(root)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout.readline().strip() == "paused"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)


@pytest.mark.parametrize("where", ["before", "workspace"])
def test_killed_before_head_moved_the_next_transaction_rolls_it_back(avc_repo, where, caplog):
    _commit_f(avc_repo)
    before = repo_snapshot(avc_repo)
    _killed_mid_transaction(avc_repo, where)
    assert (avc_repo / "f.txt").read_text() == "theirs\n" and _journal(avc_repo) is not None
    repo = AdapterRepo.open(avc_repo)
    with caplog.at_level("WARNING", logger="adaptvc"):
        settle_interrupted(repo)
    assert "a test of a test was interrupted" in caplog.text and "rolled it back" in caplog.text
    assert repo_snapshot(avc_repo) == before and _journal(avc_repo) is None
    assert repo.state.at("task_a") is None


def test_killed_after_head_moved_the_next_transaction_completes_it(avc_repo, caplog):
    _commit_f(avc_repo)
    _killed_mid_transaction(avc_repo, "after")
    head = git_ops.head_commit(avc_repo)
    assert git(avc_repo, "log", "-1", "--format=%B", head).startswith("f: theirs")
    repo = AdapterRepo.open(avc_repo)
    with caplog.at_level("WARNING", logger="adaptvc"):
        settle_interrupted(repo)
    assert "completed it" in caplog.text
    assert git_ops.rev_parse(avc_repo, "refs/tags/t@v2^{commit}") == head
    assert git(avc_repo, "status", "--porcelain") == ""  # the index entry refreshed too
    assert repo.state.at("task_a")["ref"] == "task_a@v2"


def test_killed_then_someone_committed_on_top_tags_are_made_and_files_left(avc_repo, caplog):
    _commit_f(avc_repo)
    _killed_mid_transaction(avc_repo, "below")
    ours = git_ops.head_commit(avc_repo)
    (avc_repo / "f.txt").write_text("their later work\n")
    git(avc_repo, "commit", "-q", "-am", "work on top")
    repo = AdapterRepo.open(avc_repo)
    with caplog.at_level("WARNING", logger="adaptvc"):
        settle_interrupted(repo)
    assert "completed it" in caplog.text
    assert git_ops.rev_parse(avc_repo, "refs/tags/t@v2^{commit}") == ours  # the version keeps its tag
    assert (avc_repo / "f.txt").read_text() == "their later work\n"  # nothing put back over it


def test_the_journal_is_one_typed_record(avc_repo):
    # What a killed process leaves is exactly the dataclass's fields, nothing read with .get()
    _killed_mid_transaction(avc_repo, "after")
    data = json.loads((avc_repo / ".git" / "adaptvc" / JOURNAL_NAME).read_text())
    assert set(data) == {f.name for f in txn_module.dataclasses.fields(Journal)}
    journal = _journal(avc_repo)
    assert journal is not None and journal.commit == git_ops.head_commit(avc_repo)
    assert journal.tags == [("t@v2", "the tag")] and journal.operation == "test"


def test_scratch_space_of_a_process_killed_before_any_journal_is_swept(avc_repo):
    repo = AdapterRepo.open(avc_repo)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
        ).stdout.strip()
        gone = repo.state_dir / f"save-{dead}-abcd1234"
        alive = repo.state_dir / f"save-{sleeper.pid}-abcd1234"
        for d in (gone, alive):
            (d / "converted").mkdir(parents=True)
        with transaction(repo, "test"):
            pass
        assert not gone.exists()  # its process is dead: nothing will ever use it
        assert alive.exists()  # a live process may still be working in it
    finally:
        sleeper.kill()
        sleeper.wait()
