"""Companion files (tokenizer, model card, ...) and training state as part of a version:
save, show, log, status, diff, checkout, export, resolve; plain DVC agrees. No torch:
the training state's files are opaque bytes to adaptvc."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import adaptvc
from adaptvc.errors import TrainingStateMissingError
from adaptvc.manifest import AdapterVersion
from tests.conftest import run_cli
from tests.versioning_helpers import _initialised_template, avc_repo, dvc, git, write_adapter  # noqa: F401

pytestmark = pytest.mark.torchless

A = "adapters/task_a"
TOKENIZER_CONFIG = {"added_tokens_decoder": {"0": {"content": "<pad>"}}, "model_max_length": 64}


def _companions(d: Path, *, extra_token: str | None = None, sentencepiece: bool = True) -> None:
    config = json.loads(json.dumps(TOKENIZER_CONFIG))
    if extra_token:
        config["added_tokens_decoder"]["128"] = {"content": extra_token}
    (d / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    (d / "README.md").write_text("# task_a\n\nA LoRA adapter.\n")
    if sentencepiece:
        (d / "tokenizer.model").write_bytes(b"\x0a\x00binary sentencepiece" + bytes(range(256)))
    else:
        (d / "tokenizer.model").unlink(missing_ok=True)


def _checkpoint(d: Path, step: int) -> Path:
    """The state files a transformers Trainer writes in a checkpoint (opaque bytes here)."""
    d.mkdir(parents=True)
    (d / "trainer_state.json").write_text(json.dumps({"global_step": step, "epoch": step / 4}))
    (d / "optimizer.pt").write_bytes(os.urandom(3000))
    (d / "scheduler.pt").write_bytes(os.urandom(300))
    (d / "rng_state.pth").write_bytes(os.urandom(200))
    (d / "training_args.bin").write_bytes(os.urandom(100))
    return d


def _head_files(root: Path) -> set[str]:
    return set(git(root, "ls-tree", "-r", "--name-only", "HEAD", A).split())


def test_companions_are_versioned_small_text_in_git_binary_in_dvc(avc_repo):
    d = write_adapter(avc_repo / A, 1)
    _companions(d)
    (d / "notes.txt").write_text("scratch\n")
    status = json.loads(run_cli("status", "--json", cwd=avc_repo, check=True).stdout)
    assert status[0]["unknown"] == ["notes.txt"]  # never saved: still listed

    v = adaptvc.save(adapter="task_a", message="with tokenizer")
    assert {c.name: c.storage for c in v.companions} == {
        "README.md": "git",
        "tokenizer.model": "dvc",
        "tokenizer_config.json": "git",
    }
    assert _head_files(avc_repo) >= {f"{A}/README.md", f"{A}/tokenizer_config.json", f"{A}/tokenizer.model.dvc"}
    assert f"{A}/tokenizer.model" not in _head_files(avc_repo) and f"{A}/notes.txt" not in _head_files(avc_repo)
    assert "/tokenizer.model" in (d / ".gitignore").read_text().splitlines()
    assert "up to date" in dvc(avc_repo, "status").stdout  # DVC sees the pointer and the file agree
    assert {o.kind for o in v.objects()} == {"weights", "companion"}

    out = run_cli("status", cwd=avc_repo, check=True).stdout
    assert "clean" in out and "not versioned: notes.txt" in out
    shown = json.loads(run_cli("show", "task_a@v1", "--json", cwd=avc_repo, check=True).stdout)
    assert shown["companions"] == ["README.md", "tokenizer.model", "tokenizer_config.json"]
    assert {f["path"]: f["storage"] for f in shown["files"]}[f"{A}/tokenizer.model"] == "dvc"

    (d / "tokenizer_config.json").write_text("{}\n")
    changes = json.loads(run_cli("status", "--json", cwd=avc_repo, check=True).stdout)[0]["changes"]
    assert changes == ["tokenizer_config.json"]


def test_diff_checkout_export_resolve_follow_the_companions(avc_repo, tmp_path):
    d = write_adapter(avc_repo / A, 1)
    _companions(d)
    adaptvc.save(adapter="task_a", message="v1")
    write_adapter(d, 2)
    _companions(d, extra_token="<sql>", sentencepiece=False)
    v2 = adaptvc.save(adapter="task_a", message="v2: new token, no sentencepiece")
    assert [c.name for c in v2.companions] == ["README.md", "tokenizer_config.json"]
    assert not (d / "tokenizer.model.dvc").exists()
    assert f"{A}/tokenizer.model.dvc" not in _head_files(avc_repo)

    result = json.loads(run_cli("diff", "task_a@v1", "task_a@v2", "--json", cwd=avc_repo, check=True).stdout)
    changes = {c["name"]: c for c in result["companions"]}
    assert set(changes) == {"tokenizer.model", "tokenizer_config.json"}
    assert changes["tokenizer.model"]["change"] == "removed" and changes["tokenizer.model"]["diff"] is None
    assert '+    "128": {\n' in changes["tokenizer_config.json"]["diff"]
    assert '"<sql>"' in changes["tokenizer_config.json"]["diff"]
    text = run_cli("diff", "task_a@v1", "task_a@v2", cwd=avc_repo, check=True).stdout
    assert "companion files:" in text and "removed  tokenizer.model" in text

    adaptvc.checkout("task_a@v1")
    assert (d / "tokenizer.model").read_bytes().startswith(b"\x0a\x00binary")
    assert "<sql>" not in (d / "tokenizer_config.json").read_text()
    assert "up to date" in dvc(avc_repo, "status").stdout
    assert json.loads(run_cli("status", "--json", cwd=avc_repo, check=True).stdout)[0]["state"] == "clean"
    adaptvc.checkout("task_a@v2")
    assert not (d / "tokenizer.model").exists() and not (d / "tokenizer.model.dvc").exists()
    assert "up to date" in dvc(avc_repo, "status").stdout

    out = adaptvc.export("task_a@v1", tmp_path / "v1")
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
        "tokenizer.model",
        "tokenizer_config.json",
    ]
    resolved = adaptvc.resolve("task_a@v2")
    assert "<sql>" in (resolved / "tokenizer_config.json").read_text() and not (resolved / "tokenizer.model").exists()


def test_configured_names_and_threshold(avc_repo):
    (avc_repo / ".adaptvc" / "config.toml").write_text(
        '[adaptvc]\nadapters_dir = "adapters"\ncompanion_files = ["tokenizer*.json", "notes.txt"]\n'
        "companion_git_max_bytes = 100\n"
    )
    d = write_adapter(avc_repo / A, 1)
    (d / "tokenizer.json").write_text(json.dumps({"vocab": {f"t{i}": i for i in range(50)}}))  # > 100 bytes
    (d / "tokenizer_config.json").write_text("{}\n")
    (d / "notes.txt").write_text("kept with the version\n")
    (d / "README.md").write_text("# not a companion by this configuration\n")
    v = adaptvc.save(adapter="task_a", message="v1")
    assert {c.name: c.storage for c in v.companions} == {
        "notes.txt": "git",
        "tokenizer.json": "dvc",
        "tokenizer_config.json": "git",
    }
    assert json.loads(run_cli("status", "--json", cwd=avc_repo, check=True).stdout)[0]["unknown"] == ["README.md"]


def test_versions_saved_before_companions_keep_working(avc_repo, tmp_path):
    d = write_adapter(avc_repo / A, 1)
    v1 = adaptvc.save(adapter="task_a", message="plain")
    record = json.loads((d / "versions.jsonl").read_text())
    assert "companions" not in record and "training_state" not in record  # lines stay as they were
    assert AdapterVersion.from_record(record).companions == ()
    write_adapter(d, 2)
    _companions(d)
    adaptvc.save(adapter="task_a", message="with tokenizer")
    adaptvc.checkout("task_a@v1")
    assert sorted(p.name for p in d.iterdir() if not p.name.startswith(".")) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "adapter_model.safetensors.dvc",
        "versions.jsonl",
    ]
    assert adaptvc.resolve(v1.ref).name.endswith(v1.config_sha256[:12])  # same directory name as before


def test_training_state_is_stored_listed_and_exported(avc_repo, tmp_path):
    d = write_adapter(avc_repo / A, 1)
    adaptvc.save(adapter="task_a", message="no state")
    write_adapter(d, 2)
    ckpt = _checkpoint(tmp_path / "checkpoint-8", 8)
    (ckpt / "unrelated.txt").write_text("not state\n")
    run_cli("save", "-a", "task_a", "-m", "epoch 2", "--training-state", str(ckpt), cwd=avc_repo, check=True)

    v2 = adaptvc.show("task_a@v2")
    ts = v2.training_state
    assert ts is not None and ts.md5.endswith(".dir")
    assert sorted(f.name for f in ts.files) == [
        "optimizer.pt",
        "rng_state.pth",
        "scheduler.pt",
        "trainer_state.json",
        "training_args.bin",
    ]
    assert ts.size == sum((ckpt / f.name).stat().st_size for f in ts.files)
    head = _head_files(avc_repo)
    assert f"{A}/training_state.dvc" in head and not any(p.startswith(f"{A}/training_state/") for p in head)
    assert "nfiles: 5" in (d / "training_state.dvc").read_text()
    assert "up to date" in dvc(avc_repo, "status").stdout
    assert sum(o.size for o in v2.objects() if o.kind == "training_state") > ts.size  # + the listing

    log = run_cli("log", "task_a", cwd=avc_repo, check=True).stdout
    assert log.count("training state") == 1
    assert "training state" in run_cli("show", "task_a@v2", cwd=avc_repo, check=True).stdout

    out = tmp_path / "resume"
    run_cli("export", "task_a@v2", str(out), "--training-state", cwd=avc_repo, check=True)
    for f in ts.files:
        assert (out / f.name).read_bytes() == (ckpt / f.name).read_bytes()
    assert not (out / "unrelated.txt").exists()
    plain = adaptvc.export("task_a@v2", tmp_path / "plain")
    assert not (plain / "optimizer.pt").exists()

    with pytest.raises(TrainingStateMissingError) as err:
        adaptvc.export("task_a@v1", tmp_path / "v1", training_state=True)
    assert err.value.ref == "task_a@v1" and "--training-state" in (err.value.hint or "")
    proc = run_cli("export", "task_a@v1", str(tmp_path / "v1"), "--training-state", cwd=avc_repo)
    assert proc.returncode == 1 and proc.stderr.startswith("Error: task_a@v1 was saved without training state")

    adaptvc.checkout("task_a@v1")
    assert not (d / "training_state").exists() and not (d / "training_state.dvc").exists()
    adaptvc.checkout("task_a@v2")
    assert (d / "training_state" / "optimizer.pt").read_bytes() == (ckpt / "optimizer.pt").read_bytes()
    assert "up to date" in dvc(avc_repo, "status").stdout
    assert adaptvc.save(adapter="task_a", message="nothing changed").new is False  # the state is kept, no v3

    write_adapter(d, 3)
    v3 = adaptvc.save(adapter="task_a", message="epoch 3, no state")
    assert v3.training_state is None and v3.parents[0].ref == "task_a@v2"
    assert not (d / "training_state").exists() and f"{A}/training_state.dvc" not in _head_files(avc_repo)
    assert "up to date" in dvc(avc_repo, "status").stdout


def test_a_directory_without_trainer_state_is_refused(avc_repo, tmp_path):
    write_adapter(avc_repo / A, 1)
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "optimizer.pt").write_bytes(b"x")
    proc = run_cli("save", "-a", "task_a", "-m", "x", "--training-state", str(tmp_path / "ckpt"), cwd=avc_repo)
    assert proc.returncode == 1 and "no trainer_state.json" in proc.stderr and "Hint:" in proc.stderr
    assert adaptvc.log("task_a") == []


def test_git_checkout_moves_the_dvc_companions_and_training_state_with_it(avc_repo, tmp_path):
    d = write_adapter(avc_repo / A, 1)
    adaptvc.save(adapter="task_a", message="plain")
    git(avc_repo, "tag", "plain")
    write_adapter(d, 2)
    _companions(d)
    adaptvc.save(adapter="task_a", message="with extras", training_state=_checkpoint(tmp_path / "ckpt", 4))
    assert (d / "training_state" / "optimizer.pt").is_file()

    git(avc_repo, "checkout", "-q", "plain")  # the post-checkout hook syncs the workspace
    assert not (d / "training_state").exists() and not (d / "tokenizer.model").exists()
    assert git(avc_repo, "status", "--porcelain", "--untracked-files=all", A) == ""  # nothing for git add -A
    git(avc_repo, "checkout", "-q", "main")
    assert (d / "training_state" / "optimizer.pt").is_file() and (d / "tokenizer.model").is_file()
    assert "up to date" in dvc(avc_repo, "status").stdout


def test_gc_drops_old_training_state_and_keeps_every_versions_weights(avc_repo, tmp_path):
    """gc --drop-training-state: the policy picks the versions that lose their optimizer
    and RNG state; every version keeps its weights and companions, none is pruned, and du
    counts the state apart."""
    d = write_adapter(avc_repo / A, 1)
    for n in (1, 2, 3):
        write_adapter(d, n)
        ckpt = _checkpoint(tmp_path / f"checkpoint-{n}", n)
        run_cli("save", "-a", "task_a", "-m", f"epoch {n}", "--training-state", str(ckpt), cwd=avc_repo, check=True)
    versions = {v.ref: v for v in adaptvc.log("task_a")}
    cache = avc_repo / ".dvc" / "cache" / "files" / "md5"

    def stored(md5: str) -> bool:
        return (cache / md5[:2] / md5[2:]).is_file()

    def state_objects(ref: str) -> list:
        return [o for o in versions[ref].objects() if o.kind == "training_state"]

    before = {r.ref: r for r in adaptvc.du(["task_a"]).adapters[0].versions}
    assert all(before[ref].training_state_bytes > 0 for ref in versions)

    dry = adaptvc.gc(["task_a"], keep_last=1, drop_training_state=True)
    assert all(stored(o.md5) for ref in versions for o in state_objects(ref))  # a dry run removes nothing
    result = adaptvc.gc(["task_a"], keep_last=1, drop_training_state=True, dry_run=False)

    assert dry.to_dict()["versions"] == result.to_dict()["versions"]
    assert result.pruned == ()
    for ref in ("task_a@v1", "task_a@v2"):
        assert not any(stored(o.md5) for o in state_objects(ref)), ref
        assert stored(versions[ref].id), f"{ref} lost its weights"
    assert all(stored(o.md5) for o in state_objects("task_a@v3"))
    after = {r.ref: r for r in adaptvc.du(["task_a"]).adapters[0].versions}
    assert after["task_a@v1"].training_state_bytes == 0 and after["task_a@v1"].local
    assert after["task_a@v3"].training_state_bytes == before["task_a@v3"].training_state_bytes
    assert after["task_a@v1"].bytes == before["task_a@v1"].bytes  # the adapter itself is untouched

    adaptvc.checkout("task_a@v1")  # the weights still check out
    run_cli("export", "task_a@v3", str(tmp_path / "resume"), "--training-state", cwd=avc_repo, check=True)
    failed = run_cli("export", "task_a@v1", str(tmp_path / "old"), "--training-state", cwd=avc_repo)
    assert failed.returncode == 1 and "Error:" in failed.stderr
