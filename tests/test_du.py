"""``adaptvc du``: bytes per adapter and version, locally and on the remote, checked
against ``du -b`` of the very files; what versions share; gc's preview under the
team's policy; the base model's size beside the adapter's."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import adaptvc
from adaptvc.storage.dvc_cache import DvcCache
from tests.conftest import run_cli
from tests.test_gc import _dir_remote, _save
from tests.test_remote_transfer import configure_remote
from tests.versioning_helpers import _initialised_template, avc_repo, dvc, write_adapter  # noqa: F401

pytestmark = pytest.mark.torchless


def _du_b(files: list[Path]) -> int:
    """What coreutils' ``du -b`` (apparent sizes) totals for these files."""
    if not files:
        return 0
    out = subprocess.run(["du", "-bc", *map(str, files)], check=True, capture_output=True, text=True).stdout
    return int(out.splitlines()[-1].split()[0])


def test_du_figures_match_du_b_of_the_cache_and_the_remote(avc_repo, tmp_path):
    spec = _dir_remote(tmp_path)
    configure_remote(avc_repo, spec)
    v1, v2 = _save(avc_repo, 1), _save(avc_repo, 2)
    adaptvc.push(repo=avc_repo, git_remote=None)
    v3 = _save(avc_repo, 1)  # v1's weights again: stored once
    v4 = _save(avc_repo, 7, adapter="task_b")
    (avc_repo / "data.txt").write_text("not an adapter\n" * 100)
    dvc(avc_repo, "add", "data.txt")  # a DVC object of the user's own: counted in the cache, not in adapters

    usage = json.loads(run_cli("du", "--remote", "storage", "--json", cwd=avc_repo, check=True).stdout)
    cache = DvcCache.for_repo(avc_repo)
    mine = {v1.id, v2.id, v4.id}
    assert usage["local_bytes"] == _du_b([cache.object_path(m) for m in mine])
    all_objects = [p for p in (cache.path / "files" / "md5").rglob("*") if p.is_file()]
    assert usage["cache_bytes"] == _du_b(all_objects) > usage["local_bytes"]
    assert usage["remote_bytes"] == _du_b([spec.object_path(m) for m in (v1.id, v2.id)])
    a = {x["adapter"]: x for x in usage["adapters"]}
    assert a["task_a"]["local_bytes"] == _du_b([cache.object_path(v1.id), cache.object_path(v2.id)])
    assert a["task_a"]["shared_bytes"] == v1.size == usage["shared_bytes"]
    rows = {r["ref"]: r for r in a["task_a"]["versions"]}
    assert rows["task_a@v3"]["shared_with"] == ["task_a@v1"] and rows["task_a@v1"]["remote"] is True
    assert rows["task_a@v3"]["id"] == v3.id and a["task_b"]["versions"][0]["remote"] is False
    assert usage["gc"] is None  # no [gc] policy configured
    text = run_cli("du", cwd=avc_repo, check=True).stdout
    assert "task_a: 3 version(s)" in text and "shares with task_a@v1" in text


def test_du_shows_what_gc_would_free_under_the_team_policy(avc_repo):
    vs = [_save(avc_repo, s) for s in (1, 2, 3)]
    cfg = avc_repo / ".adaptvc" / "config.toml"
    cfg.write_text(cfg.read_text() + "\n[gc]\nkeep_last = 1\n")
    usage = adaptvc.du(repo=avc_repo)
    cache = DvcCache.for_repo(avc_repo)
    assert usage.gc is not None and usage.gc.dry_run
    assert usage.gc.local_bytes == sum(cache.object_path(v.id).stat().st_size for v in vs[:2])
    assert "adaptvc gc (keep-last 1) would free" in run_cli("du", cwd=avc_repo, check=True).stdout
    assert all(cache.has(v.id) for v in vs)  # a preview only


def test_du_puts_the_base_models_size_beside_the_adapters(avc_repo, tmp_path):
    base = tmp_path / "tiny-base"
    base.mkdir()
    (base / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 16}))
    tensors = {f"model.layers.{i}.mlp.weight": np.zeros((256, 512), dtype=np.float32) for i in range(4)}
    save_file(tensors, str(base / "model.safetensors"))
    write_adapter(avc_repo / "adapters" / "task_a", 1)
    v = adaptvc.save(adapter="task_a", message="on a measured base", base_model=str(base), repo=avc_repo)
    expected = sum(t.nbytes for t in tensors.values())
    assert v.base_model.bytes == expected and v.base_model.fingerprint
    usage = adaptvc.du(repo=avc_repo)
    (a,) = usage.adapters
    assert a.base_model_bytes == expected and a.times_smaller == pytest.approx(expected / v.size)
    assert f"about {expected / v.size:,.0f}x smaller" in run_cli("du", cwd=avc_repo, check=True).stdout
