"""The team scenario from the issue, on each real remote (directory, moto S3, OpenSSH).

User A saves v1..v3 and pushes; user B clones into another directory (own HOME, so only
what travels through git and the remotes reaches B), checks out v1 (fetched on demand),
saves v4 as a child of v1 and pushes; A pulls and `log` shows the DAG. Both sides'
weights verify against their hashes and plain `dvc status -c` agrees.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adaptvc.storage.dvc_cache import DvcCache, file_md5
from tests.conftest import run_cli
from tests.test_remote_transfer import configure_remote
from tests.versioning_helpers import _initialised_template, avc_repo, dvc, git, write_adapter  # noqa: F401

pytestmark = pytest.mark.slow


def _log(root: Path) -> dict[str, dict]:
    data = json.loads(run_cli("log", "task_a", "--json", cwd=root, check=True).stdout)
    return {v["ref"]: v for v in data}


def test_team_scenario(avc_repo, dvc_remote, tmp_path):
    a = avc_repo
    server = tmp_path / "server.git"
    git(tmp_path, "init", "-q", "--bare", str(server))
    git(a, "remote", "add", "origin", str(server))
    configure_remote(a, dvc_remote)

    # A: three versions, pushed (weights first, then branch + tags).
    for seed in (1, 2, 3):
        write_adapter(a / "adapters" / "task_a", seed)
        run_cli("save", "--adapter", "task_a", "-m", f"epoch {seed}", cwd=a, check=True)
    pushed = json.loads(run_cli("push", "--json", cwd=a, check=True).stdout)
    assert pushed["uploaded"] == ["task_a@v1", "task_a@v2", "task_a@v3"] and pushed["git_pushed"]
    tags = git(server, "tag", "--list").split()
    assert tags == ["task_a@v1", "task_a@v2", "task_a@v3"]

    # B: a different person (own HOME): personal credentials live in B's global DVC config.
    home_b = tmp_path / "home-b"
    env_b = {"HOME": str(home_b), "XDG_CONFIG_HOME": str(home_b / ".config")}
    for key, value in dvc_remote.local_config.items():
        run_cli("remote", "modify", "storage", key, value, "--global", cwd=tmp_path, env=env_b, check=True)
    b = tmp_path / "b"
    cloned = run_cli("clone", str(server), str(b), "--json", cwd=tmp_path, env=env_b, check=True)
    assert json.loads(cloned.stdout)["fetched"] == ["task_a@v3"]
    versions = _log(b)
    cache_b = DvcCache.for_repo(b)
    assert cache_b.has(versions["task_a@v3"]["id"]) and not cache_b.has(versions["task_a@v1"]["id"])
    assert file_md5(b / "adapters/task_a/adapter_model.safetensors")[0] == versions["task_a@v3"]["id"]
    assert all(h["state"] == "installed" for h in json.loads(run_cli("hooks", "status", "--json", cwd=b).stdout))

    run_cli("checkout", "task_a@v1", cwd=b, env=env_b, check=True)  # fetched on demand
    assert file_md5(b / "adapters/task_a/adapter_model.safetensors")[0] == versions["task_a@v1"]["id"]
    write_adapter(b / "adapters" / "task_a", 4)
    run_cli("save", "--adapter", "task_a", "-m", "fork from v1", cwd=b, env=env_b, check=True)
    pushed_b = json.loads(run_cli("push", "--json", cwd=b, env=env_b, check=True).stdout)
    assert pushed_b["uploaded"] == ["task_a@v4"]

    # A pulls: git fast-forwards, the workspace gets v4's weights, log shows the DAG.
    run_cli("pull", cwd=a, check=True)
    log_a = _log(a)
    assert sorted(log_a) == ["task_a@v1", "task_a@v2", "task_a@v3", "task_a@v4"]
    assert log_a["task_a@v4"]["parents"] == ["task_a@v1"]
    assert log_a["task_a@v2"]["parents"] == ["task_a@v1"] and log_a["task_a@v3"]["parents"] == ["task_a@v2"]
    text = run_cli("log", "task_a", cwd=a, check=True).stdout
    assert "|/" in text or "/" in text  # the graph forks at v1

    # Both sides' weights verify, and DVC itself agrees nothing is missing on the remote.
    v4 = log_a["task_a@v4"]["id"]
    for side in (a, b):
        assert file_md5(side / "adapters/task_a/adapter_model.safetensors")[0] == v4
        for ref, v in _log(side).items():
            obj = DvcCache.for_repo(side).object_path(v["id"])
            if obj.exists():
                assert file_md5(obj)[0] == v["id"], ref
    assert "in sync" in dvc(a, "status", "-c", "-A").stdout
    dvc_exe = Path(sys.executable).parent / "dvc"
    status_b = subprocess.run(
        [str(dvc_exe), "status", "-c"], cwd=b, env=dict(os.environ, **env_b), capture_output=True, text=True
    )
    assert "in sync" in status_b.stdout, status_b.stderr
    proc_b = run_cli("status", "--json", cwd=b, env=env_b, check=True)
    assert json.loads(proc_b.stdout)[0]["state"] == "clean"
