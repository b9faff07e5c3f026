"""init, save, log, show, status, checkout, export, resolve, alias on real git + DVC."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import adaptvc
from adaptvc.errors import (
    AdapterNotFoundError,
    DirtyWorkspaceError,
    InvalidAdapterError,
    ObjectMissingError,
    VersionNotFoundError,
)
from tests.conftest import run_cli
from tests.versioning_helpers import (  # noqa: F401 - fixtures
    _initialised_template,
    avc_repo,
    dvc,
    git,
    lora_tensors,
    write_adapter,
)

A = "adapters/task_a"


# --- init ---------------------------------------------------------------------------------


@pytest.mark.torchless
def test_init_outside_git_is_a_clear_error(tmp_path):
    proc = run_cli("init", cwd=tmp_path)
    assert proc.returncode == 1
    assert "not inside a git repository" in proc.stderr and "Hint: git init" in proc.stderr


@pytest.mark.torchless
def test_init_sets_up_commits_and_is_idempotent(git_repo):
    root = Path(git_repo.working_tree_dir)
    (root / "untouched.txt").write_text("staged\n")
    git(root, "add", "untouched.txt")
    proc = run_cli("init", cwd=root, check=True)
    assert proc.stdout.strip() == f"Initialised adaptvc in {root}"  # stdout is data: DVC's chatter is not
    assert (root / ".dvc" / "config").exists() and (root / ".adaptvc" / "config.toml").exists()
    committed = git(root, "show", "--name-only", "--format=", "HEAD").split()
    assert sorted(committed) == sorted(
        [".adaptvc/config.toml", ".gitattributes", ".dvc/config", ".dvc/.gitignore", ".dvcignore"]
    )
    assert "merge=union" in (root / ".gitattributes").read_text()
    assert git(root, "config", "merge.adaptvc.driver").strip()
    assert "A  untouched.txt" in git(root, "status", "--porcelain")
    head = git(root, "rev-parse", "HEAD")
    attrs = (root / ".gitattributes").read_bytes()
    proc = run_cli("init", cwd=root, check=True)
    assert "nothing changed" in proc.stderr
    assert git(root, "rev-parse", "HEAD") == head and (root / ".gitattributes").read_bytes() == attrs


@pytest.mark.torchless
def test_init_in_a_repository_without_commits(tmp_path):
    git(tmp_path, "init", "-q", "-b", "main")
    run_cli("init", cwd=tmp_path, check=True)
    write_adapter(tmp_path / A, 0)
    run_cli("save", "--adapter", "task_a", "-m", "first", cwd=tmp_path, check=True)
    assert git(tmp_path, "log", "--format=%s").splitlines() == [
        "task_a@v1: first",
        "adaptvc init: DVC, adaptvc config and merge rules",
    ]


@pytest.mark.torchless
def test_commands_need_init(git_repo):
    proc = run_cli("log", cwd=git_repo.working_tree_dir)
    assert proc.returncode == 1 and "Hint: adaptvc init" in proc.stderr


# --- save -----------------------------------------------------------------------------------


@pytest.mark.torchless
def test_save_commits_only_the_adapter_and_tags_it(avc_repo):
    (avc_repo / "README.md").write_text("modified, not staged\n")
    (avc_repo / "notes.txt").write_text("staged\n")
    git(avc_repo, "add", "notes.txt")
    (avc_repo / "untracked.txt").write_text("x\n")
    status_before = git(avc_repo, "status", "--porcelain")
    write_adapter(A, 0)
    v = adaptvc.save(adapter="task_a", message="epoch 1", metrics={"eval_loss": 1.92})
    assert (v.ref, v.version, v.new) == ("task_a@v1", 1, True)
    files = git(avc_repo, "show", "--name-only", "--format=", "HEAD").split()
    assert sorted(files) == sorted(
        f"{A}/{n}" for n in (".gitignore", "adapter_config.json", "adapter_model.safetensors.dvc", "versions.jsonl")
    )
    assert git(avc_repo, "status", "--porcelain") == status_before  # user's changes as they were
    assert git(avc_repo, "cat-file", "-t", "task_a@v1").strip() == "tag"  # annotated
    assert git(avc_repo, "rev-parse", "task_a@v1^{commit}").strip() == v.commit
    assert (avc_repo / A / ".gitignore").read_text() == "/adapter_model.safetensors\n"
    # plain DVC agrees
    assert "up to date" in dvc(avc_repo, "status").stdout
    rec = json.loads((avc_repo / A / "versions.jsonl").read_text())
    assert rec["id"] == v.id and rec["metrics"] == {"eval_loss": 1.92}
    assert rec["peft"]["r"] == 4 and rec["peft"]["parameter_count"] == 2 * 2 * (4 * 16 * 2)


@pytest.mark.torchless
def test_identical_content_creates_no_version(avc_repo):
    write_adapter(A, 0)
    run_cli("save", "--adapter", "task_a", "-m", "one", check=True)
    head = git(avc_repo, "rev-parse", "HEAD")
    proc = run_cli("save", "--adapter", "task_a", "-m", "again", check=True)
    assert "no version created" in proc.stderr and proc.stdout == ""
    assert git(avc_repo, "rev-parse", "HEAD") == head
    proc = run_cli("save", "--adapter", "task_a", "-m", "again", "--json", check=True)
    assert json.loads(proc.stdout)["created"] is False
    # a config change alone is a new version
    cfg = json.loads((avc_repo / A / "adapter_config.json").read_text())
    cfg["lora_alpha"] = 32
    (avc_repo / A / "adapter_config.json").write_text(json.dumps(cfg))
    assert adaptvc.save(adapter="task_a", message="alpha 32").version == 2


@pytest.mark.torchless
def test_save_from_training_output_and_subfolders(avc_repo, tmp_path):
    out = tmp_path / "outputs" / "checkpoint-500"
    write_adapter(out, 3)
    (out / "trainer_state.json").write_text("{}")
    proc = run_cli("save", "--adapter", "task_a", "--from", str(out), "-m", "step 500", "--json", check=True)
    doc = json.loads(proc.stdout)
    assert doc["ref"] == "task_a@v1" and doc["created"] is True
    assert (avc_repo / A / "adapter_model.safetensors").read_bytes() == (out / "adapter_model.safetensors").read_bytes()
    assert not (avc_repo / A / "trainer_state.json").exists()
    multi = tmp_path / "multi"
    write_adapter(multi / "task_b", 4)
    write_adapter(multi / "task_c", 5)
    v = adaptvc.save(multi, adapter="task_c", message="from subfolder")
    assert v.ref == "task_c@v1"
    assert (avc_repo / "adapters/task_c/adapter_model.safetensors").read_bytes() == (
        multi / "task_c" / "adapter_model.safetensors"
    ).read_bytes()
    with pytest.raises(InvalidAdapterError, match="several adapters"):
        adaptvc.save(multi, adapter="task_z", message="which?")


@pytest.mark.torchless
def test_base_model_weights_are_refused(avc_repo):
    full = {"model.embed_tokens.weight": np.zeros((8, 4), np.float32), **lora_tensors(0)}
    write_adapter(A, tensors=full)
    proc = run_cli("save", "--adapter", "task_a", "-m", "oops")
    assert proc.returncode == 1 and "base-model weights" in proc.stderr and "model.embed_tokens.weight" in proc.stderr
    assert not (avc_repo / A / "versions.jsonl").exists()
    # modules_to_save copies and configured biases are adapter parameters
    ok = {
        **lora_tensors(0),
        "base_model.model.score.weight": np.zeros((2, 16), np.float32),
        "base_model.model.model.layers.0.self_attn.q_proj.bias": np.zeros(16, np.float32),
    }
    write_adapter(A, tensors=ok, config={"modules_to_save": ["score"], "bias": "lora_only"})
    assert adaptvc.save(adapter="task_a", message="with head").version == 1


@pytest.mark.torchless
@pytest.mark.parametrize("breakage", ["truncated", "no_config", "bad_json"])
def test_bad_files_are_refused_before_anything_is_written(avc_repo, breakage):
    d = write_adapter(A, 0)
    if breakage == "truncated":
        data = (d / "adapter_model.safetensors").read_bytes()
        (d / "adapter_model.safetensors").write_bytes(data[: len(data) // 2])
    elif breakage == "no_config":
        (d / "adapter_config.json").unlink()
    else:
        (d / "adapter_config.json").write_text("{nope")
    head = git(avc_repo, "rev-parse", "HEAD")
    proc = run_cli("save", "--adapter", "task_a", "-m", "x")
    assert proc.returncode == 1 and proc.stderr.startswith("Error: ")
    assert git(avc_repo, "rev-parse", "HEAD") == head and not (d / "versions.jsonl").exists()


@pytest.mark.torchless
def test_bad_name_and_metric(avc_repo):
    write_adapter(A, 0)
    assert run_cli("save", "--adapter", "a/b", "-m", "x").returncode == 1
    proc = run_cli("save", "--adapter", "task_a", "-m", "x", "--metric", "novalue")
    assert proc.returncode == 2 and "KEY=VALUE" in proc.stderr  # a usage error
    assert "Traceback" not in proc.stderr


def test_legacy_bin_is_converted(avc_repo, tmp_path):
    import torch

    src = tmp_path / "old"
    write_adapter(src, 0)
    tensors = {k: torch.from_numpy(v) for k, v in lora_tensors(0).items()}
    (src / "adapter_model.safetensors").unlink()
    torch.save(tensors, src / "adapter_model.bin")
    v = adaptvc.save(src, adapter="task_a", message="from bin")
    assert (src / "adapter_model.bin").exists()  # the source is left alone
    assert (avc_repo / A / "adapter_model.safetensors").is_file() and not (avc_repo / A / "adapter_model.bin").exists()
    from safetensors.numpy import load_file

    got = load_file(str(avc_repo / A / "adapter_model.safetensors"))
    assert all(np.array_equal(got[k], lora_tensors(0)[k]) for k in got) and v.version == 1


@pytest.mark.torchless
def test_base_model_fingerprint_from_a_local_directory(avc_repo, tmp_path):
    from safetensors.numpy import save_file

    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 16, "_name_or_path": "/x"}))
    save_file({"w": np.zeros((2, 2), np.float32)}, str(base / "model.safetensors"))
    write_adapter(A, 0, config={"base_model_name_or_path": str(base), "revision": "main"})
    v1 = adaptvc.save(adapter="task_a", message="one")
    assert v1.base_model.fingerprint.startswith("sha256:") and v1.base_model.revision == "main"
    # the same model elsewhere has the same fingerprint; another shape does not
    moved = tmp_path / "moved"
    shutil.copytree(base, moved)
    (moved / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 16, "_name_or_path": "/y"}))
    write_adapter(A, 1)
    v2 = adaptvc.save(adapter="task_a", message="two", base_model=str(moved))
    assert v2.base_model.name_or_path == str(moved) and v2.base_model.fingerprint == v1.base_model.fingerprint
    save_file({"w": np.zeros((2, 3), np.float32)}, str(moved / "model.safetensors"))
    write_adapter(A, 2)
    assert (
        adaptvc.save(adapter="task_a", message="3", base_model=str(moved)).base_model.fingerprint
        != v1.base_model.fingerprint
    )


# --- log / show / status ------------------------------------------------------------------


def _three_versions(root: Path) -> list:
    out = []
    for i in range(3):
        write_adapter(A, i)
        out.append(adaptvc.save(adapter="task_a", message=f"epoch {i + 1}", metrics={"eval_loss": 2.0 - i / 10}))
    return out


@pytest.mark.torchless
def test_log_json_fields_and_order(avc_repo):
    saved = _three_versions(avc_repo)
    doc = json.loads(run_cli("log", "task_a", "--json", check=True).stdout)
    assert [d["ref"] for d in doc] == ["task_a@v3", "task_a@v2", "task_a@v1"]
    first = doc[0]
    assert first["version"] == 3 and first["id"] == saved[2].id and first["parents"] == ["task_a@v2"]
    assert first["commit"] == saved[2].commit and first["metrics"] == {"eval_loss": 1.8}
    assert set(first["base_model"]) == {"name_or_path", "revision", "fingerprint"}
    assert first["created_at"].endswith("+00:00")
    text = run_cli("log", cwd=avc_repo, check=True).stdout
    assert "task_a@v3" in text and "epoch 3" in text and "eval_loss=1.8" in text


@pytest.mark.torchless
def test_empty_listings_print_empty_json(avc_repo):
    assert run_cli("log", "--json", check=True).stdout.strip() == "[]"
    assert run_cli("status", "--json", check=True).stdout.strip() == "[]"


@pytest.mark.torchless
def test_git_log_reads_as_history_of_versions(avc_repo):
    _three_versions(avc_repo)
    subjects = git(avc_repo, "log", "--format=%s", "--", A).splitlines()
    assert subjects == ["task_a@v3: epoch 3", "task_a@v2: epoch 2", "task_a@v1: epoch 1"]


@pytest.mark.torchless
def test_show_by_every_kind_of_ref(avc_repo):
    saved = _three_versions(avc_repo)
    for ref in ("task_a", "task_a@latest", "task_a@v3", f"task_a@{saved[2].id[:6]}"):
        assert adaptvc.show(ref).id == saved[2].id
    doc = json.loads(run_cli("show", "task_a@v1", "--json", check=True).stdout)
    assert doc["peft"]["type"] == "LORA" and doc["files"][1]["md5"] == saved[0].id
    proc = run_cli("show", "task_a@v9")
    assert proc.returncode == 1 and "v3, v2, v1" in proc.stderr
    with pytest.raises(AdapterNotFoundError):
        adaptvc.show("nope")
    with pytest.raises(VersionNotFoundError):
        adaptvc.show("task_a@ffffff")


@pytest.mark.torchless
def test_status_states(avc_repo):
    write_adapter("adapters/new_one", 9)
    _three_versions(avc_repo)
    st = {s["adapter"]: s for s in json.loads(run_cli("status", "--json", check=True).stdout)}
    assert st["new_one"]["state"] == "never saved"
    assert st["task_a"]["state"] == "clean" and st["task_a"]["version"] == "task_a@v3"
    write_adapter(A, 7)
    assert adaptvc.status()[1].state == "modified" and adaptvc.status()[1].changes == ("weights",)
    (avc_repo / A / "adapter_model.safetensors").unlink()
    assert adaptvc.status()[1].state == "weights missing"


# --- checkout / export / resolve ----------------------------------------------------------


@pytest.mark.torchless
def test_checkout_restores_an_old_version_without_moving_head(avc_repo):
    saved = _three_versions(avc_repo)
    head = git(avc_repo, "rev-parse", "HEAD")
    (avc_repo / "other.txt").write_text("keep me\n")
    proc = run_cli("checkout", "task_a@v1", check=True)
    assert "task_a@v1" in proc.stdout
    assert git(avc_repo, "rev-parse", "HEAD") == head
    from adaptvc.storage.dvc_cache import file_md5

    assert file_md5(avc_repo / A / "adapter_model.safetensors")[0] == saved[0].id
    assert (avc_repo / "other.txt").read_text() == "keep me\n"
    assert adaptvc.status()[0].version.ref == "task_a@v1"
    assert "up to date" in dvc(avc_repo, "status").stdout
    adaptvc.checkout("task_a")  # back to the newest
    assert file_md5(avc_repo / A / "adapter_model.safetensors")[0] == saved[2].id


@pytest.mark.torchless
def test_checkout_refuses_to_overwrite_unsaved_changes(avc_repo):
    _three_versions(avc_repo)
    write_adapter(A, 42)
    proc = run_cli("checkout", "task_a@v1")
    assert proc.returncode == 1 and "unsaved changes" in proc.stderr and "--force" in proc.stderr
    with pytest.raises(DirtyWorkspaceError):
        adaptvc.checkout("task_a@v1")
    assert adaptvc.checkout("task_a@v1", force=True).version == 1


@pytest.mark.torchless
def test_lineage_branches_after_checkout_and_parent_option(avc_repo):
    _three_versions(avc_repo)
    adaptvc.checkout("task_a@v2")
    write_adapter(A, 10)
    v4 = adaptvc.save(adapter="task_a", message="branch from v2")
    assert [p.ref for p in v4.parents] == ["task_a@v2"]
    write_adapter("adapters/task_b", 11)
    fork = adaptvc.save(adapter="task_b", message="fork", parent="task_a@v1")
    assert [p.ref for p in fork.parents] == ["task_a@v1"]
    text = run_cli("log", "task_a", check=True).stdout
    assert "|/" in text  # the branch joins v2 in the graph


@pytest.mark.torchless
def test_missing_weights_say_what_to_do_and_change_nothing(avc_repo):
    from tests.versioning_helpers import repo_snapshot

    saved = _three_versions(avc_repo)
    from adaptvc.repo import AdapterRepo

    obj = AdapterRepo.open().dvc_cache.object_path(saved[0].id)
    obj.unlink()
    before = repo_snapshot(avc_repo)
    proc = run_cli("checkout", "task_a@v1")
    assert proc.returncode == 1 and "weights of task_a@v1 are not in the local cache" in proc.stderr
    # no DVC remote here: `adaptvc pull` could not help, adding one can
    assert "no DVC remote is configured" in proc.stderr and "adaptvc remote add" in proc.stderr
    assert repo_snapshot(avc_repo) == before
    with pytest.raises(ObjectMissingError):
        adaptvc.resolve("task_a@v1")


@pytest.mark.torchless
def test_export_and_resolve_do_not_touch_the_workspace(avc_repo, tmp_path):
    saved = _three_versions(avc_repo)
    before = (avc_repo / A / "adapter_model.safetensors").read_bytes()
    out = tmp_path / "exported"
    run_cli("export", "task_a@v1", str(out), check=True)
    from adaptvc.storage.dvc_cache import file_md5

    assert file_md5(out / "adapter_model.safetensors")[0] == saved[0].id
    assert json.loads((out / "adapter_config.json").read_text())["peft_type"] == "LORA"
    assert run_cli("export", "task_a@v1", str(out)).returncode == 1  # would overwrite
    d = adaptvc.resolve("task_a@v2")
    assert file_md5(d / "adapter_model.safetensors")[0] == saved[1].id
    assert adaptvc.resolve("task_a@v2") == d
    assert (avc_repo / A / "adapter_model.safetensors").read_bytes() == before


@pytest.mark.torchless
def test_alias_is_recorded_in_git_and_can_move(avc_repo):
    _three_versions(avc_repo)
    run_cli("alias", "task_a@v2", "production", check=True)
    assert adaptvc.show("task_a@production").version == 2
    adaptvc.alias("task_a@v3", "production")
    assert adaptvc.show("task_a@production").version == 3
    history = git(avc_repo, "log", "--format=%s", "--", f"{A}/aliases.jsonl").splitlines()
    assert history == ["task_a@production -> task_a@v3", "task_a@production -> task_a@v2"]
    assert json.loads(run_cli("log", "task_a", "--json", check=True).stdout)[0]["aliases"] == ["production"]


# --- plain DVC keeps working ----------------------------------------------------------------


@pytest.mark.torchless
def test_plain_dvc_checkout_push_and_pull(avc_repo, tmp_path):
    saved = _three_versions(avc_repo)
    (avc_repo / A / "adapter_model.safetensors").unlink()
    dvc(avc_repo, "checkout")
    from adaptvc.storage.dvc_cache import file_md5

    assert file_md5(avc_repo / A / "adapter_model.safetensors")[0] == saved[2].id
    remote = tmp_path / "remote"
    dvc(avc_repo, "remote", "add", "-d", "store", str(remote))
    dvc(avc_repo, "push")
    shutil.rmtree(avc_repo / ".dvc" / "cache")
    (avc_repo / A / "adapter_model.safetensors").unlink()
    dvc(avc_repo, "pull")
    assert file_md5(avc_repo / A / "adapter_model.safetensors")[0] == saved[2].id
    assert "up to date" in dvc(avc_repo, "status").stdout


def test_legacy_bin_in_place_is_replaced_by_safetensors(avc_repo):
    import torch

    d = write_adapter(A, 0)
    (d / "adapter_model.safetensors").unlink()
    torch.save({k: torch.from_numpy(v) for k, v in lora_tensors(0).items()}, d / "adapter_model.bin")
    v = adaptvc.save(adapter="task_a", message="in place bin")
    assert (d / "adapter_model.safetensors").is_file() and not (d / "adapter_model.bin").exists()
    assert adaptvc.status()[0].state == "clean" and v.version == 1


@pytest.mark.torchless
def test_save_from_a_subdirectory_and_names_with_dots(avc_repo):
    write_adapter("adapters/llama-7b.sql", 0)
    sub = avc_repo / "src" / "deep"
    sub.mkdir(parents=True)
    proc = run_cli("save", "--adapter", "llama-7b.sql", "-m", "from below", cwd=sub, check=True)
    assert "llama-7b.sql@v1" in proc.stdout
    assert git(avc_repo, "tag", "-l").split() == ["llama-7b.sql@v1"]
    assert json.loads(run_cli("show", "llama-7b.sql@v1", "--json", cwd=sub, check=True).stdout)["version"] == 1


@pytest.mark.torchless
def test_multiline_message_and_string_metrics(avc_repo):
    write_adapter(A, 0)
    run_cli(
        "save",
        "--adapter",
        "task_a",
        "-m",
        "epoch 3\n\nlonger notes",
        "--metric",
        "eval_loss=1.5",
        "--metric",
        "steps=500",
        "--metric",
        "dataset=v2-clean",
        check=True,
    )
    v = adaptvc.show("task_a@v1")
    assert v.metrics == {"eval_loss": 1.5, "steps": 500, "dataset": "v2-clean"}
    assert git(avc_repo, "log", "-1", "--format=%s").strip() == "task_a@v1: epoch 3"
    assert "longer notes" in git(avc_repo, "log", "-1", "--format=%b")


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > pwned.txt",))


def test_a_malicious_bin_is_refused_and_never_run(avc_repo, tmp_path):
    import torch

    src = write_adapter(tmp_path / "evil", 0)
    (src / "adapter_model.safetensors").unlink()
    torch.save({"x": _Evil()}, src / "adapter_model.bin")
    proc = run_cli("save", "--adapter", "task_a", "--from", str(src), "-m", "evil")
    assert proc.returncode == 1 and proc.stderr.startswith("Error: ") and "Traceback" not in proc.stderr
    assert not (avc_repo / "pwned.txt").exists() and not (avc_repo / A).exists()
