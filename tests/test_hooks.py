"""adaptvc's git hooks, driven by real git commands: install/chain/uninstall, weights that
follow `git checkout`/`git merge`, pre-push uploads, pre-commit refusals."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import adaptvc
from adaptvc.errors import AdaptvcError
from adaptvc.hooks import CHAINED_SUFFIX, HOOK_NAMES
from adaptvc.storage.dvc_cache import DvcCache, file_md5
from tests.conftest import run_cli
from tests.remote_servers import RemoteSpec
from tests.test_remote_transfer import configure_remote
from tests.versioning_helpers import _initialised_template, avc_repo, dvc, git, write_adapter  # noqa: F401

# Pure CLI on files: also run where adaptvc is installed without torch (./dev.sh test).
pytestmark = pytest.mark.torchless

WEIGHTS = "adapters/task_a/adapter_model.safetensors"


def run_git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)


def save(root: Path, seed: int, message: str = "v"):
    write_adapter(root / "adapters" / "task_a", seed)
    return adaptvc.save(root / "adapters" / "task_a", adapter="task_a", message=message, repo=root)


def weights_md5(root: Path) -> str:
    return file_md5(root / WEIGHTS)[0]


@pytest.fixture
def dir_remote(avc_repo, tmp_path) -> RemoteSpec:
    spec = RemoteSpec(kind="dir", url=str(tmp_path / "dvc-remote"), root=tmp_path / "dvc-remote")
    configure_remote(avc_repo, spec)
    return spec


# --- install / uninstall / status ----------------------------------------------------------


def test_init_installs_hooks_and_status_reports_them(avc_repo):
    statuses = adaptvc.hooks_status()
    assert [s.name for s in statuses] == list(HOOK_NAMES)
    assert {s.state for s in statuses} == {"installed"}
    text = run_cli("hooks", "status", cwd=avc_repo, check=True).stdout
    assert text.count("installed") == len(HOOK_NAMES)


def test_user_hook_is_kept_chained_and_restored(avc_repo):
    hooks = avc_repo / ".git" / "hooks"
    adaptvc.hooks_uninstall()
    user_hook = '#!/bin/sh\necho "$@" >> "$(git rev-parse --show-toplevel)/user-hook-ran"\n'
    (hooks / "post-checkout").write_text(user_hook)
    (hooks / "post-checkout").chmod(0o755)

    statuses = {s.name: s for s in adaptvc.hooks_install()}
    assert statuses["post-checkout"].state == "installed"
    assert statuses["post-checkout"].chained == hooks / f"post-checkout{CHAINED_SUFFIX}"
    assert (hooks / f"post-checkout{CHAINED_SUFFIX}").read_text() == user_hook

    assert run_git(avc_repo, "checkout", "-q", "-b", "other").returncode == 0
    assert (avc_repo / "user-hook-ran").read_text().split()[-1] == "1"  # git's arguments reached it

    adaptvc.hooks_install()  # idempotent: the chained hook stays where it is
    assert (hooks / f"post-checkout{CHAINED_SUFFIX}").read_text() == user_hook

    adaptvc.hooks_uninstall()
    assert (hooks / "post-checkout").read_text() == user_hook
    assert not (hooks / f"post-checkout{CHAINED_SUFFIX}").exists()
    assert {s.name: s.state for s in adaptvc.hooks_status()}["post-checkout"] == "foreign"


def test_failing_user_pre_commit_still_stops_the_commit(avc_repo):
    hooks = avc_repo / ".git" / "hooks"
    adaptvc.hooks_uninstall()
    (hooks / "pre-commit").write_text("#!/bin/sh\necho 'user says no' >&2\nexit 3\n")
    (hooks / "pre-commit").chmod(0o755)
    adaptvc.hooks_install()
    (avc_repo / "x.txt").write_text("x\n")
    git(avc_repo, "add", "x.txt")
    proc = run_git(avc_repo, "commit", "-m", "x")
    assert proc.returncode != 0 and "user says no" in proc.stderr


def test_core_hooks_path_is_honoured(avc_repo):
    git(avc_repo, "config", "core.hooksPath", ".githooks")
    statuses = adaptvc.hooks_install()
    assert {s.path.parent for s in statuses} == {avc_repo / ".githooks"}
    assert all((avc_repo / ".githooks" / name).is_file() for name in HOOK_NAMES)
    adaptvc.hooks_uninstall()
    assert not any((avc_repo / ".githooks" / name).exists() for name in HOOK_NAMES)


def test_two_user_hooks_in_the_way_is_an_error_not_an_overwrite(avc_repo):
    hooks = avc_repo / ".git" / "hooks"
    adaptvc.hooks_uninstall()
    (hooks / "pre-push").write_text("#!/bin/sh\n# mine\n")
    (hooks / f"pre-push{CHAINED_SUFFIX}").write_text("#!/bin/sh\n# older\n")
    with pytest.raises(AdaptvcError, match="will not overwrite"):
        adaptvc.hooks_install()
    assert (hooks / "pre-push").read_text() == "#!/bin/sh\n# mine\n"


# --- post-checkout / post-merge ------------------------------------------------------------


def test_weights_follow_git_checkout_and_merge(avc_repo):
    v1 = save(avc_repo, 1)
    git(avc_repo, "checkout", "-q", "-b", "feature")
    v2 = save(avc_repo, 2)
    assert weights_md5(avc_repo) == v2.id

    proc = run_git(avc_repo, "checkout", "main")
    assert proc.returncode == 0 and weights_md5(avc_repo) == v1.id
    assert "task_a" in proc.stderr  # says what it updated
    assert run_git(avc_repo, "switch", "feature").returncode == 0 and weights_md5(avc_repo) == v2.id

    git(avc_repo, "checkout", "-q", "main")
    assert run_git(avc_repo, "merge", "--ff-only", "feature").returncode == 0
    assert weights_md5(avc_repo) == v2.id
    assert run_cli("status", "--json", cwd=avc_repo, check=True).stdout.count('"clean"') == 1


def test_missing_object_is_a_warning_never_a_failed_checkout(avc_repo):
    v1 = save(avc_repo, 1)
    git(avc_repo, "checkout", "-q", "-b", "feature")
    v2 = save(avc_repo, 2)
    obj = DvcCache.for_repo(avc_repo).object_path(v1.id)
    obj.chmod(0o644)
    obj.unlink()

    proc = run_git(avc_repo, "checkout", "main")

    assert proc.returncode == 0
    assert git(avc_repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert "task_a@v1" in proc.stderr and "adaptvc pull" in proc.stderr
    assert weights_md5(avc_repo) == v2.id  # left as it was


def test_unsaved_weights_are_kept_on_checkout(avc_repo):
    save(avc_repo, 1)
    git(avc_repo, "checkout", "-q", "-b", "feature")
    save(avc_repo, 2)
    write_adapter(avc_repo / "adapters" / "task_a", 99)  # training output, not saved
    unsaved = weights_md5(avc_repo)
    proc = run_git(avc_repo, "checkout", "main")
    assert proc.returncode == 0 and weights_md5(avc_repo) == unsaved
    assert "never saved" in proc.stderr and "adaptvc save --adapter task_a" in proc.stderr


def test_checkout_fetches_missing_weights_from_the_remote(avc_repo, dir_remote):
    v1 = save(avc_repo, 1)
    git(avc_repo, "checkout", "-q", "-b", "feature")
    save(avc_repo, 2)
    run_cli("push", "--no-git", cwd=avc_repo, check=True)
    shutil.rmtree(DvcCache.for_repo(avc_repo).path / "files" / "md5" / v1.id[:2])
    assert run_git(avc_repo, "checkout", "main").returncode == 0
    assert weights_md5(avc_repo) == v1.id


def test_weights_are_fetched_before_the_lock_is_taken(avc_repo, dir_remote):
    # A slow remote must not hold the repository lock: the sync after a checkout brings the
    # objects into the cache first, then takes the lock to write the weights.
    from adaptvc.errors import LockTimeoutError
    from adaptvc.repo import AdapterRepo
    from adaptvc.versioning.sync import sync_workspace

    v1 = save(avc_repo, 1)
    git(avc_repo, "checkout", "-q", "-b", "feature")
    save(avc_repo, 2)
    run_cli("push", "--no-git", cwd=avc_repo, check=True)
    cache = DvcCache.for_repo(avc_repo)
    shutil.rmtree(cache.path / "files" / "md5" / v1.id[:2])
    run_git(avc_repo, "-c", "core.hooksPath=/dev/null", "checkout", "-q", "main")  # no hook: we sync below
    (avc_repo / ".adaptvc" / "config.toml").write_text("[adaptvc]\nlock_timeout = 0.2\n")
    repo = AdapterRepo.open(avc_repo)
    with repo.lock(), pytest.raises(LockTimeoutError):  # someone else's transaction, running
        sync_workspace(AdapterRepo.open(avc_repo))
    assert cache.has(v1.id)  # fetched all the same, without the lock
    assert weights_md5(avc_repo) != v1.id  # the weights are written under the lock only
    assert sync_workspace(AdapterRepo.open(avc_repo)).updated == ("task_a",)
    assert weights_md5(avc_repo) == v1.id


# --- pre-push --------------------------------------------------------------------------------


@pytest.fixture
def git_server(avc_repo, tmp_path) -> Path:
    server = tmp_path / "server.git"
    git(tmp_path, "init", "-q", "--bare", str(server))
    git(avc_repo, "remote", "add", "origin", str(server))
    return server


def test_plain_git_push_uploads_the_weights_first(avc_repo, dir_remote, git_server):
    v1, v2 = save(avc_repo, 1), save(avc_repo, 2)
    proc = run_git(avc_repo, "push", "origin", "main", "--follow-tags")
    assert proc.returncode == 0, proc.stderr
    assert dir_remote.object_path(v1.id).is_file() and dir_remote.object_path(v2.id).is_file()
    assert "task_a@v1, task_a@v2" in proc.stderr
    assert "in sync" in dvc(avc_repo, "status", "-c", "-A").stdout

    v3 = save(avc_repo, 3)  # the next push uploads only what the remote side lacks
    proc = run_git(avc_repo, "push", "origin", "main")
    assert proc.returncode == 0 and "task_a@v3" in proc.stderr and "task_a@v1" not in proc.stderr
    assert dir_remote.object_path(v3.id).is_file()


def test_push_is_refused_without_a_dvc_remote(avc_repo, git_server):
    save(avc_repo, 1)
    proc = run_git(avc_repo, "push", "origin", "main")
    assert proc.returncode != 0
    assert "no DVC remote is configured" in proc.stderr and "adaptvc remote add" in proc.stderr
    assert git(git_server, "for-each-ref") == ""  # nothing reached the git remote


def test_push_is_refused_when_the_upload_fails(avc_repo, git_server, tmp_path):
    save(avc_repo, 1)
    # A remote that cannot be written: its path is a regular file.
    (tmp_path / "not-a-dir").write_text("")
    adaptvc.remote_add("storage", str(tmp_path / "not-a-dir" / "store"), default=True)
    proc = run_git(avc_repo, "push", "origin", "main")
    assert proc.returncode != 0 and "refusing to push" in proc.stderr
    assert git(git_server, "for-each-ref") == ""

    cli = run_cli("push", cwd=avc_repo)  # adaptvc push: same rule, nothing pushed to git
    assert cli.returncode == 1 and cli.stderr.startswith("Error:") and git(git_server, "for-each-ref") == ""


# --- pre-commit -----------------------------------------------------------------------------


def test_commit_of_weights_into_git_is_refused(avc_repo):
    save(avc_repo, 1)
    git(avc_repo, "add", "-f", WEIGHTS)
    proc = run_git(avc_repo, "commit", "-m", "oops")
    assert proc.returncode != 0
    assert WEIGHTS in proc.stderr and "git rm --cached" in proc.stderr


def test_commit_of_a_pointer_without_object_is_refused(avc_repo, dir_remote):
    save(avc_repo, 1)
    pointer = avc_repo / "adapters/task_a/adapter_model.safetensors.dvc"
    pointer.write_text(pointer.read_text().replace(pointer.read_text().split("md5: ")[1][:32], "0" * 32))
    git(avc_repo, "add", str(pointer))
    proc = run_git(avc_repo, "commit", "-m", "broken pointer")
    assert proc.returncode != 0 and "0" * 32 in proc.stderr and "neither in the local DVC cache" in proc.stderr


def test_commit_of_a_pointer_whose_object_is_only_on_the_remote_is_fine(avc_repo, dir_remote):
    (tmp := avc_repo / "data.bin").write_bytes(b"some data" * 1000)
    dvc(avc_repo, "add", "data.bin")
    dvc(avc_repo, "push")
    md5 = file_md5(tmp)[0]
    obj = DvcCache.for_repo(avc_repo).object_path(md5)
    obj.chmod(0o644)
    obj.unlink()
    git(avc_repo, "add", "data.bin.dvc", ".gitignore")
    proc = run_git(avc_repo, "commit", "-m", "data")
    assert proc.returncode == 0, proc.stderr


def test_ordinary_commits_pass(avc_repo):
    (avc_repo / "train.py").write_text("print('hi')\n")
    git(avc_repo, "add", "train.py")
    assert run_git(avc_repo, "commit", "-m", "script").returncode == 0


def test_hooks_whose_python_is_gone_warn_on_checkout_and_refuse_commits(avc_repo):
    hooks = avc_repo / ".git" / "hooks"
    for name in HOOK_NAMES:
        text = (hooks / name).read_text()
        python = text.split("ADAPTVC_PYTHON='", 1)[1].split("'", 1)[0]
        (hooks / name).write_text(text.replace(python, "/nonexistent/venv/bin/python"))
    assert {s.state for s in adaptvc.hooks_status()} == {"stale"}

    proc = run_git(avc_repo, "checkout", "-q", "-b", "other")
    assert proc.returncode == 0 and "adaptvc hooks install" in proc.stderr
    (avc_repo / "x.txt").write_text("x\n")
    git(avc_repo, "add", "x.txt")
    proc = run_git(avc_repo, "commit", "-m", "x")
    assert proc.returncode != 0 and "--no-verify" in proc.stderr

    adaptvc.hooks_install()  # reinstalling repairs them
    assert {s.state for s in adaptvc.hooks_status()} == {"installed"}
    assert run_git(avc_repo, "commit", "-m", "x").returncode == 0


def test_init_leaves_a_hooks_path_inside_the_repository_alone(avc_repo):
    adaptvc.hooks_uninstall()
    hooks = avc_repo / ".githooks"
    hooks.mkdir()
    (hooks / "pre-commit").write_text("#!/bin/sh\necho team hook\n")
    (hooks / "pre-commit").chmod(0o755)
    git(avc_repo, "add", ".githooks")
    git(avc_repo, "commit", "-q", "-m", "the team's hooks")
    git(avc_repo, "config", "core.hooksPath", ".githooks")
    result = adaptvc.init(avc_repo)
    assert any("did not install the git hooks" in c and "inside the repository" in c for c in result.changes)
    assert git(avc_repo, "status", "--porcelain") == ""  # the team's tracked hook untouched, nothing added
    adaptvc.hooks_install()  # asked for explicitly: installed there
    assert {s.state for s in adaptvc.hooks_status()} == {"installed"}
