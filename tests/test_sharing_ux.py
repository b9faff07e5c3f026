"""What team sharing says when something is in the way: each message names the problem in
adaptvc's terms and the hint is a command that works (regressions from a UX review).

The server side is real: a bare git repository and a directory DVC remote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import adaptvc
import adaptvc.api
from adaptvc.errors import AdaptvcError, RemoteNotFoundError
from adaptvc.storage.dvc_cache import file_md5
from tests.conftest import run_cli
from tests.versioning_helpers import _initialised_template, avc_repo, dvc, git, write_adapter  # noqa: F401

# Pure CLI on files: also run where adaptvc is installed without torch (./dev.sh test).
pytestmark = pytest.mark.torchless

A = "adapters/task_a"


@pytest.fixture
def team(avc_repo: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Alice (avc_repo) saved task_a@v1 and pushed it; Bob cloned. Returns (alice, bob)."""
    alice = avc_repo
    server = tmp_path / "server.git"
    git(tmp_path, "init", "-q", "--bare", str(server))
    git(alice, "remote", "add", "origin", str(server))
    adaptvc.remote_add("storage", str(tmp_path / "dvc-remote"), default=True, repo=alice)
    write_adapter(alice / A, 1)
    adaptvc.save(adapter="task_a", message="v1", repo=alice)
    adaptvc.push(repo=alice)
    bob = adaptvc.clone(str(server), tmp_path / "bob").path
    return alice, bob


def _alice_saves(alice: Path, seed: int, **config) -> None:
    write_adapter(alice / A, seed, config=config or None)
    adaptvc.save(adapter="task_a", message=f"seed {seed}", repo=alice)
    adaptvc.push(repo=alice)


def _edit_config(root: Path, **changes) -> bytes:
    path = root / A / "adapter_config.json"
    path.write_text(json.dumps(dict(json.loads(path.read_text()), **changes), indent=2))
    return path.read_bytes()


# --- 1. pull with unsaved changes ------------------------------------------------------------


def test_pull_names_the_adapter_with_unsaved_changes_and_loses_nothing(team):
    alice, bob = team
    _alice_saves(alice, 2, r=8)
    edited = _edit_config(bob, lora_alpha=99)
    head = git(bob, "rev-parse", "HEAD")

    proc = run_cli("pull", cwd=bob)

    assert proc.returncode == 1
    assert "Error: adapter task_a has unsaved changes (adapters/task_a/adapter_config.json)" in proc.stderr
    assert (
        "Hint: adaptvc save --adapter task_a -m … (or adaptvc checkout task_a --force to drop them), then adaptvc pull"
    ) in proc.stderr
    assert "would be overwritten by merge" not in proc.stderr and "git pull --no-rebase" not in proc.stderr
    assert (bob / A / "adapter_config.json").read_bytes() == edited and git(bob, "rev-parse", "HEAD") == head

    # The hint works: dropping the change lets the pull through.
    run_cli("checkout", "task_a", "--force", cwd=bob, check=True)
    run_cli("pull", cwd=bob, check=True)
    assert adaptvc.status(repo=bob)[0].version.ref == "task_a@v2"


def test_pull_after_saving_the_changes_leads_to_a_merge_that_keeps_them(team):
    alice, bob = team
    _alice_saves(alice, 2, r=8)
    _edit_config(bob, lora_alpha=99)
    run_cli("save", "--adapter", "task_a", "-m", "bob's alpha", cwd=bob, check=True)

    proc = run_cli("pull", cwd=bob)  # now the branches diverged: the hint says how to merge
    assert proc.returncode == 1 and "Hint: git pull --no-rebase origin main" in proc.stderr
    git(bob, "pull", "-q", "--no-rebase", "origin", "main")
    run_cli("pull", cwd=bob, check=True)
    versions = adaptvc.log("task_a", repo=bob)
    assert len(versions) == 3 and {"task_a@v1", "task_a@v2"} <= {v.ref for v in versions}
    (bobs,) = [v for v in versions if v.message == "bob's alpha"]
    saved = git(bob, "show", f"{bobs.commit}:{A}/adapter_config.json")
    assert json.loads(saved)["lora_alpha"] == 99  # the unsaved change survived as a version


def test_diverged_pull_with_unsaved_changes_the_merge_would_touch_says_save_first(team):
    alice, bob = team
    write_adapter(bob / A, 5)
    adaptvc.save(adapter="task_a", message="bob", repo=bob)  # a local commit: the branches will diverge
    _alice_saves(alice, 2, r=8)
    edited = _edit_config(bob, lora_dropout=0.5)

    proc = run_cli("pull", cwd=bob)

    assert proc.returncode == 1 and "adapter task_a has unsaved changes" in proc.stderr
    assert "then git pull --no-rebase origin main" in proc.stderr  # the next step after saving
    assert (bob / A / "adapter_config.json").read_bytes() == edited


def test_pull_with_an_unsaved_change_outside_adapters_says_commit_or_stash(team):
    alice, bob = team
    (alice / "README.md").write_text("# alice's readme\n")
    git(alice, "commit", "-qam", "readme")
    git(alice, "push", "-q", "--no-verify", "origin", "main")
    (bob / "README.md").write_text("# bob's unsaved readme\n")

    proc = run_cli("pull", cwd=bob)

    assert proc.returncode == 1 and "local changes would be overwritten by the pull (README.md)" in proc.stderr
    assert "Hint: git commit or git stash them, then adaptvc pull" in proc.stderr
    assert (bob / "README.md").read_text() == "# bob's unsaved readme\n"


def test_pull_bringing_an_adapter_that_exists_here_unsaved_names_it(team):
    alice, bob = team
    write_adapter(alice / "adapters/task_b", 3)
    adaptvc.save(adapter="task_b", message="b", repo=alice)
    adaptvc.push(repo=alice)
    write_adapter(bob / "adapters/task_b", 4)  # bob's own task_b, never saved
    mine = file_md5(bob / "adapters/task_b/adapter_model.safetensors")[0]

    proc = run_cli("pull", cwd=bob)

    assert proc.returncode == 1 and "adapter task_b was never saved here" in proc.stderr
    assert "Hint: move adapters/task_b/ out of adapters/" in proc.stderr and "then adaptvc pull" in proc.stderr
    assert file_md5(bob / "adapters/task_b/adapter_model.safetensors")[0] == mine


# --- 2. no git remote ------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["pull", "push"])
def test_no_git_remote_origin_says_so_and_how_to_add_one(team, command):
    _, bob = team
    git(bob, "remote", "remove", "origin")

    proc = run_cli(command, cwd=bob)

    assert proc.returncode == 1
    assert "Error: there is no git remote 'origin'" in proc.stderr
    assert "Hint: git remote add origin URL" in proc.stderr and f"adaptvc {command} --git-remote NAME" in proc.stderr
    assert "--no-git" in proc.stderr and "does not appear to be a git repository" not in proc.stderr
    assert run_cli(command, "--no-git", cwd=bob).returncode == 0  # the option the hint names works


def test_no_git_remote_lists_the_ones_there_are(team):
    _, bob = team
    git(bob, "remote", "rename", "origin", "upstream")
    with pytest.raises(RemoteNotFoundError, match=r"no git remote 'origin' \(git remotes: upstream\)"):
        adaptvc.pull(repo=bob)


# --- 3. clone ---------------------------------------------------------------------------------


def test_clone_into_a_non_empty_directory_says_so(team, tmp_path):
    alice, _ = team
    server = tmp_path / "server.git"
    target = tmp_path / "busy"
    target.mkdir()
    (target / "notes.txt").write_text("mine\n")

    proc = run_cli("clone", str(server), str(target), cwd=tmp_path)

    assert proc.returncode == 1
    assert f"Error: {target} already exists and is not empty" in proc.stderr
    assert f"Hint: pick another directory: adaptvc clone {server} NEW-DIR" in proc.stderr
    assert "ls-remote" not in proc.stderr
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    # an empty directory is fine, as with git clone
    (tmp_path / "empty").mkdir()
    run_cli("clone", str(server), str(tmp_path / "empty"), cwd=tmp_path, check=True)


def test_clone_onto_a_file_says_so(tmp_path):
    (tmp_path / "server.git").mkdir()
    (tmp_path / "taken").write_text("x")
    with pytest.raises(AdaptvcError, match="already exists and is not a directory"):
        adaptvc.clone(str(tmp_path / "server.git"), tmp_path / "taken")


def test_clone_of_a_remote_without_commits_says_it_has_none(tmp_path):
    server = tmp_path / "empty.git"
    git(tmp_path, "init", "-q", "--bare", str(server))

    proc = run_cli("clone", str(server), "fresh", cwd=tmp_path)

    assert proc.returncode == 0, proc.stderr
    assert "has no commits yet" in proc.stderr and "not an adaptvc repository" not in proc.stderr
    assert (tmp_path / "fresh" / ".git").is_dir()


def test_clone_whose_default_branch_has_no_commits_names_the_branches(avc_repo, tmp_path, caplog):
    server = tmp_path / "server.git"
    git(tmp_path, "init", "-q", "--bare", str(server))
    git(avc_repo, "push", "-q", "--no-verify", str(server), "main:dev")  # only `dev`; HEAD names main

    with caplog.at_level("WARNING", logger="adaptvc"):
        result = adaptvc.clone(str(server), tmp_path / "c")

    warnings = caplog.messages  # warnings take one channel: the "adaptvc" logger
    assert result.fetched == ()
    assert any("default branch" in w and "has no commits yet" in w and "git switch dev" in w for w in warnings)
    assert not any("not an adaptvc repository" in w for w in warnings)


# --- 4. remote default, remove, list -------------------------------------------------------------


def test_remote_default_makes_an_existing_remote_the_default_and_commits_only_dvc_config(avc_repo, tmp_path):
    run_cli("remote", "add", "one", str(tmp_path / "one"), cwd=avc_repo, check=True)
    run_cli("remote", "add", "two", str(tmp_path / "two"), cwd=avc_repo, check=True)
    write_adapter(avc_repo / A, 1)
    adaptvc.save(adapter="task_a", message="v1")

    proc = run_cli("push", "--no-git", cwd=avc_repo)  # several remotes, none the default
    assert proc.returncode == 1 and "Hint: adaptvc remote default NAME" in proc.stderr

    (avc_repo / "notes.txt").write_text("staged\n")
    git(avc_repo, "add", "notes.txt")
    before = git(avc_repo, "rev-parse", "HEAD").strip()
    proc = run_cli("remote", "default", "two", cwd=avc_repo, check=True)
    assert "Default remote: two" in proc.stderr and proc.stdout == ""
    assert git(avc_repo, "rev-parse", "HEAD~1").strip() == before
    assert git(avc_repo, "show", "--name-only", "--format=", "HEAD").split() == [".dvc/config"]
    assert "A  notes.txt" in git(avc_repo, "status", "--porcelain")
    assert dvc(avc_repo, "remote", "default").stdout.strip() == "two"  # DVC agrees
    assert run_cli("remote", "default", cwd=avc_repo, check=True).stdout == "two\n"
    assert run_cli("push", "--no-git", cwd=avc_repo).returncode == 0
    assert (tmp_path / "two" / "files").is_dir() and not (tmp_path / "one").exists()

    run_cli("remote", "default", "two", cwd=avc_repo, check=True)  # already so: no new commit
    assert git(avc_repo, "rev-parse", "HEAD~1").strip() == before

    run_cli("remote", "default", "--unset", cwd=avc_repo, check=True)
    assert git(avc_repo, "show", "--name-only", "--format=", "HEAD").split() == [".dvc/config"]
    assert not any(r.default for r in adaptvc.remote_list())
    assert run_cli("remote", "default", cwd=avc_repo, check=True).stdout == ""


def test_remote_default_api_and_errors(avc_repo, tmp_path):
    adaptvc.remote_add("one", str(tmp_path / "one"))
    adaptvc.remote_add("mine", str(tmp_path / "mine"), local=True)
    assert "remote_default" in adaptvc.api.__all__
    assert adaptvc.remote_default("ONE").default  # names are case-insensitive, as in DVC

    with pytest.raises(RemoteNotFoundError, match=r"no DVC remote named 'nosuch' \(remotes: one, mine\)"):
        adaptvc.remote_default("nosuch")
    # a remote only this clone has cannot be the team's default ...
    head = git(avc_repo, "rev-parse", "HEAD")
    with pytest.raises(AdaptvcError) as err:
        adaptvc.remote_default("mine")
    assert err.value.hint.startswith("adaptvc remote default mine --local")
    # ... but can be a personal one, which is not committed and takes precedence
    assert adaptvc.remote_default("mine", local=True).default
    assert git(avc_repo, "rev-parse", "HEAD") == head
    assert "remote = mine" in (avc_repo / ".dvc" / "config.local").read_text()
    proc = run_cli("remote", "default", "one", cwd=avc_repo, check=True)
    assert "takes precedence" in proc.stderr
    assert adaptvc.remote_default(None, local=True) is None
    assert [r.name for r in adaptvc.remote_list() if r.default] == ["one"]
    assert run_cli("remote", "default", "one", "--unset", cwd=avc_repo).returncode == 2


def test_remote_remove_of_an_unknown_name_lists_the_remotes(avc_repo, tmp_path):
    adaptvc.remote_add("storage", str(tmp_path / "s"), default=True)
    proc = run_cli("remote", "remove", "nosuch", cwd=avc_repo)
    assert proc.returncode == 1
    assert "no DVC remote named 'nosuch' in this repository (remotes: storage)" in proc.stderr
    assert "Hint: adaptvc remote list" in proc.stderr


@pytest.mark.parametrize("where", ["plain git repository", "no repository"])
def test_remote_list_outside_an_initialised_repo_errs_like_other_commands(tmp_path, where):
    d = tmp_path / "d"
    d.mkdir()
    if where == "plain git repository":
        git(d, "init", "-q")
    listing = run_cli("remote", "list", cwd=d)
    log = run_cli("log", cwd=d)
    assert listing.returncode == log.returncode == 1
    assert listing.stderr == log.stderr
    assert (
        "Hint: adaptvc init" if where == "plain git repository" else "Hint: git init && adaptvc init"
    ) in listing.stderr
