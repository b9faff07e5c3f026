"""`adaptvc verify`: every object a version needs rehashed, the DVC remote checked, and
`--repair` healing a damaged or missing object on either side, against real directory,
moto S3 and OpenSSH remotes. Also: every reader of a version's bytes refuses a damaged
object, and the record of verified objects spares a repeated diff the rehash."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

import adaptvc
from adaptvc.errors import CorruptObjectError
from adaptvc.storage import verified
from adaptvc.storage.dvc_cache import DvcCache, file_md5
from tests.conftest import read_terminal, run_cli
from tests.test_remote_transfer import configure_remote, corrupt_remote_object, remote_object_exists, save_versions
from tests.versioning_helpers import _initialised_template, avc_repo, dvc, git, write_adapter  # noqa: F401

REPAIR_HINT = "adaptvc verify --repair"


def damage(path: Path, *, keep_size: bool = True) -> None:
    """Flip bytes at the end of the file (tensor data, not the header) as bit rot would:
    the file still parses, only its numbers are wrong. ``keep_size=False`` cuts it short."""
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    if keep_size:
        for i in range(1, 65):
            data[-i] ^= 0xFF
    else:
        data = data[: len(data) // 2]
    path.write_bytes(bytes(data))
    path.chmod(0o444)


def age(path: Path, seconds: float = 60.0) -> None:
    """Make ``path`` look written ``seconds`` ago (an object saved earlier, not just now)."""
    t = time.time_ns() - int(seconds * 1e9)
    os.utime(path, ns=(t, t))


def obj(root: Path, md5: str) -> Path:
    return DvcCache.for_repo(root).object_path(md5)


# --- every reader refuses a damaged object --------------------------------------------------


@pytest.mark.torchless
def test_diff_of_refs_refuses_a_damaged_cache_object(avc_repo):
    v1, v2 = save_versions(avc_repo, 2)
    good = run_cli("diff", "task_a@v1", "task_a@v2", "--json", cwd=avc_repo, check=True)
    damage(obj(avc_repo, v1.id))  # same size, header intact: the diff would read wrong numbers

    proc = run_cli("diff", "task_a@v1", "task_a@v2", "--json", cwd=avc_repo)

    assert proc.returncode == 1, proc.stdout
    assert proc.stdout == "" and good.stdout
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("Error: ") and "corrupt" in lines[0] and "task_a@v1" in lines[0]
    assert lines[1].startswith("Hint: ") and REPAIR_HINT in lines[1]
    assert "Traceback" not in proc.stderr


def test_checkout_export_resolve_and_push_refuse_a_damaged_object(avc_repo, tmp_path):
    v1, v2 = save_versions(avc_repo, 2)
    resolved = adaptvc.resolve("task_a@v1")  # built while intact: a hard link to the object
    configure_remote(avc_repo, _dir_remote(tmp_path))
    damage(obj(avc_repo, v1.id))

    for call in (
        lambda: adaptvc.checkout("task_a@v1"),
        lambda: adaptvc.export("task_a@v1", tmp_path / "out"),
        lambda: adaptvc.resolve("task_a@v1"),
        lambda: adaptvc.push(["task_a@v1"], git_remote=None),
    ):
        with pytest.raises(CorruptObjectError) as info:
            call()
        assert REPAIR_HINT in (info.value.hint or "")
    assert not (tmp_path / "out" / "adapter_model.safetensors").exists()
    assert adaptvc.status()[0].version.ref == "task_a@v2"  # checkout left the workspace alone
    assert not resolved.exists() or file_md5(resolved / "adapter_model.safetensors")[0] != v1.id


def _dir_remote(tmp_path: Path):
    from tests.remote_servers import RemoteSpec

    root = tmp_path / "dvc-remote"
    return RemoteSpec(kind="dir", url=str(root), root=root)


# --- the record of verified objects --------------------------------------------------------


def test_a_repeated_diff_does_not_rehash_and_a_touched_object_is_rehashed(avc_repo, monkeypatch):
    v1, v2 = save_versions(avc_repo, 2)
    for v in (v1, v2):
        age(obj(avc_repo, v.id))  # saved a while ago (fresh files are never recorded: racy)
    hashed: list[str] = []
    real = verified.file_md5

    def counting(path):
        hashed.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(verified, "file_md5", counting)

    first = adaptvc.diff("task_a@v1", "task_a@v2").to_dict()
    assert sorted(hashed) == sorted([v1.id[2:], v2.id[2:]])
    hashed.clear()
    again = adaptvc.diff("task_a@v1", "task_a@v2").to_dict()
    assert hashed == [] and again["modules"] == first["modules"]

    age(obj(avc_repo, v1.id), seconds=30)  # touched: a new mtime, so the record no longer vouches
    adaptvc.diff("task_a@v1", "task_a@v2")
    assert hashed == [v1.id[2:]]


def test_the_record_never_vouches_for_a_replaced_file(avc_repo, monkeypatch):
    (v1,) = save_versions(avc_repo, 1)
    age(obj(avc_repo, v1.id))
    record = verified.VerifiedRecord(avc_repo / ".git" / "adaptvc")
    assert record.hashes_to(obj(avc_repo, v1.id), v1.id) and record.vouches(obj(avc_repo, v1.id), v1.id)
    st = obj(avc_repo, v1.id).stat()
    damage(obj(avc_repo, v1.id))
    os.utime(obj(avc_repo, v1.id), ns=(st.st_atime_ns, st.st_mtime_ns))  # even with the old mtime back...
    # ... the record still vouches: this is exactly what it trusts (docs/integrity.md), and
    # what `verify` exists for: it rehashes in full and drops the entry.
    assert record.vouches(obj(avc_repo, v1.id), v1.id)
    report = adaptvc.verify()
    assert [o.local for o in report.objects] == ["corrupt"]
    assert not record.vouches(obj(avc_repo, v1.id), v1.id)
    with pytest.raises(CorruptObjectError):
        adaptvc.diff("task_a@v1", "task_a@v1")


# --- verify: report, JSON, exit codes ----------------------------------------------------


@pytest.mark.torchless
def test_verify_reports_each_object_and_exits_1_while_one_is_broken(avc_repo):
    v1, v2, v3 = save_versions(avc_repo, 3)
    clean = run_cli("verify", cwd=avc_repo)
    assert clean.returncode == 0, clean.stderr
    assert [line.split()[0] for line in clean.stdout.splitlines()] == ["ok", "ok", "ok", "ok"]  # 3 objects + workspace
    assert "Verified 3 object(s)" in clean.stderr

    damage(obj(avc_repo, v1.id))
    obj(avc_repo, v2.id).unlink()
    proc = run_cli("verify", cwd=avc_repo)
    assert proc.returncode == 1
    states = {line.split()[1]: line.split()[0] for line in proc.stdout.splitlines()[:3]}
    assert states == {v1.id[:12]: "corrupt", v2.id[:12]: "missing", v3.id[:12]: "ok"}
    err = proc.stderr.splitlines()
    assert any(line == "Error: 2 object(s) stay missing or corrupt" for line in err)
    assert err[-1] == f"Hint: {REPAIR_HINT}"

    one = run_cli("verify", "task_a@v3", cwd=avc_repo)  # only what v3 needs
    assert one.returncode == 0 and one.stdout.splitlines()[0].split()[:3] == ["ok", v3.id[:12], "task_a@v3"]

    usage = run_cli("verify", "--no-such-option", cwd=avc_repo)
    assert usage.returncode == 2
    bad_ref = run_cli("verify", "task_b", cwd=avc_repo)
    assert bad_ref.returncode == 1 and bad_ref.stderr.startswith("Error: no adapter 'task_b'")


@pytest.mark.torchless
def test_verify_json_document(avc_repo, tmp_path):
    v1, v2 = save_versions(avc_repo, 2)
    configure_remote(avc_repo, _dir_remote(tmp_path))
    run_cli("push", "--no-git", cwd=avc_repo, check=True)
    damage(obj(avc_repo, v1.id))

    proc = run_cli("verify", "--remote", "storage", "--json", cwd=avc_repo)

    assert proc.returncode == 1 and proc.stderr.splitlines()[0] == "Error: 1 object(s) stay missing or corrupt"
    doc = json.loads(proc.stdout)
    assert set(doc) == {
        "ok",
        "remote",
        "deep",
        "repair",
        "counts",
        "broken",
        "objects",
        "workspace",
        "bytes_hashed",
        "seconds",
    }
    assert (doc["ok"], doc["remote"], doc["deep"], doc["repair"], doc["broken"]) == (False, "storage", False, False, 1)
    assert doc["counts"] == {"corrupt": 1, "ok": 1, "remote_ok": 2}
    by_md5 = {o["md5"]: o for o in doc["objects"]}
    assert set(by_md5[v1.id]) == {"md5", "size", "versions", "local", "remote", "detail"}
    assert (by_md5[v1.id]["local"], by_md5[v1.id]["remote"], by_md5[v1.id]["versions"]) == (
        "corrupt",
        "ok",
        ["task_a@v1"],
    )
    assert by_md5[v1.id]["size"] == v1.size and "hashes to" in by_md5[v1.id]["detail"]
    assert (by_md5[v2.id]["local"], by_md5[v2.id]["remote"], by_md5[v2.id]["detail"]) == ("ok", "ok", "")
    assert doc["workspace"] == [
        {
            "adapter": "task_a",
            "path": "adapters/task_a/adapter_model.safetensors",
            "version": "task_a@v2",
            "state": "ok",
            "detail": "",
        }
    ]
    assert doc["bytes_hashed"] == 3 * v1.size  # two objects and the workspace copy of v2

    healed = run_cli("verify", "--repair", "--json", cwd=avc_repo)  # the default remote
    assert healed.returncode == 0, healed.stderr
    healed_doc = json.loads(healed.stdout)
    assert healed_doc["ok"] and healed_doc["counts"] == {"ok": 1, "repaired": 1}
    assert file_md5(obj(avc_repo, v1.id))[0] == v1.id


# --- repair against real remotes -----------------------------------------------------------


@pytest.fixture
def shared(avc_repo, dvc_remote, request):
    configure_remote(avc_repo, dvc_remote)
    s3 = request.getfixturevalue("s3_server") if dvc_remote.kind == "s3" else None
    return avc_repo, dvc_remote, s3


def test_repair_heals_damaged_and_missing_local_objects_from_the_remote(shared):
    root, spec, s3 = shared
    v1, v2, v3 = save_versions(root, 3)
    run_cli("push", "--no-git", cwd=root, check=True)
    damage(obj(root, v1.id))
    damage(obj(root, v2.id), keep_size=False)
    obj(root, v3.id).unlink()

    before = run_cli("verify", cwd=root)
    assert before.returncode == 1
    proc = run_cli("verify", "--repair", cwd=root)

    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split()[0] for line in lines[:3]] == ["repaired"] * 3
    assert all("fetched from DVC remote 'storage' (MD5-checked)" in line for line in lines[:3])
    for v in (v1, v2, v3):
        assert file_md5(obj(root, v.id))[0] == v.id
        assert not obj(root, v.id).stat().st_mode & 0o222  # read-only, as DVC keeps them
    assert run_cli("verify", cwd=root).returncode == 0
    assert adaptvc.diff("task_a@v1", "task_a@v3").summary is not None
    assert "in sync" in dvc(root, "status", "-c").stdout
    assert not list((root / ".dvc" / "cache").rglob("*.tmp"))


def test_repair_uploads_again_what_the_remote_lacks_or_holds_damaged(shared):
    root, spec, s3 = shared
    v1, v2 = save_versions(root, 2)
    run_cli("push", "--no-git", cwd=root, check=True)
    corrupt_remote_object(spec, v1.id, s3)  # a different size
    _remove_remote_object(spec, v2.id, s3)

    check = run_cli("verify", "--remote", "storage", "--json", cwd=root)
    assert check.returncode == 1
    remote_states = {o["md5"]: o["remote"] for o in json.loads(check.stdout)["objects"]}
    assert remote_states == {v1.id: "corrupt", v2.id: "missing"}

    proc = run_cli("verify", "--remote", "storage", "--repair", "--json", cwd=root)

    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert {o["md5"]: (o["local"], o["remote"]) for o in doc["objects"]} == {
        v1.id: ("ok", "repaired"),
        v2.id: ("ok", "repaired"),
    }
    assert all(remote_object_exists(spec, v.id, s3) for v in (v1, v2))
    deep = run_cli("verify", "--remote", "storage", "--deep", "--json", cwd=root)  # the bytes are right
    assert deep.returncode == 0 and json.loads(deep.stdout)["counts"] == {"ok": 2, "remote_ok": 2}
    assert "in sync" in dvc(root, "status", "-c").stdout


def _remove_remote_object(spec, md5: str, s3) -> None:
    if spec.root is not None:
        spec.object_path(md5).unlink()
    else:
        key = spec.url.split("/", 3)[3] + f"/files/md5/{md5[:2]}/{md5[2:]}"
        s3.client().delete_object(Bucket="adaptvc-test", Key=key)


@pytest.mark.parametrize("dvc_remote", ["dir"], indirect=True)
def test_only_deep_sees_a_same_size_damage_on_the_remote_and_repair_heals_it(shared):
    root, spec, _ = shared
    (v1,) = save_versions(root, 1)
    run_cli("push", "--no-git", cwd=root, check=True)
    damage(spec.object_path(v1.id))

    shallow = run_cli("verify", "--remote", "storage", "--json", cwd=root)
    assert shallow.returncode == 0 and json.loads(shallow.stdout)["objects"][0]["remote"] == "ok"
    deep = run_cli("verify", "--remote", "storage", "--deep", "--json", cwd=root)
    assert deep.returncode == 1 and json.loads(deep.stdout)["objects"][0]["remote"] == "corrupt"
    healed = run_cli("verify", "--remote", "storage", "--deep", "--repair", cwd=root)
    assert healed.returncode == 0, healed.stderr
    assert file_md5(spec.object_path(v1.id))[0] == v1.id
    assert not list(spec.root.rglob("*.tmp")) and not list((root / ".dvc" / "cache").rglob("*.tmp"))


# --- repair without a remote, the workspace, --all ------------------------------------------


@pytest.mark.torchless
def test_without_a_remote_a_damaged_object_is_rebuilt_from_an_intact_workspace_copy(avc_repo):
    v1, v2 = save_versions(avc_repo, 2)  # the workspace holds v2's weights
    damage(obj(avc_repo, v2.id))
    damage(obj(avc_repo, v1.id))

    proc = run_cli("verify", "--repair", "--json", cwd=avc_repo)

    assert proc.returncode == 1  # v1 has no good copy anywhere
    states = {o["md5"]: (o["local"], o["detail"]) for o in json.loads(proc.stdout)["objects"]}
    assert states[v2.id][0] == "repaired" and "workspace copy" in states[v2.id][1]
    assert states[v1.id][0] == "corrupt" and "no DVC remote" in states[v1.id][1]
    assert file_md5(obj(avc_repo, v2.id))[0] == v2.id
    assert "push them from a clone that has them" in proc.stderr


def test_workspace_weights_changed_under_an_unchanged_stat_are_corrupt_and_repaired(avc_repo):
    v1, v2 = save_versions(avc_repo, 2)
    weights = avc_repo / "adapters" / "task_a" / "adapter_model.safetensors"
    age(weights)
    assert adaptvc.status()[0].state == "clean"  # hashed and recorded in the stat cache
    st = weights.stat()
    damage(weights)
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert adaptvc.status()[0].state == "clean"  # the stat cache cannot see it...

    report = adaptvc.verify()  # ...verify can
    assert [(w.adapter, w.state) for w in report.workspace] == [("task_a", "corrupt")] and not report.ok
    assert [w.state for w in adaptvc.verify().workspace] == ["corrupt"]  # reported until repaired

    repaired = adaptvc.verify(repair=True)
    assert [w.state for w in repaired.workspace] == ["repaired"] and repaired.ok
    assert file_md5(weights)[0] == v2.id and adaptvc.status()[0].state == "clean"


def test_unsaved_workspace_changes_are_modified_not_broken(avc_repo):
    save_versions(avc_repo, 1)
    write_adapter(avc_repo / "adapters" / "task_a", seed=42)
    report = adaptvc.verify()
    assert report.ok and [w.state for w in report.workspace] == ["modified"]


@pytest.mark.torchless
def test_all_adds_the_versions_of_every_branch(avc_repo):
    (v1,) = save_versions(avc_repo, 1)
    git(avc_repo, "switch", "-q", "-c", "experiment")
    (v2,) = save_versions(avc_repo, 1, first_seed=9)
    git(avc_repo, "switch", "-q", "main")
    adaptvc.checkout("task_a")
    assert [o.md5 for o in adaptvc.verify().objects] == [v1.id]
    assert sorted(o.md5 for o in adaptvc.verify(all_refs=True).objects) == sorted([v1.id, v2.id])
    proc = run_cli("verify", "--all", cwd=avc_repo)
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 3


@pytest.mark.torchless
def test_progress_bar_on_a_terminal_only(avc_repo):
    import fcntl
    import pty
    import struct
    import subprocess
    import sys
    import termios

    from tests.conftest import REPO_ROOT

    save_versions(avc_repo, 2)
    plain = run_cli("verify", cwd=avc_repo, check=True)
    assert "B/s" not in plain.stderr and plain.stderr.count("\n") == 1  # the summary alone

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal has a size
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "adaptvc", "verify"], cwd=avc_repo, env=env, stdout=subprocess.PIPE, stderr=follower
    )
    os.close(follower)
    tty_err = read_terminal(leader)
    assert proc.returncode == 0 and "weights" in tty_err and "B/s" in tty_err
