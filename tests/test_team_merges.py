"""Merges and rebases of branches that saved versions, driven by real git with adaptvc's
hooks installed: the pointer and config in the result are always one version's pair,
and pulling after two clones minted the same vN still works."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import adaptvc
from adaptvc.storage.dvc_cache import file_md5
from tests.conftest import run_cli
from tests.versioning_helpers import _initialised_template, avc_repo, dvc, git, write_adapter  # noqa: F401

A = "adapters/task_a"


def _pair_is_one_version(root: Path) -> str:
    """The ref of the version whose weights *and* config the workspace holds (asserts one does)."""
    config = json.loads((root / A / "adapter_config.json").read_text())
    pointer_md5 = (root / A / "adapter_model.safetensors.dvc").read_text().split("md5: ")[1].split()[0]
    assert file_md5(root / A / "adapter_model.safetensors")[0] == pointer_md5
    status = adaptvc.status(repo=root)[0]
    assert status.state == "clean", status
    assert status.version.id == pointer_md5 and status.version.peft.r == config["r"]
    return status.version.ref


def _merge_r8_into_weights_only(root: Path):
    write_adapter(A, 0)
    adaptvc.save(adapter="task_a", message="base")
    git(root, "checkout", "-q", "-b", "side")
    write_adapter(A, 2, config={"r": 8})  # the config changes on this side only
    r8 = adaptvc.save(adapter="task_a", message="rank 8")
    git(root, "checkout", "-q", "main")
    write_adapter(A, 1)  # new weights, same config
    ours = adaptvc.save(adapter="task_a", message="more epochs")
    return ours, r8


def test_merge_keeps_pointer_and_config_of_one_version(avc_repo):
    ours, r8 = _merge_r8_into_weights_only(avc_repo)
    proc = subprocess.run(["git", "merge", "--no-edit", "side"], cwd=avc_repo, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "kept task_a@v3 whole" in proc.stderr
    # without the repair git took side's r=8 config next to our r=4 weights
    assert _pair_is_one_version(avc_repo) == ours.ref == "task_a@v3"
    assert git(avc_repo, "status", "--porcelain") == ""
    head = git(avc_repo, "show", "HEAD:" + A + "/adapter_config.json")
    assert json.loads(head)["r"] == 4  # the branch itself is coherent, not just the workspace
    assert "up to date" in dvc(avc_repo, "status").stdout  # plain DVC agrees: weights match the pointer
    for v in adaptvc.log("task_a"):
        adaptvc.checkout(v.ref)
        assert _pair_is_one_version(avc_repo) == v.ref
    assert {v.ref for v in adaptvc.log("task_a")} == {"task_a@v1", "task_a@v2", "task_a@v3"}


def test_merge_does_not_undo_a_config_the_user_committed(avc_repo):
    write_adapter(A, 0)
    adaptvc.save(adapter="task_a", message="base")
    git(avc_repo, "checkout", "-q", "-b", "side")
    write_adapter(A, 2)
    adaptvc.save(adapter="task_a", message="side weights")
    git(avc_repo, "checkout", "-q", "main")
    cfg = json.loads((avc_repo / A / "adapter_config.json").read_text())
    cfg["lora_dropout"] = 0.1  # committed by hand, not a saved version
    (avc_repo / A / "adapter_config.json").write_text(json.dumps(cfg))
    git(avc_repo, "commit", "-q", "-am", "dropout by hand")
    git(avc_repo, "merge", "-q", "--no-edit", "side")
    assert json.loads((avc_repo / A / "adapter_config.json").read_text())["lora_dropout"] == 0.1
    assert git(avc_repo, "log", "-1", "--format=%s").startswith("Merge")  # no fix-up commit


def _clone(bare: Path, where: Path, cache: Path) -> Path:
    git(where.parent, "clone", "-q", str(bare), where.name)
    run_cli("init", cwd=where, check=True)  # per clone: merge driver and hooks
    (where / ".dvc" / "config.local").write_text(f"[cache]\n    dir = {cache}\n")
    return where


def _two_clones(root: Path, tmp_path: Path) -> tuple[Path, Path]:
    cache = tmp_path / "shared-dvc-cache"  # stands in for a DVC remote
    (root / ".dvc" / "config.local").write_text(f"[cache]\n    dir = {cache}\n")
    write_adapter(A, 0)
    adaptvc.save(adapter="task_a", message="base")
    bare = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(root), str(bare))
    return _clone(bare, tmp_path / "alice", cache), _clone(bare, tmp_path / "bob", cache)


def test_pull_rebase_keeps_the_replayed_version_whole(avc_repo, tmp_path):
    alice, bob = _two_clones(avc_repo, tmp_path)
    write_adapter(alice / A, 1)
    adaptvc.save(adapter="task_a", message="alice: weights", repo=alice)
    git(alice, "push", "-q", "--no-verify", "origin", "main")
    write_adapter(bob / A, 2, config={"r": 8})
    vb = adaptvc.save(adapter="task_a", message="bob: rank 8", repo=bob)
    proc = subprocess.run(["git", "pull", "--rebase", "origin", "main"], cwd=bob, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    # the replay kept alice's pointer (the driver's "ours" is upstream in a rebase) and
    # bob's config; the post-rewrite hook put bob's version back together
    assert _pair_is_one_version(bob) == vb.ref and adaptvc.status(repo=bob)[0].version.id == vb.id
    assert git(bob, "status", "--porcelain") == ""
    assert "up to date" in dvc(bob, "status").stdout
    versions = adaptvc.log("task_a", repo=bob)
    assert len(versions) == 3 and all(v.commit for v in versions)  # the replayed commit is found by its trailer
    for v in versions:
        adaptvc.checkout(f"task_a@{v.id}", repo=bob)
        assert adaptvc.status(repo=bob)[0].version.id == v.id
        _pair_is_one_version(bob)


def test_pull_after_both_clones_minted_the_same_vn(avc_repo, tmp_path):
    alice, bob = _two_clones(avc_repo, tmp_path)
    write_adapter(alice / A, 1)
    adaptvc.save(adapter="task_a", message="alice", repo=alice)
    git(alice, "push", "-q", "--no-verify", "--follow-tags", "origin", "main")
    write_adapter(bob / A, 2)
    vb = adaptvc.save(adapter="task_a", message="bob", repo=bob)  # task_a@v2 too
    git(bob, "pull", "-q", "--no-rebase", "--no-edit", "--no-tags", "origin", "main")
    git(bob, "push", "-q", "--no-verify", "origin", "main")
    git(alice, "pull", "-q", "--ff-only", "--no-tags", "origin", "main")
    write_adapter(alice / A, 3)
    assert adaptvc.save(adapter="task_a", message="alice again", repo=alice).ref == "task_a@v3"
    git(alice, "push", "-q", "--no-verify", "--follow-tags", "origin", "main")
    # `git fetch --tags` would fail here ("would clobber existing tag" task_a@v2)
    proc = run_cli("pull", cwd=bob)
    assert proc.returncode == 0, proc.stderr
    assert "task_a@v2" in proc.stderr and "clobber" not in proc.stdout
    assert git(bob, "rev-parse", "HEAD") == git(bob, "rev-parse", "origin/main")
    assert git(bob, "rev-parse", "task_a@v2^{commit}").strip() == vb.commit  # bob's tag kept
    assert git(bob, "rev-parse", "-q", "--verify", "task_a@v3").strip()  # the new tag arrived
    assert adaptvc.status(repo=bob)[0].state == "clean"


def test_a_clone_without_the_merge_driver_gets_a_conflict_that_adaptvc_names(avc_repo, tmp_path):
    alice, bob = _two_clones(avc_repo, tmp_path)
    git(bob, "config", "--remove-section", "merge.adaptvc")  # as after a plain `git clone`
    write_adapter(alice / A, 1)
    adaptvc.save(adapter="task_a", message="alice", repo=alice)
    git(alice, "push", "-q", "--no-verify", "origin", "main")
    write_adapter(bob / A, 2)
    saved = run_cli("save", "--adapter", "task_a", "-m", "bob", cwd=bob, check=True)
    assert "no adaptvc merge driver" in saved.stderr and "adaptvc init" in saved.stderr
    vb = adaptvc.show("task_a@v2", repo=bob)
    proc = subprocess.run(
        ["git", "pull", "--no-rebase", "--no-edit", "origin", "main"], cwd=bob, capture_output=True, text=True
    )
    assert proc.returncode != 0 and "adapter_model.safetensors.dvc" in proc.stdout
    status = run_cli("status", "--json", cwd=bob, check=True)
    assert json.loads(status.stdout)[0]["state"] == "merge conflict"  # not "clean" from the first md5
    saved = run_cli("save", "--adapter", "task_a", "-m", "x", cwd=bob)
    assert saved.returncode == 1 and "unresolved merge conflict" in saved.stderr and "adaptvc init" in saved.stderr
    refused = run_cli("checkout", "task_a@v1", cwd=bob)
    assert refused.returncode == 1 and "--force" in refused.stderr
    assert len(adaptvc.log("task_a", repo=bob)) == 3  # the manifest merged by union all the same
    adaptvc.checkout(f"task_a@{vb.id}", force=True, repo=bob)  # one way to resolve
    git(bob, "add", A)
    git(bob, "commit", "-q", "--no-edit")
    assert _pair_is_one_version(bob) == vb.ref


def test_a_damaged_manifest_line_is_named_by_file_and_line_and_duplicates_are_harmless(avc_repo):
    write_adapter(A, 0)
    adaptvc.save(adapter="task_a", message="v1")
    write_adapter(A, 1)
    adaptvc.save(adapter="task_a", message="v2")
    manifest = avc_repo / A / "versions.jsonl"
    good = manifest.read_text()
    manifest.write_text(good + good.splitlines()[0] + "\n")  # what a union of two histories can give
    assert [v.ref for v in adaptvc.log("task_a")] == ["task_a@v2", "task_a@v1"]
    for bad, why in (
        ('{"adapter": "task_a", "version": 3', "not valid JSON"),
        ('{"adapter": "task_a"}', "missing field 'version'"),
    ):
        manifest.write_text(good + bad + "\n")
        for args in (("log", "task_a"), ("show", "task_a@v1"), ("status",)):
            proc = run_cli(*args, cwd=avc_repo)
            assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
            assert "versions.jsonl:3:" in proc.stderr and why in proc.stderr


def test_push_rejected_by_git_says_how_to_integrate_and_a_rerun_works(avc_repo, tmp_path):
    from tests.remote_servers import RemoteSpec
    from tests.test_remote_transfer import configure_remote

    server = tmp_path / "server.git"
    git(tmp_path, "init", "-q", "--bare", str(server))
    git(avc_repo, "remote", "add", "origin", str(server))
    configure_remote(avc_repo, RemoteSpec(kind="dir", url=str(tmp_path / "dvc-remote")))
    write_adapter(A, 0)
    adaptvc.save(adapter="task_a", message="v1")
    adaptvc.push()
    other = tmp_path / "other"
    adaptvc.clone(str(server), other)
    write_adapter(other / A, 1)
    adaptvc.save(adapter="task_a", message="theirs", repo=other)
    adaptvc.push(repo=other)
    write_adapter(A, 2)
    ours = adaptvc.save(adapter="task_a", message="ours")  # task_a@v2 as well
    proc = run_cli("push", cwd=avc_repo)
    assert proc.returncode == 1
    assert "the weights are on DVC remote" in proc.stderr and "git pull --no-rebase origin main" in proc.stderr
    git(avc_repo, "pull", "-q", "--no-rebase", "--no-edit", "origin", "main")
    again = json.loads(run_cli("push", "--json", cwd=avc_repo, check=True).stdout)
    assert again["git_pushed"] and again["uploaded"] == []  # the weights went up the first time
    assert f"task_a@{ours.id}" in again["already_there"]  # a vN minted twice is named by id


def test_merge_rules_work_for_an_adapters_dir_with_spaces_and_unicode(tmp_path, monkeypatch):
    root = tmp_path / "repo with späces"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / ".gitattributes").write_text("*.png binary\n")  # the user's own rules stay
    (root / ".adaptvc").mkdir()
    (root / ".adaptvc" / "config.toml").write_text('[adaptvc]\nadapters_dir = "my adäpters"\n')
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "initial")
    # what an older adaptvc wrote: unquoted, so git read "my" as the pattern
    with open(root / ".gitattributes", "a") as fh:
        fh.write("my adäpters/*/versions.jsonl merge=union\n")
    adaptvc.init(root)
    attrs = (root / ".gitattributes").read_text()
    assert attrs.startswith("*.png binary\n") and "\nmy adäpters/" not in attrs
    checked = git(
        root, "check-attr", "merge", "--", "my adäpters/a/versions.jsonl", "my adäpters/a/adapter_model.safetensors.dvc"
    )
    assert checked.splitlines()[0].endswith("merge: union") and checked.splitlines()[1].endswith("merge: adaptvc")
    assert adaptvc.init(root).changes == ()
    monkeypatch.chdir(root)
    d = root / "my adäpters" / "task_a"
    write_adapter(d, 0)
    adaptvc.save(adapter="task_a", message="base")
    git(root, "checkout", "-q", "-b", "side")
    write_adapter(d, 1)
    adaptvc.save(adapter="task_a", message="side")
    git(root, "checkout", "-q", "main")
    write_adapter(d, 2)
    adaptvc.save(adapter="task_a", message="main")
    proc = subprocess.run(["git", "merge", "--no-edit", "side"], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0 and "not a valid attribute name" not in proc.stderr, proc.stderr
    assert len(adaptvc.log("task_a")) == 3 and adaptvc.status()[0].state == "clean"


def test_pull_never_loses_unsaved_work(avc_repo, tmp_path, caplog):
    alice, bob = _two_clones(avc_repo, tmp_path)
    write_adapter(alice / A, 1)
    adaptvc.save(adapter="task_a", message="alice", repo=alice)
    git(alice, "push", "-q", "--no-verify", "origin", "main")
    write_adapter(bob / A, 2)  # bob's unsaved weights (and the same config)
    (bob / A / "adapter_config.json").write_text(git(bob, "show", f"HEAD:{A}/adapter_config.json"))
    unsaved = file_md5(bob / A / "adapter_model.safetensors")[0]
    with caplog.at_level("WARNING", logger="adaptvc"):
        result = adaptvc.pull(repo=bob)
    assert result.new_commit != result.old_commit
    assert file_md5(bob / A / "adapter_model.safetensors")[0] == unsaved  # kept, with a warning
    assert any("never saved" in w for w in caplog.messages)  # warnings go to the "adaptvc" logger
    assert adaptvc.status(repo=bob)[0].changes == ("weights",)

    write_adapter(alice / A, 3, config={"r": 8})
    adaptvc.save(adapter="task_a", message="alice r8", repo=alice)
    git(alice, "push", "-q", "--no-verify", "origin", "main")
    cfg = json.loads((bob / A / "adapter_config.json").read_text())
    (bob / A / "adapter_config.json").write_text(json.dumps(dict(cfg, lora_alpha=99)))  # unsaved config
    before = (bob / A / "adapter_config.json").read_bytes()
    proc = run_cli("pull", cwd=bob)
    assert proc.returncode == 1 and "unsaved changes" in proc.stderr and "adaptvc save" in proc.stderr
    assert (bob / A / "adapter_config.json").read_bytes() == before
    assert file_md5(bob / A / "adapter_model.safetensors")[0] == unsaved


def test_switching_to_a_branch_without_an_adapter_removes_its_saved_weights(avc_repo):
    write_adapter(A, 0)
    adaptvc.save(adapter="task_a", message="a")
    git(avc_repo, "checkout", "-q", "-b", "with-b")
    write_adapter("adapters/task_b", 1)
    vb = adaptvc.save(adapter="task_b", message="b")
    git(avc_repo, "checkout", "-q", "main")
    # git removed task_b's pointer, config, manifest and .gitignore; the weights were untracked
    assert not (avc_repo / "adapters" / "task_b").exists()
    assert git(avc_repo, "status", "--porcelain") == ""
    git(avc_repo, "checkout", "-q", "with-b")  # and they come back with the branch
    assert file_md5(avc_repo / "adapters/task_b/adapter_model.safetensors")[0] == vb.id
    assert {s.adapter: s.state for s in adaptvc.status()} == {"task_a": "clean", "task_b": "clean"}
    git(avc_repo, "checkout", "-q", "main")
    write_adapter("adapters/task_c", 2)  # never saved: kept
    (avc_repo / "adapters/task_c/adapter_config.json").unlink()
    git(avc_repo, "checkout", "-q", "with-b")
    assert (avc_repo / "adapters/task_c/adapter_model.safetensors").is_file()


def test_a_merge_concluded_by_git_commit_is_repaired_before_it_is_written(avc_repo):
    ours, r8 = _merge_r8_into_weights_only(avc_repo)
    proc = subprocess.run(
        ["git", "merge", "--no-commit", "--no-ff", "side"], cwd=avc_repo, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr  # stopped before committing: post-merge does not run
    assert json.loads((avc_repo / A / "adapter_config.json").read_text())["r"] == 8  # broken pair staged
    commit = subprocess.run(["git", "commit", "--no-edit"], cwd=avc_repo, capture_output=True, text=True)
    assert commit.returncode == 0, commit.stderr
    assert "kept task_a@v3 whole" in commit.stderr
    assert json.loads(git(avc_repo, "show", f"HEAD:{A}/adapter_config.json"))["r"] == 4  # in the merge commit
    assert len(git(avc_repo, "rev-list", "--parents", "-n", "1", "HEAD").split()) == 3  # no fix-up commit
    assert _pair_is_one_version(avc_repo) == ours.ref
    assert git(avc_repo, "status", "--porcelain") == ""
