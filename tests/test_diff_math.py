"""Factored diff vs a dense float64 reference, on small random adapters.

Every number `adaptvc.diff` reports for a LoRA module is checked against the materialised
ΔW (float64) to 1e-6 relative: rsLoRA, rank/alpha patterns (resolved with peft's own
`get_pattern_key`, the oracle), different ranks on each side, Conv1D (`fan_in_fan_out`),
embeddings, Conv2d, a change too small for the naive trace expansion, fp16 and bf16.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import adaptvc
from adaptvc.adapter_diff.lowrank import LowRankUpdate, compare
from adaptvc.errors import BaseModelMismatchError, InvalidAdapterError

PREFIX = "base_model.model."
RTOL = 1e-6


# --- building adapters -----------------------------------------------------------------

# module path → kind; shapes are (out, in) of the base layer ((in, out) for conv1d).
MODULES = {
    "model.layers.0.self_attn.q_proj": ("linear", 24, 16),
    "model.layers.0.self_attn.v_proj": ("linear", 8, 16),
    "model.layers.1.self_attn.q_proj": ("linear", 24, 16),
    "model.layers.1.self_attn.v_proj": ("linear", 8, 16),
    "model.layers.1.mlp.down_proj": ("linear", 16, 40),
}


def write_adapter(directory: Path, tensors: dict[str, np.ndarray], config: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: np.ascontiguousarray(v) for k, v in tensors.items()},
        str(directory / "adapter_model.safetensors"),
        metadata={"format": "pt"},
    )
    # Every module that has factors is targeted, as in any adapter PEFT saves.
    targeted = {k.split(".lora_")[0].rsplit(".", 1)[-1] for k in tensors if ".lora_" in k}
    full = {
        "peft_type": "LORA",
        "r": 4,
        "lora_alpha": 8,
        "target_modules": sorted(targeted or {"q_proj", "v_proj"}),
        "base_model_name_or_path": "tiny/base",
        **config,
    }
    (directory / "adapter_config.json").write_text(json.dumps(full, indent=2, sort_keys=True))
    return directory


def lora_tensors(
    rng: np.random.Generator, ranks: dict[str, int], modules=MODULES, dtype=np.float32, scale: float = 1.0
) -> dict[str, np.ndarray]:
    out = {}
    for name, (kind, d0, d1) in modules.items():
        r = ranks[name]
        if kind == "embedding":  # d0 = num_embeddings, d1 = dim
            out[f"{PREFIX}{name}.lora_embedding_A"] = rng.standard_normal((r, d0)) * scale
            out[f"{PREFIX}{name}.lora_embedding_B"] = rng.standard_normal((d1, r)) * scale
        elif kind == "conv1d":  # base weight (in=d0, out=d1); lora_A (r, in), lora_B (out, r)
            out[f"{PREFIX}{name}.lora_A.weight"] = rng.standard_normal((r, d0)) * scale
            out[f"{PREFIX}{name}.lora_B.weight"] = rng.standard_normal((d1, r)) * scale
        elif kind == "conv2d":  # (out=d0, in=d1, 3, 3)
            out[f"{PREFIX}{name}.lora_A.weight"] = rng.standard_normal((r, d1, 3, 3)) * scale
            out[f"{PREFIX}{name}.lora_B.weight"] = rng.standard_normal((d0, r, 1, 1)) * scale
        else:  # linear (out=d0, in=d1)
            out[f"{PREFIX}{name}.lora_A.weight"] = rng.standard_normal((r, d1)) * scale
            out[f"{PREFIX}{name}.lora_B.weight"] = rng.standard_normal((d0, r)) * scale
    return {k: v.astype(dtype) for k, v in out.items()}


# --- the dense reference (independent of adaptvc's code) -----------------------------------


def peft_scale(config: dict, module: str) -> float:
    from peft.utils.other import get_pattern_key

    rp, ap = config.get("rank_pattern") or {}, config.get("alpha_pattern") or {}
    r = rp.get(get_pattern_key(rp.keys(), module), config["r"])
    alpha = ap.get(get_pattern_key(ap.keys(), module), config["lora_alpha"])
    return alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r


def dense_updates(directory: Path, modules=MODULES) -> dict[str, np.ndarray]:
    """ΔW per module in float64, in the base weight's layout, as peft's get_delta_weight forms it."""
    from safetensors.numpy import load_file

    config = json.loads((directory / "adapter_config.json").read_text())
    t = {k: v.astype(np.float64) for k, v in load_file(str(directory / "adapter_model.safetensors")).items()}
    out = {}
    for name, (kind, *_dims) in modules.items():
        s = peft_scale(config, name)
        if kind == "embedding":
            A, B = t[f"{PREFIX}{name}.lora_embedding_A"], t[f"{PREFIX}{name}.lora_embedding_B"]
            out[name] = s * (B @ A).T
        elif kind == "conv2d":
            A, B = t[f"{PREFIX}{name}.lora_A.weight"], t[f"{PREFIX}{name}.lora_B.weight"]
            out[name] = s * np.einsum("or,rikl->oikl", B[:, :, 0, 0], A)
        else:
            A, B = t[f"{PREFIX}{name}.lora_A.weight"], t[f"{PREFIX}{name}.lora_B.weight"]
            out[name] = s * (B @ A).T if kind == "conv1d" else s * (B @ A)
    return out


def assert_close(actual: float | None, expected: float, what: str, rtol: float = RTOL) -> None:
    assert actual is not None, what
    assert abs(actual - expected) <= rtol * max(abs(expected), 1e-300), f"{what}: {actual!r} vs dense {expected!r}"


def check_against_dense(result, dir_a: Path, dir_b: Path, modules=MODULES) -> None:
    da, db = dense_updates(dir_a, modules), dense_updates(dir_b, modules)
    by_name = {m.module: m for m in result.modules}
    assert set(by_name) == set(modules)
    tot_a2 = tot_b2 = tot_d2 = tot_in = 0.0
    for name in modules:
        a, b, m = da[name], db[name], by_name[name]
        na, nb, nd = np.linalg.norm(a), np.linalg.norm(b), np.linalg.norm(b - a)
        inner = float(np.sum(a * b))
        assert_close(m.norm_a, na, f"{name} norm_a")
        assert_close(m.norm_b, nb, f"{name} norm_b")
        assert_close(m.delta_norm, nd, f"{name} delta_norm")
        assert_close(m.relative, nd / na, f"{name} relative")
        assert_close(m.cosine, inner / (na * nb), f"{name} cosine")
        assert m.shape == a.shape
        tot_a2, tot_b2, tot_d2, tot_in = tot_a2 + na**2, tot_b2 + nb**2, tot_d2 + nd**2, tot_in + inner
    s = result.summary
    assert_close(s.norm_a, math.sqrt(tot_a2), "total norm_a")
    assert_close(s.norm_b, math.sqrt(tot_b2), "total norm_b")
    assert_close(s.delta_norm, math.sqrt(tot_d2), "total delta_norm")
    assert_close(s.cosine, tot_in / math.sqrt(tot_a2 * tot_b2), "total cosine")


# --- tests -------------------------------------------------------------------------------


def test_plain_lora_matches_dense(tmp_path):
    rng = np.random.default_rng(0)
    ranks = {m: 4 for m in MODULES}
    a = write_adapter(tmp_path / "a", lora_tensors(rng, ranks), {})
    b = write_adapter(tmp_path / "b", lora_tensors(rng, ranks), {})
    check_against_dense(adaptvc.diff(a, b), a, b)


def test_rslora_with_rank_and_alpha_patterns_and_different_ranks(tmp_path):
    rng = np.random.default_rng(1)
    # a: rsLoRA, r=4, one module at rank 2 by pattern, v_proj alpha by pattern.
    cfg_a = {
        "r": 4,
        "lora_alpha": 16,
        "use_rslora": True,
        "rank_pattern": {"layers.1.self_attn.q_proj": 2},
        "alpha_pattern": {"v_proj": 3},
    }
    ranks_a = {m: 4 for m in MODULES} | {"model.layers.1.self_attn.q_proj": 2}
    # b: plain scaling, r=6, a regex pattern giving every layer-0 module rank 3, and
    # down_proj matched by a pattern that is itself a regex.
    cfg_b = {
        "r": 6,
        "lora_alpha": 12,
        "rank_pattern": {r"model\.layers\.0\..*": 3},
        "alpha_pattern": {"mlp.down_proj": 5},
    }
    ranks_b = {m: (3 if ".0." in m else 6) for m in MODULES}
    a = write_adapter(tmp_path / "a", lora_tensors(rng, ranks_a), cfg_a)
    b = write_adapter(tmp_path / "b", lora_tensors(rng, ranks_b), cfg_b)
    result = adaptvc.diff(a, b)
    check_against_dense(result, a, b)
    by = {m.module: m for m in result.modules}
    assert (by["model.layers.1.self_attn.q_proj"].rank_a, by["model.layers.1.self_attn.q_proj"].rank_b) == (2, 6)
    assert by["model.layers.1.self_attn.v_proj"].scale_a == pytest.approx(3 / 2)  # alpha 3 / sqrt(4)
    assert result.config["use_rslora"] == (True, None)
    assert result.config["r"] == (4, 6)


def test_same_rank_different_alpha(tmp_path):
    rng = np.random.default_rng(2)
    ranks = {m: 4 for m in MODULES}
    t = lora_tensors(rng, ranks)
    a = write_adapter(tmp_path / "a", t, {"lora_alpha": 8})
    t2 = {k: v + 0.01 * rng.standard_normal(v.shape).astype(v.dtype) for k, v in t.items()}
    b = write_adapter(tmp_path / "b", t2, {"lora_alpha": 32})
    check_against_dense(adaptvc.diff(a, b), a, b)


def test_conv1d_embedding_and_conv2d_layouts(tmp_path):
    modules = {
        "transformer.h.0.attn.c_attn": ("conv1d", 16, 48),  # GPT-2 Conv1D: base weight (in, out)
        "transformer.h.1.attn.c_attn": ("conv1d", 16, 48),
        "transformer.wte": ("embedding", 50, 16),  # (num_embeddings, dim)
        "vision.conv": ("conv2d", 6, 5),  # (out, in, 3, 3)
    }
    rng = np.random.default_rng(3)
    a = write_adapter(
        tmp_path / "a",
        lora_tensors(rng, {m: 4 for m in modules}, modules),
        {"fan_in_fan_out": True, "target_modules": ["c_attn", "wte", "conv"]},
    )
    b = write_adapter(
        tmp_path / "b",
        lora_tensors(rng, {m: 3 for m in modules} | {"transformer.wte": 5}, modules),
        {"fan_in_fan_out": True, "target_modules": ["c_attn", "wte", "conv"], "r": 3, "rank_pattern": {"wte": 5}},
    )
    result = adaptvc.diff(a, b)
    check_against_dense(result, a, b, modules)
    by = {m.module: m for m in result.modules}
    assert by["transformer.h.0.attn.c_attn"].shape == (16, 48)
    assert by["transformer.wte"].shape == (50, 16)
    assert by["vision.conv"].shape == (6, 5, 3, 3)


def test_cross_term_between_layouts_is_taken_in_the_base_layout():
    # The same base weight reached through two layouts: Linear-style L·R vs the transposed
    # (B·A)ᵀ = Aᵀ·Bᵀ. Only in a common layout is ⟨ΔW_a, ΔW_b⟩ meaningful.
    rng = np.random.default_rng(4)
    A, B = rng.standard_normal((3, 7)), rng.standard_normal((5, 3))
    as_linear = LowRankUpdate(B, A, 2.0)  # ΔW = 2·B·A, (5, 7)
    as_transposed = LowRankUpdate(A.T, B.T, 2.0)  # 2·(B·A)ᵀ, (7, 5): a different matrix
    with pytest.raises(ValueError):
        compare(as_linear, as_transposed)
    C, D = rng.standard_normal((7, 2)), rng.standard_normal((2, 5))
    other = LowRankUpdate(C, D, 0.5)  # (7, 5)
    st = compare(as_transposed, other)
    dense_a, dense_b = as_transposed.dense(), other.dense()
    assert st.inner == pytest.approx(float(np.sum(dense_a * dense_b)), rel=1e-12)
    assert st.delta_norm == pytest.approx(float(np.linalg.norm(dense_b - dense_a)), rel=1e-12)


def test_tiny_change_keeps_full_precision(tmp_path):
    # ‖ΔW_b − ΔW_a‖ ≈ 1e-7·‖ΔW‖: the expansion ‖a‖² + ‖b‖² − 2⟨a,b⟩ would lose ~all digits.
    rng = np.random.default_rng(5)
    ranks = {m: 4 for m in MODULES}
    t = lora_tensors(rng, ranks, dtype=np.float64)
    t2 = {k: v * (1 + 1e-7 * rng.standard_normal(v.shape)) for k, v in t.items()}
    a = write_adapter(tmp_path / "a", t, {})
    b = write_adapter(tmp_path / "b", t2, {})
    result = adaptvc.diff(a, b)
    check_against_dense(result, a, b)
    assert 1e-9 < result.summary.relative < 1e-5


def test_identical_adapters_are_exactly_zero(tmp_path):
    rng = np.random.default_rng(6)
    a = write_adapter(tmp_path / "a", lora_tensors(rng, {m: 4 for m in MODULES}), {})
    result = adaptvc.diff(a, a)
    assert all(m.delta_norm == 0.0 and m.relative == 0.0 for m in result.modules)
    assert all(m.cosine == pytest.approx(1.0, abs=1e-12) for m in result.modules)
    assert result.summary.delta_norm == 0.0
    assert result.identical


def test_reparametrised_factors_have_no_change(tmp_path):
    # B·M, M⁻¹·A is the same update: raw factor diffs are large, ΔW's is ~0.
    rng = np.random.default_rng(7)
    ranks = {m: 4 for m in MODULES}
    t = lora_tensors(rng, ranks, dtype=np.float64)
    t2 = dict(t)
    for name in MODULES:
        M = rng.standard_normal((4, 4)) + 4 * np.eye(4)
        t2[f"{PREFIX}{name}.lora_B.weight"] = t[f"{PREFIX}{name}.lora_B.weight"] @ M
        t2[f"{PREFIX}{name}.lora_A.weight"] = np.linalg.solve(M, t[f"{PREFIX}{name}.lora_A.weight"])
    a = write_adapter(tmp_path / "a", t, {})
    b = write_adapter(tmp_path / "b", t2, {})
    result = adaptvc.diff(a, b)
    # A Gram formula alone would bottom out near √ε ≈ 1e-8 here; the QR fallback does not.
    assert result.summary.relative < 1e-13
    assert all(m.cosine == pytest.approx(1.0, abs=1e-12) for m in result.modules)


def test_same_update_at_a_higher_rank_has_no_change():
    # [B·M, B2]·[M⁻¹·A; 0] = B·A at rank 6 vs 4: the different-rank path, same fallback.
    rng = np.random.default_rng(17)
    A, B = rng.standard_normal((4, 30)), rng.standard_normal((20, 4))
    M = rng.standard_normal((4, 4)) + 4 * np.eye(4)
    B6 = np.concatenate([B @ M, rng.standard_normal((20, 2))], axis=1)
    A6 = np.concatenate([np.linalg.solve(M, A), np.zeros((2, 30))], axis=0)
    a, b = LowRankUpdate(B, A, 0.5), LowRankUpdate(B6, A6, 0.5)
    st = compare(a, b)
    assert st.delta_norm < 1e-13 * st.norm_a
    assert st.norm_b == pytest.approx(st.norm_a, rel=1e-12)
    # and a genuine small change at different ranks still matches dense
    b2 = LowRankUpdate(B6 + 1e-6 * rng.standard_normal(B6.shape), A6, 0.5)
    st2 = compare(a, b2)
    assert st2.delta_norm == pytest.approx(np.linalg.norm(b2.dense() - a.dense()), rel=1e-6)


@pytest.mark.parametrize("factor", [0.0, 1e-9, 1e9])
@pytest.mark.parametrize("side", ["left", "right"])
def test_norms_when_one_update_is_zero_or_tiny_next_to_the_other(factor, side):
    # Both norms are derived from the difference Grams (s_b·L_b = dL + s_a·L_a,
    # R_a = R_b − dR); when one update is negligible next to the other that sum cancels
    # and the norm comes from its own factors: a zero update has norm exactly 0.
    rng = np.random.default_rng(23)
    A, B = rng.standard_normal((4, 30)), rng.standard_normal((20, 4))
    A2, B2 = rng.standard_normal((4, 30)), rng.standard_normal((20, 4))
    if side == "left":
        B2 = factor * B2
    else:
        A2 = factor * A2
    for a, b in (
        (LowRankUpdate(B, A, 0.5), LowRankUpdate(B2, A2, 0.75)),
        (LowRankUpdate(B2, A2, 0.75), LowRankUpdate(B, A, 0.5)),
    ):
        st = compare(a, b)
        da, db = a.dense(), b.dense()
        for got, want in (
            (st.norm_a, np.linalg.norm(da)),
            (st.norm_b, np.linalg.norm(db)),
            (st.delta_norm, np.linalg.norm(db - da)),
        ):
            if want == 0:
                assert got == 0
            else:
                assert got == pytest.approx(want, rel=1e-6)
        if factor == 0:
            assert st.cosine is None


def test_fp16_and_bf16_files_decode_exactly(tmp_path):
    import torch
    from safetensors.torch import save_file as save_torch

    from adaptvc.formats.safetensors_reader import SafetensorsReader

    rng = np.random.default_rng(8)
    ranks = {m: 4 for m in MODULES}
    a = write_adapter(tmp_path / "a", lora_tensors(rng, ranks, dtype=np.float16), {})
    b = tmp_path / "b"
    write_adapter(b, lora_tensors(rng, ranks), {})
    bf = {k: torch.from_numpy(v).to(torch.bfloat16) for k, v in lora_tensors(rng, ranks).items()}
    save_torch(bf, str(b / "adapter_model.safetensors"), metadata={"format": "pt"})
    with SafetensorsReader(b / "adapter_model.safetensors") as st:
        assert st.info(next(iter(bf))).dtype == "BF16"
        for k, v in bf.items():
            np.testing.assert_array_equal(st.read(k), v.to(torch.float64).numpy())
            flat = st.read(k, start=3, stop=11)
            np.testing.assert_array_equal(flat, v.to(torch.float64).numpy().ravel()[3:11])
    # The dense reference reads bf16 through torch.
    from safetensors.torch import load_file as load_torch

    back = {k: v.to(torch.float64).numpy() for k, v in load_torch(str(b / "adapter_model.safetensors")).items()}
    ref = tmp_path / "b_as_f64"
    write_adapter(ref, back, {})
    result = adaptvc.diff(a, b)
    check_against_dense(result, a, ref)


def test_added_removed_reshaped_and_elementwise_tensors(tmp_path):
    rng = np.random.default_rng(9)
    ranks = {m: 4 for m in MODULES}
    ta = lora_tensors(rng, ranks)
    tb = lora_tensors(rng, ranks)
    gone = "model.layers.1.mlp.down_proj"
    for k in [k for k in tb if gone in k]:
        del tb[k]
    new = {"model.layers.1.mlp.up_proj": ("linear", 40, 16)}
    tb |= lora_tensors(rng, {"model.layers.1.mlp.up_proj": 4}, new)
    # reshaped: v_proj of layer 0 now has 12 outputs
    tb[f"{PREFIX}model.layers.0.self_attn.v_proj.lora_B.weight"] = rng.standard_normal((12, 4)).astype(np.float32)
    # elementwise: modules_to_save copy, a bias, a DoRA magnitude, one only in b
    head_a = rng.standard_normal((30, 16)).astype(np.float32)
    head_b = head_a.copy()
    head_b[3, 4] += 0.5
    ta[f"{PREFIX}lm_head.weight"], tb[f"{PREFIX}lm_head.weight"] = head_a, head_b
    ta[f"{PREFIX}model.layers.0.self_attn.q_proj.lora_B.bias"] = np.ones(24, np.float32)
    tb[f"{PREFIX}model.layers.0.self_attn.q_proj.lora_B.bias"] = np.ones(24, np.float32)
    tb[f"{PREFIX}model.layers.0.self_attn.q_proj.lora_magnitude_vector"] = np.ones(24, np.float32)
    a = write_adapter(tmp_path / "a", ta, {})
    b = write_adapter(tmp_path / "b", tb, {})
    result = adaptvc.diff(a, b)
    s = result.summary
    assert [m.name for m in s.modules_removed] == [gone]
    assert [m.name for m in s.modules_added] == ["model.layers.1.mlp.up_proj"]
    assert [(m.name, m.shape_a, m.shape_b) for m in s.modules_reshaped] == [
        ("model.layers.0.self_attn.v_proj", (8, 16), (12, 16))
    ]
    assert s.modules_compared == 3
    da, db = dense_updates(a, {k: v for k, v in MODULES.items()}), None
    assert s.modules_removed[0].norm == pytest.approx(np.linalg.norm(da[gone]), rel=RTOL)
    tensors = {t.tensor: t for t in result.tensors}
    head = tensors["lm_head.weight"]
    assert head.delta_norm == pytest.approx(0.5, rel=1e-6) and head.max_abs_diff == pytest.approx(0.5, rel=1e-6)
    assert head.norm_a == pytest.approx(np.linalg.norm(head_a.astype(np.float64)), rel=1e-12)
    assert tensors["model.layers.0.self_attn.q_proj.lora_B.bias"].delta_norm == 0.0
    assert [t.name for t in s.tensors_added] == ["model.layers.0.self_attn.q_proj.lora_magnitude_vector"]
    assert s.tensors_changed == 1
    # totals: removed/added modules count in full, a reshaped one as removed + added
    db = dense_updates(b, {k: v for k, v in (MODULES | new).items() if k != gone})
    total_d2 = sum(
        np.linalg.norm(db[m] - da[m]) ** 2 for m in MODULES if m not in (gone, "model.layers.0.self_attn.v_proj")
    )
    total_d2 += np.linalg.norm(da[gone]) ** 2 + np.linalg.norm(db["model.layers.1.mlp.up_proj"]) ** 2
    total_d2 += (
        np.linalg.norm(da["model.layers.0.self_attn.v_proj"]) ** 2
        + np.linalg.norm(db["model.layers.0.self_attn.v_proj"]) ** 2
    )
    assert s.delta_norm == pytest.approx(math.sqrt(total_d2), rel=RTOL)


def test_non_lora_peft_type_is_elementwise(tmp_path):
    rng = np.random.default_rng(10)
    t = {f"{PREFIX}model.layers.0.mlp.down_proj.ia3_l": rng.standard_normal((1, 40)).astype(np.float32)}
    a = write_adapter(tmp_path / "a", t, {"peft_type": "IA3"})
    t2 = {k: v * 2 for k, v in t.items()}
    b = write_adapter(tmp_path / "b", t2, {"peft_type": "IA3"})
    result = adaptvc.diff(a, b)
    assert result.modules == ()
    (only,) = result.tensors
    assert only.relative == pytest.approx(1.0)


def test_large_elementwise_tensor_is_streamed_in_chunks(tmp_path, monkeypatch):
    from adaptvc.adapter_diff import elementwise

    monkeypatch.setattr(elementwise, "CHUNK", 7)  # force many chunks, ragged last one
    rng = np.random.default_rng(11)
    x = rng.standard_normal((13, 5)).astype(np.float32)
    y = x + rng.standard_normal((13, 5)).astype(np.float32)
    a = write_adapter(tmp_path / "a", {f"{PREFIX}lm_head.weight": x}, {})
    b = write_adapter(tmp_path / "b", {f"{PREFIX}lm_head.weight": y}, {})
    (t,) = adaptvc.diff(a, b).tensors
    d = y.astype(np.float64) - x.astype(np.float64)
    assert t.delta_norm == pytest.approx(np.linalg.norm(d), rel=1e-12)
    assert t.max_abs_diff == pytest.approx(np.abs(d).max(), rel=1e-12)


def test_base_model_mismatch_needs_force(tmp_path):
    rng = np.random.default_rng(12)
    ranks = {m: 4 for m in MODULES}
    a = write_adapter(tmp_path / "a", lora_tensors(rng, ranks), {"base_model_name_or_path": "org/llama-7b"})
    b = write_adapter(tmp_path / "b", lora_tensors(rng, ranks), {"base_model_name_or_path": "org/mistral-7b"})
    with pytest.raises(BaseModelMismatchError) as err:
        adaptvc.diff(a, b)
    assert "org/llama-7b" in err.value.message and "org/mistral-7b" in err.value.message
    assert "--force" in err.value.hint
    result = adaptvc.diff(a, b, force=True)
    assert result.summary.base_model.status == "mismatch"
    assert result.config["base_model_name_or_path"] == ("org/llama-7b", "org/mistral-7b")


def test_fingerprints_decide_over_names(tmp_path):
    from adaptvc.adapter_diff.config_diff import check_base_models
    from adaptvc.adapter_diff.sources import directory_source

    rng = np.random.default_rng(13)
    a = directory_source(write_adapter(tmp_path / "a", lora_tensors(rng, {m: 4 for m in MODULES}), {}))
    same = dict(a.base_model, fingerprint="sha256:" + "1" * 64)
    moved = dict(same, name_or_path="/home/me/llama")  # same weights, another path
    other = dict(same, fingerprint="sha256:" + "2" * 64)
    with_base = lambda base: type(a)(a.label, a.directory, a.weights, a.config, base)  # noqa: E731
    assert check_base_models(with_base(same), with_base(moved)).status == "match"
    with pytest.raises(BaseModelMismatchError, match="fingerprints differ"):
        check_base_models(with_base(same), with_base(other))
    assert check_base_models(with_base({}), with_base(same)).status == "unknown"
    # `save --base-model /models/llama` recorded a path; the config (and the workspace) name the hub id
    saved = {"name_or_path": "/models/llama", "config_name": "org/llama", "revision": None, "fingerprint": None}
    workspace = {"name_or_path": "org/llama", "revision": None, "fingerprint": None}
    assert check_base_models(with_base(saved), with_base(workspace)).status == "match"


def test_rank_in_weights_must_match_config(tmp_path):
    rng = np.random.default_rng(14)
    a = write_adapter(tmp_path / "a", lora_tensors(rng, {m: 4 for m in MODULES}), {"r": 8})
    with pytest.raises(InvalidAdapterError, match=r"has rank 4 .* gives it r=8"):
        adaptvc.diff(a, a)


def test_legacy_bin_only_points_to_convert(tmp_path):
    d = tmp_path / "old"
    d.mkdir()
    (d / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}))
    (d / "adapter_model.bin").write_bytes(b"not read")
    with pytest.raises(InvalidAdapterError) as err:
        adaptvc.diff(d, d)
    assert err.value.hint.startswith("adaptvc convert")


def test_workspace_default_needs_a_ref_not_a_directory(tmp_path):
    from adaptvc.errors import InvalidRefError

    rng = np.random.default_rng(15)
    a = write_adapter(tmp_path / "a", lora_tensors(rng, {m: 4 for m in MODULES}), {})
    with pytest.raises(InvalidRefError, match="give the second adapter"):
        adaptvc.diff(a)
