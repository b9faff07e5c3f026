"""``adaptvc inspect``: a summary from the config and the safetensors header, without torch."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import adaptvc
from tests.conftest import imported_modules, run_cli
from tests.models import perturb_adapter, tiny_llama
from tests.test_cli_startup import HEAVY
from tests.versioning_helpers import lora_tensors, write_adapter


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory) -> Path:
    from peft import LoraConfig, get_peft_model

    base = tiny_llama()
    base.name_or_path = "acme/tiny-llama"
    model = get_peft_model(
        base, LoraConfig(r=4, lora_alpha=8, target_modules=["v_proj", "q_proj"], use_rslora=True, task_type="CAUSAL_LM")
    )
    perturb_adapter(model)
    return adaptvc.save_adapter(model, tmp_path_factory.mktemp("inspect") / "task_a")


def expected_summary(directory: Path) -> dict:
    return {
        "path": str(directory),
        "weights_file": "adapter_model.safetensors",
        "weights_format": "safetensors",
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "r": 4,
        "lora_alpha": 8,
        "target_modules": ["q_proj", "v_proj"],
        "base_model_name_or_path": "acme/tiny-llama",
        "revision": None,
        "use_rslora": True,
        "use_dora": False,
        "tensor_count": 8,  # 2 layers × 2 modules × (A, B)
        "parameter_count": 2 * ((4 * 32 + 32 * 4) + (4 * 32 + 16 * 4)),  # q 32→32, v 32→16
        "bytes": (directory / "adapter_model.safetensors").stat().st_size,
        "dtypes": {"F32": 8},
    }


def test_inspect_json_is_one_document_with_every_field(adapter_dir):
    proc = run_cli("inspect", str(adapter_dir), "--json", check=True)
    assert json.loads(proc.stdout) == expected_summary(adapter_dir)
    assert proc.stderr == ""


def test_inspect_text(adapter_dir):
    proc = run_cli("inspect", str(adapter_dir), check=True)
    # "key<padding>  value", keys may hold one space ("base model")
    rows = dict(re.fullmatch(r"(.+?)\s{2,}(.+)", line).groups() for line in proc.stdout.splitlines())
    assert rows["type"] == "LORA (rsLoRA)"
    assert rows["rank"] == "4" and rows["alpha"] == "8"
    assert rows["targets"] == "q_proj, v_proj"
    assert rows["base model"] == "acme/tiny-llama"
    assert rows["tensors"] == "8" and rows["parameters"] == "896 (896)"
    assert rows["dtypes"] == "F32×8"


def test_inspect_does_not_import_torch(adapter_dir):
    mods = imported_modules("inspect", str(adapter_dir), "--json")
    assert "adaptvc.formats.safetensors_header" in mods  # the probe really ran inspect
    for heavy in HEAVY:
        assert heavy not in mods, f"`adaptvc inspect` imported {heavy}"


def test_inspect_a_legacy_bin_directory(adapter_dir, tmp_path):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(tiny_llama(), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    legacy = adaptvc.save_adapter(model, tmp_path / "legacy", safe_serialization=False)
    out = json.loads(run_cli("inspect", str(legacy), "--json", check=True).stdout)
    assert out["weights_format"] == "bin" and out["weights_file"] == "adapter_model.bin"
    expected = expected_summary(adapter_dir)
    assert (out["tensor_count"], out["parameter_count"], out["dtypes"]) == (
        expected["tensor_count"],
        expected["parameter_count"],
        expected["dtypes"],
    )


def test_inspect_api_matches_cli(adapter_dir):
    assert adaptvc.inspect(adapter_dir).to_dict() == expected_summary(adapter_dir)


@pytest.mark.torchless
def test_inspect_where_torch_is_not_installed(tmp_path):
    """A PEFT-format directory written with numpy: the CLI reads config and header alone."""
    tensors = lora_tensors(3, layers=3, hidden=8, r=2, dtype=np.float16)
    directory = write_adapter(tmp_path / "task_b", config={"r": 2, "lora_alpha": 4}, tensors=tensors)
    out = json.loads(run_cli("inspect", str(directory), "--json", check=True).stdout)
    assert (out["peft_type"], out["r"], out["lora_alpha"]) == ("LORA", 2, 4)
    assert out["target_modules"] == ["q_proj", "v_proj"]
    assert out["tensor_count"] == len(tensors) == 12
    assert out["parameter_count"] == sum(t.size for t in tensors.values())
    assert out["dtypes"] == {"F16": 12}
    assert out["bytes"] == (directory / "adapter_model.safetensors").stat().st_size
