"""`adaptvc remote add|list|modify|remove`: DVC's own config files, team vs personal."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import adaptvc
from adaptvc.errors import CredentialInTeamConfigError, RemoteNotFoundError
from tests.conftest import REPO_ROOT, run_cli
from tests.versioning_helpers import _initialised_template, avc_repo, dvc, git  # noqa: F401


def _head(root) -> str:
    return git(root, "rev-parse", "HEAD").strip()


def test_add_commits_only_dvc_config_and_keeps_the_users_staging(avc_repo):
    (avc_repo / "notes.txt").write_text("work in progress\n")
    git(avc_repo, "add", "notes.txt")
    (avc_repo / "README.md").write_text("# changed, not staged\n")
    before = _head(avc_repo)

    proc = run_cli("remote", "add", "storage", "../store", "--default", cwd=avc_repo, check=True)

    assert "Added remote storage" in proc.stderr and proc.stdout == ""
    assert git(avc_repo, "rev-parse", "HEAD~1").strip() == before
    assert git(avc_repo, "show", "--name-only", "--format=", "HEAD").split() == [".dvc/config"]
    status = git(avc_repo, "status", "--porcelain")
    assert "A  notes.txt" in status and " M README.md" in status and ".dvc/config" not in status
    # DVC reads the same remote: a relative path is relative to .dvc/, as DVC stores it.
    out = dvc(avc_repo, "remote", "list").stdout
    assert out.split() == ["storage", str(avc_repo.parent / "store"), "(default)"]


def test_list_matches_dvc_remote_list_and_json(avc_repo, tmp_path):
    adaptvc.remote_add("storage", str(tmp_path / "store"), default=True)
    adaptvc.remote_add("s3", "s3://bucket/prefix")
    adaptvc.remote_modify("s3", "endpointurl", "http://127.0.0.1:9")
    adaptvc.remote_modify("s3", "secret_access_key", "hunter2", local=True)

    text = run_cli("remote", "list", cwd=avc_repo, check=True).stdout
    assert text.split() == dvc(avc_repo, "remote", "list").stdout.split()

    data = json.loads(run_cli("remote", "list", "--json", cwd=avc_repo, check=True).stdout)
    assert [(r["name"], r["default"], r["level"]) for r in data] == [("storage", True, "repo"), ("s3", False, "repo")]
    assert data[1]["options"] == {"endpointurl": "http://127.0.0.1:9", "secret_access_key": "***"}
    assert "hunter2" not in json.dumps(data)


def test_list_empty_json_is_an_empty_list(avc_repo):
    assert json.loads(run_cli("remote", "list", "--json", cwd=avc_repo, check=True).stdout) == []


@pytest.mark.parametrize("key", ["secret_access_key", "access_key_id", "password", "keyfile", "session_token"])
def test_credentials_are_refused_in_the_team_config(avc_repo, key):
    adaptvc.remote_add("storage", "s3://bucket/p" if key != "password" and key != "keyfile" else "ssh://h/p")
    head = _head(avc_repo)
    team_before = (avc_repo / ".dvc" / "config").read_text()

    proc = run_cli("remote", "modify", "storage", key, "s3cr3t", cwd=avc_repo)

    assert proc.returncode == 1
    assert "credential" in proc.stderr and "--local" in proc.stderr
    assert (avc_repo / ".dvc" / "config").read_text() == team_before and _head(avc_repo) == head
    with pytest.raises(CredentialInTeamConfigError):
        adaptvc.remote_modify("storage", key, "s3cr3t")


def test_credentials_go_to_config_local_which_is_never_committed(avc_repo):
    adaptvc.remote_add("storage", "ssh://alice@example.com/srv/dvc", default=True)
    head = _head(avc_repo)
    run_cli("remote", "modify", "storage", "password", "s3cr3t", "--local", cwd=avc_repo, check=True)

    assert "s3cr3t" in (avc_repo / ".dvc" / "config.local").read_text()
    assert "s3cr3t" not in (avc_repo / ".dvc" / "config").read_text()
    assert _head(avc_repo) == head
    assert git(avc_repo, "status", "--porcelain") == ""  # DVC git-ignores config.local
    assert dvc(avc_repo, "config", "remote.storage.password").stdout.strip() == "s3cr3t"


def test_password_in_url_is_refused_for_a_team_remote(avc_repo):
    proc = run_cli("remote", "add", "storage", "ssh://alice:s3cr3t@example.com/srv", cwd=avc_repo)
    assert proc.returncode == 1 and "password" in proc.stderr
    assert "s3cr3t" not in (avc_repo / ".dvc" / "config").read_text()


def test_modify_non_secret_is_committed_and_unknown_option_is_refused(avc_repo):
    adaptvc.remote_add("storage", "s3://bucket/p")
    run_cli("remote", "modify", "storage", "endpointurl", "http://127.0.0.1:9000", cwd=avc_repo, check=True)
    assert "endpointurl" in git(avc_repo, "show", "HEAD:.dvc/config")
    assert git(avc_repo, "log", "-1", "--format=%s").strip() == "adaptvc: set endpointurl of DVC remote storage"

    proc = run_cli("remote", "modify", "storage", "endpoint_url", "x", cwd=avc_repo)
    assert proc.returncode == 1 and "endpointurl" in proc.stderr  # lists the options that exist

    run_cli("remote", "modify", "storage", "endpointurl", "--unset", cwd=avc_repo, check=True)
    assert "endpointurl" not in git(avc_repo, "show", "HEAD:.dvc/config")


def test_remove_drops_team_and_personal_settings_and_the_default(avc_repo):
    adaptvc.remote_add("storage", "s3://bucket/p", default=True)
    adaptvc.remote_modify("storage", "secret_access_key", "x", local=True)
    run_cli("remote", "remove", "storage", cwd=avc_repo, check=True)
    assert adaptvc.remote_list() == []
    assert "storage" not in (avc_repo / ".dvc" / "config").read_text()
    assert "storage" not in (avc_repo / ".dvc" / "config.local").read_text()
    assert dvc(avc_repo, "remote", "list").stdout == ""
    with pytest.raises(RemoteNotFoundError):
        adaptvc.remote_remove("storage")


def test_add_twice_needs_force_and_second_run_is_idempotent(avc_repo):
    adaptvc.remote_add("storage", "s3://a/p")
    proc = run_cli("remote", "add", "storage", "s3://b/p", cwd=avc_repo)
    assert proc.returncode == 1 and "already exists" in proc.stderr
    head = _head(avc_repo)
    adaptvc.remote_add("storage", "s3://a/p", force=True)  # same content: nothing to commit
    assert _head(avc_repo) == head
    assert adaptvc.remote_add("storage", "s3://b/p", force=True).url == "s3://b/p"


def test_invalid_name_is_a_clear_error(avc_repo):
    proc = run_cli("remote", "add", "bad name", "/tmp/x", cwd=avc_repo)
    assert proc.returncode == 1 and "invalid remote name" in proc.stderr


def test_global_credentials_apply_to_every_clone(avc_repo, tmp_path):
    adaptvc.remote_add("storage", "s3://bucket/p", default=True)
    home = tmp_path / "other-home"
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    run_cli("remote", "modify", "storage", "access_key_id", "AKIA", "--global", cwd=tmp_path, env=env, check=True)
    data = json.loads(run_cli("remote", "list", "--json", cwd=avc_repo, env=env, check=True).stdout)
    assert data[0]["options"] == {"access_key_id": "***"}
    assert git(avc_repo, "status", "--porcelain") == ""


def test_remote_list_does_not_import_dvc_repo(avc_repo):
    adaptvc.remote_add("storage", "s3://bucket/p", default=True)
    code = (
        "import sys\nfrom adaptvc.cli.main import main\ntry:\n    main(['remote', 'list'])\n"
        "except SystemExit:\n    pass\nprint('dvc.repo' in sys.modules, file=sys.stderr)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.run([sys.executable, "-c", code], cwd=avc_repo, env=env, capture_output=True, text=True)
    assert proc.stdout.startswith("storage\ts3://bucket/p")
    assert proc.stderr.strip().splitlines()[-1] == "False"


def test_a_failed_commit_leaves_the_config_as_it_was(avc_repo, monkeypatch):
    from adaptvc.storage import git_ops

    adaptvc.remote_add("storage", "s3://bucket/p", default=True)
    before, head = (avc_repo / ".dvc" / "config").read_bytes(), _head(avc_repo)

    def fail(*args, **kwargs):
        raise git_ops.GitError("git commit-tree failed: Author identity unknown")

    monkeypatch.setattr(git_ops, "make_commit", fail)  # what the transaction commits with
    for action in (
        lambda: adaptvc.remote_add("other", "s3://b/q"),
        lambda: adaptvc.remote_modify("storage", "endpointurl", "http://127.0.0.1:1"),
        lambda: adaptvc.remote_remove("storage"),
    ):
        with pytest.raises(git_ops.GitError):
            action()
        assert (avc_repo / ".dvc" / "config").read_bytes() == before and _head(avc_repo) == head


def test_replacing_a_remote_by_another_kind_drops_its_personal_credentials(avc_repo):
    adaptvc.remote_add("storage", "s3://bucket/p", default=True)
    adaptvc.remote_modify("storage", "access_key_id", "AKIA", local=True)
    adaptvc.remote_add("storage", "ssh://alice@example.com/srv", default=True, force=True)
    assert "access_key_id" not in (avc_repo / ".dvc" / "config.local").read_text()
    assert dvc(avc_repo, "remote", "list").returncode == 0  # DVC accepts the result
