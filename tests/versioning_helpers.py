"""Helpers for the versioning tests: tiny adapter directories written with numpy (no
torch), initialised repositories, and small git/DVC probes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

ADAPTER_CONFIG = {
    "base_model_name_or_path": "tiny-base",
    "bias": "none",
    "fan_in_fan_out": False,
    "inference_mode": True,
    "lora_alpha": 16,
    "lora_dropout": 0.0,
    "peft_type": "LORA",
    "r": 4,
    "target_modules": ["v_proj", "q_proj"],
    "task_type": "CAUSAL_LM",
}


def lora_tensors(
    seed: int = 0, *, layers: int = 2, hidden: int = 16, r: int = 4, modules=("q_proj", "v_proj"), dtype=np.float32
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(layers):
        for m in modules:
            pre = f"base_model.model.model.layers.{i}.self_attn.{m}"
            out[f"{pre}.lora_A.weight"] = rng.standard_normal((r, hidden)).astype(dtype)
            out[f"{pre}.lora_B.weight"] = rng.standard_normal((hidden, r)).astype(dtype)
    return out


def write_adapter(
    directory: str | os.PathLike[str],
    seed: int = 0,
    *,
    config: dict | None = None,
    tensors: dict[str, np.ndarray] | None = None,
) -> Path:
    """A PEFT-format LoRA directory (config + safetensors) with deterministic weights."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    cfg = dict(ADAPTER_CONFIG, **(config or {}))
    (d / "adapter_config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True))
    save_file(
        tensors if tensors is not None else lora_tensors(seed, r=cfg["r"]),  # the rank the config gives
        str(d / "adapter_model.safetensors"),
        metadata={"format": "pt"},
    )
    return d


def git(root: str | os.PathLike[str], *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def dvc(root: str | os.PathLike[str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    import sys

    exe = Path(sys.executable).parent / "dvc"
    return subprocess.run([str(exe), *args], cwd=root, check=check, capture_output=True, text=True)


def repo_snapshot(root: str | os.PathLike[str]) -> dict[str, object]:
    """Everything a failed save must leave as it was: HEAD, refs, index, status, and the
    bytes of every file outside .git and the DVC cache."""
    root = Path(root)
    files = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if rel.startswith((".git/", ".dvc/cache", ".dvc/tmp")) or rel == ".git" or not p.is_file():
            continue
        files[rel] = p.read_bytes()
    return {
        "head": git(root, "rev-parse", "HEAD"),
        "refs": git(root, "for-each-ref"),
        "index": git(root, "ls-files", "-s"),
        "status": git(root, "status", "--porcelain", "--untracked-files=all"),
        "files": files,
    }


# --- fixtures (import them into a test module to use them) -----------------------------

import shutil  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def _initialised_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One repository set up with `adaptvc init` (DVC included), copied per test: DVC's
    own init takes about a second."""
    import adaptvc

    path = tmp_path_factory.mktemp("template") / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "README.md").write_text("# project\n")
    git(path, "add", "README.md")
    git(path, "commit", "-q", "-m", "initial commit")
    adaptvc.init(path)
    return path


@pytest.fixture
def avc_repo(_initialised_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh git repository with adaptvc initialised; the current directory is its root."""
    path = tmp_path / "repo"
    shutil.copytree(_initialised_template, path, symlinks=True)
    monkeypatch.chdir(path)
    return path


def with_dora_magnitudes(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``tensors`` plus the magnitude vector a DoRA module saves beside its factors
    (``<module>.lora_magnitude_vector``, one value per output feature), as PEFT writes it."""
    out = dict(tensors)
    for key, b in tensors.items():
        if key.endswith(".lora_B.weight"):
            module = key.removesuffix(".lora_B.weight")
            out[f"{module}.lora_magnitude_vector"] = np.ones(b.shape[0], dtype=b.dtype)
    return out
