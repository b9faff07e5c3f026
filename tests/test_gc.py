"""``adaptvc gc``: what is always kept (branches, tags, the git remote's refs, aliases,
--keep), the policy (--keep-last, --older-than, .adaptvc/config.toml), shared objects,
eviction vs pruning, the grace period, the dry run, a kill mid-gc; on real git
repositories and real DVC remotes (directory, moto S3, OpenSSH)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import adaptvc
from adaptvc.errors import InvalidRetentionError, NoRetentionPolicyError, VersionPrunedError
from adaptvc.storage.dvc_cache import DvcCache, file_md5
from adaptvc.versioning.retention import format_duration, parse_duration
from tests.conftest import run_cli
from tests.test_remote_transfer import configure_remote, remote_object_exists
from tests.versioning_helpers import (  # noqa: F401 - fixtures
    _initialised_template,
    avc_repo,
    dvc,
    git,
    repo_snapshot,
    write_adapter,
)

A = "adapters/task_a"


def _save(root: Path, seed: int, adapter: str = "task_a"):
    write_adapter(root / "adapters" / adapter, seed)
    return adaptvc.save(adapter=adapter, message=f"epoch {seed}", repo=root)


def _decisions(result) -> dict[str, tuple[str, str]]:
    return {v.ref: (v.decision, v.action) for v in result.versions}


def _cache_files(root: Path) -> dict[str, bytes]:
    base = root / ".dvc" / "cache"
    return {p.relative_to(base).as_posix(): p.read_bytes() for p in base.rglob("*") if p.is_file()}


# --- durations and the policy ---------------------------------------------------------------


@pytest.mark.torchless
@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("14d", 14 * 86400),
        ("12h", 12 * 3600),
        ("2w", 14 * 86400),
        ("30m", 1800),
        ("90s", 90),
        ("0", 0),
        ("1.5d", 129600),
    ],
)
def test_durations_parse(text, seconds):
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.torchless
@pytest.mark.parametrize("text", ["14x", "-1d", "d", "", "two weeks", "14"])
def test_bad_durations_are_refused_with_the_rules(text):
    with pytest.raises(InvalidRetentionError) as err:
        parse_duration(text, setting="--older-than")
    assert err.value.setting == "--older-than" and "14d" in (err.value.hint or "")


@pytest.mark.torchless
def test_bad_duration_on_the_command_line_is_a_usage_error(avc_repo):
    proc = run_cli("gc", "--older-than", "3 days", cwd=avc_repo)
    assert proc.returncode == 2 and "not a duration" in proc.stderr


@pytest.mark.torchless
def test_without_a_policy_gc_refuses_and_says_how_to_set_one(avc_repo):
    _save(avc_repo, 1)
    with pytest.raises(NoRetentionPolicyError):
        adaptvc.gc()
    proc = run_cli("gc", cwd=avc_repo)
    assert proc.returncode == 1 and "Error: no retention policy" in proc.stderr and "[gc]" in proc.stderr


# --- local gc: dry run, eviction, sharing, the team's policy --------------------------------


@pytest.mark.torchless
def test_dry_run_changes_nothing_and_lists_what_would_go(avc_repo, tmp_path):
    configure_remote(avc_repo, _dir_remote(tmp_path))
    vs = [_save(avc_repo, s) for s in (1, 2, 3)]
    adaptvc.push(repo=avc_repo, git_remote=None)
    before, cache_before = repo_snapshot(avc_repo), _cache_files(avc_repo)
    out = json.loads(run_cli("gc", "--keep-last", "1", "--json", cwd=avc_repo, check=True).stdout)
    assert out["dry_run"] is True
    goes = {v["ref"]: v["action"] for v in out["versions"] if v["decision"] == "goes"}
    assert goes == {"task_a@v1": "evict", "task_a@v2": "evict"}
    cache = DvcCache.for_repo(avc_repo)
    assert out["local_bytes"] == sum(cache.object_path(v.id).stat().st_size for v in vs[:2])
    assert repo_snapshot(avc_repo) == before and _cache_files(avc_repo) == cache_before
    text = run_cli("gc", "--keep-last", "1", cwd=avc_repo, check=True)
    assert "Would remove the weights of 2 version(s)" in text.stdout and "--yes" in text.stderr


@pytest.mark.torchless
def test_eviction_removes_local_copies_the_remote_holds_and_checkout_fetches_them_back(avc_repo, tmp_path):
    spec = _dir_remote(tmp_path)
    configure_remote(avc_repo, spec)
    vs = [_save(avc_repo, s) for s in (1, 2, 3)]
    adaptvc.push(repo=avc_repo, git_remote=None)
    _save(avc_repo, 4)  # never pushed: its only copy is local
    adaptvc.checkout("task_a@v4", repo=avc_repo)
    result = adaptvc.gc(keep_last=0, repo=avc_repo, dry_run=False)
    cache = DvcCache.for_repo(avc_repo)
    assert set(result.local_removed) == {v.id for v in vs}  # v4 is HEAD's: kept
    assert not any(cache.has(v.id) for v in vs) and all(spec.object_path(v.id).is_file() for v in vs)
    assert result.pruned == () and result.commit is None  # eviction records nothing
    run_cli("checkout", "task_a@v1", cwd=avc_repo, check=True)  # on demand, from the remote
    assert file_md5(avc_repo / A / "adapter_model.safetensors")[0] == vs[0].id


@pytest.mark.torchless
def test_without_remote_an_unpushed_object_is_the_only_copy_and_stays(avc_repo, tmp_path):
    configure_remote(avc_repo, _dir_remote(tmp_path))
    v1 = _save(avc_repo, 1)
    _save(avc_repo, 2)
    result = adaptvc.gc(keep_last=0, repo=avc_repo, dry_run=False)
    assert result.only_copy == (v1.id,) and DvcCache.for_repo(avc_repo).has(v1.id)
    assert _decisions(result)["task_a@v1"] == ("goes", "partial")


@pytest.mark.torchless
def test_an_object_shared_with_a_kept_version_is_kept(avc_repo):
    v1 = _save(avc_repo, 1)
    _save(avc_repo, 2)
    v3 = _save(avc_repo, 1)  # the same weights again: the same md5 as v1
    assert v3.id == v1.id
    _save(avc_repo, 3)
    adaptvc.alias("task_a@v3", "production", repo=avc_repo)  # keeps v3, so v1's object too
    result = adaptvc.gc(keep_last=1, repo=avc_repo, dry_run=False)  # no DVC remote: gc prunes
    decided = _decisions(result)
    assert decided["task_a@v1"][0] == "shared" and decided["task_a@v2"] == ("goes", "prune")
    assert DvcCache.for_repo(avc_repo).has(v1.id)
    adaptvc.checkout("task_a@v1", repo=avc_repo)
    assert file_md5(avc_repo / A / "adapter_model.safetensors")[0] == v1.id


@pytest.mark.torchless
def test_team_policy_in_config_toml_applies_and_flags_override_it(avc_repo):
    vs = [_save(avc_repo, s) for s in (1, 2, 3, 4)]
    cfg = avc_repo / ".adaptvc" / "config.toml"
    cfg.write_text(cfg.read_text() + '\n[gc]\nkeep_last = 2\nkeep = ["task_a@v1"]\n')
    out = json.loads(run_cli("gc", "--json", cwd=avc_repo, check=True).stdout)
    assert out["policy"]["keep_last"] == 2
    goes = sorted(v["ref"] for v in out["versions"] if v["decision"] == "goes")
    assert goes == ["task_a@v2"]
    assert {v["ref"]: v["reason"] for v in out["versions"]}["task_a@v1"] == "--keep"
    out = json.loads(run_cli("gc", "--keep-last", "3", "--json", cwd=avc_repo, check=True).stdout)
    assert [v["ref"] for v in out["versions"] if v["decision"] == "goes"] == []
    out = json.loads(run_cli("gc", "--older-than", "1d", "--json", cwd=avc_repo, check=True).stdout)
    assert all(v["decision"] == "kept" for v in out["versions"]), "every version is younger than a day"
    assert len(out["versions"]) == len(vs)


@pytest.mark.torchless
def test_aliases_keep_unless_no_keep_aliased_and_adapters_narrow_it(avc_repo):
    for s in (1, 2, 3):
        _save(avc_repo, s)
    for s in (5, 6):
        _save(avc_repo, s, adapter="task_b")
    adaptvc.alias("task_a@v1", "production", repo=avc_repo)
    kept = _decisions(adaptvc.gc(keep_last=1, repo=avc_repo))
    assert kept["task_a@v1"][0] == "kept" and kept["task_a@v2"][0] == "goes" and kept["task_b@v1"][0] == "goes"
    dropped = _decisions(adaptvc.gc(["task_a"], keep_last=1, keep_aliased=False, repo=avc_repo))
    assert dropped["task_a@v1"][0] == "goes" and dropped["task_b@v1"][0] == "kept"


# --- pruning: the record, log/show, typed errors ----------------------------------------------


@pytest.mark.torchless
def test_pruned_versions_stay_in_the_log_and_say_so(avc_repo, tmp_path):
    v1, v2 = _save(avc_repo, 1), _save(avc_repo, 2)
    result = adaptvc.gc(keep_last=1, repo=avc_repo, dry_run=False)  # no DVC remote: the cache was the only copy
    assert result.pruned == ("task_a@v1",) and result.commit
    assert result.local_removed == (v1.id,) and not DvcCache.for_repo(avc_repo).has(v1.id)
    assert git(avc_repo, "show", "--stat", "--format=%s", "HEAD").splitlines()[0] == "adaptvc gc: pruned task_a@v1"
    assert git(avc_repo, "status", "--porcelain") == ""
    shown = json.loads(run_cli("show", "task_a@v1", "--json", cwd=avc_repo, check=True).stdout)
    assert shown["pruned"]["policy"] == "keep-last 1" and shown["pruned"]["by"] == "Test User <test@example.com>"
    assert shown["message"] == "epoch 1" and shown["peft"]["r"] == 4  # config and lineage remain
    assert "pruned" in run_cli("log", "task_a", cwd=avc_repo, check=True).stdout
    for args in (
        ("checkout", "task_a@v1"),
        ("export", "task_a@v1", str(tmp_path / "out")),
        ("diff", "task_a@v1", "task_a@v2"),
    ):
        proc = run_cli(*args, cwd=avc_repo)
        assert proc.returncode == 1 and "were pruned" in proc.stderr and "adaptvc show task_a@v1" in proc.stderr, args
    with pytest.raises(VersionPrunedError) as err:
        adaptvc.export("task_a@v1", tmp_path / "out2", repo=avc_repo)
    assert err.value.ref == "task_a@v1" and err.value.policy == "keep-last 1"
    assert v2.id and adaptvc.gc(keep_last=1, repo=avc_repo, dry_run=False).pruned == ()  # nothing twice


# --- a kill mid-gc ------------------------------------------------------------------------------

_SLOW_GC = textwrap.dedent("""
    import sys, time
    from adaptvc.versioning import gc
    real = gc._delete

    def paused(*args, **kwargs):  # the prune records are committed; nothing deleted yet
        print("paused", flush=True); time.sleep(60)
        return real(*args, **kwargs)

    gc._delete = paused
    from adaptvc.cli.main import main
    sys.argv = ["adaptvc", "gc", "--keep-last", "1", "--yes"]
    main()
""")


@pytest.mark.torchless
def test_a_gc_killed_while_deleting_leaves_a_consistent_repo_the_next_command_settles(avc_repo):
    vs = [_save(avc_repo, s) for s in (1, 2, 3)]
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_GC], cwd=avc_repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "paused"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    status = run_cli("status", cwd=avc_repo, check=True)
    assert "a gc of" in status.stderr and "completed it" in status.stderr
    assert not (avc_repo / ".git" / "adaptvc" / "transaction.json").exists()
    pruned = {v["ref"] for v in json.loads(run_cli("log", "task_a", "--json", cwd=avc_repo).stdout) if v["pruned"]}
    assert pruned == {"task_a@v1", "task_a@v2"}
    cache = DvcCache.for_repo(avc_repo)
    assert cache.has(vs[0].id)  # killed before deleting: the next gc finishes the job
    again = adaptvc.gc(keep_last=1, repo=avc_repo, dry_run=False)
    assert set(again.local_removed) == {vs[0].id, vs[1].id} and again.pruned == ()
    assert not cache.has(vs[0].id) and cache.has(vs[2].id)
    adaptvc.checkout("task_a@v3", repo=avc_repo)


_GC_KILLED_BEFORE_COMMIT = textwrap.dedent("""
    import sys, time
    from adaptvc.storage import git_ops
    real = git_ops.update_head

    def paused(*args, **kwargs):  # the manifest is written, HEAD not moved yet
        print("paused", flush=True); time.sleep(60)

    git_ops.update_head = paused
    from adaptvc.cli.main import main
    sys.argv = ["adaptvc", "gc", "--keep-last", "1", "--yes"]
    main()
""")


@pytest.mark.torchless
def test_a_gc_killed_before_its_commit_is_rolled_back_and_removed_nothing(avc_repo):
    vs = [_save(avc_repo, s) for s in (1, 2)]
    before = repo_snapshot(avc_repo)
    proc = subprocess.Popen(
        [sys.executable, "-c", _GC_KILLED_BEFORE_COMMIT],
        cwd=avc_repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "paused"
    assert b'"record":"pruned"' in (avc_repo / A / "versions.jsonl").read_bytes()  # half-way indeed
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert "rolled it back" in run_cli("log", "task_a", cwd=avc_repo, check=True).stderr
    assert repo_snapshot(avc_repo) == before
    assert all(DvcCache.for_repo(avc_repo).has(v.id) for v in vs)


# --- two clones, a shared remote, a git remote with branches and a push in flight ---------------


def _dir_remote(tmp_path: Path):
    from tests.remote_servers import RemoteSpec

    root = tmp_path / "dvc-remote"
    return RemoteSpec(kind="dir", url=str(root), root=root)


@pytest.mark.slow  # torchless through dvc_remote's directory variant (S3 and SSH need their extras)
def test_gc_on_a_shared_remote_loses_nothing_a_kept_version_needs(avc_repo, dvc_remote, tmp_path, request):
    a = avc_repo
    s3 = request.getfixturevalue("s3_server") if dvc_remote.kind == "s3" else None
    server = tmp_path / "server.git"
    git(tmp_path, "init", "-q", "--bare", str(server))
    git(a, "remote", "add", "origin", str(server))
    configure_remote(a, dvc_remote)
    vs = {f"v{s}": _save(a, s) for s in (1, 2, 3, 4, 5)}
    adaptvc.alias("task_a@v2", "production", repo=a)
    git(a, "branch", "feature", vs["v3"].commit)  # a local branch at v3
    adaptvc.push(repo=a)

    # B: a clone; a branch at v1 pushed to git only (A never fetched it); then a version
    # whose weights are uploaded while its git push has not happened yet (in flight).
    b = tmp_path / "b"
    git(tmp_path, "clone", "-q", str(server), str(b))
    adaptvc.init(b)
    for key, value in dvc_remote.local_config.items():
        adaptvc.remote_modify("storage", key, value, repo=b, local=True)
    git(b, "push", "-q", "origin", f"{vs['v1'].commit}:refs/heads/experiment")
    v6 = _save(b, 6)
    adaptvc.push(repo=b, git_remote=None)

    # Default grace period: every object is minutes old, so the remote keeps them all.
    first = adaptvc.gc(keep_last=1, remote="storage", repo=a, dry_run=False)
    assert _decisions(first) == {
        "task_a@v1": ("kept", ""),
        "task_a@v2": ("kept", ""),
        "task_a@v3": ("kept", ""),
        "task_a@v4": ("goes", "evict"),
        "task_a@v5": ("kept", ""),
    }
    reasons = {v.ref: v.reason for v in first.versions}
    assert reasons["task_a@v1"] == "at remote ref origin/heads/experiment" and reasons["task_a@v2"].startswith("alias")
    assert reasons["task_a@v3"] == "at branch feature"
    assert first.young == (vs["v4"].id,) and first.remote_removed == () and first.pruned == ()
    assert remote_object_exists(dvc_remote, vs["v4"].id, s3)
    assert git(a, "for-each-ref", "refs/adaptvc-gc") == ""  # the fetched refs are not left behind

    second = adaptvc.gc(keep_last=1, remote="storage", grace_period="0", repo=a, dry_run=False)
    assert second.remote_removed == (vs["v4"].id,) and second.pruned == ("task_a@v4",)
    assert not remote_object_exists(dvc_remote, vs["v4"].id, s3)
    assert remote_object_exists(dvc_remote, v6.id, s3)  # B's push in flight: no version of A's names it

    # Every kept version comes back in B, from the remote; DVC agrees; the pruned one says so.
    adaptvc.push(repo=a)  # the prune record travels through git (no weights to upload for it)
    git(b, "pull", "-q", "--no-rebase", "origin", "main")  # the manifests merge
    git(b, "push", "-q", "origin", "main")  # B's push lands
    for ref in ("task_a@v1", "task_a@v2", "task_a@v3", "task_a@v5", "task_a@v6"):
        adaptvc.checkout(ref, repo=b, force=True)
    assert file_md5(b / A / "adapter_model.safetensors")[0] == v6.id
    with pytest.raises(VersionPrunedError):
        adaptvc.checkout("task_a@v4", repo=b)
    assert "new" not in dvc(a, "status", "-c").stdout  # nothing of HEAD's missing on the remote
    fresh = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(server), str(fresh))
    for key, value in dvc_remote.local_config.items():
        adaptvc.remote_modify("storage", key, value, repo=fresh, local=True)
    for version in (vs["v1"], vs["v2"], vs["v3"], vs["v5"]):
        git(fresh, "checkout", "-q", version.commit)
        dvc(fresh, "pull", "-q")
        assert file_md5(fresh / A / "adapter_model.safetensors")[0] == version.id


@pytest.mark.torchless
def test_an_unknown_adapter_or_remote_is_an_error_not_a_silent_no_op(avc_repo):
    _save(avc_repo, 1)
    proc = run_cli("gc", "task_z", "--keep-last", "1", cwd=avc_repo)
    assert proc.returncode == 1 and "no adapter 'task_z'" in proc.stderr and "task_a" in proc.stderr
    proc = run_cli("gc", "--keep-last", "1", "--remote", "nowhere", cwd=avc_repo)
    assert proc.returncode == 1 and "nowhere" in proc.stderr
