"""docs/errors.md, proved: every bad input and repository state it lists, run through the
real CLI, fails the same way: exit 1, nothing on stdout, one ``Error:`` line naming the
problem plus one ``Hint:`` line, no traceback, and the repository exactly as it was.

Each case builds its bad input in a fresh initialised repository holding one saved
version (``task_a@v1``) and returns the command line. The last tests keep the catalog
honest: every entry of docs/errors.md names a test that exists.
"""

from __future__ import annotations

import ast
import json
import os
import pickle
import re
import shutil
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO_ROOT, run_cli
from tests.versioning_helpers import (  # noqa: F401 - fixtures
    _initialised_template,
    avc_repo,
    git,
    lora_tensors,
    repo_snapshot,
    write_adapter,
)

WEIGHTS, CONFIG, BIN = "adapter_model.safetensors", "adapter_config.json", "adapter_model.bin"
Q0 = "base_model.model.model.layers.0.self_attn.q_proj"


@dataclass
class Run:
    """A command to run and the words its Error line must hold."""

    args: list[str]
    words: tuple[str, ...]
    prefix: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


Case = Callable[[Path, Path], Run]  # (repository, scratch directory) -> Run


def _save_from(src: Path, *words: str) -> Run:
    return Run(["save", "--adapter", "task_a", "--from", str(src), "-m", "m"], words)


def _source(tmp: Path, **kwargs) -> Path:
    return write_adapter(tmp / "out", 7, **kwargs)


def _raw_weights(src: Path, header: dict | bytes, data: bytes) -> Path:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    (src / WEIGHTS).write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return src


def _replace(src: Path, name: str, content: bytes) -> Path:
    (src / name).unlink()
    (src / name).write_bytes(content)
    return src


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo payload ran",))


# --- adapter files -----------------------------------------------------------------------


def from_missing_directory(repo: Path, tmp: Path) -> Run:
    return _save_from(tmp / "no-such-run", "no such directory")


def from_a_directory_that_is_not_an_adapter(repo: Path, tmp: Path) -> Run:
    (tmp / "empty").mkdir()
    return _save_from(tmp / "empty", "no adapter_config.json here")


def config_invalid_json(repo: Path, tmp: Path) -> Run:
    return _save_from(_replace(_source(tmp), CONFIG, b'{"peft_type": "LORA",'), "invalid JSON at line 1")


def config_not_an_object(repo: Path, tmp: Path) -> Run:
    return _save_from(_replace(_source(tmp), CONFIG, b"[1, 2]"), "expected a JSON object, got list")


def config_without_peft_type(repo: Path, tmp: Path) -> Run:
    return _save_from(_replace(_source(tmp), CONFIG, b'{"r": 4}'), "missing 'peft_type'")


def config_not_utf8(repo: Path, tmp: Path) -> Run:
    return _save_from(_replace(_source(tmp), CONFIG, b"\xff\xfe{}"), "not UTF-8")


def weights_missing(repo: Path, tmp: Path) -> Run:
    src = _source(tmp)
    (src / WEIGHTS).unlink()
    return _save_from(src, f"no {WEIGHTS}")


def weights_truncated(repo: Path, tmp: Path) -> Run:
    src = _source(tmp)
    return _save_from(_replace(src, WEIGHTS, (src / WEIGHTS).read_bytes()[:-100]), "truncated file?")


def weights_absurd_header_length(repo: Path, tmp: Path) -> Run:
    return _save_from(_replace(_source(tmp), WEIGHTS, b"\xff" * 64), "is absurd")


def weights_header_not_json(repo: Path, tmp: Path) -> Run:
    return _save_from(_raw_weights(_source(tmp), b"{not json", b""), "header is not valid JSON")


def weights_overlapping_offsets(repo: Path, tmp: Path) -> Run:
    header = {f"{Q0}.lora_A.weight": _entry(0, 64, [4, 4]), f"{Q0}.lora_B.weight": _entry(0, 64, [4, 4])}
    return _save_from(_raw_weights(_source(tmp), header, b"\0" * 64), "overlap tensor")


def weights_with_trailing_bytes(repo: Path, tmp: Path) -> Run:
    src = _source(tmp)
    return _save_from(_replace(src, WEIGHTS, (src / WEIGHTS).read_bytes() + b"\0" * 16), "16 bytes after the last")


def weights_unknown_dtype(repo: Path, tmp: Path) -> Run:
    header = {f"{Q0}.lora_A.weight": _entry(0, 16, [1], "F128")}
    return _save_from(_raw_weights(_source(tmp), header, b"\0" * 16), "unknown dtype 'F128'")


def _entry(begin: int, end: int, shape: list, dtype: str = "F32") -> dict:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def weights_empty_tensors_zero3(repo: Path, tmp: Path) -> Run:
    tensors = {k: np.zeros((0,), dtype=np.float32) for k in lora_tensors()}
    return _save_from(_source(tmp, tensors=tensors), "have no elements", "ZeRO-3", "FSDP")


def config_rank_does_not_match_weights(repo: Path, tmp: Path) -> Run:
    return _save_from(_source(tmp, config={"r": 8}, tensors=lora_tensors(r=4)), "has rank 4", "gives it r=8")


def lora_pair_incomplete(repo: Path, tmp: Path) -> Run:
    tensors = lora_tensors()
    del tensors[f"{Q0}.lora_B.weight"]
    return _save_from(_source(tmp, tensors=tensors), "has lora_A but no lora_B")


def dora_magnitudes_missing(repo: Path, tmp: Path) -> Run:
    return _save_from(_source(tmp, config={"use_dora": True}), "no lora_magnitude_vector")


def module_not_in_target_modules(repo: Path, tmp: Path) -> Run:
    return _save_from(_source(tmp, config={"target_modules": ["k_proj"]}), "does not select it")


def weights_symlink_to_etc_passwd(repo: Path, tmp: Path) -> Run:
    src = _source(tmp)
    (src / WEIGHTS).unlink()
    (src / WEIGHTS).symlink_to("/etc/passwd")
    return _save_from(src, "is a symbolic link to /etc/passwd")


def weights_fifo(repo: Path, tmp: Path) -> Run:
    src = _source(tmp)
    (src / WEIGHTS).unlink()
    os.mkfifo(src / WEIGHTS)
    return _save_from(src, "is a FIFO")


def weights_pickle_that_runs_code(repo: Path, tmp: Path) -> Run:
    src = _source(tmp)
    (src / WEIGHTS).unlink()
    (src / BIN).write_bytes(pickle.dumps({f"{Q0}.lora_A.weight": _RunsCode()}))
    return _save_from(src, "would run code", "imports posix.system")


def weights_hold_base_model_tensors(repo: Path, tmp: Path) -> Run:
    tensors = lora_tensors() | {"base_model.model.model.embed_tokens.weight": np.ones((8, 4), np.float32)}
    return _save_from(_source(tmp, tensors=tensors), "holds base-model weights")


def weights_unreadable_permission_denied(repo: Path, tmp: Path) -> Run:
    src = _source(tmp)
    (src / WEIGHTS).chmod(0)
    # root reads anything: drop the capabilities that let it (setpriv, util-linux)
    prefix = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--") if os.geteuid() == 0 else ()
    return Run(["inspect", str(src)], ("permission denied",), prefix=prefix)


def diff_of_a_legacy_bin(repo: Path, tmp: Path) -> Run:
    src = _source(tmp)
    (src / WEIGHTS).unlink()
    (src / BIN).write_bytes(b"never read")
    return Run(["diff", str(src), str(src)], ("only a legacy adapter_model.bin",))


# --- names, refs, arguments ---------------------------------------------------------------


def invalid_adapter_name(repo: Path, tmp: Path) -> Run:
    write_adapter(repo / "adapters" / "ok", 1)
    return Run(["save", "--adapter", "bad name", "-m", "m"], ("invalid adapter name 'bad name'",))


def empty_message(repo: Path, tmp: Path) -> Run:
    write_adapter(repo / "adapters" / "task_a", 2)
    return Run(["save", "--adapter", "task_a", "-m", " "], ("a version needs a message",))


def metric_not_finite(repo: Path, tmp: Path) -> Run:
    write_adapter(repo / "adapters" / "task_a", 2)
    return Run(["save", "--adapter", "task_a", "-m", "m", "--metric", "loss=nan"], ("is not a finite number",))


def unknown_adapter(repo: Path, tmp: Path) -> Run:
    return Run(["checkout", "nope"], ("no adapter 'nope'",))


def unknown_version(repo: Path, tmp: Path) -> Run:
    return Run(["checkout", "task_a@v9"], ("no version task_a@v9",))


def malformed_ref(repo: Path, tmp: Path) -> Run:
    return Run(["show", "task_a@@"], ("invalid ref 'task_a@@'",))


def alias_shadowing_a_selector(repo: Path, tmp: Path) -> Run:
    return Run(["alias", "task_a@v1", "v2"], ("would shadow a built-in selector",))


def export_into_a_non_empty_directory(repo: Path, tmp: Path) -> Run:
    (tmp / "dest").mkdir()
    (tmp / "dest" / CONFIG).write_text("{}")
    return Run(["export", "task_a@v1", str(tmp / "dest")], ("already",))


# --- repository states --------------------------------------------------------------------


def outside_a_git_repository(repo: Path, tmp: Path) -> Run:
    (tmp / "plain").mkdir()
    return Run(["-C", str(tmp / "plain"), "log"], ("is not inside a git repository",))


def git_repository_without_init(repo: Path, tmp: Path) -> Run:
    other = tmp / "other"
    other.mkdir()
    git(other, "init", "-q", "-b", "main")
    return Run(["-C", str(other), "log"], ("not initialised",))


def save_during_a_merge(repo: Path, tmp: Path) -> Run:
    _conflicting_branches(repo)
    subprocess.run(["git", "merge", "side"], cwd=repo, capture_output=True)
    assert (repo / ".git" / "MERGE_HEAD").exists()
    write_adapter(repo / "adapters" / "task_a", 3)
    return Run(["save", "--adapter", "task_a", "-m", "m"], ("a git merge is in progress",))


def alias_during_a_cherry_pick(repo: Path, tmp: Path) -> Run:
    _conflicting_branches(repo)
    subprocess.run(["git", "cherry-pick", "side"], cwd=repo, capture_output=True)
    assert (repo / ".git" / "CHERRY_PICK_HEAD").exists()
    return Run(["alias", "task_a@v1", "production"], ("a git cherry-pick is in progress",))


def push_during_a_rebase(repo: Path, tmp: Path) -> Run:
    _conflicting_branches(repo)
    subprocess.run(["git", "rebase", "side"], cwd=repo, capture_output=True)
    assert (repo / ".git" / "rebase-merge").exists() or (repo / ".git" / "rebase-apply").exists()
    return Run(["push"], ("a git rebase is in progress",))


def _conflicting_branches(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "side")
    (repo / "README.md").write_text("side\n")
    git(repo, "commit", "-q", "-am", "side")
    git(repo, "checkout", "-q", "main")
    (repo / "README.md").write_text("main\n")
    git(repo, "commit", "-q", "-am", "main")


def push_with_a_detached_head(repo: Path, tmp: Path) -> Run:
    git(repo, "checkout", "-q", "--detach")
    return Run(["push"], ("HEAD is detached",))


def checkout_over_unsaved_changes(repo: Path, tmp: Path) -> Run:
    write_adapter(repo / "adapters" / "task_a", 4)
    return Run(["checkout", "task_a@v1"], ("unsaved",))


def push_without_a_git_remote(repo: Path, tmp: Path) -> Run:
    return Run(["push"], ("there is no git remote 'origin'",))


def push_to_an_unreachable_remote(repo: Path, tmp: Path) -> Run:
    # A DVC remote on a port where nothing listens; the weights cannot be uploaded.
    run_cli("remote", "add", "far", "ssh://127.0.0.1:9/store", "--default", cwd=repo, check=True)
    git(repo, "remote", "add", "origin", str(tmp / "nowhere.git"))
    return Run(["push", "--no-git"], ("far",))


def checkout_of_a_corrupt_cache_object(repo: Path, tmp: Path) -> Run:
    md5 = _only_object(repo)
    path = repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    path.chmod(0o644)
    path.write_bytes(b"bit rot")
    shutil.rmtree(repo / "adapters" / "task_a")
    git(repo, "checkout", "--", "adapters/task_a")  # the committed files, weights not there
    return Run(["export", "task_a@v1", str(tmp / "dest")], ("corrupt",))


def _only_object(repo: Path) -> str:
    pointer = (repo / "adapters" / "task_a" / f"{WEIGHTS}.dvc").read_text()
    return re.search(r"md5: ([0-9a-f]{32})", pointer).group(1)


def full_disk_during_save(repo: Path, tmp: Path) -> Run:
    # The DVC cache on a 64 KiB tmpfs (a private mount namespace: nothing else sees it), and
    # weights of 256 KiB to store there.
    tensors = lora_tensors(hidden=2048)
    write_adapter(repo / "adapters" / "task_b", 5, tensors=tensors)
    cache = repo / ".dvc" / "cache"
    ns = ["unshare", "--mount"] if os.geteuid() == 0 else ["unshare", "--user", "--map-root-user", "--mount"]
    script = 'mount -t tmpfs -o size=64k tmpfs "$0" && exec "$@"'
    return Run(
        ["save", "--adapter", "task_b", "-m", "m"], ("no space left",), prefix=(*ns, "sh", "-c", script, str(cache))
    )


CASES: dict[str, Case] = {
    f.__name__: f
    for f in (
        from_missing_directory,
        from_a_directory_that_is_not_an_adapter,
        config_invalid_json,
        config_not_an_object,
        config_without_peft_type,
        config_not_utf8,
        weights_missing,
        weights_truncated,
        weights_absurd_header_length,
        weights_header_not_json,
        weights_overlapping_offsets,
        weights_with_trailing_bytes,
        weights_unknown_dtype,
        weights_empty_tensors_zero3,
        config_rank_does_not_match_weights,
        lora_pair_incomplete,
        dora_magnitudes_missing,
        module_not_in_target_modules,
        weights_symlink_to_etc_passwd,
        weights_fifo,
        weights_pickle_that_runs_code,
        weights_hold_base_model_tensors,
        weights_unreadable_permission_denied,
        diff_of_a_legacy_bin,
        invalid_adapter_name,
        empty_message,
        metric_not_finite,
        unknown_adapter,
        unknown_version,
        malformed_ref,
        alias_shadowing_a_selector,
        export_into_a_non_empty_directory,
        outside_a_git_repository,
        git_repository_without_init,
        save_during_a_merge,
        alias_during_a_cherry_pick,
        push_during_a_rebase,
        push_with_a_detached_head,
        checkout_over_unsaved_changes,
        push_without_a_git_remote,
        push_to_an_unreachable_remote,
        checkout_of_a_corrupt_cache_object,
        full_disk_during_save,
    )
}


@pytest.fixture
def saved_repo(avc_repo: Path) -> Path:
    write_adapter(avc_repo / "adapters" / "task_a", 0)
    run_cli("save", "--adapter", "task_a", "-m", "first", cwd=avc_repo, check=True)
    return avc_repo


# Cases that need a remote's extra (dvc-ssh) stay out of the torch-free install job.
NEEDS_REMOTE_EXTRAS = {"push_to_an_unreachable_remote"}


@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=() if c in NEEDS_REMOTE_EXTRAS else pytest.mark.torchless) for c in CASES]
)
def test_bad_input_fails_cleanly_and_changes_nothing(saved_repo, tmp_path, case):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    run = CASES[case](saved_repo, scratch)
    before = repo_snapshot(saved_repo)
    proc = run_cli(*run.args, cwd=saved_repo, env=run.env, prefix=run.prefix)
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith("Error: ") and lines[1].startswith("Hint: "), proc.stderr
    assert "Traceback" not in proc.stderr and "unexpected" not in lines[0], proc.stderr
    for word in run.words:
        assert word in proc.stderr, (word, proc.stderr)
    assert repo_snapshot(saved_repo) == before


# --- the catalog cannot drift ---------------------------------------------------------------

CATALOG = REPO_ROOT / "docs" / "errors.md"
_TEST_REF = re.compile(r"`(tests/test_\w+\.py)::(\w+)(?:\[([^\]]+)\])?`")


def _catalog_rows() -> list[tuple[str, str, str | None]]:
    return [
        m.groups()
        for line in CATALOG.read_text().splitlines()
        if line.startswith("|")
        for m in _TEST_REF.finditer(line)
    ]


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}


@pytest.mark.torchless
def test_every_catalog_entry_names_a_test_that_exists():
    rows = _catalog_rows()
    entries = [line for line in CATALOG.read_text().splitlines() if re.match(r"^\| *\d+ *\|", line)]
    assert len(entries) >= 30, "docs/errors.md lists fewer than 30 bad inputs and states"
    assert all(_TEST_REF.search(line) for line in entries), [e for e in entries if not _TEST_REF.search(e)]
    for path, name, param in rows:
        assert name in _test_names(REPO_ROOT / path), f"docs/errors.md names {path}::{name}, which does not exist"
        if path == "tests/test_error_catalog.py" and name == "test_bad_input_fails_cleanly_and_changes_nothing":
            assert param in CASES, f"docs/errors.md names catalog case {param!r}, which does not exist"


@pytest.mark.torchless
def test_every_catalog_case_is_documented():
    documented = {param for path, name, param in _catalog_rows() if path == "tests/test_error_catalog.py"}
    assert set(CASES) <= documented, f"cases missing from docs/errors.md: {sorted(set(CASES) - documented)}"
