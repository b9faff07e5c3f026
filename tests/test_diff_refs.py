"""`adaptvc diff` on saved versions: refs, the workspace default, base-model links."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

import adaptvc
from tests.conftest import run_cli
from tests.test_diff_math import MODULES, check_against_dense, lora_tensors, write_adapter


@pytest.fixture
def versioned(git_repo, tmp_path):
    """A repo with task_a@v1 and task_a@v2 saved, and an unsaved change in the workspace."""
    root = git_repo.working_tree_dir
    adaptvc.init(root)
    rng = np.random.default_rng(0)
    t1 = lora_tensors(rng, {m: 4 for m in MODULES})
    t2 = {k: v + 0.1 * rng.standard_normal(v.shape).astype(v.dtype) for k, v in t1.items()}
    t3 = {k: v + 0.1 * rng.standard_normal(v.shape).astype(v.dtype) for k, v in t2.items()}
    dirs = {}
    for i, (t, cfg) in enumerate([(t1, {}), (t2, {"lora_alpha": 16}), (t3, {"lora_alpha": 16})], start=1):
        dirs[i] = write_adapter(tmp_path / f"out{i}", t, cfg)
    adaptvc.save(str(dirs[1]), adapter="task_a", message="epoch 1", repo=root)
    adaptvc.save(str(dirs[2]), adapter="task_a", message="epoch 2", repo=root)
    ws = os.path.join(root, "adapters", "task_a")
    os.remove(
        os.path.join(ws, "adapter_model.safetensors")
    )  # may be a link to the cache object: never write through it
    shutil.copy(dirs[3] / "adapter_model.safetensors", os.path.join(ws, "adapter_model.safetensors"))
    return root, dirs


def test_two_refs(versioned):
    root, dirs = versioned
    result = adaptvc.diff("task_a@v1", "task_a@v2", repo=root)
    assert (result.a, result.b) == ("task_a@v1", "task_a@v2")
    assert result.config == {"lora_alpha": (8, 16)}
    check_against_dense(result, dirs[1], dirs[2])


@pytest.mark.torchless
def test_weights_are_read_from_the_dvc_cache_in_place(versioned):
    from adaptvc.adapter_diff.sources import resolve_source

    root, _ = versioned
    src = resolve_source("task_a@v1", repo=root)
    assert ".dvc/cache/files/md5" in src.weights.as_posix()
    assert src.directory.as_posix().endswith("adapters/task_a")


def test_default_b_is_the_workspace(versioned):
    root, dirs = versioned
    result = adaptvc.diff("task_a@v2", repo=root)
    assert result.b == "task_a (workspace)"
    check_against_dense(result, dirs[2], dirs[3])


@pytest.mark.torchless
def test_ref_against_a_directory(versioned):
    root, dirs = versioned
    result = adaptvc.diff("task_a@v1", str(dirs[1]), repo=root)
    assert result.identical


@pytest.mark.torchless
def test_cli_with_refs_and_workspace(versioned):
    root, _ = versioned
    proc = run_cli("diff", "task_a@v1", "task_a@v2", "--json", cwd=root)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["a"], doc["b"]) == ("task_a@v1", "task_a@v2")
    proc = run_cli("diff", "task_a", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert "b: task_a (workspace)" in proc.stdout


@pytest.mark.torchless
def test_unknown_version_is_an_error_with_hint(versioned):
    root, _ = versioned
    proc = run_cli("diff", "task_a@v9", "task_a@v1", cwd=root)
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: ")


@pytest.mark.torchless
def test_recorded_fingerprints_decide(versioned, tmp_path):
    """Two versions whose manifests record different base-model fingerprints."""
    from adaptvc.adapter_diff.config_diff import check_base_models
    from adaptvc.adapter_diff.sources import resolve_source
    from adaptvc.errors import BaseModelMismatchError

    root, _ = versioned
    a, b = resolve_source("task_a@v1", repo=root), resolve_source("task_a@v2", repo=root)
    assert a.base_model["name_or_path"] == "tiny/base"
    fa = dict(a.base_model, fingerprint="sha256:" + "a" * 64)
    fb = dict(b.base_model, fingerprint="sha256:" + "b" * 64)
    with pytest.raises(BaseModelMismatchError, match="fingerprints differ"):
        check_base_models(
            type(a)(a.label, a.directory, a.weights, a.config, fa),
            type(b)(b.label, b.directory, b.weights, b.config, fb),
        )


@pytest.mark.torchless
def test_ref_diff_imports_no_torch_and_no_dvc(versioned):
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    root, _ = versioned
    code = (
        "import sys\n"
        "from adaptvc.cli.main import main\n"
        "try:\n"
        "    main(['diff', 'task_a@v1', 'task_a@v2', '--json'])\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    mods = set(proc.stderr.split())
    for heavy in ("torch", "transformers", "peft", "dvc"):
        assert heavy not in mods, f"diff of refs imported {heavy}"
