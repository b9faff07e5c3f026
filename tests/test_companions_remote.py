"""Companion files and training state round-trip through save -> push -> clone ->
checkout/export on a directory, an S3 and an SSH DVC remote (real servers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import adaptvc
from tests.remote_servers import RemoteSpec
from tests.test_companions import _checkpoint, _companions
from tests.test_remote_transfer import configure_remote
from tests.versioning_helpers import _initialised_template, avc_repo, dvc, git, write_adapter  # noqa: F401

# torchless through dvc_remote's directory variant (S3 and SSH need their extras)

A = "adapters/task_a"


def test_round_trip_through_each_remote_kind(avc_repo: Path, dvc_remote: RemoteSpec, tmp_path: Path):
    alice = avc_repo
    server = tmp_path / "server.git"
    git(tmp_path, "init", "-q", "--bare", str(server))
    git(alice, "remote", "add", "origin", str(server))
    configure_remote(alice, dvc_remote)
    d = write_adapter(alice / A, 1)
    _companions(d)
    ckpt = _checkpoint(tmp_path / "checkpoint-4", 4)
    v1 = adaptvc.save(adapter="task_a", message="epoch 1", training_state=ckpt, repo=alice)
    write_adapter(d, 2)
    _companions(d, extra_token="<sql>")
    (d / "tokenizer.model").write_bytes(b"\x00another sentencepiece model")
    v2 = adaptvc.save(adapter="task_a", message="epoch 2", repo=alice)
    pushed = adaptvc.push(repo=alice)
    assert set(pushed.uploaded) == {"task_a@v1", "task_a@v2"}
    # plain DVC agrees that every object of every commit (v1's training state too) is on the remote
    assert "in sync" in dvc(alice, "status", "-c", "--all-commits").stdout

    bob = adaptvc.clone(str(server), tmp_path / "bob").path
    for key, value in dvc_remote.local_config.items():  # credentials are personal: not cloned
        adaptvc.remote_modify("storage", key, value, repo=bob, local=True)
    adaptvc.pull(repo=bob)
    bd = bob / A
    assert (bd / "tokenizer.model").read_bytes() == b"\x00another sentencepiece model"  # DVC companion, newest
    assert "<sql>" in (bd / "tokenizer_config.json").read_text()  # git companion
    assert "up to date" in dvc(bob, "status").stdout

    adaptvc.checkout("task_a@v1", repo=bob)  # older version: its objects are fetched on demand
    assert (bd / "tokenizer.model").read_bytes() == (b"\x0a\x00binary sentencepiece" + bytes(range(256)))
    assert (bd / "training_state" / "optimizer.pt").read_bytes() == (ckpt / "optimizer.pt").read_bytes()
    assert "up to date" in dvc(bob, "status").stdout

    out = adaptvc.export("task_a@v1", tmp_path / "resume", training_state=True, repo=bob)
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json", "training_args.bin"):
        assert (out / name).read_bytes() == (ckpt / name).read_bytes()
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 4
    assert (out / "README.md").read_text() == "# task_a\n\nA LoRA adapter.\n"
    assert adaptvc.show("task_a@v2", repo=bob).companions == v2.companions
    assert adaptvc.show("task_a@v1", repo=bob).training_state == v1.training_state
