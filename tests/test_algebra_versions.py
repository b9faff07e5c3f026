"""merge and compress on real git + DVC: one new version whose parents are the inputs,
one commit, drawn as a merge by `log`; refusals leave the repository as it was."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import adaptvc
from adaptvc.errors import DirtyWorkspaceError, NotMergeableError
from tests.conftest import run_cli
from tests.versioning_helpers import (  # noqa: F401 - fixtures
    _initialised_template,
    avc_repo,
    git,
    lora_tensors,
    repo_snapshot,
    with_dora_magnitudes,
    write_adapter,
)

pytestmark = pytest.mark.torchless


def _save_two(root: Path) -> None:
    write_adapter(root / "adapters/task_a", seed=1)
    adaptvc.save(adapter="task_a", message="a v1")
    write_adapter(root / "adapters/task_b", seed=2, tensors=lora_tensors(2, r=4, modules=("q_proj", "v_proj")))
    adaptvc.save(adapter="task_b", message="b v1")


def test_merge_records_every_input_as_a_parent_in_one_commit(avc_repo):
    _save_two(avc_repo)
    head = git(avc_repo, "rev-parse", "HEAD").strip()
    merged = adaptvc.merge(["task_a@v1", "task_b@v1"], adapter="both", weights=[0.7, 0.3])
    v = merged.version
    assert v.new and v.ref == "both@v1"
    assert [p.ref for p in v.parents] == ["task_a@v1", "task_b@v1"]
    assert [p.id for p in v.parents] == [x.id for x in merged.inputs]
    assert v.metrics["algebra"] == "cat" and v.metrics["algebra_weights"] == "0.7,0.3"
    assert v.peft.r == 8  # 4 + 4: cat is exact
    # one commit on top of HEAD, touching only the new adapter's files, tagged
    assert git(avc_repo, "rev-parse", "HEAD~1").strip() == head
    changed = git(avc_repo, "show", "--name-only", "--format=", "HEAD").split()
    assert changed and all(p.startswith("adapters/both/") for p in changed)
    assert git(avc_repo, "tag", "-l", "both@v1").strip() == "both@v1"
    # the manifest line names both parents; the workspace is at the new version
    record = json.loads((avc_repo / "adapters/both/versions.jsonl").read_text().splitlines()[-1])
    assert [p["adapter"] for p in record["parents"]] == ["task_a", "task_b"]
    status = {s.adapter: s for s in adaptvc.status()}
    assert status["both"].state == "clean" and status["both"].version.ref == "both@v1"
    assert git(avc_repo, "status", "--porcelain").strip() == ""


def test_log_draws_the_merge_and_its_inputs(avc_repo):
    _save_two(avc_repo)
    adaptvc.merge(["task_a@v1", "task_b@v1"], adapter="both")
    out = run_cli("log", "both", check=True).stdout
    lines = out.splitlines()
    assert lines[0].startswith("* both@v1")
    assert any(line.startswith("o ") and "task_a@v1" in line for line in lines)
    assert any(line.startswith("  o ") and "task_b@v1" in line for line in lines)
    assert "parents: task_a@v1, task_b@v1" in out
    # merging two versions of one adapter: the branches of its own graph join
    write_adapter(avc_repo / "adapters/task_a", seed=3)
    adaptvc.save(adapter="task_a", message="a v2")
    adaptvc.checkout("task_a@v1")
    write_adapter(avc_repo / "adapters/task_a", seed=4)
    adaptvc.save(adapter="task_a", message="a v3 from v1")
    adaptvc.merge(["task_a@v2", "task_a@v3"], adapter="task_a", weights=[0.5, 0.5])
    out = run_cli("log", "task_a", check=True).stdout
    lines = [line for line in out.splitlines() if "task_a@v" in line.split("  ")[0]]
    assert lines[0].startswith("* task_a@v4")
    assert lines[1].startswith("* | task_a@v3") or lines[1].startswith("| * task_a@v3")
    assert "|/" in out  # v2 and v3 meet again at v1


def test_merge_cli_json_and_text(avc_repo):
    _save_two(avc_repo)
    proc = run_cli("merge", "task_a@v1", "task_b@v1", "--adapter", "both", "--method", "svd", "--rank", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ref"] == "both@v1" and doc["created"] is True
    assert doc["parents"] == ["task_a@v1", "task_b@v1"] and doc["inputs"] == ["task_a@v1", "task_b@v1"]
    algebra = doc["algebra"]
    assert algebra["method"] == "svd" and algebra["rank"] == 2
    assert 0 < algebra["relative_error"] < 1
    assert all(m["rank"] == 2 and 0 < m["relative_error"] < 1 for m in algebra["modules"])
    assert doc["metrics"]["algebra_relative_error"] == pytest.approx(algebra["relative_error"])
    text = run_cli("compress", "both@v1", "--rank", "1", check=True).stdout
    assert "Saved both@v2" in text and "relative Frobenius error dropped" in text
    shown = json.loads(run_cli("show", "both@v2", "--json", check=True).stdout)
    assert shown["parents"] == ["both@v1"] and shown["peft"]["r"] == 1


def test_compress_by_energy_writes_a_rank_pattern(avc_repo):
    rng = np.random.default_rng(0)
    tensors = lora_tensors(5, r=8)
    for i, key in enumerate(sorted(k for k in tensors if k.endswith("lora_A.weight"))):
        tensors[key] = (tensors[key] * np.geomspace(1, 10.0 ** -(i + 1), 8)[:, None]).astype(np.float32)
    write_adapter(avc_repo / "adapters/task_a", config={"r": 8}, tensors=tensors)
    adaptvc.save(adapter="task_a", message="r=8")
    c = adaptvc.compress("task_a@v1", energy=0.95)
    assert c.version.ref == "task_a@v2" and [p.ref for p in c.version.parents] == ["task_a@v1"]
    config = json.loads((avc_repo / "adapters/task_a/adapter_config.json").read_text())
    assert len(set(c.result.ranks.values())) > 1
    for name, r in c.result.ranks.items():
        assert (config["rank_pattern"].get(name.replace(".", "\\."), config["r"])) == r
    assert all(m.relative_error**2 <= 0.05 + 1e-9 for m in c.result.modules)
    del rng


def test_refused_inputs_leave_the_repository_as_it_was(avc_repo):
    _save_two(avc_repo)
    write_adapter(
        avc_repo / "adapters/dora", seed=3, config={"use_dora": True}, tensors=with_dora_magnitudes(lora_tensors(3))
    )
    adaptvc.save(adapter="dora", message="dora")
    before = repo_snapshot(avc_repo)
    with pytest.raises(NotMergeableError):
        adaptvc.merge(["task_a@v1", "dora@v1"], adapter="both")
    proc = run_cli("merge", "task_a@v1", "dora@v1", "--adapter", "both")
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: dora@v1 uses DoRA") and "Traceback" not in proc.stderr
    assert repo_snapshot(avc_repo) == before
    # a mistyped weight list is a usage error before any work
    proc = run_cli("merge", "task_a@v1", "task_b@v1", "--adapter", "both", "--weights", "0.7;0.3")
    assert proc.returncode == 2 and "comma-separated" in proc.stderr
    proc = run_cli("merge", "task_a@v1", "task_b@v1", "--adapter", "both", "--weights", "1")
    assert proc.returncode == 1 and "1 weights for 2 inputs" in proc.stderr
    assert repo_snapshot(avc_repo) == before


def test_unsaved_changes_in_the_target_are_never_overwritten(avc_repo):
    _save_two(avc_repo)
    target = avc_repo / "adapters/task_a/adapter_model.safetensors"
    write_adapter(avc_repo / "adapters/task_a", seed=9)  # unsaved work
    work = target.read_bytes()
    with pytest.raises(DirtyWorkspaceError):
        adaptvc.merge(["task_a@v1", "task_b@v1"], adapter="task_a")
    assert target.read_bytes() == work
    v = adaptvc.merge(["task_a@v1", "task_b@v1"], adapter="task_a", force=True).version
    assert v.ref == "task_a@v2" and target.read_bytes() != work
