"""The manifest: JSON Lines records round-trip; bad lines are named."""

from __future__ import annotations

import pytest

from adaptvc.errors import InvalidAdapterError
from adaptvc.manifest import (
    AdapterVersion,
    BaseModelLink,
    ParentLink,
    PeftSummary,
    appended,
    dumps_record,
    read_manifest,
)


def make() -> AdapterVersion:
    return AdapterVersion(
        adapter="task_a",
        version=2,
        id="0" * 32,
        size=123,
        message="epoch 3",
        author="A <a@b>",
        created_at="2026-01-01T00:00:00.000000+00:00",
        parents=(ParentLink("task_a", 1, "1" * 32),),
        base_model=BaseModelLink("org/base", "abc", "sha256:ff"),
        peft=PeftSummary("LORA", 16, 32.0, ("k_proj", "q_proj"), 100, 123, "CAUSAL_LM"),
        metrics={"eval_loss": 1.92},
        config_sha256="s" * 64,
        config_blob="b" * 40,
    )


def test_record_round_trip(tmp_path):
    path = tmp_path / "versions.jsonl"
    path.write_bytes(appended(path, [dumps_record(make())]))
    path.write_bytes(appended(path, [dumps_record(make())]))  # a duplicate line (merged twice) is dropped
    (got,) = read_manifest(path)
    assert got == make()
    assert path.read_text().count("\n") == 2


def test_to_dict_has_the_required_fields():
    d = make().to_dict()
    for key in (
        "adapter",
        "version",
        "ref",
        "id",
        "parents",
        "message",
        "metrics",
        "base_model",
        "commit",
        "created_at",
    ):
        assert key in d
    assert d["ref"] == "task_a@v2" and d["parents"] == ["task_a@v1"] and isinstance(d["version"], int)
    assert d["base_model"] == {"name_or_path": "org/base", "revision": "abc", "fingerprint": "sha256:ff"}
    assert d["peft"]["target_modules"] == ["k_proj", "q_proj"]


def test_conflict_markers_are_reported_with_the_line(tmp_path):
    path = tmp_path / "versions.jsonl"
    path.write_text(dumps_record(make()) + "\n<<<<<<< HEAD\n")
    with pytest.raises(InvalidAdapterError, match=":2:"):
        read_manifest(path)


def test_appended_adds_a_missing_final_newline(tmp_path):
    path = tmp_path / "m"
    path.write_text('{"a":1}')
    assert appended(path, ['{"b":2}']) == b'{"a":1}\n{"b":2}\n'
