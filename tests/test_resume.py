"""Fault tolerance: a run killed during epoch 3 resumes from ``task_a@v2``'s training
state in a fresh process and ends with the weights of a run that never stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from safetensors.numpy import load_file

from tests.conftest import run_cli

PROJECT = Path(__file__).resolve().parent.parent


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(PROJECT), "OMP_NUM_THREADS": "1", "CUBLAS_WORKSPACE_CONFIG": ":4096:8"}


def _train(cwd: str, *args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.resume_training", *args], cwd=cwd, env=_env(), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def _killed_in_epoch_3(cwd: str, marker: Path, deadline_s: float = 300.0) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.resume_training", "crash", str(marker)],
        cwd=cwd,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + deadline_s
        while not marker.exists():
            assert proc.poll() is None, f"training ended before epoch 3: {proc.stderr.read()[-3000:]}"
            assert time.monotonic() < deadline, "epoch 3 never started"
            time.sleep(0.05)  # polling interval for the marker, not a synchronisation stand-in
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def test_killed_run_resumes_from_v2_and_matches_the_straight_run(git_repo, tmp_path):
    root = git_repo.working_dir
    run_cli("init", cwd=root, check=True)
    _train(str(tmp_path), "straight", str(tmp_path / "straight"))

    _killed_in_epoch_3(root, tmp_path / "in-epoch-3")
    log = json.loads(run_cli("log", "task_a", "--json", cwd=root, check=True).stdout)
    assert [v["ref"] for v in log] == ["task_a@v2", "task_a@v1"]  # epoch 3 never finished
    assert all(v["training_state"] and v["training_state"]["nfiles"] >= 4 for v in log)

    resume = tmp_path / "resume"
    run_cli("export", "task_a@v2", str(resume), "--training-state", cwd=root, check=True)
    assert {"adapter_model.safetensors", "trainer_state.json", "optimizer.pt", "scheduler.pt"} <= {
        p.name for p in resume.iterdir()
    }
    assert json.loads((resume / "trainer_state.json").read_text())["epoch"] == 2.0
    _train(root, "resume", str(resume), str(tmp_path / "resumed"))

    straight = load_file(tmp_path / "straight" / "adapter_model.safetensors")
    resumed = load_file(tmp_path / "resumed" / "adapter_model.safetensors")
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert (straight[key] == resumed[key]).all(), key

    log = {v["ref"]: v for v in json.loads(run_cli("log", "task_a", "--json", cwd=root, check=True).stdout)}
    assert log["task_a@v3"]["parents"] == ["task_a@v2"]
    assert log["task_a@v4"]["parents"] == ["task_a@v3"]
    v4 = run_cli("export", "task_a@v4", str(tmp_path / "v4"), cwd=root, check=True)
    assert v4.returncode == 0
    final = load_file(tmp_path / "v4" / "adapter_model.safetensors")
    assert all((final[k] == straight[k]).all() for k in straight)
