"""peft is the oracle: the adapter `adaptvc merge` writes equals PEFT's own
``add_weighted_adapter`` (``cat`` and ``svd``, same weights and rank) per module
(``get_delta_weight``) and in the logits, loaded with ``PeftModel.from_pretrained`` and
with transformers' ``load_adapter``.

Real tiny transformers models, adapters saved by peft's ``save_pretrained`` and versioned
with ``adaptvc save``. PEFT forms everything in float32, so agreement is to ~1e-5.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import adaptvc
from tests.models import perturb_adapter, sample_input, tiny_gpt2, tiny_llama
from tests.versioning_helpers import _initialised_template, avc_repo  # noqa: F401 - fixtures

RTOL = 1e-5


def _deltas(model, adapter: str) -> dict[str, np.ndarray]:
    from peft.tuners.lora import LoraLayer

    out = {}
    for name, module in model.named_modules():
        if isinstance(module, LoraLayer) and adapter in module.scaling:
            out[name.removeprefix("base_model.model.")] = (
                module.get_delta_weight(adapter).detach().to(torch.float64).numpy()
            )
    return out


def _train(make_model, config, directory: Path, seed: int) -> None:
    from peft import get_peft_model

    pm = get_peft_model(make_model(), config)
    perturb_adapter(pm, seed=seed, scale=0.2)
    pm.save_pretrained(directory, save_embedding_layers=False)


def _peft_merge(make_model, dirs, weights, **kw):
    """PEFT's way: the base model loaded, both adapters on it, add_weighted_adapter."""
    from peft import PeftModel

    pm = PeftModel.from_pretrained(make_model(), dirs[0], adapter_name="in0")
    for i, d in enumerate(dirs[1:], start=1):
        pm.load_adapter(d, adapter_name=f"in{i}")
    pm.add_weighted_adapter([f"in{i}" for i in range(len(dirs))], weights, "merged", **kw)
    pm.set_adapter("merged")
    return pm


def _compare(make_model, pm, written: Path, vocab: int) -> None:
    from peft import PeftModel

    ours = PeftModel.from_pretrained(make_model(), written)
    theirs_d, ours_d = _deltas(pm, "merged"), _deltas(ours, "default")
    assert set(ours_d) == set(theirs_d) and ours_d
    for name, expected in theirs_d.items():
        got = ours_d[name]
        assert got.shape == expected.shape, name
        assert np.linalg.norm(got - expected) <= RTOL * np.linalg.norm(expected), name
    x = sample_input(vocab)
    with torch.no_grad():
        want = pm(x).logits
        assert torch.allclose(ours(x).logits, want, atol=1e-5, rtol=1e-5)
        base = make_model()
        assert not torch.allclose(base(x).logits, want, atol=1e-3)  # the adapter matters
        base.load_adapter(str(written))  # transformers' own loader
        assert torch.allclose(base(x).logits, want, atol=1e-5, rtol=1e-5)


CASES = {
    # Llama: Linear modules with a rank pattern, and an embedding LoRA
    "llama": (
        tiny_llama,
        128,
        dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "embed_tokens"], rank_pattern={"v_proj": 2}),
        dict(r=2, lora_alpha=16, target_modules=["q_proj", "v_proj", "embed_tokens"]),
    ),
    # GPT-2: Conv1D (fan_in_fan_out) and the token embedding
    "gpt2": (
        tiny_gpt2,
        128,
        dict(r=4, lora_alpha=16, target_modules=["c_attn", "wte"], fan_in_fan_out=True),
        dict(r=4, lora_alpha=4, target_modules=["c_attn", "wte"], fan_in_fan_out=True),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("method", ["cat", "svd"])
def test_merge_equals_peft_add_weighted_adapter(avc_repo, case, method):
    from peft import LoraConfig

    make_model, vocab, cfg_a, cfg_b = CASES[case]
    dirs = [avc_repo.parent / "out_a", avc_repo.parent / "out_b"]
    _train(make_model, LoraConfig(**cfg_a), dirs[0], seed=1)
    _train(make_model, LoraConfig(**cfg_b), dirs[1], seed=2)
    adaptvc.save(dirs[0], adapter="task_a", message="a")
    adaptvc.save(dirs[1], adapter="task_b", message="b")
    weights = [0.7, -0.4]
    rank = 3 if method == "svd" else None
    merged = adaptvc.merge(["task_a@v1", "task_b@v1"], adapter="both", weights=weights, method=method, rank=rank)
    kw = {"combination_type": method} | ({"svd_rank": rank, "svd_clamp": None} if method == "svd" else {})
    pm = _peft_merge(make_model, [str(d) for d in dirs], weights, **kw)
    _compare(make_model, pm, avc_repo / "adapters/both", vocab)
    if method == "svd":  # the error reported is the one made, measured against PEFT's exact cat
        exact = _deltas(_peft_merge(make_model, [str(d) for d in dirs], weights, combination_type="cat"), "merged")
        approx = _deltas(pm, "merged")
        for m in merged.result.modules:
            e, a = exact[m.name].reshape(exact[m.name].shape[0], -1), approx[m.name].reshape(exact[m.name].shape[0], -1)
            assert m.relative_error == pytest.approx(np.linalg.norm(a - e) / np.linalg.norm(e), rel=1e-4), m.name
