"""Team branches: versions saved on two branches merge with plain `git merge`, no manual
resolution; every version stays addressable and `log` shows the lineage DAG."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import adaptvc
from adaptvc.errors import AmbiguousRefError
from tests.conftest import run_cli
from tests.versioning_helpers import (  # noqa: F401 - fixtures
    _initialised_template,
    avc_repo,
    git,
    write_adapter,
)

A = "adapters/task_a"


def test_two_branches_of_one_clone_merge_without_conflicts(avc_repo):
    write_adapter(A, 0)
    adaptvc.save(adapter="task_a", message="base")
    git(avc_repo, "checkout", "-q", "-b", "feature")
    write_adapter(A, 1)
    v_feature = adaptvc.save(adapter="task_a", message="on feature", metrics={"acc": 0.7})
    git(avc_repo, "checkout", "-q", "main")
    write_adapter(A, 2)
    v_main = adaptvc.save(adapter="task_a", message="on main")
    # one clone never mints the same number twice (it also looks at its tags)
    assert (v_feature.version, v_main.version) == (2, 3)
    assert [p.ref for p in v_main.parents] == ["task_a@v1"]  # the pointer of main said v1
    git(avc_repo, "merge", "-q", "--no-edit", "feature")
    assert git(avc_repo, "status", "--porcelain") == ""
    refs = {v.ref: v for v in adaptvc.log("task_a")}
    assert set(refs) == {"task_a@v1", "task_a@v2", "task_a@v3"}
    assert all(v.commit for v in refs.values())
    # our side's current files were kept: the workspace is still at v3, clean
    assert adaptvc.status()[0].state == "clean" and adaptvc.status()[0].version.ref == "task_a@v3"
    assert adaptvc.checkout("task_a@v2").id == v_feature.id
    text = run_cli("log", "task_a", check=True).stdout
    assert "|/" in text and text.index("task_a@v3") < text.index("task_a@v1")


def _clone(bare: Path, where: Path, cache: Path) -> Path:
    git(where.parent, "clone", "-q", str(bare), where.name)
    run_cli("init", cwd=where, check=True)  # per clone: the merge driver (commits nothing)
    (where / ".dvc" / "config.local").write_text(f"[cache]\n    dir = {cache}\n")
    return where


def test_two_clones_minting_the_same_vn_merge_and_stay_addressable(avc_repo, tmp_path):
    cache = tmp_path / "shared-dvc-cache"  # stands in for dvc push/pull through a remote
    (avc_repo / ".dvc" / "config.local").write_text(f"[cache]\n    dir = {cache}\n")
    write_adapter(A, 0)
    adaptvc.save(adapter="task_a", message="base")
    bare = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(avc_repo), str(bare))
    alice = _clone(bare, tmp_path / "alice", cache)
    bob = _clone(bare, tmp_path / "bob", cache)
    assert git(alice, "log", "-1", "--format=%s").startswith("task_a@v1")  # init committed nothing

    git(alice, "checkout", "-q", "-b", "alice")
    write_adapter(alice / A, 1)
    va = adaptvc.save(adapter="task_a", message="alice's run", repo=alice)
    # --no-verify: adaptvc's pre-push hook wants a DVC remote; here the clones share a cache
    git(alice, "push", "-q", "--no-verify", "origin", "alice")
    git(bob, "checkout", "-q", "-b", "bob")
    write_adapter(bob / A, 2)
    vb = adaptvc.save(adapter="task_a", message="bob's run", repo=bob)
    git(bob, "push", "-q", "--no-verify", "origin", "bob")
    assert va.ref == vb.ref == "task_a@v2" and va.id != vb.id

    git(alice, "fetch", "-q", "origin", "bob")
    git(alice, "merge", "-q", "--no-edit", "FETCH_HEAD")
    assert git(alice, "status", "--porcelain") == ""
    versions = adaptvc.log("task_a", repo=alice)
    assert sorted((v.version, v.id) for v in versions) == sorted([(1, versions[-1].id), (2, va.id), (2, vb.id)])
    with pytest.raises(AmbiguousRefError) as exc:
        adaptvc.show("task_a@v2", repo=alice)
    assert sorted(exc.value.candidates) == sorted([f"task_a@{va.id}", f"task_a@{vb.id}"])
    proc = run_cli("show", "task_a@v2", cwd=alice)
    assert proc.returncode == 1 and f"task_a@{vb.id}" in proc.stderr
    assert adaptvc.show(f"task_a@{vb.id[:8]}", repo=alice).message == "bob's run"
    assert adaptvc.checkout(f"task_a@{vb.id}", repo=alice).id == vb.id
    # both are children of v1 in the DAG; log names them by id since the number clashes
    doc = json.loads(run_cli("log", "task_a", "--json", cwd=alice, check=True).stdout)
    assert [d["parents"] for d in doc if d["version"] == 2] == [["task_a@v1"], ["task_a@v1"]]
    assert all(d["commit"] for d in doc)
    text = run_cli("log", "task_a", cwd=alice, check=True).stdout
    assert f"task_a@{va.id[:12]}" in text and f"task_a@{vb.id[:12]}" in text and "|/" in text
    # bob's clashing tag: git refuses to clobber alice's, adaptvc does not depend on tags
    import subprocess

    git(bob, "push", "-q", "--no-verify", "origin", "task_a@v2")
    fetch = subprocess.run(["git", "fetch", "origin", "--tags"], cwd=alice, capture_output=True, text=True)
    assert fetch.returncode != 0 and "clobber" in fetch.stderr
    assert git(alice, "rev-parse", "task_a@v2^{commit}").strip() == va.commit
    assert adaptvc.show(f"task_a@{vb.id}", repo=alice).commit == vb.commit
    # the next save continues the numbering after the highest number
    write_adapter(alice / A, 3)
    assert adaptvc.save(adapter="task_a", message="after merge", repo=alice).ref == "task_a@v3"
