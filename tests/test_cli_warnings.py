"""Warnings take one channel: the library logs them, the CLI prints each once as
`Warning: ...` on stderr, and a --json document lists them under "warnings"."""

from __future__ import annotations

import json
import logging

import pytest

import adaptvc.api
from adaptvc.cli.main import main
from tests.conftest import run_cli
from tests.versioning_helpers import _initialised_template, avc_repo, git, write_adapter  # noqa: F401

MESSAGE = "the weights look odd: 3 tensors are all zero"


@pytest.fixture
def warning_inspect(monkeypatch, tmp_path):
    """`adaptvc inspect DIR` where the library logs one warning (as library code does:
    a child of the "adaptvc" logger, %-style arguments)."""
    directory = write_adapter(tmp_path / "adapter", 0)
    real = adaptvc.api.inspect

    def inspect(path):
        logging.getLogger("adaptvc.formats").warning("the weights look odd: %d tensors are all zero", 3)
        return real(path)

    monkeypatch.setattr(adaptvc.api, "inspect", inspect)
    return str(directory)


def _run(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_a_library_warning_is_printed_once_on_stderr(warning_inspect, capsys):
    logger = logging.getLogger("adaptvc")
    handlers, propagate = list(logger.handlers), logger.propagate
    assert _run("inspect", warning_inspect) == 0
    out, err = capsys.readouterr()
    assert [line for line in err.splitlines() if "tensors are all zero" in line] == [f"Warning: {MESSAGE}"]
    assert "Warning" not in out and "rank" in out  # stdout stays data
    # The renderer is installed for the command only.
    assert (logger.handlers, logger.propagate) == (handlers, propagate)


def test_a_library_warning_is_listed_in_the_json_document(warning_inspect, capsys):
    assert _run("inspect", warning_inspect, "--json") == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["warnings"] == [MESSAGE]
    assert doc["r"] == 4  # the document is otherwise the usual one
    assert err.count(MESSAGE) == 1


def test_no_warnings_key_is_added_when_nothing_warned(tmp_path, capsys):
    directory = write_adapter(tmp_path / "adapter", 0)
    assert _run("inspect", str(directory), "--json") == 0
    out, err = capsys.readouterr()
    assert "warnings" not in json.loads(out) and err == ""


def test_save_on_a_detached_head_warns_once_in_a_real_process(avc_repo):
    # The library's own warning, from a separate process: Python's fallback handler
    # would print it a second time (without "Warning: ") if the CLI's were not the only one.
    write_adapter("adapters/task_a", 0)
    run_cli("save", "--adapter", "task_a", "-m", "v1", check=True)
    git(avc_repo, "checkout", "-q", "--detach")
    write_adapter("adapters/task_a", 1)
    proc = run_cli("save", "--adapter", "task_a", "-m", "detached", "--json", check=True)
    detached = [line for line in proc.stderr.splitlines() if "HEAD is detached" in line]
    assert len(detached) == 1 and detached[0].startswith("Warning: HEAD is detached"), proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ref"] == "task_a@v2"
    assert [w for w in doc["warnings"] if "HEAD is detached" in w] == [detached[0].removeprefix("Warning: ")]
