"""A small history to compare and report on, with values chosen so that every expectation
in the tests can be computed by hand:

    task_a@v1  r=4                   eval_loss=2.0  loss=2.5
    task_a@v2  r=4                   eval_loss=1.5  loss=2.0
    task_a@v3  r=8, use_rslora=true  eval_loss=1.7             accuracy=0.8
    task_a@v4  r=4                   eval_loss=1.5  loss=1.9   accuracy=0.75
    task_b@v1  r=4, parent task_a@v2 eval_loss=1.2   (a fork across adapters)

Messages carry markup (``<script>``, an ``<img onerror>``) that a report must show as text.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import adaptvc
from tests.versioning_helpers import _initialised_template, lora_tensors, write_adapter  # noqa: F401 - fixture

HOSTILE = '<script>window.__xss = 1</script><img src="x" onerror="window.__xss = 2"> & "quoted"'
HISTORY = [
    ("task_a", 1, {}, {"eval_loss": 2.0, "loss": 2.5}, "epoch 1", None),
    ("task_a", 2, {}, {"eval_loss": 1.5, "loss": 2.0}, f"epoch 2 {HOSTILE}", None),
    ("task_a", 3, {"r": 8, "use_rslora": True}, {"eval_loss": 1.7, "accuracy": 0.8}, "rank 8, rsLoRA", None),
    ("task_a", 4, {}, {"eval_loss": 1.5, "loss": 1.9, "accuracy": 0.75}, "back to rank 4", None),
    ("task_b", 5, {}, {"eval_loss": 1.2}, "task_b from task_a@v2", "task_a@v2"),
]


def make_history(root: Path) -> None:
    for adapter, seed, config, metrics, message, parent in HISTORY:
        r = config.get("r", 4)
        write_adapter(root / "adapters" / adapter, seed, config=config, tensors=lora_tensors(seed, r=r))
        adaptvc.save(None, adapter=adapter, message=message, metrics=metrics, parent=parent, repo=root)


@pytest.fixture(scope="session")
def _history_template(_initialised_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("history") / "repo"
    shutil.copytree(_initialised_template, path, symlinks=True)
    make_history(path)
    return path


@pytest.fixture
def history(_history_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the history (its own DVC cache too); the current directory is its root."""
    path = tmp_path / "repo"
    shutil.copytree(_history_template, path, symlinks=True)
    monkeypatch.chdir(path)
    return path
