"""Benchmark `adaptvc diff` against a dense reference and against just reading the files.

Two versions of a 7B-shaped rank-16 adapter (32 layers × q,k,v,o_proj, hidden 4096,
fp16, ~34 MB each) are generated with numpy. Each contender runs as a whole process
(interpreter start-up and imports included), several times, in the same run:

- ``adaptvc diff DIR_A DIR_B --json``           two plain directories;
- ``adaptvc diff bench@v1 bench@v2 --json``     the same two, saved as versions in a repo
                                                (weights read in place from the DVC cache);
- dense reference: materialise every ΔW = s·B·A (4096×4096) in float32 with numpy and
  subtract (the obvious approach, what the factored one replaces); its reductions are
  float32 row dots summed in float64: as fast as BLAS, and accurate (one float32
  accumulator over 16M entries is itself off by ~1e-4);
- read-only: load both files' tensors (safetensors.numpy) and nothing else: the floor.

Reported: median wall time, peak RSS (``wait4`` of that process), speed-ups, and the
largest relative disagreement between adaptvc and the dense reference over every
per-module number. Page cache is warm for everyone (the files were just written).

    .venv/bin/python benchmarks/bench_diff.py            # about a minute on 2 cores
    .venv/bin/python benchmarks/bench_diff.py --repeat 1 --layers 8   # quick look
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
PROJ = ("q_proj", "k_proj", "v_proj", "o_proj")
PREFIX = "base_model.model."

DENSE = r"""
import json, sys, time
import numpy as np
from safetensors.numpy import load_file
t0 = time.perf_counter()
a, b = load_file(sys.argv[1] + "/adapter_model.safetensors"), load_file(sys.argv[2] + "/adapter_model.safetensors")
ca, cb = (json.load(open(d + "/adapter_config.json")) for d in sys.argv[1:3])
sa, sb = ca["lora_alpha"] / ca["r"], cb["lora_alpha"] / cb["r"]

def dot(x, y):
    # float32 row dots (SIMD, as fast as BLAS sdot), rows summed in float64: a single
    # float32 accumulator over 16M entries would be off by ~1e-4 on its own.
    return float(np.einsum("ij,ij->i", x, y).sum(dtype=np.float64))

out = []
for key in sorted(k for k in a if k.endswith(".lora_A.weight")):
    m = key[: -len(".lora_A.weight")]
    wa = sa * (a[m + ".lora_B.weight"].astype(np.float32) @ a[key].astype(np.float32))
    wb = sb * (b[m + ".lora_B.weight"].astype(np.float32) @ b[key].astype(np.float32))
    na, nb, inner = dot(wa, wa) ** 0.5, dot(wb, wb) ** 0.5, dot(wa, wb)
    dw = wb - wa
    out.append({"module": m[len("base_model.model."):], "norm_a": na, "norm_b": nb,
                "delta_norm": dot(dw, dw) ** 0.5, "cosine": inner / (na * nb)})
print(json.dumps(out))
print(json.dumps({"inside_s": time.perf_counter() - t0}), file=sys.stderr)
"""

# adaptvc.diff in-process, after imports: the same work as the CLI minus interpreter start-up.
INSIDE = r"""
import json, os, sys, time
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the CLI does
import numpy, adaptvc, adaptvc.adapter_diff  # imports are start-up, not work
t0 = time.perf_counter()
adaptvc.diff(sys.argv[1], sys.argv[2])
print(json.dumps({"inside_s": time.perf_counter() - t0}), file=sys.stderr)
"""

READ_ONLY = r"""
import sys
from safetensors.numpy import load_file
n = 0
for d in sys.argv[1:3]:
    for t in load_file(d + "/adapter_model.safetensors").values():
        n += t.nbytes
print(n)
"""


def make_adapter(directory: Path, *, layers: int, hidden: int, r: int, seed: int, base: dict | None = None) -> dict:
    """Write a PEFT-format fp16 adapter; with ``base``, a 'later checkpoint' of it."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    tensors = {}
    for i in range(layers):
        for p in PROJ:
            m = f"{PREFIX}model.layers.{i}.self_attn.{p}"
            for kind, shape in (("lora_A", (r, hidden)), ("lora_B", (hidden, r))):
                key = f"{m}.{kind}.weight"
                if base is None:
                    t = rng.standard_normal(shape, dtype=np.float32) * 0.02
                else:  # training moved both factors by ~5%
                    t = base[key].astype(np.float32) * (1 + 0.05 * rng.standard_normal(shape, dtype=np.float32))
                tensors[key] = t.astype(np.float16)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(directory / "adapter_model.safetensors"), metadata={"format": "pt"})
    config = {
        "peft_type": "LORA",
        "r": r,
        "lora_alpha": 2 * r,
        "target_modules": list(PROJ),
        "base_model_name_or_path": "meta-llama/Llama-2-7b-hf",
        "task_type": "CAUSAL_LM",
    }
    (directory / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    return tensors


# Peak RSS is measured by a tiny launcher process: ru_maxrss of a child forked from
# this (large) benchmark process would start at our own RSS, since Linux carries the
# high-water mark across fork and exec.
LAUNCHER = r"""
import json, os, sys, time
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - t0
with open(sys.argv[1], "w") as fh:
    json.dump({"wall": wall, "maxrss": usage.ru_maxrss * 1024, "code": os.waitstatus_to_exitcode(status)}, fh)
"""


def run(cmd: list[str], *, cwd: Path | None = None) -> dict:
    """One whole process: wall seconds, peak RSS bytes, stdout, and the time it reports inside."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        proc = subprocess.run(
            [sys.executable, "-c", LAUNCHER, str(report), *cmd], cwd=cwd, env=env, capture_output=True, text=True
        )
        stats = json.loads(report.read_text())
    if stats["code"] != 0 or proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({stats['code']}):\n{proc.stderr}")
    inside = [json.loads(line)["inside_s"] for line in proc.stderr.splitlines() if line.startswith('{"inside_s"')]
    return {
        "wall": stats["wall"],
        "rss": stats["maxrss"],
        "stdout": proc.stdout,
        "inside": inside[-1] if inside else None,
    }


class Contender:
    def __init__(self, name: str, cmd: list[str], cwd: Path | None = None) -> None:
        self.name, self.cmd, self.cwd, self.runs = name, cmd, cwd, []

    def run_once(self) -> None:
        self.runs.append(run(self.cmd, cwd=self.cwd))

    @property
    def median(self) -> float:
        return statistics.median(r["wall"] for r in self.runs)

    @property
    def inside(self) -> float | None:
        vals = [r["inside"] for r in self.runs if r["inside"] is not None]
        return statistics.median(vals) if vals else None

    @property
    def rss_mb(self) -> float:
        return max(r["rss"] for r in self.runs) / 1e6

    def report(self) -> None:
        walls = [r["wall"] for r in self.runs]
        print(
            f"  {self.name:<28} median {self.median:7.3f} s  (min {min(walls):.3f}, n={len(walls)})  "
            f"peak RSS {self.rss_mb:6.1f} MB",
            file=sys.stderr,
        )


def worst_disagreement(adaptvc_doc: dict, dense: list[dict]) -> float:
    ours = {m["module"]: m for m in adaptvc_doc["modules"]}
    worst = 0.0
    for ref in dense:
        m = ours[ref["module"]]
        for key in ("norm_a", "norm_b", "delta_norm", "cosine"):
            worst = max(worst, abs(m[key] - ref[key]) / abs(ref[key]))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=4096)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=5, help="interleaved rounds (median reported)")
    ap.add_argument("--dense-repeat", type=int, default=2, help="rounds that also run the dense reference")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--no-refs", action="store_true", help="skip the saved-versions (git + DVC) case")
    args = ap.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_diff-"))
    py = sys.executable
    a, b = work / "v1", work / "v2"
    base = make_adapter(a, layers=args.layers, hidden=args.hidden, r=args.rank, seed=0)
    make_adapter(b, layers=args.layers, hidden=args.hidden, r=args.rank, seed=1, base=base)
    del base
    size = (a / "adapter_model.safetensors").stat().st_size
    print(
        f"adapters: {args.layers} layers x {len(PROJ)} modules, hidden {args.hidden}, r={args.rank}, fp16, "
        f"{size / 1e6:.1f} MB each, in {work}",
        file=sys.stderr,
    )

    plain = [
        Contender("read-only (both files)", [py, "-c", READ_ONLY, str(a), str(b)]),
        Contender("adaptvc diff (directories)", [py, "-m", "adaptvc", "diff", str(a), str(b), "--json"]),
    ]
    if not args.no_refs:
        repo = work / "repo"
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        repo.mkdir()
        for cmd in (
            ["git", "init", "-q", "-b", "main"],
            ["git", "commit", "-q", "--allow-empty", "-m", "init"],
            [py, "-m", "adaptvc", "init"],
        ):
            subprocess.run(cmd, cwd=repo, check=True, env=env, capture_output=True)
        for d, msg in ((a, "v1"), (b, "v2")):
            subprocess.run(
                [py, "-m", "adaptvc", "save", "--from", str(d), "--adapter", "bench", "-m", msg],
                cwd=repo,
                check=True,
                env=env,
                capture_output=True,
            )
        plain.append(
            Contender("adaptvc diff (refs)", [py, "-m", "adaptvc", "diff", "bench@v1", "bench@v2", "--json"], cwd=repo)
        )
    inside = Contender("adaptvc.diff() in-process", [py, "-c", INSIDE, str(a), str(b)])
    dense = Contender("dense float32 reference", [py, "-c", DENSE, str(a), str(b)])
    # Interleaved rounds, so that every contender sees the same machine load (other
    # processes on a shared machine move timings by 2x within minutes).
    for i in range(args.repeat):
        for c in (*plain, inside):
            c.run_once()
        if i < args.dense_repeat:
            dense.run_once()
    everyone = [*plain, dense]
    for c in (*everyone, inside):
        c.report()

    ours = json.loads(plain[1].runs[-1]["stdout"])
    worst = worst_disagreement(ours, json.loads(dense.runs[-1]["stdout"]))
    read = plain[0].median
    print("\n| contender | median wall (s) | peak RSS (MB) | dense / this | this / read-only |")
    print("|---|---:|---:|---:|---:|")
    for c in everyone:
        print(
            f"| {c.name} | {c.median:.3f} | {c.rss_mb:.0f} | {dense.median / c.median:.0f}x | {c.median / read:.2f}x |"
        )
    print(
        f"\nafter imports, in-process: adaptvc.diff {inside.inside:.3f} s, dense {dense.inside:.3f} s "
        f"({dense.inside / inside.inside:.0f}x)"
    )
    print(
        f"worst relative disagreement adaptvc vs dense over {len(ours['modules'])} modules "
        f"(norm_a, norm_b, delta_norm, cosine): {worst:.2e}"
    )
    print(f"total relative change between the versions: {ours['summary']['relative']:.4f}")
    speedup, vs_read = dense.median / plain[1].median, plain[1].median / read
    print(
        f"targets: >=50x dense: {speedup:.0f}x {'met' if speedup >= 50 else 'NOT met'}; "
        f"<=3x read-only: {vs_read:.2f}x {'met' if vs_read <= 3 else 'NOT met'}; "
        f"agreement <=1e-4: {worst:.1e} {'met' if worst <= 1e-4 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
