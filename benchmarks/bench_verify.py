"""Benchmark integrity checks: what checking objects costs `adaptvc diff`, and `adaptvc verify`.

Versions of a 7B-shaped LoRA (32 layers × q,k,v,o_proj, hidden 4096, fp16; rank 16 →
~34 MB, rank 64 → ~134 MB) are generated with numpy and saved in a fresh repository;
the cache objects are then dated a minute back (saved earlier: files modified in the last
two seconds are never recorded, see adaptvc/storage/verified.py). Whole processes,
interleaved rounds, median wall time, warm page cache:

- ``adaptvc diff bench@v1 bench@v2 --json`` with the record of verified objects (the
  repeated diff: no rehash), and with the record deleted before each run (both objects
  rehashed every time, what checking would cost without the record);
- ``adaptvc verify`` over every version (each object rehashed, plus the workspace copy),
  against ``md5sum`` of the same files: what a user would otherwise run by hand.

    .venv/bin/python benchmarks/bench_verify.py                  # rank 16 and 64, ~2 minutes
    .venv/bin/python benchmarks/bench_verify.py --ranks 16 --repeat 3   # quick look
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
PROJ = ("q_proj", "k_proj", "v_proj", "o_proj")


def make_adapter(directory: Path, *, r: int, seed: int, layers: int = 32, hidden: int = 4096) -> None:
    import json

    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    tensors = {}
    for i in range(layers):
        for p in PROJ:
            pre = f"base_model.model.model.layers.{i}.self_attn.{p}"
            tensors[f"{pre}.lora_A.weight"] = rng.standard_normal((r, hidden)).astype(np.float16)
            tensors[f"{pre}.lora_B.weight"] = (rng.standard_normal((hidden, r)) * 0.01).astype(np.float16)
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "peft_type": "LORA",
        "r": r,
        "lora_alpha": 2 * r,
        "target_modules": list(PROJ),
        "base_model_name_or_path": "b",
    }
    (directory / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    save_file(tensors, str(directory / "adapter_model.safetensors"), metadata={"format": "pt"})


def timed(cmd: list[str], cwd: Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr}")
    return elapsed


def setup(work: Path, r: int, versions: int) -> tuple[Path, list[Path]]:
    import adaptvc
    from adaptvc.storage.dvc_cache import DvcCache

    root = work / f"repo-r{r}"
    root.mkdir()
    for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "init"]):
        subprocess.run(["git", *args], cwd=root, check=True)
    adaptvc.init(root)
    ids = []
    for seed in range(versions):
        make_adapter(root / "adapters" / "bench", r=r, seed=seed)
        ids.append(adaptvc.save(root / "adapters" / "bench", adapter="bench", message=f"v{seed}", repo=root).id)
    objects = [DvcCache.for_repo(root).object_path(m) for m in ids]
    past = time.time_ns() - 60 * 10**9
    for p in objects:
        os.utime(p, ns=(past, past))
    return root, objects


def bench_rank(work: Path, r: int, versions: int, repeat: int) -> None:
    root, objects = setup(work, r, versions)
    size_mb = objects[0].stat().st_size / 1e6
    py = sys.executable
    record = root / ".git" / "adaptvc" / "verified.json"
    diff = [py, "-m", "adaptvc", "diff", "bench@v1", "bench@v2", "--json"]
    times: dict[str, list[float]] = {"with": [], "without": [], "verify": [], "md5sum": []}
    timed(diff, root)  # records both objects
    for _ in range(repeat):
        times["with"].append(timed(diff, root))
        record.unlink(missing_ok=True)
        times["without"].append(timed(diff, root))
        times["verify"].append(timed([py, "-m", "adaptvc", "verify", "-q"], root))
        times["md5sum"].append(timed(["md5sum", *map(str, objects)], root))
    med = {k: statistics.median(v) for k, v in times.items()}
    total_mb = size_mb * (versions + 1)  # every object and the workspace copy
    print(f"rank {r}: {versions} versions of {size_mb:.1f} MB")
    print(f"  diff, record vouches:        {med['with']:.3f} s")
    print(f"  diff, record deleted:        {med['without']:.3f} s  ({med['without'] / med['with']:.2f}x)")
    print(
        f"  verify ({versions} objects + workspace, {total_mb:.0f} MB): {med['verify']:.3f} s "
        f"({total_mb / med['verify']:.0f} MB/s)"
    )
    print(
        f"  md5sum of the {versions} objects:   {med['md5sum']:.3f} s  "
        f"(verify / md5sum: {med['verify'] / med['md5sum']:.2f}x for {versions + 1}/{versions} of the bytes)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--versions", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="adaptvc-bench-verify-") as tmp:
        os.environ.setdefault("DVC_NO_ANALYTICS", "1")
        for r in args.ranks:
            bench_rank(Path(tmp), r, args.versions, args.repeat)


if __name__ == "__main__":
    main()
