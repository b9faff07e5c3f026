"""Transfer times: adaptvc push/fetch vs plain `dvc push`/`dvc fetch`, on each real remote.

Three versions of an adapter shaped like a 7B model's rank-16 LoRA on q,k,v,o (32 layers,
fp16, ~34 MB each) are moved to and from a directory remote, a moto S3 server and an
OpenSSH server on 127.0.0.1. Whole processes for both tools (what a user waits for),
median of --runs runs, each run against an empty remote / empty cache.

    .venv/bin/python benchmarks/bench_transfer.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.remote_servers import RemoteSpec, S3Server, SshServer  # noqa: E402

PY = sys.executable
DVC = str(Path(sys.executable).parent / "dvc")


def lora_7b_r16(seed: int) -> dict:
    import numpy as np

    rng = np.random.default_rng(seed)
    out = {}
    for layer in range(32):
        for m in ("q_proj", "k_proj", "v_proj", "o_proj"):
            pre = f"base_model.model.model.layers.{layer}.self_attn.{m}"
            out[f"{pre}.lora_A.weight"] = rng.standard_normal((16, 4096)).astype(np.float16)
            out[f"{pre}.lora_B.weight"] = rng.standard_normal((4096, 16)).astype(np.float16)
    return out


def sh(*args: str, cwd: Path, env: dict | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="adaptvc-bench-"))
    env = dict(
        os.environ,
        HOME=str(work / "home"),
        XDG_CONFIG_HOME=str(work / "home/.config"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="b",
        GIT_AUTHOR_EMAIL="b@x",
        GIT_COMMITTER_NAME="b",
        GIT_COMMITTER_EMAIL="b@x",
        DVC_NO_ANALYTICS="1",
        PYTHONPATH=str(ROOT),
    )
    os.environ.update(env)
    (work / "home").mkdir()
    ssh, s3 = SshServer(work).start(), S3Server().start()
    try:
        from safetensors.numpy import save_file

        repo = work / "repo"
        repo.mkdir()
        sh("git", "init", "-q", "-b", "main", cwd=repo, env=env)
        sh("git", "commit", "-q", "--allow-empty", "-m", "init", cwd=repo, env=env)
        sh(PY, "-m", "adaptvc", "init", cwd=repo, env=env)
        d = repo / "adapters" / "task_a"
        d.mkdir(parents=True)
        (d / "adapter_config.json").write_text(
            '{"peft_type": "LORA", "r": 16, "lora_alpha": 32, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],'
            ' "base_model_name_or_path": "llama-7b", "task_type": "CAUSAL_LM"}'
        )
        for seed in (1, 2, 3):
            save_file(lora_7b_r16(seed), str(d / "adapter_model.safetensors"), metadata={"format": "pt"})
            sh(PY, "-m", "adaptvc", "save", "--adapter", "task_a", "-m", f"epoch {seed}", cwd=repo, env=env)
        size = sum(p.stat().st_size for p in (repo / ".dvc/cache/files").rglob("*") if p.is_file())
        print(f"3 versions, {size / 1e6:.1f} MB in total\n")
        print(f"{'remote':6} {'adaptvc push':>13} {'dvc push -A':>12} {'adaptvc fetch':>14} {'dvc fetch -A':>13}")
        for kind in ("dir", "s3", "ssh"):
            rows = {"ap": [], "dp": [], "af": [], "df": []}
            for _ in range(args.runs):
                for tool in ("adaptvc", "dvc"):
                    spec = (
                        RemoteSpec("dir", str(work / f"store-{time.time_ns()}"))
                        if kind == "dir"
                        else s3.new_remote()
                        if kind == "s3"
                        else ssh.new_remote()
                    )
                    sh(
                        PY,
                        "-m",
                        "adaptvc",
                        "remote",
                        "add",
                        "storage",
                        spec.url,
                        "--default",
                        "--force",
                        cwd=repo,
                        env=env,
                    )
                    for k, v in spec.team_config.items():
                        sh(PY, "-m", "adaptvc", "remote", "modify", "storage", k, v, cwd=repo, env=env)
                    for k, v in spec.local_config.items():
                        sh(PY, "-m", "adaptvc", "remote", "modify", "storage", k, v, "--local", cwd=repo, env=env)
                    cache = repo / ".dvc" / "cache"
                    backup = work / "cache-backup"
                    if tool == "adaptvc":
                        rows["ap"].append(sh(PY, "-m", "adaptvc", "push", "--no-git", "-q", cwd=repo, env=env))
                    else:
                        rows["dp"].append(sh(DVC, "push", "-A", cwd=repo, env=env))
                    shutil.copytree(cache, backup)
                    shutil.rmtree(cache)
                    if tool == "adaptvc":
                        code = (
                            "from adaptvc.repo import AdapterRepo; "
                            "from adaptvc.storage.transfer import fetch_objects; r = AdapterRepo.open('.'); "
                            "res = fetch_objects(r.root, [v.id for v in r.versions_at('HEAD')]); assert res.ok"
                        )
                        rows["af"].append(sh(PY, "-c", code, cwd=repo, env=env))
                    else:
                        rows["df"].append(sh(DVC, "fetch", "-A", cwd=repo, env=env))
                    shutil.rmtree(cache)
                    shutil.copytree(backup, cache)
                    shutil.rmtree(backup)
            med = {k: statistics.median(v) for k, v in rows.items()}
            print(f"{kind:6} {med['ap']:12.2f}s {med['dp']:11.2f}s {med['af']:13.2f}s {med['df']:12.2f}s")
    finally:
        ssh.stop()
        s3.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
