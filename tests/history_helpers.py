"""A long history without training: versions 2..N of an adapter written as real commits
with ``git fast-import`` (manifest line, the config it names, the version trailer), after
one version saved for real. Shared by the report tests and benchmarks/bench_report.py.

The history has what a few weeks of sweeps leave: ranks changing every 250 versions (so
the configs differ), a fork every 100 versions (a version whose parent is 10 back), a
merge every 250 (two parents), and metrics falling with noise. Weights of the
synthesised versions are not in the cache (their ids are made up): a report skips
their diffs and says so.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import replace
from pathlib import Path

from adaptvc.manifest import AdapterVersion, ParentLink, dumps_record, read_manifest
from adaptvc.storage.git_ops import TRAILER, trailer_value

RANKS = (4, 8, 16, 32)


def rank_of(i: int) -> int:
    return RANKS[(i // 250) % len(RANKS)]


def eval_loss_of(i: int) -> float:
    return round(2.0 / (1 + i / 50) + 0.01 * ((i * 37) % 11), 4)


def parents_of(i: int) -> list[int]:
    if i % 250 == 0:
        return [i - 1, i - 5]
    if i % 100 == 50:
        return [i - 10]
    return [i - 1]


def synthesise_history(repo: Path, n: int, adapter: str = "task_a") -> list[AdapterVersion]:
    """Versions 2..n of ``adapter`` (version 1 must have been saved); returns all n."""
    adapter_dir = repo / "adapters" / adapter
    (first,) = read_manifest(adapter_dir / "versions.jsonl")
    base_config = json.loads((adapter_dir / "adapter_config.json").read_text())
    lines = [(adapter_dir / "versions.jsonl").read_text().rstrip("\n")]
    versions: dict[int, AdapterVersion] = {1: first}
    stream: list[bytes] = []
    for i in range(2, n + 1):
        config = json.dumps({**base_config, "r": rank_of(i), "lora_alpha": 2 * rank_of(i)}, indent=2, sort_keys=True)
        data = config.encode()
        blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        v = replace(
            first,
            version=i,
            id=f"{i:032x}",
            message=f"sweep step {i}",
            created_at=f"2099-01-{1 + i // 86400:02d}T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}.000000+00:00",
            parents=tuple(ParentLink(adapter, p, versions[p].id) for p in parents_of(i)),
            metrics={"eval_loss": eval_loss_of(i), "loss": round(eval_loss_of(i) * 0.9, 4), "epoch": float(i)},
            config_sha256=hashlib.sha256(data).hexdigest(),
            config_blob=blob,
        )
        versions[i] = v
        lines.append(dumps_record(v))
        manifest = ("\n".join(lines) + "\n").encode()
        msg = f"{v.ref}: {v.message}\n\n{TRAILER}: {trailer_value(v.adapter, v.version, v.id, v.created_at)}\n".encode()
        stream.append(
            b"commit refs/heads/main\ncommitter B <b@e> %d +0000\ndata %d\n%s" % (1_700_000_000 + i, len(msg), msg)
        )
        if i == 2:
            stream.append(b"from refs/heads/main^0\n")
        stream.append(
            b"M 100644 inline adapters/%s/adapter_config.json\ndata %d\n%s\n" % (adapter.encode(), len(data), data)
        )
        stream.append(
            b"M 100644 inline adapters/%s/versions.jsonl\ndata %d\n%s\n" % (adapter.encode(), len(manifest), manifest)
        )
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=b"".join(stream), check=True)
    subprocess.run(["git", "checkout", "-q", "-f", "main"], cwd=repo, check=True)
    return [versions[i] for i in range(1, n + 1)]
