"""`adaptvc compare` and `adaptvc best` (and their API) against expectations computed by
hand from the history in tests/overview_helpers.py."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest

import adaptvc
from adaptvc.errors import MetricNotFoundError, UnknownColumnError
from tests.conftest import REPO_ROOT, run_cli
from tests.overview_helpers import HOSTILE, _history_template, _initialised_template, history  # noqa: F401

pytestmark = pytest.mark.torchless

SAME_PARAMS = {"peft_type": "LORA", "lora_alpha": 16, "lora_dropout": 0.0, "bias": "none", "task_type": "CAUSAL_LM"}


def _json(*args: str) -> dict:
    proc = run_cli(*args, check=True)
    return json.loads(proc.stdout)


def test_compare_json_rows_params_and_metrics(history):
    doc = _json("compare", "task_a", "--json")
    assert [r["ref"] for r in doc["rows"]] == ["task_a@v4", "task_a@v3", "task_a@v2", "task_a@v1"]
    assert doc["metrics"] == ["accuracy", "eval_loss", "loss"]
    # the default parameters some version sets, in their fixed order
    assert doc["params"] == [
        "peft_type",
        "r",
        "lora_alpha",
        "lora_dropout",
        "target_modules",
        "use_rslora",
        "bias",
        "task_type",
    ]
    rows = {r["ref"]: r for r in doc["rows"]}
    for ref, r, extra in (
        ("task_a@v1", 4, {}),
        ("task_a@v2", 4, {}),
        ("task_a@v3", 8, {"use_rslora": True}),
        ("task_a@v4", 4, {}),
    ):
        params = {k: v for k, v in rows[ref]["params"].items() if k in doc["params"]}
        assert params == {**SAME_PARAMS, "r": r, "target_modules": ["q_proj", "v_proj"], **extra}
    assert rows["task_a@v3"]["metrics"] == {"eval_loss": 1.7, "accuracy": 0.8}
    assert rows["task_a@v1"]["metrics"] == {"eval_loss": 2.0, "loss": 2.5}
    assert rows["task_a@v4"]["parents"] == ["task_a@v3"] and rows["task_a@v1"]["parents"] == []
    assert rows["task_a@v2"]["message"] == f"epoch 2 {HOSTILE}"
    assert doc["columns"][:5] == ["ref", "date", "author", "message", "parents"]


def test_compare_sort_both_ways_missing_last(history):
    def order(*args: str) -> list[str]:
        return [r["ref"] for r in _json("compare", "task_a", "--json", *args)["rows"]]

    # ties (v4 and v2 at 1.5) keep the newest-first order
    assert order("--sort", "eval_loss") == ["task_a@v4", "task_a@v2", "task_a@v3", "task_a@v1"]
    assert order("--sort", "eval_loss", "--desc") == ["task_a@v1", "task_a@v3", "task_a@v4", "task_a@v2"]
    # v3 records no loss: last both ways
    assert order("--sort", "loss") == ["task_a@v4", "task_a@v2", "task_a@v1", "task_a@v3"]
    assert order("--sort", "loss", "--desc") == ["task_a@v1", "task_a@v2", "task_a@v4", "task_a@v3"]
    assert order("--sort", "r", "--desc")[0] == "task_a@v3"
    proc = run_cli("compare", "--sort", "nope")
    assert proc.returncode == 1 and "Error: no column 'nope'" in proc.stderr and "eval_loss" in proc.stderr
    with pytest.raises(UnknownColumnError):
        adaptvc.compare(sort="nope")


def test_compare_only_diff_and_selection(history):
    doc = _json("compare", "task_a", "--only-diff", "--json")
    assert doc["columns"] == [
        "ref",
        "date",
        "message",
        "parents",
        "param:r",
        "param:use_rslora",
        "metric:accuracy",
        "metric:eval_loss",
        "metric:loss",
    ]
    assert "author" in doc["dropped"] and "param:lora_alpha" in doc["dropped"]
    doc = _json("compare", "--metric", "loss", "--param", "r", "--param", "use_dora", "--json")
    assert doc["metrics"] == ["loss"] and doc["params"] == ["r", "use_dora"]
    # refs and adapters mix; a fork across adapters names its parent
    doc = _json("compare", "task_a@v1", "task_b", "--json")
    assert [(r["ref"], r["parents"]) for r in doc["rows"]] == [("task_a@v1", []), ("task_b@v1", ["task_a@v2"])]


def test_compare_text_piped_is_complete_and_csv_parses(history):
    proc = run_cli("compare", check=True)
    lines = proc.stdout.splitlines()
    header = lines[0].split()
    for column in ("ref", "message", "r", "use_rslora", "accuracy", "eval_loss", "loss"):
        assert column in header
    assert len(lines) == 6 and lines[1].startswith("task_a@v4")
    assert "not shown" not in proc.stderr  # piped: nothing elided
    assert "<script>" in proc.stdout  # plain text: the message as written
    rows = list(csv.reader(io.StringIO(run_cli("compare", "task_a", "--csv", check=True).stdout)))
    assert rows[0][:5] == ["ref", "date", "author", "message", "parents"]
    by_ref = {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    assert by_ref["task_a@v3"]["loss"] == "" and by_ref["task_a@v3"]["r"] == "8"
    assert by_ref["task_a@v1"]["target_modules"] == "q_proj,v_proj"
    assert run_cli("compare", "--json", "--csv").returncode == 2


def test_compare_fits_the_terminal_width():
    from adaptvc.cli.overview_cmd import _fit

    columns = ["ref", "date", "author", "message", "parents", "param:r", "metric:eval_loss", "metric:loss"]
    widths = dict.fromkeys(columns, 10)
    assert _fit(columns, widths, 200) == columns
    # 8 columns of 10 + 7 gaps of 2 = 94: author goes first, then parents, then date
    assert _fit(columns, widths, 90) == [c for c in columns if c != "author"]
    assert _fit(columns, widths, 60) == ["ref", "message", "param:r", "metric:eval_loss", "metric:loss"]
    assert _fit(columns, widths, 10) == ["ref"]


def test_best_by_hand(history):
    assert run_cli("best", "task_a", "--metric", "eval_loss", check=True).stdout == "task_a@v4\n"  # tie: newest
    assert run_cli("best", "task_a", "--metric", "eval_loss", "--max", check=True).stdout == "task_a@v1\n"
    doc = _json("best", "task_a", "--metric", "accuracy", "--max", "--json")
    assert (doc["ref"], doc["value"], doc["candidates"], doc["maximize"]) == ("task_a@v3", 0.8, 2, True)
    assert adaptvc.best("task_b", metric="eval_loss").ref == "task_b@v1"
    proc = run_cli("best", "task_b", "--metric", "loss")
    assert proc.returncode == 1 and proc.stdout == ""
    assert "Error: no version of task_b records the metric 'loss'; metrics recorded: eval_loss" in proc.stderr
    assert "Hint: adaptvc best task_b --metric eval_loss" in proc.stderr
    with pytest.raises(MetricNotFoundError) as info:
        adaptvc.best("task_a", metric="bleu")
    assert info.value.known == ("accuracy", "eval_loss", "loss")


def test_best_composes_with_alias_in_a_shell(history):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    py = sys.executable
    script = f'"{py}" -m adaptvc alias "$("{py}" -m adaptvc best task_a --metric eval_loss)" production'
    subprocess.run(["bash", "-c", script], env=env, check=True, capture_output=True)
    assert adaptvc.show("task_a@production").ref == "task_a@v4"


def test_compare_reads_every_config_in_one_git_process(history, monkeypatch):
    from adaptvc.storage import git_ops

    calls: list[tuple[str, ...]] = []
    real = git_ops.run

    def counting(root, *args, **kwargs):
        calls.append(args)
        return real(root, *args, **kwargs)

    monkeypatch.setattr(git_ops, "run", counting)
    table = adaptvc.compare()
    assert len(table.rows) == 5
    assert sum(1 for a in calls if a[:2] == ("cat-file", "--batch")) == 1


def test_compare_and_best_load_no_numpy_nor_the_report(history):
    from tests.conftest import imported_modules

    for command in (["compare"], ["best", "task_a", "--metric", "eval_loss"]):
        mods = imported_modules("-C", str(history), *command, check=True)
        assert "adaptvc.api._compare" in mods
        assert not {"numpy", "adaptvc.api._report", "adaptvc.overview.page", "adaptvc.api._diff"} & mods
