"""Names and refs: one regex, clear errors; selection among versions."""

from __future__ import annotations

import pytest

from adaptvc.errors import AmbiguousRefError, InvalidRefError, VersionNotFoundError
from adaptvc.manifest import AdapterVersion
from adaptvc.refs import Ref, parse_ref, select, unique_ref, validate_alias, validate_name


def v(n: int, id_: str, t: str, cfg: str = "c") -> AdapterVersion:
    return AdapterVersion("task_a", n, id_, 10, f"msg {n}", "me", t, config_sha256=cfg)


VERSIONS = [v(1, "a" * 32, "2026-01-01"), v(2, "b" * 32, "2026-01-02"), v(3, "c" * 31 + "d", "2026-01-03")]


@pytest.mark.parametrize(
    "text, adapter, selector, kind",
    [
        ("task_a", "task_a", None, "latest"),
        ("task_a@latest", "task_a", "latest", "latest"),
        ("task_a@v12", "task_a", "v12", "version"),
        ("llama-7b.sql@production", "llama-7b.sql", "production", "name"),
        ("x@3f2a9c", "x", "3f2a9c", "name"),
    ],
)
def test_parse_ref(text, adapter, selector, kind):
    ref = parse_ref(text)
    assert (ref.adapter, ref.selector, ref.kind) == (adapter, selector, kind)
    assert str(ref) == text


@pytest.mark.parametrize("bad", ["", "@v1", "a@", "a@b@c", "a/b", "a..b", "a.", "-a", "a b", "a@v1/x", "x" * 65])
def test_bad_refs_are_refused_with_the_rules(bad):
    with pytest.raises(InvalidRefError) as exc:
        parse_ref(bad) if bad != "x" * 65 else validate_name(bad)
    assert exc.value.hint and "letters" in exc.value.hint


@pytest.mark.parametrize("bad", ["latest", "v3", "a@b", "x.lock"])
def test_bad_aliases(bad):
    with pytest.raises(InvalidRefError):
        validate_alias(bad)


def test_select_latest_version_and_prefix():
    assert select(Ref("task_a"), VERSIONS).version == 3
    assert select(Ref("task_a", "latest"), VERSIONS).version == 3
    assert select(Ref("task_a", "v1"), VERSIONS).version == 1
    assert select(Ref("task_a", "bbbb"), VERSIONS).version == 2


def test_unknown_version_lists_what_exists():
    with pytest.raises(VersionNotFoundError) as exc:
        select(Ref("task_a", "v9"), VERSIONS)
    assert "v3, v2, v1" in exc.value.message
    assert isinstance(exc.value, LookupError)


def test_alias_wins_over_prefix():
    assert select(Ref("task_a", "aaaa"), VERSIONS, {"aaaa": VERSIONS[2]}).version == 3


def test_duplicate_version_number_is_ambiguous_and_lists_ids():
    versions = VERSIONS + [v(3, "e" * 32, "2026-01-04")]
    with pytest.raises(AmbiguousRefError) as exc:
        select(Ref("task_a", "v3"), versions)
    assert sorted(exc.value.candidates) == sorted([f"task_a@{'c' * 31}d", f"task_a@{'e' * 32}"])
    assert select(Ref("task_a", "eeee"), versions).created_at == "2026-01-04"
    assert unique_ref(versions[-1], versions) == f"task_a@{'e' * 32}"
    assert unique_ref(versions[0], versions) == "task_a@v1"


def test_identical_content_is_not_ambiguous():
    versions = VERSIONS + [v(3, "c" * 31 + "d", "2026-01-05")]
    assert select(Ref("task_a", "v3"), versions).created_at == "2026-01-05"
