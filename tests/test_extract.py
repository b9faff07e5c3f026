"""adaptvc.save_adapter against the oracle: installed peft's own save_pretrained.

For every adapter kind the issue names, on a tiny real model: the safetensors file is
byte-identical to PEFT's, the config equal after sorting set-valued fields, no saved
tensor is a base-model tensor, the directory loads with ``PeftModel.from_pretrained``
and with transformers' ``load_adapter`` to the same logits, and saving twice gives the
same bytes.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from peft import IA3Config, LoHaConfig, LoKrConfig, LoraConfig, PeftModel, get_peft_model
from safetensors import safe_open

import adaptvc
from adaptvc.formats.adapter_config import dumps_config, normalize_config
from tests.models import perturb_adapter, sample_input, tiny_gpt2, tiny_llama

WEIGHTS, CONFIG = "adapter_model.safetensors", "adapter_config.json"


def fake_quantized_llama(seed: int = 0):
    """A 'quantized-looking', frozen base: weights rounded to a per-tensor int8 grid, in bf16.

    bitsandbytes does not run on this CPU-only machine; this keeps what matters for
    saving: base weights that are low-precision, frozen and must never be written.
    """
    model = tiny_llama(seed)
    with torch.no_grad():
        for param in model.parameters():
            scale = param.abs().max().clamp(min=1e-8) / 127
            param.copy_(torch.round(param / scale).clamp(-127, 127) * scale)
            param.requires_grad_(False)
    return model.to(torch.bfloat16)


LLAMA_QV = ["q_proj", "v_proj"]
# name → (base model factory, adapter config factory, extra kwargs for peft's save_pretrained)
CASES = {
    "lora-llama-linear": (
        tiny_llama,
        lambda: LoraConfig(r=4, lora_alpha=8, target_modules=LLAMA_QV, task_type="CAUSAL_LM"),
        {},
    ),
    "lora-no-task-type": (tiny_llama, lambda: LoraConfig(r=4, lora_alpha=8, target_modules=LLAMA_QV), {}),
    "lora-gpt2-conv1d": (
        tiny_gpt2,
        lambda: LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn", "c_proj"], fan_in_fan_out=True),
        {},
    ),
    # PEFT's default would also copy the whole base embedding matrix; adaptvc does not (see extract.py).
    "lora-embedding": (
        tiny_llama,
        lambda: LoraConfig(r=4, target_modules=["embed_tokens", "q_proj"]),
        {"save_embedding_layers": False},
    ),
    "dora": (tiny_llama, lambda: LoraConfig(r=4, target_modules=LLAMA_QV, use_dora=True), {}),
    "rslora": (tiny_llama, lambda: LoraConfig(r=4, lora_alpha=16, target_modules=LLAMA_QV, use_rslora=True), {}),
    "rank-alpha-pattern": (
        tiny_llama,
        lambda: LoraConfig(
            r=4,
            target_modules=["q_proj", "v_proj", "up_proj"],
            rank_pattern={"q_proj": 2},
            alpha_pattern={"v_proj": 32},
        ),
        {},
    ),
    "bias-all": (tiny_gpt2, lambda: LoraConfig(r=4, target_modules=["c_attn"], fan_in_fan_out=True, bias="all"), {}),
    "bias-lora-only": (
        tiny_gpt2,
        lambda: LoraConfig(r=4, target_modules=["c_attn"], fan_in_fan_out=True, bias="lora_only"),
        {},
    ),
    "modules-to-save": (tiny_llama, lambda: LoraConfig(r=4, target_modules=LLAMA_QV, modules_to_save=["lm_head"]), {}),
    "ia3": (
        tiny_llama,
        lambda: IA3Config(target_modules=["k_proj", "v_proj", "down_proj"], feedforward_modules=["down_proj"]),
        {},
    ),
    "loha": (tiny_llama, lambda: LoHaConfig(r=2, alpha=4, target_modules=LLAMA_QV), {}),
    "lokr": (tiny_llama, lambda: LoKrConfig(r=2, alpha=4, target_modules=LLAMA_QV), {}),
    "frozen-fake-int8-base": (fake_quantized_llama, lambda: LoraConfig(r=4, target_modules=LLAMA_QV + ["o_proj"]), {}),
}

# What each case must contain, so a vacuous pass (nothing saved) is impossible.
MUST_CONTAIN = {
    "lora-embedding": ["lora_embedding_A", "lora_embedding_B"],
    "dora": ["lora_magnitude_vector"],
    # The bias of a LoRA-wrapped layer lives on its base layer: PEFT saves `base_layer.bias`.
    "bias-all": [".ln_1.bias", ".c_attn.base_layer.bias", ".c_fc.bias"],
    "bias-lora-only": [".c_attn.base_layer.bias"],
    # PEFT saves the trained copy under the module's own name (no `.modules_to_save.`);
    # assert_only_adapter_tensors proves it is the copy, not the base lm_head.
    "modules-to-save": ["base_model.model.lm_head.weight"],
    "ia3": ["ia3_l"],
    "loha": ["hada_w1_a", "hada_w2_b"],
    "lokr": ["lokr_w1", "lokr_w2"],
}
MUST_NOT_CONTAIN = {"bias-lora-only": [".c_fc.bias", ".ln_1.bias"]}


def build(case: str):
    base_factory, config_factory, _ = CASES[case]
    model = get_peft_model(base_factory(), config_factory())
    perturb_adapter(model)
    return model.eval()


def logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(sample_input()).logits.float()


def tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(path), "pt") as fh:
        return {k: fh.get_tensor(k) for k in fh.keys()}, fh.metadata()


def trainable_storage(model) -> set[int]:
    return {p.data_ptr() for p in model.parameters() if p.requires_grad}


def assert_only_adapter_tensors(state: dict[str, torch.Tensor], model) -> None:
    """No base-model tensor: every saved value *is* a trainable (adapter) parameter."""
    assert state, "nothing saved"
    allowed = trainable_storage(model)
    for key, tensor in state.items():
        # `base_layer.bias` is legitimate with bias="all"/"lora_only" (a trained bias).
        assert "base_layer" not in key or key.endswith("base_layer.bias"), key
        assert ".default" not in key, f"adapter name not removed: {key}"
        assert key.startswith("base_model.model."), key
        assert tensor.data_ptr() in allowed, f"{key} is not an adapter parameter"


@pytest.fixture(scope="module", params=sorted(CASES))
def saved(request, tmp_path_factory):
    """One case saved twice by adaptvc and once by PEFT."""
    case = request.param
    root = tmp_path_factory.mktemp(case)
    model = build(case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save_pretrained(str(root / "peft"), **CASES[case][2])
    ours = adaptvc.save_adapter(model, root / "ours")
    again = adaptvc.save_adapter(model, root / "again")
    return case, model, ours, again, root / "peft"


def test_save_adapter_returns_the_directory_with_exactly_the_two_files(saved):
    _, _, ours, _, _ = saved
    assert ours.is_dir()
    assert sorted(p.name for p in ours.iterdir()) == [CONFIG, WEIGHTS]


def test_weights_are_byte_identical_to_peft_save_pretrained(saved):
    case, _, ours, _, peft_dir = saved
    mine, meta = tensors(ours / WEIGHTS)
    theirs, _ = tensors(peft_dir / WEIGHTS)
    assert meta == {"format": "pt"}
    assert sorted(mine) == sorted(theirs)
    for key in theirs:
        assert mine[key].dtype == theirs[key].dtype and mine[key].shape == theirs[key].shape, key
        assert torch.equal(mine[key], theirs[key]), key
    assert (ours / WEIGHTS).read_bytes() == (peft_dir / WEIGHTS).read_bytes()
    for needle in MUST_CONTAIN.get(case, ["lora_A", "lora_B"]):
        assert any(needle in k for k in mine), f"{case}: no {needle} saved"
    for needle in MUST_NOT_CONTAIN.get(case, []):
        assert not any(k.endswith(needle) for k in mine), f"{case}: {needle} saved"


def test_config_equals_peft_after_sorting_set_fields(saved):
    _, _, ours, _, peft_dir = saved
    mine = json.loads((ours / CONFIG).read_text())
    theirs = json.loads((peft_dir / CONFIG).read_text())
    assert normalize_config(mine) == normalize_config(theirs)
    # ...and byte-identical to PEFT's layout once its sets are sorted.
    assert (ours / CONFIG).read_text() == dumps_config(theirs)
    assert mine["inference_mode"] is True and mine["peft_type"]


def test_saving_twice_gives_identical_bytes(saved):
    _, _, ours, again, _ = saved
    for name in (WEIGHTS, CONFIG):
        assert (ours / name).read_bytes() == (again / name).read_bytes(), name


def test_state_dict_holds_no_base_model_tensor(saved):
    _, model, _, _, _ = saved
    assert_only_adapter_tensors(adaptvc.get_adapter_state_dict(model), model)


def test_loads_with_peft_from_pretrained_to_the_same_logits(saved):
    case, model, ours, _, _ = saved
    fresh = PeftModel.from_pretrained(CASES[case][0](), str(ours)).eval()
    torch.testing.assert_close(logits(fresh), logits(model), rtol=0, atol=0)


# Where transformers' loader itself differs from the live model, for PEFT's own files too.
TRANSFORMERS_LOADER_BUG = {
    # load report: `lora_magnitude_vector.x` UNEXPECTED, `lora_magnitude_vector.x.weight` MISSING
    "dora": "transformers load_adapter does not load DoRA's lora_magnitude_vector",
}
# transformers load_adapter has no autocast: float32 adapter weights become bf16 like the base.
TRANSFORMERS_BF16_ROUNDING = {"frozen-fake-int8-base"}


def transformers_logits(factory, directory: Path) -> torch.Tensor:
    fresh = factory()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fresh.load_adapter(str(directory), adapter_name="task_a")
    return logits(fresh.eval())


def test_loads_with_transformers_load_adapter_to_the_same_logits(saved):
    case, model, ours, _, peft_dir = saved
    factory = CASES[case][0]
    loaded = transformers_logits(factory, ours)
    # Whatever transformers does with PEFT's own file, it does with ours.
    torch.testing.assert_close(loaded, transformers_logits(factory, peft_dir), rtol=0, atol=0)
    if case in TRANSFORMERS_LOADER_BUG:
        # Keep watching: when transformers fixes it, this fails and the exception goes.
        assert not torch.allclose(loaded, logits(model)), f"fixed upstream? {TRANSFORMERS_LOADER_BUG[case]}"
        return
    atol = 1e-2 if case in TRANSFORMERS_BF16_ROUNDING else 0.0
    torch.testing.assert_close(loaded, logits(model), rtol=0, atol=atol)


# --- the embedding and quantized-base cases, more closely ---------------------------


def test_embedding_opt_in_reproduces_peft_default_exactly(tmp_path):
    model = build("lora-embedding")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save_pretrained(str(tmp_path / "peft"))  # PEFT's default: "auto"
        adaptvc.save_adapter(model, tmp_path / "ours", save_embedding_layers="auto")
    assert (tmp_path / "ours" / WEIGHTS).read_bytes() == (tmp_path / "peft" / WEIGHTS).read_bytes()
    assert "base_model.model.model.embed_tokens.base_layer.weight" in tensors(tmp_path / "ours" / WEIGHTS)[0]


def test_fake_quantized_base_keeps_adapter_dtypes_and_skips_every_base_tensor():
    model = build("frozen-fake-int8-base")
    state = adaptvc.get_adapter_state_dict(model)
    assert {t.dtype for t in state.values()} == {torch.float32}  # peft autocasts bf16 adapters
    base = {n: p for n, p in model.named_parameters() if not p.requires_grad}
    assert all(p.dtype == torch.bfloat16 for p in base.values())
    for key, tensor in state.items():
        for name, param in base.items():
            assert not (param.shape == tensor.shape and torch.equal(param.float(), tensor.float())), (key, name)


def test_bf16_adapter_weights_are_saved_in_bf16(tmp_path):
    model = get_peft_model(
        fake_quantized_llama(), LoraConfig(r=4, target_modules=LLAMA_QV), autocast_adapter_dtype=False
    )
    perturb_adapter(model)
    adaptvc.save_adapter(model, tmp_path / "ours")
    model.save_pretrained(str(tmp_path / "peft"))
    mine, _ = tensors(tmp_path / "ours" / WEIGHTS)
    assert {t.dtype for t in mine.values()} == {torch.bfloat16}
    assert (tmp_path / "ours" / WEIGHTS).read_bytes() == (tmp_path / "peft" / WEIGHTS).read_bytes()


SAVE_IN_A_FRESH_PROCESS = """
import sys
from peft import LoraConfig, get_peft_model
import adaptvc
from tests.models import perturb_adapter, tiny_llama
model = get_peft_model(tiny_llama(), LoraConfig(r=4, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "up_proj"]))
perturb_adapter(model)
adaptvc.save_adapter(model, sys.argv[1])
model.save_pretrained(sys.argv[2])
"""


def test_identical_bytes_across_processes_whatever_the_hash_seed(tmp_path):
    """Set order follows str hashing, which changes per process: PEFT's config does, ours not."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    procs = {
        seed: subprocess.Popen(
            [
                sys.executable,
                "-c",
                SAVE_IN_A_FRESH_PROCESS,
                str(tmp_path / f"ours{seed}"),
                str(tmp_path / f"peft{seed}"),
            ],
            env=dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(REPO_ROOT)),
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in ("1", "2")
    }
    for proc in procs.values():
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
    for name in (WEIGHTS, CONFIG):
        assert (tmp_path / "ours1" / name).read_bytes() == (tmp_path / "ours2" / name).read_bytes(), name
    # The check has teeth: with these two seeds PEFT's own configs differ (target_modules order).
    peft_configs = [json.loads((tmp_path / f"peft{s}" / CONFIG).read_text()) for s in ("1", "2")]
    assert peft_configs[0]["target_modules"] != peft_configs[1]["target_modules"]
    assert normalize_config(peft_configs[0]) == normalize_config(peft_configs[1])
