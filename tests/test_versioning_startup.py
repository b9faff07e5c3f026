"""log, show and status start without torch or dvc's Repo, and `log` makes one git call
whatever the number of versions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import adaptvc
from adaptvc.manifest import dumps_record
from tests.conftest import REPO_ROOT, run_cli
from tests.versioning_helpers import _initialised_template, avc_repo, git, write_adapter  # noqa: F401

HEAVY = ("torch", "transformers", "peft", "dvc.repo", "dvc", "git")


def _modules_after(args: list[str], cwd) -> tuple[set[str], int]:
    code = (
        "import sys\n"
        "from adaptvc.cli.main import main\n"
        "code = 0\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit as e:\n"
        "    code = e.code or 0\n"
        "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)
    return set(proc.stderr.split()), proc.returncode


def test_log_show_status_do_not_import_heavy_libraries(avc_repo):
    write_adapter("adapters/task_a", 0)
    adaptvc.save(adapter="task_a", message="one")
    adaptvc.alias("task_a@v1", "prod")
    for args in (["log"], ["log", "task_a", "--json"], ["show", "task_a@prod"], ["status", "--json"]):
        mods, code = _modules_after(args, avc_repo)
        assert code == 0, args
        assert "adaptvc.versioning.workspace" in mods or "adaptvc.versioning.history" in mods
        for heavy in HEAVY:
            assert heavy not in mods, f"`adaptvc {' '.join(args)}` imported {heavy}"


def _synthesise(root, n: int) -> None:
    """n versions of task_a: real commits with trailers, one per version, made with
    `git fast-import` (saving 1,000 times would take minutes)."""
    write_adapter(root / "adapters" / "task_a", 0)
    first = adaptvc.save(adapter="task_a", message="v1")
    lines = [(root / "adapters/task_a/versions.jsonl").read_text().rstrip("\n")]
    from dataclasses import replace

    from adaptvc.manifest import ParentLink
    from adaptvc.storage.git_ops import TRAILER, trailer_value

    stream = []
    prev = first
    for i in range(2, n + 1):
        v = replace(
            first,
            version=i,
            id=f"{i:032x}",
            message=f"epoch {i}",
            created_at=f"2099-01-01T00:{i // 60:02d}:{i % 60:02d}.{i:06d}+00:00",
            parents=(ParentLink("task_a", prev.version, prev.id),),
            metrics={"loss": 1.0 / i},
        )
        lines.append(dumps_record(v))
        data = ("\n".join(lines) + "\n").encode()
        msg = f"{v.ref}: {v.message}\n\n{TRAILER}: {trailer_value(v.adapter, v.version, v.id, v.created_at)}\n".encode()
        stream.append(
            b"commit refs/heads/main\ncommitter T <t@e> %d +0000\ndata %d\n%s" % (1_700_000_000 + i, len(msg), msg)
        )
        if i == 2:
            stream.append(b"from refs/heads/main^0\n")
        stream.append(b"M 100644 inline adapters/task_a/versions.jsonl\ndata %d\n%s\n" % (len(data), data))
        prev = v
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, input=b"".join(stream), check=True)
    git(root, "checkout", "-q", "-f", "main")


def test_log_with_1000_versions_is_one_git_call_and_fast(avc_repo, monkeypatch):
    _synthesise(avc_repo, 1000)
    from adaptvc.storage import git_ops

    calls = []
    real = git_ops.run_git
    monkeypatch.setattr(git_ops, "run_git", lambda root, *a, **k: calls.append(a[0]) or real(root, *a, **k))
    versions = adaptvc.log("task_a")
    assert len(versions) == 1000 and calls == ["log"]
    assert all(v.commit for v in versions)
    assert versions[0].ref == "task_a@v1000" and [p.ref for p in versions[0].parents] == ["task_a@v999"]
    start = time.perf_counter()
    proc = run_cli("log", "task_a", "--json", check=True)
    elapsed = time.perf_counter() - start
    assert len(json.loads(proc.stdout)) == 1000
    assert elapsed < 5, f"adaptvc log with 1,000 versions took {elapsed:.2f}s"
    text = run_cli("log", "task_a", check=True).stdout
    assert text.count("task_a@v") >= 1000
