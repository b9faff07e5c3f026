"""Benchmark `adaptvc save`, `checkout` and `log` against plain git + DVC.

A 7B-shaped rank-16 LoRA (32 layers × q,k,v,o_proj, hidden 4096, fp16, ~34 MB) is
generated with numpy. Every contender runs as whole processes (interpreter start-up and
imports included), several times, in one run; medians are reported:

- save:     ``adaptvc save --adapter task_a -m x``   vs   ``dvc add W`` + ``git add`` + ``git commit``
            (each run in a fresh copy of an initialised repo, the adapter already written);
- checkout: ``adaptvc checkout task_a@v1``            vs   ``git checkout REV -- adapters/task_a``
            + ``dvc checkout`` (the workspace at v2 before each run; restoring is not timed);
- log:      ``adaptvc log task_a`` and ``--json`` with 1,000 versions of one adapter (the
            999 extra versions are synthesised as real commits with ``git fast-import``);
- status:   ``adaptvc status`` on the same repository.

    .venv/bin/python benchmarks/bench_versioning.py                  # about a minute on 2 cores
    .venv/bin/python benchmarks/bench_versioning.py --repeat 3 --update-docs
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from bench_env import command_env

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
WORK = REPO_ROOT / "benchmarks" / ".work" / "versioning"
PROJ = ("q_proj", "k_proj", "v_proj", "o_proj")
DVC = str(Path(sys.executable).parent / "dvc")
ENV = command_env(pycache=WORK.parent / "pycache", pythonpath=REPO_ROOT)
ADAPTVC = [sys.executable, "-m", "adaptvc"]
MARK_START, MARK_END = "<!-- bench_versioning:start -->", "<!-- bench_versioning:end -->"


def sh(*cmd: str, cwd: Path, input: bytes | None = None) -> float:
    """Run one process; returns its wall time."""
    start = time.perf_counter()
    proc = subprocess.run(list(cmd), cwd=cwd, env=ENV, capture_output=True, input=input)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout.decode()}\n{proc.stderr.decode()}")
    return elapsed


def write_adapter(directory: Path, seed: int, layers: int = 32, hidden: int = 4096, r: int = 16) -> None:
    import json

    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    tensors = {}
    for i in range(layers):
        for m in PROJ:
            pre = f"base_model.model.model.layers.{i}.self_attn.{m}"
            tensors[f"{pre}.lora_A.weight"] = (rng.standard_normal((r, hidden), np.float32) * 0.01).astype(np.float16)
            tensors[f"{pre}.lora_B.weight"] = (rng.standard_normal((hidden, r), np.float32) * 0.01).astype(np.float16)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(directory / "adapter_model.safetensors"), metadata={"format": "pt"})
    config = {
        "base_model_name_or_path": "meta-llama/Llama-2-7b-hf",
        "bias": "none",
        "lora_alpha": 32,
        "lora_dropout": 0.05,
        "peft_type": "LORA",
        "r": r,
        "target_modules": list(PROJ),
        "task_type": "CAUSAL_LM",
    }
    (directory / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True))


def git_init(path: Path) -> None:
    path.mkdir(parents=True)
    sh("git", "init", "-q", "-b", "main", cwd=path)
    (path / "README.md").write_text("bench\n")
    sh("git", "add", "README.md", cwd=path)
    sh("git", "commit", "-q", "-m", "init", cwd=path)


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def bench_save(repeat: int, src_v1: Path) -> tuple[list[float], list[float]]:
    tpl_avc, tpl_dvc = WORK / "tpl-adaptvc", WORK / "tpl-dvc"
    git_init(tpl_avc)
    sh(*ADAPTVC, "init", cwd=tpl_avc)
    git_init(tpl_dvc)
    sh(DVC, "init", "-q", cwd=tpl_dvc)
    sh("git", "commit", "-q", "-m", "dvc init", cwd=tpl_dvc)
    ours, theirs = [], []
    for i in range(repeat):
        a = WORK / f"save-adaptvc-{i}"
        shutil.copytree(tpl_avc, a, symlinks=True)
        shutil.copytree(src_v1, a / "adapters" / "task_a")
        ours.append(sh(*ADAPTVC, "save", "--adapter", "task_a", "-m", "epoch 1", cwd=a))
        d = WORK / f"save-dvc-{i}"
        shutil.copytree(tpl_dvc, d, symlinks=True)
        shutil.copytree(src_v1, d / "adapters" / "task_a")
        t = sh(DVC, "add", "-q", "adapters/task_a/adapter_model.safetensors", cwd=d)
        t += sh(
            "git",
            "add",
            "adapters/task_a/adapter_model.safetensors.dvc",
            "adapters/task_a/.gitignore",
            "adapters/task_a/adapter_config.json",
            cwd=d,
        )
        t += sh("git", "commit", "-q", "-m", "epoch 1", cwd=d)
        theirs.append(t)
    return ours, theirs


def bench_checkout(repeat: int, src_v1: Path, src_v2: Path) -> tuple[list[float], list[float]]:
    a = WORK / "save-adaptvc-0"  # holds v1 already
    shutil.copytree(src_v2, a / "adapters" / "task_a", dirs_exist_ok=True)
    sh(*ADAPTVC, "save", "--adapter", "task_a", "-m", "epoch 2", cwd=a)
    d = WORK / "save-dvc-0"
    v1_rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=d, env=ENV, capture_output=True, text=True).stdout.strip()
    shutil.copytree(src_v2, d / "adapters" / "task_a", dirs_exist_ok=True)
    sh(DVC, "add", "-q", "adapters/task_a/adapter_model.safetensors", cwd=d)
    sh("git", "add", "adapters/task_a", cwd=d)
    sh("git", "commit", "-q", "-m", "epoch 2", cwd=d)
    time.sleep(2.1)  # past the stat cache's "racy" window, as in real use
    ours, theirs = [], []
    for _ in range(repeat):
        ours.append(sh(*ADAPTVC, "checkout", "task_a@v1", cwd=a))
        sh(*ADAPTVC, "checkout", "task_a@v2", cwd=a)
        t = sh("git", "checkout", v1_rev, "--", "adapters/task_a", cwd=d)
        t += sh(DVC, "checkout", "-q", cwd=d)
        theirs.append(t)
        sh("git", "checkout", "HEAD", "--", "adapters/task_a", cwd=d)
        sh(DVC, "checkout", "-q", cwd=d)
    return ours, theirs


def synthesise_versions(repo: Path, n: int) -> None:
    """Versions 2..n of task_a as real commits (with the Adaptvc-Version trailer)."""
    from dataclasses import replace

    from adaptvc.manifest import ParentLink, dumps_record, read_manifest
    from adaptvc.storage.git_ops import TRAILER, trailer_value

    manifest = repo / "adapters" / "task_a" / "versions.jsonl"
    (first,) = read_manifest(manifest)
    lines = [manifest.read_text().rstrip("\n")]
    stream, prev = [], first
    for i in range(2, n + 1):
        v = replace(
            first,
            version=i,
            id=f"{i:032x}",
            message=f"epoch {i}",
            created_at=f"2099-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}.000000+00:00",
            parents=(ParentLink("task_a", prev.version, prev.id),),
            metrics={"eval_loss": round(2.0 / i, 4)},
        )
        lines.append(dumps_record(v))
        data = ("\n".join(lines) + "\n").encode()
        msg = f"{v.ref}: {v.message}\n\n{TRAILER}: {trailer_value(v.adapter, v.version, v.id, v.created_at)}\n".encode()
        stream.append(
            b"commit refs/heads/main\ncommitter B <b@e> %d +0000\ndata %d\n%s" % (1_700_000_000 + i, len(msg), msg)
        )
        if i == 2:
            stream.append(b"from refs/heads/main^0\n")
        stream.append(b"M 100644 inline adapters/task_a/versions.jsonl\ndata %d\n%s\n" % (len(data), data))
        prev = v
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, env=ENV, input=b"".join(stream), check=True)
    subprocess.run(["git", "checkout", "-q", "-f", "main"], cwd=repo, env=ENV, check=True)


def bench_log(repeat: int, src_v1: Path, n: int) -> dict[str, list[float]]:
    repo = WORK / "log-1000"
    git_init(repo)
    sh(*ADAPTVC, "init", cwd=repo)
    shutil.copytree(src_v1, repo / "adapters" / "task_a")
    sh(*ADAPTVC, "save", "--adapter", "task_a", "-m", "epoch 1", cwd=repo)
    synthesise_versions(repo, n)
    out: dict[str, list[float]] = {"log": [], "log --json": [], "status": [], "--help": []}
    for _ in range(repeat):
        out["log"].append(sh(*ADAPTVC, "log", "task_a", cwd=repo))
        out["log --json"].append(sh(*ADAPTVC, "log", "task_a", "--json", cwd=repo))
        out["status"].append(sh(*ADAPTVC, "status", cwd=repo))
        out["--help"].append(sh(*ADAPTVC, "--help", cwd=repo))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per contender (median reported)")
    parser.add_argument("--versions", type=int, default=1000, help="versions for the log benchmark")
    parser.add_argument(
        "--update-docs", action="store_true", help="rewrite this benchmark's section of docs/benchmarks.md"
    )
    args = parser.parse_args()

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    src_v1, src_v2 = WORK / "src-v1", WORK / "src-v2"
    write_adapter(src_v1, 1)
    write_adapter(src_v2, 2)
    size = (src_v1 / "adapter_model.safetensors").stat().st_size

    save_ours, save_theirs = bench_save(args.repeat, src_v1)
    co_ours, co_theirs = bench_checkout(args.repeat, src_v1, src_v2)
    logs = bench_log(args.repeat, src_v1, args.versions)

    rows = [
        (
            "save",
            "`adaptvc save --adapter task_a -m …`",
            median(save_ours),
            "`dvc add` + `git add` + `git commit`",
            median(save_theirs),
        ),
        (
            "checkout",
            "`adaptvc checkout task_a@v1`",
            median(co_ours),
            "`git checkout REV -- adapters/task_a` + `dvc checkout`",
            median(co_theirs),
        ),
    ]
    lines = [
        f"Adapter: 7B-shaped LoRA, rank 16 on q,k,v,o_proj, 32 layers, fp16, {size / 1e6:.1f} MB. "
        f"Whole processes, median of {args.repeat} runs, warm page cache. "
        f"Machine: {os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f} at the end (contenders alternate within one run, so compare the "
        "ratios). adaptvc's time includes the md5 check of every byte it copies out of the cache.",
        "",
        "| operation | adaptvc | s | plain git + DVC | s | ratio (target ≤ 0.5) |",
        "|---|---|---:|---|---:|---:|",
    ]
    for op, ours_cmd, ours, theirs_cmd, theirs in rows:
        lines.append(f"| {op} | {ours_cmd} | {ours:.3f} | {theirs_cmd} | {theirs:.3f} | **{ours / theirs:.2f}x** |")
    lines += [
        "",
        f"| with {args.versions:,} versions of one adapter | s |",
        "|---|---:|",
    ]
    for name, xs in logs.items():
        lines.append(f"| `adaptvc {name}{' task_a' if name.startswith('log') else ''}` | {median(xs):.3f} |")
    lines += [
        "",
        "Reproduce: `.venv/bin/python benchmarks/bench_versioning.py"
        + (f" --repeat {args.repeat}" if args.repeat != 5 else "")
        + "`",
    ]
    table = "\n".join(lines)
    print(table)
    if args.update_docs:
        update_docs(table)


def update_docs(table: str) -> None:
    path = REPO_ROOT / "docs" / "benchmarks.md"
    section = f"## Versioning: save, checkout, log\n\n{MARK_START}\n{table}\n{MARK_END}\n"
    text = (
        path.read_text()
        if path.exists()
        else (
            "# Benchmarks\n\nEach section is produced by a script in `benchmarks/`; the command to reproduce it "
            "is under its table.\n"
        )
    )
    if MARK_START in text:
        text = re.sub(
            re.escape(MARK_START) + r".*?" + re.escape(MARK_END),
            lambda _: f"{MARK_START}\n{table}\n{MARK_END}",
            text,
            flags=re.S,
        )
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


if __name__ == "__main__":
    main()
