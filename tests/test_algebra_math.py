"""merge/compress arithmetic vs a dense float64 reference, on small random adapters.

For every layout (plain, rsLoRA, rank/alpha patterns, different ranks per input,
GPT-2 Conv1D with ``fan_in_fan_out``, embedding and Conv2d LoRA, modules only some inputs
adapt) the adapter written by ``cat`` gives, read back as PEFT reads it (scales resolved
with peft's own ``get_pattern_key``), ΔW = Σ wᵢ·ΔWᵢ to 1e-6 relative per module; ``svd``
gives the best rank-R approximation of the dense sum, and the error it reports equals the
norm of the dense sum's dropped singular values to 1e-6.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from adaptvc.adapter_algebra import combine
from adaptvc.adapter_algebra.factored import truncated
from adaptvc.adapter_diff.lowrank import LowRankUpdate
from adaptvc.adapter_diff.sources import directory_source
from adaptvc.errors import (
    BaseModelMismatchError,
    IncompatibleAdaptersError,
    InvalidAlgebraArgumentError,
    NotMergeableError,
)
from adaptvc.formats.safetensors_header import read_header
from tests.test_diff_math import MODULES, PREFIX, lora_tensors, peft_scale, write_adapter
from tests.versioning_helpers import with_dora_magnitudes

RTOL = 1e-6

LAYOUT_MODULES = {
    "transformer.h.0.attn.c_attn": ("conv1d", 16, 48),  # GPT-2 Conv1D: base weight (in, out)
    "transformer.h.1.attn.c_attn": ("conv1d", 16, 48),
    "transformer.wte": ("embedding", 50, 16),  # (num_embeddings, dim)
    "vision.conv": ("conv2d", 6, 5),  # (out, in, 3, 3)
}


def dense(directory: Path) -> dict[str, np.ndarray]:
    """ΔW per module present in the file, float64, base layout, as peft's get_delta_weight forms it."""
    config = json.loads((directory / "adapter_config.json").read_text())
    t = {k: v.astype(np.float64) for k, v in load_file(str(directory / "adapter_model.safetensors")).items()}
    out = {}
    for key in t:
        if key.endswith(".lora_embedding_A"):
            name = key[len(PREFIX) : -len(".lora_embedding_A")]
            A, B = t[key], t[f"{PREFIX}{name}.lora_embedding_B"]
            out[name] = peft_scale(config, name) * (B @ A).T
        elif key.endswith(".lora_A.weight"):
            name = key[len(PREFIX) : -len(".lora_A.weight")]
            A, B = t[key], t[f"{PREFIX}{name}.lora_B.weight"]
            s = peft_scale(config, name)
            if A.ndim == 4:
                out[name] = s * np.einsum("or,rikl->oikl", B[:, :, 0, 0], A)
            elif config.get("fan_in_fan_out"):
                out[name] = s * (B @ A).T
            else:
                out[name] = s * (B @ A)
    return out


def weighted_sum(dirs: list[Path], weights: list[float]) -> dict[str, np.ndarray]:
    total: dict[str, np.ndarray] = {}
    for d, w in zip(dirs, weights, strict=True):
        for name, dw in dense(d).items():
            total[name] = total.get(name, 0) + w * dw
    return total


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def merge_dirs(dirs: list[Path], out: Path, **kw):
    return combine([directory_source(d) for d in dirs], out, **kw)


def layouts(tmp_path: Path) -> dict[str, tuple[list[Path], list[float]]]:
    """Named input sets, one per layout, float64 weights so the output is exact to rounding."""
    rng = np.random.default_rng(0)
    f64 = np.float64
    four = {m: 4 for m in MODULES}
    sets: dict[str, tuple[list[Path], list[float]]] = {}
    sets["plain"] = (
        [
            write_adapter(tmp_path / "plain_a", lora_tensors(rng, four, dtype=f64), {}),
            write_adapter(tmp_path / "plain_b", lora_tensors(rng, four, dtype=f64), {"lora_alpha": 16}),
        ],
        [0.7, 0.3],
    )
    ranks_a = four | {"model.layers.1.self_attn.q_proj": 2}
    ranks_b = {m: (3 if ".0." in m else 6) for m in MODULES}
    sets["rslora_patterns"] = (
        [
            write_adapter(
                tmp_path / "pat_a",
                lora_tensors(rng, ranks_a, dtype=f64),
                {"use_rslora": True, "rank_pattern": {"layers.1.self_attn.q_proj": 2}, "alpha_pattern": {"v_proj": 3}},
            ),
            write_adapter(
                tmp_path / "pat_b",
                lora_tensors(rng, ranks_b, dtype=f64),
                {
                    "r": 6,
                    "lora_alpha": 12,
                    "rank_pattern": {r"model\.layers\.0\..*": 3},
                    "alpha_pattern": {"down_proj": 5},
                },
            ),
        ],
        [1.0, -0.5],
    )
    gpt = {"fan_in_fan_out": True, "target_modules": ["c_attn", "wte", "conv"]}
    sets["conv1d_embedding_conv2d"] = (
        [
            write_adapter(
                tmp_path / "lay_a", lora_tensors(rng, {m: 4 for m in LAYOUT_MODULES}, LAYOUT_MODULES, f64), gpt
            ),
            write_adapter(
                tmp_path / "lay_b",
                lora_tensors(rng, {m: 3 for m in LAYOUT_MODULES} | {"transformer.wte": 5}, LAYOUT_MODULES, f64),
                gpt | {"r": 3, "rank_pattern": {"wte": 5}},
            ),
        ],
        [0.5, 0.5],
    )
    # c adapts only some of the modules (and one the others do not): zero updates elsewhere.
    some = {m: v for m, v in MODULES.items() if "v_proj" in m} | {"model.layers.0.mlp.up_proj": ("linear", 40, 16)}
    sets["partial"] = (
        [
            *sets["plain"][0],
            write_adapter(
                tmp_path / "part_c",
                lora_tensors(rng, {m: 2 for m in some}, some, f64),
                {"r": 2, "target_modules": ["v_proj", "up_proj"]},
            ),
        ],
        [0.2, 0.3, 0.5],
    )
    return sets


@pytest.mark.parametrize("layout", ["plain", "rslora_patterns", "conv1d_embedding_conv2d", "partial"])
def test_cat_is_the_exact_weighted_sum(tmp_path, layout):
    dirs, weights = layouts(tmp_path)[layout]
    result = merge_dirs(dirs, tmp_path / "out", weights=weights, method="cat")
    expected = weighted_sum(dirs, weights)
    got = dense(tmp_path / "out")
    assert set(got) == set(expected)
    for name in expected:
        assert relative(got[name], expected[name]) < RTOL, name
    # rank Σ rᵢ over the inputs that adapt the module, and the error is zero
    out = read_header(tmp_path / "out" / "adapter_model.safetensors").tensors
    inputs = [read_header(d / "adapter_model.safetensors").tensors for d in dirs]
    for m in result.modules:
        keys = (f"{PREFIX}{m.name}.lora_A.weight", f"{PREFIX}{m.name}.lora_embedding_A")
        want = sum(t[k].shape[0] for t in inputs for k in keys if k in t)
        assert m.rank == want and [out[k].shape[0] for k in keys if k in out] == [want]
        assert m.dropped == 0.0
    assert result.relative_error == 0.0


@pytest.mark.parametrize("layout", ["plain", "rslora_patterns", "conv1d_embedding_conv2d", "partial"])
def test_svd_is_the_best_rank_r_approximation_and_reports_what_it_dropped(tmp_path, layout):
    dirs, weights = layouts(tmp_path)[layout]
    rank = 3
    result = merge_dirs(dirs, tmp_path / "out", weights=weights, method="svd", rank=rank)
    expected = weighted_sum(dirs, weights)
    got = dense(tmp_path / "out")
    by = {m.name: m for m in result.modules}
    total_dropped2 = total2 = 0.0
    for name, exact in expected.items():
        matrix = exact.reshape(exact.shape[0], -1)
        u, s, vt = np.linalg.svd(matrix, full_matrices=False)
        best = (u[:, :rank] * s[:rank]) @ vt[:rank]
        dropped = math.sqrt(float(np.sum(s[rank:] ** 2)))
        actual = got[name].reshape(matrix.shape)
        # the written update is the dense sum's best rank-R approximation ...
        assert np.linalg.norm(actual - best) <= RTOL * np.linalg.norm(matrix), name
        # ... and the error reported and the error made are the dropped singular values' norm
        assert by[name].dropped == pytest.approx(dropped, rel=RTOL), name
        assert float(np.linalg.norm(actual - matrix)) == pytest.approx(dropped, rel=RTOL), name
        assert by[name].relative_error == pytest.approx(dropped / np.linalg.norm(matrix), rel=RTOL)
        assert by[name].rank == min(rank, int(np.sum(s > 1e-12 * s[0])))
        total_dropped2 += dropped**2
        total2 += float(np.sum(s**2))
    assert result.relative_error == pytest.approx(math.sqrt(total_dropped2 / total2), rel=RTOL)


def test_compress_by_energy_picks_each_modules_least_rank(tmp_path):
    rng = np.random.default_rng(3)
    # decaying spectra: each module needs a different rank for 90% of its energy
    tensors = lora_tensors(rng, {m: 8 for m in MODULES}, dtype=np.float64)
    for i, name in enumerate(MODULES):
        decay = np.geomspace(1.0, 10.0 ** -(i + 1) / 2, 8)
        tensors[f"{PREFIX}{name}.lora_A.weight"] *= decay[:, None]
    src = write_adapter(tmp_path / "a", tensors, {"r": 8, "lora_alpha": 16})
    result = merge_dirs([src], tmp_path / "out", method="svd", energy=0.9)
    exact, got = dense(src), dense(tmp_path / "out")
    config = json.loads((tmp_path / "out" / "adapter_config.json").read_text())
    ranks = set()
    for m in result.modules:
        s = np.linalg.svd(exact[m.name], compute_uv=False)
        share = np.cumsum(s**2) / np.sum(s**2)
        want = int(np.searchsorted(share, 0.9) + 1)
        assert m.rank == want, m.name
        assert 1 - np.linalg.norm(got[m.name]) ** 2 / np.linalg.norm(exact[m.name]) ** 2 <= 0.1 + 1e-9
        ranks.add(m.rank)
    assert len(ranks) > 1  # so some modules are in rank_pattern
    assert config["lora_alpha"] == config["r"] and not config.get("use_rslora")
    assert set(config["rank_pattern"]) == set(config["alpha_pattern"])


def test_fp16_inputs_give_an_fp16_adapter_within_fp16_rounding(tmp_path):
    rng = np.random.default_rng(4)
    four = {m: 4 for m in MODULES}
    dirs = [write_adapter(tmp_path / n, lora_tensors(rng, four, dtype=np.float16, scale=0.1), {}) for n in "ab"]
    merge_dirs(dirs, tmp_path / "out", weights=[0.6, 0.4])
    header = read_header(tmp_path / "out" / "adapter_model.safetensors")
    assert {t.dtype for t in header.tensors.values()} == {"F16"}
    expected, got = weighted_sum(dirs, [0.6, 0.4]), dense(tmp_path / "out")
    for name in expected:
        assert relative(got[name], expected[name]) < 2e-3, name


def test_truncation_never_forms_the_dense_matrix_and_matches_it():
    # 4096 x 11008 at rank 32: the dense matrix would be 360 MB of float64; the factored
    # path touches (4096 + 11008) x 32 numbers.
    rng = np.random.default_rng(5)
    a = LowRankUpdate(rng.standard_normal((4096, 16)), rng.standard_normal((16, 11008)), 2.0)
    b = LowRankUpdate(rng.standard_normal((4096, 16)), rng.standard_normal((16, 11008)), 0.5)
    f = truncated([a, b], [1.0, 1.0], rank=8)
    assert f.left.shape == (4096, 8) and f.right.shape == (8, 11008)
    # the kept spectrum equals the dense sum's, from a cheap route: the Gram of the stacked factors
    dense_s = f.singular_values
    assert dense_s is not None and len(dense_s) == 32
    assert f.dropped == pytest.approx(math.sqrt(float(np.sum(dense_s[8:] ** 2))), rel=1e-12)


def test_refusals_name_the_input_and_the_reason(tmp_path):
    rng = np.random.default_rng(6)
    four = {m: 4 for m in MODULES}
    ok = write_adapter(tmp_path / "ok", lora_tensors(rng, four), {})
    dora = write_adapter(tmp_path / "dora", with_dora_magnitudes(lora_tensors(rng, four)), {"use_dora": True})
    with pytest.raises(NotMergeableError) as e:
        merge_dirs([ok, dora], tmp_path / "o1")
    assert e.value.reason == "dora" and e.value.label.endswith("dora")
    ia3 = write_adapter(tmp_path / "ia3", {f"{PREFIX}x.ia3_l": np.ones(4, np.float32)}, {"peft_type": "IA3"})
    with pytest.raises(NotMergeableError) as e:
        merge_dirs([ok, ia3], tmp_path / "o2")
    assert e.value.reason == "peft_type" and "IA3" in str(e.value)
    extra = lora_tensors(rng, four) | {f"{PREFIX}lm_head.modules_to_save.default.weight": np.ones((4, 4), np.float32)}
    saved = write_adapter(tmp_path / "mts", extra, {})
    with pytest.raises(NotMergeableError) as e:
        merge_dirs([saved], tmp_path / "o3", method="svd", rank=2)
    assert e.value.reason == "tensors" and "lm_head" in str(e.value)
    other_base = write_adapter(tmp_path / "other", lora_tensors(rng, four), {"base_model_name_or_path": "other/base"})
    with pytest.raises(BaseModelMismatchError):
        merge_dirs([ok, other_base], tmp_path / "o4")
    merge_dirs([ok, other_base], tmp_path / "o5", force=True)  # --force: the user vouches for it
    wide = dict(MODULES) | {"model.layers.0.self_attn.q_proj": ("linear", 24, 20)}
    reshaped = write_adapter(tmp_path / "wide", lora_tensors(rng, four, wide), {})
    with pytest.raises(IncompatibleAdaptersError) as e:
        merge_dirs([ok, reshaped], tmp_path / "o6")
    assert e.value.module == "model.layers.0.self_attn.q_proj"
    for kw, argument in [
        ({"weights": [1.0]}, "weights"),
        ({"method": "svd"}, "rank"),
        ({"method": "svd", "rank": 2, "energy": 0.9}, "rank"),
        ({"method": "svd", "energy": 1.5}, "energy"),
        ({"method": "ties"}, "method"),
        ({"rank": 2}, "rank"),
    ]:
        with pytest.raises(InvalidAlgebraArgumentError) as e:
            merge_dirs([ok, ok], tmp_path / "o7", **kw)
        assert e.value.argument == argument, kw
    assert not (tmp_path / "o7").exists()
