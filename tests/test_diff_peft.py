"""peft is the oracle: adaptvc's factored numbers equal what peft's merge would add.

Real tiny transformers models, real peft adapters saved with peft's own
``save_pretrained``; for every LoRA module the dense update comes from
``lora_layer.get_delta_weight("default")`` (exactly what ``merge`` adds to the base weight).
"""

from __future__ import annotations

import numpy as np
import peft
import pytest
import torch

import adaptvc  # noqa: E402
from tests.models import perturb_adapter, tiny_gpt2, tiny_llama  # noqa: E402

RTOL = 1e-5  # peft forms ΔW in float32


def _deltas(model) -> dict[str, np.ndarray]:
    from peft.tuners.lora import LoraLayer

    out = {}
    for name, module in model.named_modules():
        if isinstance(module, LoraLayer) and "default" in module.scaling:
            key = name.removeprefix("base_model.model.")
            out[key] = module.get_delta_weight("default").detach().to(torch.float64).numpy()
    return out


def _two_versions(model, tmp_path, config):
    from peft import get_peft_model

    pm = get_peft_model(model, config)
    perturb_adapter(pm, seed=1)
    pm.save_pretrained(tmp_path / "a")
    da = _deltas(pm)
    perturb_adapter(pm, seed=2, scale=0.03)
    pm.save_pretrained(tmp_path / "b")
    db = _deltas(pm)
    return pm, da, db


def _check(result, da, db):
    by = {m.module: m for m in result.modules}
    assert set(by) == set(da), (sorted(by), sorted(da))
    for name, a in da.items():
        b, m = db[name], by[name]
        assert m.shape == a.shape, name
        assert m.norm_a == pytest.approx(np.linalg.norm(a), rel=RTOL), name
        assert m.norm_b == pytest.approx(np.linalg.norm(b), rel=RTOL), name
        assert m.delta_norm == pytest.approx(np.linalg.norm(b - a), rel=RTOL), name
        cos = float(np.sum(a * b) / (np.linalg.norm(a) * np.linalg.norm(b)))
        assert m.cosine == pytest.approx(cos, rel=RTOL), name


def test_llama_rslora_patterns_match_peft_merge(tmp_path):
    from peft import LoraConfig

    config = LoraConfig(
        r=4,
        lora_alpha=8,
        use_rslora=True,
        target_modules=["q_proj", "v_proj", "o_proj"],
        rank_pattern={"layers.1.self_attn.q_proj": 2, "o_proj": 6},
        alpha_pattern={"v_proj": 3},
    )
    _, da, db = _two_versions(tiny_llama(), tmp_path, config)
    result = adaptvc.diff(tmp_path / "a", tmp_path / "b")
    _check(result, da, db)
    ranks = {m.module: m.rank_a for m in result.modules}
    assert ranks["model.layers.1.self_attn.q_proj"] == 2 and ranks["model.layers.0.self_attn.o_proj"] == 6


def test_gpt2_conv1d_and_embedding_match_peft_merge(tmp_path):
    from peft import LoraConfig

    config = LoraConfig(r=4, lora_alpha=16, target_modules=["c_attn", "wte"], fan_in_fan_out=True)
    pm, da, db = _two_versions(tiny_gpt2(), tmp_path, config)
    result = adaptvc.diff(tmp_path / "a", tmp_path / "b")
    _check(result, da, db)
    kinds = {m.module: m.kind for m in result.modules}
    assert kinds["transformer.h.0.attn.c_attn"] == "conv1d"
    assert kinds["transformer.wte"] == "embedding"
    # The layout is the base weight's own: Conv1D stores (in, out), the embedding (vocab, dim).
    base = pm.get_base_model()
    by = {m.module: m for m in result.modules}
    assert by["transformer.h.0.attn.c_attn"].shape == tuple(base.transformer.h[0].attn.c_attn.weight.shape)
    assert by["transformer.wte"].shape == tuple(base.transformer.wte.weight.shape)


def test_dora_compares_lora_update_and_magnitudes(tmp_path):
    from peft import LoraConfig

    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], use_dora=True)
    _, da, db = _two_versions(tiny_llama(), tmp_path, config)
    result = adaptvc.diff(tmp_path / "a", tmp_path / "b")
    _check(result, da, db)
    mags = [t for t in result.tensors if t.tensor.endswith("lora_magnitude_vector")]
    assert len(mags) == len(da) and all(t.delta_norm > 0 for t in mags)
    assert any("DoRA" in note for note in result.notes)


def test_bf16_adapter_saved_by_peft(tmp_path):
    from peft import LoraConfig, get_peft_model

    pm = get_peft_model(tiny_llama(), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"]))
    perturb_adapter(pm, seed=3)
    pm.save_pretrained(tmp_path / "f32")
    pm = pm.to(torch.bfloat16)
    pm.save_pretrained(tmp_path / "bf16")
    da = _deltas(pm)  # ΔW of the bf16 weights (peft computes it in float32 on CPU, returns bf16)
    result = adaptvc.diff(tmp_path / "bf16", tmp_path / "bf16")
    for m in result.modules:
        assert m.norm_a == pytest.approx(np.linalg.norm(da[m.module]), rel=1e-2)  # bf16 output rounding
        assert m.delta_norm == 0.0
    # bf16 rounding of f32 factors: a small but nonzero change
    r = adaptvc.diff(tmp_path / "f32", tmp_path / "bf16")
    assert 0 < r.summary.relative < 1e-2
