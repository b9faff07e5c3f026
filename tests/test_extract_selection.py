"""Which adapter is saved: several adapters, the transformers path, and the clear errors."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors import safe_open

import adaptvc
from adaptvc.errors import AdapterNotFoundError, AmbiguousAdapterError
from adaptvc.formats.adapter_config import normalize_config
from tests.models import perturb_adapter, sample_input, tiny_llama
from tests.test_extract import CONFIG, WEIGHTS, assert_only_adapter_tensors, logits

# Two adapters on different modules and ranks, so a leaked key or tensor is visible.
CONFIG_A = dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
CONFIG_B = dict(r=2, lora_alpha=4, target_modules=["k_proj", "v_proj"])


def keys(path: Path) -> set[str]:
    with safe_open(str(path / WEIGHTS), "pt") as fh:
        return set(fh.keys())


def adapter_params(model, name: str) -> set[int]:
    return {p.data_ptr() for n, p in model.named_parameters() if f".{name}." in n or n.endswith(f".{name}")}


@pytest.fixture
def two_adapter_peft_model():
    model = get_peft_model(tiny_llama(), LoraConfig(**CONFIG_A), adapter_name="task_a")
    model.add_adapter("task_b", LoraConfig(**CONFIG_B))
    for name in ("task_a", "task_b"):  # perturb both, whichever is active
        model.set_adapter(name)
        perturb_adapter(model, seed=len(name) + ord(name[-1]))
    model.set_adapter("task_a")
    return model.eval()


@pytest.fixture
def two_adapter_transformers_model():
    model = tiny_llama()
    model.add_adapter(LoraConfig(**CONFIG_A), adapter_name="task_a")
    perturb_adapter(model, seed=3)
    model.add_adapter(LoraConfig(**CONFIG_B), adapter_name="task_b")  # add_adapter activates it
    perturb_adapter(model, seed=4)
    return model.eval()


# --- PeftModel with several adapters --------------------------------------------------


@pytest.mark.parametrize("chosen", [None, "task_a", "task_b"])
def test_only_the_chosen_adapter_is_saved_and_equals_peft(two_adapter_peft_model, tmp_path, chosen):
    model = two_adapter_peft_model
    name = chosen or "task_a"  # None → the active adapter
    ours = adaptvc.save_adapter(model, tmp_path / "ours", adapter_name=chosen)
    model.save_pretrained(str(tmp_path / "peft"), selected_adapters=[name])
    theirs = tmp_path / "peft" / name  # PEFT puts a non-"default" adapter in a sub-folder
    assert (ours / WEIGHTS).read_bytes() == (theirs / WEIGHTS).read_bytes()
    assert normalize_config(json.loads((ours / CONFIG).read_text())) == normalize_config(
        json.loads((theirs / CONFIG).read_text())
    )
    state = adaptvc.get_adapter_state_dict(model, chosen)
    other = "task_b" if name == "task_a" else "task_a"
    leaked = {k for k, t in state.items() if t.data_ptr() in adapter_params(model, other)}
    assert not leaked, f"tensors of {other} saved: {sorted(leaked)[:3]}"
    assert all(t.data_ptr() in adapter_params(model, name) for t in state.values())
    expected_module = "k_proj" if name == "task_b" else "q_proj"
    assert any(expected_module in k for k in keys(ours)) and not any(k.endswith(f".{name}.weight") for k in keys(ours))


def test_a_non_active_adapter_loads_back_to_its_own_logits(two_adapter_peft_model, tmp_path):
    model = two_adapter_peft_model
    ours = adaptvc.save_adapter(model, tmp_path / "b", adapter_name="task_b")
    model.set_adapter("task_b")
    expected = logits(model)
    fresh = PeftModel.from_pretrained(tiny_llama(), str(ours)).eval()
    torch.testing.assert_close(logits(fresh), expected, rtol=0, atol=0)


def test_several_active_adapters_and_no_name_is_an_error(two_adapter_peft_model, tmp_path):
    model = two_adapter_peft_model
    model.base_model.set_adapter(["task_a", "task_b"])
    with pytest.raises(AmbiguousAdapterError) as err:
        adaptvc.save_adapter(model, tmp_path / "x")
    assert "task_a" in err.value.message and "task_b" in err.value.message
    assert "adapter_name=" in err.value.hint
    assert not (tmp_path / "x").exists()  # refused before writing anything
    assert adaptvc.save_adapter(model, tmp_path / "x", adapter_name="task_b").is_dir()  # a name settles it


def test_unknown_adapter_name_lists_the_adapters_that_exist(two_adapter_peft_model):
    with pytest.raises(AdapterNotFoundError) as err:
        adaptvc.get_adapter_state_dict(two_adapter_peft_model, "task_c")
    assert isinstance(err.value, LookupError)
    assert err.value.name == "task_c"
    assert "'task_a'" in err.value.message and "'task_b'" in err.value.message


@pytest.mark.parametrize("model_factory", [tiny_llama, lambda: torch.nn.Linear(2, 2)], ids=["transformers", "torch"])
def test_model_without_adapters_is_a_clear_error(model_factory, tmp_path):
    with pytest.raises(AdapterNotFoundError) as err:
        adaptvc.save_adapter(model_factory(), tmp_path / "x")
    assert "has no adapters" in err.value.message
    assert "get_peft_model" in err.value.hint


# --- transformers models: add_adapter / load_adapter -----------------------------------


def test_transformers_add_adapter_matches_transformers_save_pretrained(two_adapter_transformers_model, tmp_path):
    model = two_adapter_transformers_model
    assert model.active_adapters() == ["task_b"]
    ours = adaptvc.save_adapter(model, tmp_path / "ours")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save_pretrained(str(tmp_path / "hf"))  # the oracle for this path
    assert (ours / WEIGHTS).read_bytes() == (tmp_path / "hf" / WEIGHTS).read_bytes()
    mine = json.loads((ours / CONFIG).read_text())
    assert normalize_config(mine) == normalize_config(json.loads((tmp_path / "hf" / CONFIG).read_text()))
    assert all("k_proj" in k or "v_proj" in k for k in keys(ours))
    assert all(k.startswith("base_model.model.model.layers.") for k in keys(ours))
    assert_only_adapter_tensors(adaptvc.get_adapter_state_dict(model), model)
    leaked = [
        t for t in adaptvc.get_adapter_state_dict(model).values() if t.data_ptr() in adapter_params(model, "task_a")
    ]
    assert not leaked

    expected = logits(model)
    fresh = PeftModel.from_pretrained(tiny_llama(), str(ours)).eval()
    torch.testing.assert_close(logits(fresh), expected, rtol=0, atol=0)
    fresh = tiny_llama()
    fresh.load_adapter(str(ours), adapter_name="again")
    torch.testing.assert_close(logits(fresh.eval()), expected, rtol=0, atol=0)


def test_transformers_non_active_adapter_by_name(two_adapter_transformers_model, tmp_path):
    model = two_adapter_transformers_model
    ours = adaptvc.save_adapter(model, tmp_path / "a", adapter_name="task_a")
    assert any("q_proj" in k for k in keys(ours)) and not any("k_proj" in k for k in keys(ours))
    model.set_adapter("task_a")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save_pretrained(str(tmp_path / "hf"))
    assert (ours / WEIGHTS).read_bytes() == (tmp_path / "hf" / WEIGHTS).read_bytes()


def test_transformers_several_active_adapters_is_an_error(two_adapter_transformers_model, tmp_path):
    model = two_adapter_transformers_model
    model.set_adapter(["task_a", "task_b"])
    with pytest.raises(AmbiguousAdapterError):
        adaptvc.save_adapter(model, tmp_path / "x")


def test_transformers_load_adapter_roundtrip(two_adapter_peft_model, tmp_path):
    source = adaptvc.save_adapter(two_adapter_peft_model, tmp_path / "src")
    model = tiny_llama()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.load_adapter(str(source), adapter_name="loaded")
        ours = adaptvc.save_adapter(model, tmp_path / "ours")
        model.save_pretrained(str(tmp_path / "hf"))
    assert (ours / WEIGHTS).read_bytes() == (tmp_path / "hf" / WEIGHTS).read_bytes()
    assert (ours / WEIGHTS).read_bytes() == (source / WEIGHTS).read_bytes()  # load + save changes nothing
    assert normalize_config(json.loads((ours / CONFIG).read_text())) == normalize_config(
        json.loads((tmp_path / "hf" / CONFIG).read_text())
    )


def test_base_model_name_is_filled_as_peft_does_without_modifying_the_live_config(tmp_path):
    model = get_peft_model(tiny_llama(), LoraConfig(**CONFIG_A))
    model.base_model.model.name_or_path = "acme/tiny-llama"  # e.g. loaded after wrapping
    before = model.peft_config["default"].to_dict()
    assert before["base_model_name_or_path"] is None and before["inference_mode"] is False
    saved = json.loads((adaptvc.save_adapter(model, tmp_path / "x") / CONFIG).read_text())
    assert saved["base_model_name_or_path"] == "acme/tiny-llama" and saved["inference_mode"] is True
    assert model.peft_config["default"].to_dict() == before  # PEFT's own save fills it in place; we do not
    model.save_pretrained(str(tmp_path / "peft"))
    assert normalize_config(saved) == normalize_config(json.loads((tmp_path / "peft" / CONFIG).read_text()))
