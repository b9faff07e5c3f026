"""An adapter whose directory was deleted from the work tree (``rm -rf adapters/task_a``)
while its versions are committed: the versions still live in HEAD's tree, so status
lists it as deleted and checkout brings the directory back."""

from __future__ import annotations

import json
import shutil

import pytest

import adaptvc
from adaptvc.errors import AdapterNotFoundError
from tests.conftest import run_cli
from tests.versioning_helpers import (  # noqa: F401 - fixtures
    _initialised_template,
    avc_repo,
    dvc,
    git,
    write_adapter,
)

# Pure CLI on files: also run where adaptvc is installed without torch (./dev.sh test).
pytestmark = pytest.mark.torchless

A = "adapters/task_a"
FILES = (
    "adapter_config.json",
    "adapter_model.safetensors",
    "adapter_model.safetensors.dvc",
    "versions.jsonl",
    "aliases.jsonl",
    ".gitignore",
)


def _two_versions(root):
    write_adapter(root / "out1", seed=1)
    write_adapter(root / "out2", seed=2, config={"r": 4, "lora_alpha": 32})
    v1 = adaptvc.save(str(root / "out1"), adapter="task_a", message="one")
    v2 = adaptvc.save(str(root / "out2"), adapter="task_a", message="two")
    adaptvc.alias("task_a@v1", "production")
    shutil.rmtree(root / "out1")
    shutil.rmtree(root / "out2")
    return v1, v2


def _snapshot(d):
    return {n: (d / n).read_bytes() for n in FILES}


def test_status_lists_a_deleted_adapter(avc_repo):
    _two_versions(avc_repo)
    shutil.rmtree(avc_repo / A)
    [st] = adaptvc.status()
    assert st.adapter == "task_a"
    assert st.state == "deleted"
    assert st.latest.ref == "task_a@v2"
    proc = run_cli("status", cwd=avc_repo)
    assert proc.returncode == 0, proc.stderr
    assert "task_a" in proc.stdout and "deleted" in proc.stdout
    assert "No adapters yet" not in proc.stderr
    assert "adaptvc checkout task_a" in proc.stderr
    js = json.loads(run_cli("status", "--json", cwd=avc_repo, check=True).stdout)
    assert js[0]["adapter"] == "task_a" and js[0]["state"] == "deleted"
    assert run_cli("status", "task_a", cwd=avc_repo).returncode == 0


def test_reading_versions_of_a_deleted_adapter(avc_repo, tmp_path):
    v1, v2 = _two_versions(avc_repo)
    shutil.rmtree(avc_repo / A)
    assert [v.ref for v in adaptvc.log("task_a")] == ["task_a@v2", "task_a@v1"]
    assert [v.ref for v in adaptvc.log()] == ["task_a@v2", "task_a@v1"]
    assert all(v.commit for v in adaptvc.log("task_a"))
    assert adaptvc.show("task_a@v1").id == v1.id
    assert adaptvc.show("task_a@production").id == v1.id
    out = adaptvc.export("task_a@v1", tmp_path / "exp")
    assert (out / "adapter_model.safetensors").is_file()
    resolved = adaptvc.resolve("task_a@v2")
    assert (resolved / "adapter_config.json").is_file()
    proc = run_cli("log", "task_a", cwd=avc_repo)
    assert proc.returncode == 0 and "task_a@v1" in proc.stdout, proc.stderr
    proc = run_cli("diff", "task_a@v1", "task_a@v2", cwd=avc_repo)
    assert proc.returncode == 0, proc.stderr
    assert not (avc_repo / A).exists()  # reading restores nothing


@pytest.mark.parametrize("ref", ["task_a@v1", "task_a"])
def test_checkout_restores_a_deleted_adapter(avc_repo, ref):
    _two_versions(avc_repo)
    if ref == "task_a@v1":
        adaptvc.checkout("task_a@v1")
    before = _snapshot(avc_repo / A)
    status_before = git(avc_repo, "status", "--porcelain", "--untracked-files=all")
    shutil.rmtree(avc_repo / A)
    proc = run_cli("checkout", ref, cwd=avc_repo)
    assert proc.returncode == 0, proc.stderr
    assert _snapshot(avc_repo / A) == before
    assert git(avc_repo, "status", "--porcelain", "--untracked-files=all") == status_before
    [st] = adaptvc.status()
    assert st.state == "clean" and st.version.ref == ("task_a@v1" if ref == "task_a@v1" else "task_a@v2")
    assert dvc(avc_repo, "status").returncode == 0


def test_save_after_deleting_the_directory_continues_the_history(avc_repo):
    _two_versions(avc_repo)
    shutil.rmtree(avc_repo / A)
    write_adapter(avc_repo / "out3", seed=3)
    v3 = adaptvc.save(str(avc_repo / "out3"), adapter="task_a", message="three")
    assert v3.ref == "task_a@v3"
    assert [v.ref for v in adaptvc.log("task_a")] == ["task_a@v3", "task_a@v2", "task_a@v1"]
    committed = git(avc_repo, "show", f"HEAD:{A}/versions.jsonl")
    assert len(committed.splitlines()) == 3
    assert adaptvc.show("task_a@production").version == 1  # aliases came back from HEAD too
    assert git(avc_repo, "status", "--porcelain", "--untracked-files=all", "--", A) == ""
    [st] = adaptvc.status()
    assert st.state == "clean" and st.version.ref == "task_a@v3"


def test_a_committed_deletion_means_the_adapter_is_gone(avc_repo):
    _two_versions(avc_repo)
    git(avc_repo, "rm", "-r", "-q", A)
    git(avc_repo, "commit", "-q", "-m", "drop task_a")
    shutil.rmtree(avc_repo / A, ignore_errors=True)
    assert adaptvc.status() == []
    with pytest.raises(AdapterNotFoundError):
        adaptvc.checkout("task_a@v1")
    with pytest.raises(AdapterNotFoundError):
        adaptvc.log("task_a")
    assert not (avc_repo / A).exists()


def test_a_never_committed_adapter_is_not_resurrected(avc_repo):
    write_adapter(avc_repo / A, seed=1)  # never saved
    assert [s.state for s in adaptvc.status()] == ["never saved"]
    shutil.rmtree(avc_repo / A)
    assert adaptvc.status() == []
    with pytest.raises(AdapterNotFoundError):
        adaptvc.checkout("task_a")
    assert not (avc_repo / A).exists()
