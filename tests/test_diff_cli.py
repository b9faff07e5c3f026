"""`adaptvc diff` as a user runs it: text, --json, --top, --plot, errors, no torch."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from tests.conftest import imported_modules, run_cli
from tests.test_diff_math import MODULES, PREFIX, lora_tensors, write_adapter

JSON_KEYS = {"a", "b", "config", "modules", "tensors", "summary"}
MODULE_KEYS = {"module", "norm_a", "norm_b", "delta_norm", "relative", "cosine"}


@pytest.fixture
def two_adapters(tmp_path):
    rng = np.random.default_rng(0)
    ta = lora_tensors(rng, {m: 4 for m in MODULES})
    ta[f"{PREFIX}lm_head.weight"] = rng.standard_normal((10, 16)).astype(np.float32)
    tb = {k: v + 0.05 * rng.standard_normal(v.shape).astype(v.dtype) for k, v in ta.items()}
    a = write_adapter(tmp_path / "a", ta, {})
    b = write_adapter(tmp_path / "b", tb, {"lora_alpha": 16})
    return a, b


@pytest.mark.torchless
def test_text_report(two_adapters):
    a, b = two_adapters
    proc = run_cli("diff", str(a), str(b), "--top", "2")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "lora_alpha: 8 -> 16" in out
    assert "LoRA updates ΔW: 5 compared, 5 changed" in out
    assert "top 2 of 5 modules by relative change:" in out
    table = out.split("top 2 of 5")[1].split("\n\n")[0].strip().splitlines()
    assert len(table) == 1 + 1 + 2  # title, header, two rows
    assert "lm_head.weight" in out
    assert proc.stderr == ""


@pytest.mark.torchless
def test_json_is_one_document_with_the_issue_keys(two_adapters):
    a, b = two_adapters
    proc = run_cli("diff", str(a), str(b), "--json", "--top", "3")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # exactly one document
    assert set(doc) == JSON_KEYS
    assert doc["a"] == str(a) and doc["b"] == str(b)
    assert doc["config"] == {"lora_alpha": [8, 16]}
    assert len(doc["modules"]) == 5
    assert all(set(m) == MODULE_KEYS for m in doc["modules"])
    assert [t["tensor"] for t in doc["tensors"]] == ["lm_head.weight"]
    assert {"delta_norm", "max_abs_diff"} <= set(doc["tensors"][0])
    summary = doc["summary"]
    assert len(summary["top"]) == 3
    rel = sorted((m["relative"] for m in doc["modules"]), reverse=True)
    assert [t["relative"] for t in summary["top"]] == rel[:3]
    for key in (
        "norm_a",
        "norm_b",
        "delta_norm",
        "relative",
        "cosine",
        "modules_added",
        "modules_removed",
        "modules_reshaped",
        "base_model",
    ):
        assert key in summary


@pytest.mark.torchless
def test_json_nulls_where_undefined(tmp_path):
    rng = np.random.default_rng(1)
    t = lora_tensors(rng, {m: 4 for m in MODULES})
    zero_b = {k: (np.zeros_like(v) if "lora_B" in k else v) for k, v in t.items()}  # peft's initial state
    a = write_adapter(tmp_path / "init", zero_b, {})
    b = write_adapter(tmp_path / "trained", t, {})
    proc = run_cli("diff", str(a), str(b), "--json")
    doc = json.loads(proc.stdout)
    assert all(m["norm_a"] == 0 and m["relative"] is None and m["cosine"] is None for m in doc["modules"])
    assert doc["summary"]["relative"] is None


def test_plot_writes_png(two_adapters, tmp_path):
    a, b = two_adapters
    out = tmp_path / "heat.png"
    proc = run_cli("diff", str(a), str(b), "--plot", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {out}" in proc.stderr


@pytest.mark.torchless
def test_heatmap_grid_rows_are_layers_columns_types(two_adapters):
    import adaptvc
    from adaptvc.adapter_diff.plot import heatmap_grid

    rows, cols, values = heatmap_grid(adaptvc.diff(*two_adapters))
    assert rows == ["0", "1"]
    assert cols == ["q_proj", "v_proj", "down_proj"]
    assert np.isnan(values[0][2]) and not np.isnan(values[1][2])


@pytest.mark.torchless
def test_plot_without_matplotlib_is_a_clear_error(two_adapters, tmp_path, monkeypatch, capsys):
    from adaptvc.cli.main import main

    for mod in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` → ImportError
    a, b = two_adapters
    with pytest.raises(SystemExit) as exit_:
        main(["diff", str(a), str(b), "--plot", str(tmp_path / "x.png")])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert "Error: matplotlib is not installed (needed for adaptvc diff --plot)" in err
    assert "Hint: pip install 'adaptvc[plot]'" in err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.torchless
def test_base_model_mismatch_exits_1_and_force_compares(tmp_path):
    rng = np.random.default_rng(2)
    a = write_adapter(
        tmp_path / "a", lora_tensors(rng, {m: 4 for m in MODULES}), {"base_model_name_or_path": "org/one"}
    )
    b = write_adapter(
        tmp_path / "b", lora_tensors(rng, {m: 4 for m in MODULES}), {"base_model_name_or_path": "org/two"}
    )
    proc = run_cli("diff", str(a), str(b))
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("Error: recorded base models differ")
    assert "Hint: " in proc.stderr and "--force" in proc.stderr
    forced = run_cli("diff", str(a), str(b), "--force", "--json")
    assert forced.returncode == 0
    assert json.loads(forced.stdout)["summary"]["base_model"]["status"] == "mismatch"


def _base_model_dir(path, hidden):
    """A local base model: a config.json and a safetensors header are all a fingerprint reads."""
    from safetensors.numpy import save_file

    path.mkdir()
    (path / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": hidden}))
    save_file({"model.embed_tokens.weight": np.zeros((4, hidden), dtype=np.float32)}, str(path / "model.safetensors"))
    return path


@pytest.mark.torchless
def test_plain_directories_are_checked_by_base_model_fingerprint(tmp_path):
    rng = np.random.default_rng(3)
    base = tmp_path / "base"
    _base_model_dir(base, 8)
    a = write_adapter(
        tmp_path / "a", lora_tensors(rng, {m: 4 for m in MODULES}), {"base_model_name_or_path": str(base)}
    )
    b = write_adapter(
        tmp_path / "b", lora_tensors(rng, {m: 4 for m in MODULES}), {"base_model_name_or_path": str(base)}
    )
    same = run_cli("diff", str(a), str(b), "--json")
    assert same.returncode == 0, same.stderr
    check = json.loads(same.stdout)["summary"]["base_model"]
    assert check["status"] == "match" and check["detail"] == "same fingerprint"
    other = _base_model_dir(tmp_path / "other", 16)
    c = write_adapter(
        tmp_path / "c", lora_tensors(rng, {m: 4 for m in MODULES}), {"base_model_name_or_path": str(other)}
    )
    proc = run_cli("diff", str(a), str(c))
    assert proc.returncode == 1
    assert "fingerprints differ" in proc.stderr


@pytest.mark.torchless
def test_missing_directory_and_usage_errors(tmp_path):
    proc = run_cli("diff", str(tmp_path / "nope"), str(tmp_path / "nope2"))
    assert proc.returncode == 1 and proc.stderr.startswith("Error: ")
    assert "Traceback" not in proc.stderr
    assert run_cli("diff").returncode == 2
    assert run_cli("diff", "x", "y", "--top", "-1").returncode == 2


@pytest.mark.torchless
def test_help_and_directory_diff_do_not_import_torch(two_adapters):
    a, b = two_adapters
    for args in (("diff", "--help"), ("diff", str(a), str(b)), ("diff", str(a), str(b), "--json")):
        mods = imported_modules(*args, check=True)
        for heavy in ("torch", "transformers", "peft", "dvc"):
            assert heavy not in mods, f"`adaptvc {' '.join(args)}` imported {heavy}"
