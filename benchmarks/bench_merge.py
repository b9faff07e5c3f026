"""Benchmark `adaptvc merge` (cat, and svd to r=16) against PEFT's ``add_weighted_adapter``.

Two Llama-2-7B-shaped rank-16 adapters (32 layers x q,k,v,o,gate,up,down_proj; hidden 4096,
MLP 11008; fp16, ~80 MB each) are generated with numpy and saved as versions in a fresh
repository. Each contender runs as a whole process (interpreter start-up and imports
included), in the same run:

- ``adaptvc merge bench_a@v1 bench_b@v1 --adapter m --weights 0.5,0.5 [--method svd --rank 16] --json``:
  reads both versions from the DVC cache, combines them, writes and records the new version
  (DVC cache, git commit, tag);
- PEFT, as a user would merge: a Llama model of the same layer shapes, both adapters loaded
  with ``PeftModel.from_pretrained`` / ``load_adapter``, ``add_weighted_adapter(...,
  combination_type="cat" | "svd", svd_rank=16)`` with PEFT's defaults otherwise, and
  ``save_pretrained`` of the result. The base model's weights are NOT loaded: every base
  parameter is a bf16 CPU tensor of the right shape that occupies no memory (a stride-0 view
  of one element), so PEFT's side pays for the LoRA factors, its own work and its imports
  only. A real user loads the whole base model first (13.5 GB in bf16 for 7B): PEFT's
  figures here are a lower bound of its real cost.

PEFT's svd forms each dense ΔW (up to 4096 x 11008) and runs a full SVD on it; on this
machine that is minutes per module, so by default it runs on a model of the same layer
shapes but ``--peft-svd-layers`` layers (adaptvc's svd is also run on that many, for a
like-for-like ratio). Peak RSS is measured by ``wait4`` on each process.

    .venv/bin/python benchmarks/bench_merge.py                      # full size (slow: PEFT svd)
    .venv/bin/python benchmarks/bench_merge.py --layers 2 --repeat 1   # quick look
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_diff import Contender  # noqa: E402 - the same whole-process launcher and statistics

REPO_ROOT = Path(__file__).resolve().parent.parent
PREFIX = "base_model.model."
HIDDEN, MLP = 4096, 11008
# module → (in, out) of the base Linear
SHAPES = {
    "self_attn.q_proj": (HIDDEN, HIDDEN),
    "self_attn.k_proj": (HIDDEN, HIDDEN),
    "self_attn.v_proj": (HIDDEN, HIDDEN),
    "self_attn.o_proj": (HIDDEN, HIDDEN),
    "mlp.gate_proj": (HIDDEN, MLP),
    "mlp.up_proj": (HIDDEN, MLP),
    "mlp.down_proj": (MLP, HIDDEN),
}

PEFT_MERGE = r"""
import sys, time
t0 = time.perf_counter()
import torch
from accelerate import init_empty_weights
from peft import PeftModel
from transformers import LlamaConfig, LlamaForCausalLM

a, b, method, rank, layers, out = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
config = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=layers, num_attention_heads=32,
                     num_key_value_heads=32, vocab_size=32000)
with init_empty_weights():
    model = LlamaForCausalLM(config)
# The base weights: right shape, dtype and device, no memory (a lower bound of loading them).
for module in model.modules():
    for name, p in list(module._parameters.items()):
        if p is not None:
            module._parameters[name] = torch.nn.Parameter(
                torch.zeros((), dtype=torch.bfloat16).expand(p.shape), requires_grad=False)
pm = PeftModel.from_pretrained(model, a, adapter_name="a")
pm.load_adapter(b, adapter_name="b")
kw = {"svd_rank": rank} if method == "svd" else {}
pm.add_weighted_adapter(["a", "b"], [0.5, 0.5], "merged", combination_type=method, **kw)
pm.save_pretrained(out, selected_adapters=["merged"])
print('{"inside_s": %f}' % (time.perf_counter() - t0), file=sys.stderr)
"""


def make_adapter(directory: Path, *, layers: int, r: int, seed: int) -> None:
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    tensors = {}
    for i in range(layers):
        for name, (fan_in, fan_out) in SHAPES.items():
            m = f"{PREFIX}model.layers.{i}.{name}"
            tensors[f"{m}.lora_A.weight"] = (rng.standard_normal((r, fan_in), dtype=np.float32) * 0.02).astype(
                np.float16
            )
            tensors[f"{m}.lora_B.weight"] = (rng.standard_normal((fan_out, r), dtype=np.float32) * 0.02).astype(
                np.float16
            )
    directory.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(directory / "adapter_model.safetensors"), metadata={"format": "pt"})
    config = {
        "peft_type": "LORA",
        "r": r,
        "lora_alpha": 2 * r,
        "lora_dropout": 0.0,
        "target_modules": sorted(n.split(".")[1] for n in SHAPES),
        "base_model_name_or_path": "meta-llama/Llama-2-7b-hf",
        "task_type": "CAUSAL_LM",
        "inference_mode": True,
    }
    (directory / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True))


def setup_repo(work: Path, pairs: dict[str, tuple[Path, Path]]) -> Path:
    py, env = sys.executable, dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    repo = work / "repo"
    repo.mkdir()
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "commit", "-q", "--allow-empty", "-m", "init"]):
        subprocess.run(cmd, cwd=repo, check=True, env=env, capture_output=True)
    subprocess.run([py, "-m", "adaptvc", "init"], cwd=repo, check=True, env=env, capture_output=True)
    for tag, (a, b) in pairs.items():
        for d, name in ((a, f"{tag}_a"), (b, f"{tag}_b")):
            subprocess.run(
                [py, "-m", "adaptvc", "save", "--from", str(d), "--adapter", name, "-m", "trained"],
                cwd=repo,
                check=True,
                env=env,
                capture_output=True,
            )
    return repo


class Merge(Contender):
    """adaptvc merge into a fresh adapter name on every run (each run records a version)."""

    def __init__(self, name: str, tag: str, extra: list[str], repo: Path) -> None:
        super().__init__(name, [], cwd=repo)
        self.tag, self.extra = tag, extra

    def run_once(self) -> None:
        target = f"m_{self.tag}_{'svd' if '--method' in self.extra else 'cat'}_{len(self.runs)}"
        self.cmd = [sys.executable, "-m", "adaptvc", "merge", f"{self.tag}_a@v1", f"{self.tag}_b@v1"]
        self.cmd += ["--adapter", target, "--weights", "0.5,0.5", *self.extra, "--json"]
        super().run_once()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument(
        "--peft-svd-layers", type=int, default=1, help="layers of the model PEFT's svd runs on (0: skip it)"
    )
    ap.add_argument("--repeat", type=int, default=3, help="interleaved rounds (median reported)")
    ap.add_argument("--peft-repeat", type=int, default=1, help="rounds that also run PEFT")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_merge-"))
    dirs = {"full": (work / "a", work / "b"), "small": (work / "sa", work / "sb")}
    if not args.peft_svd_layers:  # PEFT's svd not run (minutes per module on a loaded machine)
        del dirs["small"]
    for tag, layers in (("full", args.layers), ("small", args.peft_svd_layers)):
        if tag not in dirs:
            continue
        make_adapter(dirs[tag][0], layers=layers, r=args.rank, seed=1)
        make_adapter(dirs[tag][1], layers=layers, r=args.rank, seed=2)
    size = (dirs["full"][0] / "adapter_model.safetensors").stat().st_size
    print(f"adapters: {args.layers} layers x {len(SHAPES)} modules, r={args.rank}, fp16, {size / 1e6:.1f} MB each")
    repo = setup_repo(work, dirs)

    svd = ["--method", "svd", "--rank", str(args.rank)]
    ours = [
        Merge(f"adaptvc merge cat ({args.layers} layers)", "full", [], repo),
        Merge(f"adaptvc merge svd ({args.layers} layers)", "full", svd, repo),
    ]
    if "small" in dirs:
        ours.append(Merge(f"adaptvc merge svd ({args.peft_svd_layers} layers)", "small", svd, repo))

    def peft(method: str, tag: str, layers: int) -> Contender:
        a, b = dirs[tag]
        out = work / f"peft_{method}_{tag}"
        cmd = [sys.executable, "-c", PEFT_MERGE, str(a), str(b), method, str(args.rank), str(layers), str(out)]
        return Contender(f"PEFT add_weighted_adapter {method} ({layers} layers)", cmd)

    theirs = [peft("cat", "full", args.layers)]
    if "small" in dirs:
        theirs.append(peft("svd", "small", args.peft_svd_layers))
    # Interleaved rounds: every contender sees the same machine load.
    for i in range(args.repeat):
        for c in ours:
            c.run_once()
        if i < args.peft_repeat:
            for c in theirs:
                c.run_once()
    for c in (*ours, *theirs):
        c.report()
    doc = json.loads(ours[1].runs[-1]["stdout"])
    print("\n| contender | median wall (s) | peak RSS (MB) |")
    print("|---|---:|---:|")
    for c in (*ours, *theirs):
        print(f"| {c.name} | {c.median:.2f} | {c.rss_mb:.0f} |")
    for mine, other in zip(ours[::2], theirs, strict=False):
        print(
            f"{other.name} / {mine.name}: time {other.median / mine.median:.1f}x, "
            f"peak RSS {other.rss_mb / mine.rss_mb:.1f}x"
        )
    print(
        f"svd r={args.rank} of the {args.layers}-layer sum: relative Frobenius error dropped {doc['algebra']['relative_error']:.4f}"
    )


if __name__ == "__main__":
    main()
