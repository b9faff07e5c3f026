"""Crash campaign: SIGKILL at random moments of save, checkout, alias, push and pull.

Each trial copies a prepared world (a repository with versions, its git remote, its
directory DVC remote, a clone behind by one version), runs one command as a real process
and kills it, with every process it started (git among them), at a moment chosen at
random among the moments the command changes something on disk: each open for writing,
rename, replace, remove, link, mkdir and each process it starts, inside the trial's
directory. The moments come from Python's audit hooks (PEP 578), so a trial is
reproducible from its seed and needs no timing.

After the kill, the repository must be consistent (every logged version has its commit,
its ``NAME@vN`` tag and, where its weights are in the cache, an object whose MD5 matches;
no object on a remote under its final name holds other bytes) and the same command, run
again, must complete.

CI runs a few trials per command; the long campaign runs more::

    ADAPTVC_CAMPAIGN_TRIALS=40 ./dev.sh test tests/test_crash_campaign.py
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import adaptvc
from tests.conftest import REPO_ROOT, run_cli
from tests.versioning_helpers import git, write_adapter

TRIALS = int(os.environ.get("ADAPTVC_CAMPAIGN_TRIALS", "4"))
COMMANDS = ("save", "checkout", "alias", "push", "pull")

# The command, run under an audit hook that counts the moments it changes something
# inside ADAPTVC_KILL_SCOPE and kills its own process group at moment ADAPTVC_KILL_AT
# (0: only count, and write the count to ADAPTVC_KILL_COUNT at exit).
_KILLABLE = textwrap.dedent("""
    import atexit, os, signal, sys

    scope = os.environ["ADAPTVC_KILL_SCOPE"]
    kill_at = int(os.environ["ADAPTVC_KILL_AT"])
    count_file = os.environ.get("ADAPTVC_KILL_COUNT")
    PATH_EVENTS = {"os.rename", "os.replace", "os.remove", "os.link", "os.symlink", "os.mkdir",
                   "os.rmdir", "os.truncate", "os.chmod", "os.utime", "shutil.copyfile", "shutil.rmtree"}
    WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    moments = 0

    def in_scope(path):
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        return isinstance(path, str) and os.path.abspath(path).startswith(scope)

    def changes_something(event, args):
        if event == "subprocess.Popen":
            return True
        if event == "open":
            path, mode, flags = args
            writing = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & WRITE_FLAGS)
            return writing and in_scope(path)
        if event in PATH_EVENTS:
            return any(in_scope(a) for a in args[:2])
        return False

    def hook(event, args):
        global moments
        if changes_something(event, args):
            moments += 1
            if moments == kill_at:
                os.killpg(0, signal.SIGKILL)

    if count_file:
        atexit.register(lambda: open(count_file, "w").write(str(moments)))
    sys.addaudithook(hook)
    from adaptvc.cli.main import main
    sys.argv = ["adaptvc", *sys.argv[1:]]
    main()
""")


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def run_killable(args: list[str], *, cwd: Path, scope: Path, kill_at: int, count_file: Path | None = None) -> Outcome:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(ADAPTVC_KILL_SCOPE=str(scope), ADAPTVC_KILL_AT=str(kill_at))
    if count_file is not None:
        env["ADAPTVC_KILL_COUNT"] = str(count_file)
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLABLE, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the kill takes git children too
    )
    out, err = proc.communicate(timeout=300)
    _wait_for_group_to_end(proc.pid)
    return Outcome(proc.returncode, out, err)


def _wait_for_group_to_end(pgid: int, timeout: float = 30.0) -> None:
    """A killed command's children are killed with it; wait until the kernel has reaped
    them, so the checks see the disk as the kill left it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"processes of group {pgid} still alive {timeout}s after the kill")
        time.sleep(0.01)


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


# --- the worlds -------------------------------------------------------------------------


def _save(root: Path, adapter: str, seed: int, message: str) -> None:
    write_adapter(root / "adapters" / adapter, seed)
    run_cli("save", "--adapter", adapter, "-m", message, cwd=root, check=True)


def _point_remotes(world: Path) -> None:
    """A copied world's repositories still name the template's remotes: point them at
    the copy's (the DVC remote through config.local, which the copy alone reads)."""
    for repo in ("work", "clone"):
        root = world / repo
        git(root, "remote", "set-url", "origin", str(world / "origin.git"))
        adaptvc.remote_modify("storage", "url", str(world / "store"), repo=root, local=True)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two worlds: "push" (work has task_a@v3 not yet pushed) and "pull" (v3 pushed;
    clone still at v2). Each: work/, clone/, origin.git, store/ (the DVC remote)."""
    base = tmp_path_factory.mktemp("campaign")
    world = base / "build"
    world.mkdir()
    git(world, "init", "-q", "--bare", "-b", "main", "origin.git")
    work = world / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "README.md").write_text("# project\n")
    git(work, "add", "README.md")
    git(work, "commit", "-q", "-m", "initial commit")
    git(work, "remote", "add", "origin", str(world / "origin.git"))
    run_cli("init", cwd=work, check=True)
    run_cli("remote", "add", "storage", str(world / "store"), "--default", cwd=work, check=True)
    _save(work, "task_a", 1, "epoch 1")
    _save(work, "task_a", 2, "epoch 2")
    _save(work, "task_b", 10, "first")
    run_cli("push", "-q", cwd=work, check=True)
    run_cli("clone", str(world / "origin.git"), str(world / "clone"), cwd=world, check=True)
    _save(work, "task_a", 3, "epoch 3")
    worlds = {"push": base / "push", "pull": base / "pull"}
    shutil.copytree(world, worlds["push"], symlinks=True)
    run_cli("push", "-q", cwd=work, check=True)
    shutil.copytree(world, worlds["pull"], symlinks=True)
    for w in worlds.values():
        _point_remotes(w)
    return worlds


@dataclass
class Scenario:
    world: str  # which template world
    repo: str  # the repository the command runs in
    args: list[str]
    prepare: object = None  # called with the repository before the command (unkilled)


def _new_weights(root: Path) -> None:
    write_adapter(root / "adapters" / "task_a", 4)


SCENARIOS = {
    "save": Scenario("push", "work", ["save", "--adapter", "task_a", "-m", "epoch 4"], prepare=_new_weights),
    "checkout": Scenario("push", "work", ["checkout", "task_a@v1"]),
    "alias": Scenario("push", "work", ["alias", "task_a@v2", "production"]),
    "push": Scenario("push", "work", ["push", "-q"]),
    "pull": Scenario("pull", "clone", ["pull"]),
}


@dataclass
class Reference:
    moments: int  # how many moments the command has
    status: str  # `git status --porcelain` after it
    weights_md5: str  # of adapters/task_a/adapter_model.safetensors after it


def workspace_state(root: Path) -> tuple[str, str]:
    return git(root, "status", "--porcelain"), md5_of(root / "adapters/task_a/adapter_model.safetensors")


@pytest.fixture(scope="module")
def references(template: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Reference]:
    """Each command run once unkilled: how many moments it has, and the workspace it leaves."""
    refs = {}
    for name, scenario in SCENARIOS.items():
        world = tmp_path_factory.mktemp(f"reference-{name}") / "world"
        shutil.copytree(template[scenario.world], world, symlinks=True)
        root = world / scenario.repo
        if scenario.prepare:
            scenario.prepare(root)
        count_file = world / "moments"
        outcome = run_killable(scenario.args, cwd=root, scope=world, kill_at=0, count_file=count_file)
        assert outcome.returncode == 0, outcome.stderr
        refs[name] = Reference(int(count_file.read_text()), *workspace_state(root))
        assert refs[name].moments >= 5, f"{name}: only {refs[name].moments} moments; the audit hook is not counting"
    return refs


# --- the invariants -----------------------------------------------------------------------


def assert_consistent(root: Path, *, stores: list[Path]) -> list[dict]:
    """What a kill must never break; returns the logged versions."""
    status = run_cli("status", "--json", cwd=root)  # a read-only command settles a killed transaction
    assert status.returncode == 0, status.stderr
    log = run_cli("log", "--json", cwd=root)
    assert log.returncode == 0, log.stderr
    versions = json.loads(log.stdout)
    for v in versions:
        assert git(root, "cat-file", "-t", v["commit"]).strip() == "commit", v["ref"]
        tagged = git(root, "rev-parse", f"refs/tags/{v['ref']}^{{commit}}").strip()
        assert tagged == v["commit"], f"tag {v['ref']} points at {tagged}, the version's commit is {v['commit']}"
    # No object under its final name holds other bytes, in the cache or on a remote (a
    # killed copy leaves only a dot-named temporary, which the next copy sweeps away).
    for store in (root / ".dvc" / "cache", *stores):
        for obj in (store / "files" / "md5").glob("[0-9a-f][0-9a-f]/[0-9a-f]*"):
            assert md5_of(obj) == obj.parent.name + obj.name, f"object {obj} holds other bytes"
    fsck = subprocess.run(["git", "fsck", "--no-dangling"], cwd=root, capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    return versions


def assert_command_done(name: str, root: Path, world: Path, reference: Reference) -> None:
    """After the re-run: what the command was asked to do is done, and the workspace is
    as an unkilled run leaves it."""
    if name == "save":
        versions = json.loads(run_cli("log", "task_a", "--json", cwd=root, check=True).stdout)
        newest = versions[0]
        assert newest["message"] == "epoch 4"
        assert md5_of(root / "adapters/task_a/adapter_model.safetensors") == newest["id"]
        assert [v["version"] for v in versions] == [4, 3, 2, 1]
        temporaries = list((root / ".dvc" / "cache" / "files" / "md5").glob(".adaptvc-*.tmp"))
        assert temporaries == [], "the save after the kill did not sweep the killed copy's temporary"
    elif name == "checkout":
        v1 = json.loads(run_cli("show", "task_a@v1", "--json", cwd=root, check=True).stdout)
        assert md5_of(root / "adapters/task_a/adapter_model.safetensors") == v1["id"]
    elif name == "alias":
        shown = json.loads(run_cli("show", "task_a@production", "--json", cwd=root, check=True).stdout)
        assert shown["ref"] == "task_a@v2"
    elif name == "push":
        for v in json.loads(run_cli("log", "--json", cwd=root, check=True).stdout):
            assert (world / "store" / "files" / "md5" / v["id"][:2] / v["id"][2:]).is_file(), v["ref"]
        assert git(world / "origin.git", "rev-parse", "main") == git(root, "rev-parse", "main")
        assert "task_a@v3" in git(world / "origin.git", "tag")
    elif name == "pull":
        versions = json.loads(run_cli("log", "task_a", "--json", cwd=root, check=True).stdout)
        assert versions[0]["ref"] == "task_a@v3"
        assert md5_of(root / "adapters/task_a/adapter_model.safetensors") == versions[0]["id"]
    assert workspace_state(root) == (reference.status, reference.weights_md5)


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(TRIALS))
@pytest.mark.parametrize("name", COMMANDS)
def test_sigkill_at_a_random_moment(name, trial, template, references, tmp_path):
    scenario = SCENARIOS[name]
    world = tmp_path / "world"
    shutil.copytree(template[scenario.world], world, symlinks=True)
    root = world / scenario.repo
    if scenario.prepare:
        scenario.prepare(root)
    reference = references[name]
    kill_at = random.Random(f"{name}-{trial}").randint(1, reference.moments)

    killed = run_killable(scenario.args, cwd=root, scope=world, kill_at=kill_at)

    where = f"{name} killed at moment {kill_at} of {reference.moments} (exit {killed.returncode})"
    assert killed.returncode in (0, -signal.SIGKILL), f"{where}:\n{killed.stderr}"
    try:
        assert_consistent(root, stores=[world / "store"])
        again = run_cli(*scenario.args, cwd=root)
        assert again.returncode == 0, again.stdout + again.stderr
        assert_consistent(root, stores=[world / "store"])
        assert_command_done(name, root, world, reference)
    except AssertionError as exc:
        raise AssertionError(f"{where}: {exc}") from exc


@pytest.mark.torchless
def test_temporaries_of_killed_writers_are_swept(tmp_path):
    """What the campaign found: a writer killed between creating ``.NAME.PID.tmp`` and
    renaming it left the temporary in the adapter directory, where `git status` showed
    it for ever. Recovery now sweeps those of dead processes, and only those."""
    from adaptvc.storage.files import sweep_dead_temporaries

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    target = tmp_path / "aliases.jsonl"
    target.write_text("{}\n")
    of_dead = tmp_path / f".aliases.jsonl.{dead.pid}.tmp"
    of_living = tmp_path / f".aliases.jsonl.{os.getpid()}.tmp"
    unrelated = tmp_path / f".other.jsonl.{dead.pid}.tmp"
    for p in (of_dead, of_living, unrelated):
        p.write_text("partial")

    sweep_dead_temporaries(target)

    assert not of_dead.exists()
    assert of_living.exists() and unrelated.exists() and target.read_text() == "{}\n"
