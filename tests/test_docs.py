"""The docs match the code: every `adaptvc ...` command the README and docs/ show exists,
with the options they use."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from adaptvc.cli.main import cli
from tests.conftest import REPO_ROOT

DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md")), REPO_ROOT / "hooks" / "README.md"]
FENCE = re.compile(r"```(?:bash|console|sh|shell)\n(.*?)```", re.S)


def _command_lines(path: Path) -> list[str]:
    lines = []
    for block in FENCE.findall(path.read_text(encoding="utf-8")):
        for line in block.splitlines():
            line = line.strip().removeprefix("$ ")
            if line.startswith("adaptvc "):
                lines.append(line.split("  #")[0].split(" # ")[0].strip())
    return lines


def _resolve(tokens: list[str]) -> tuple[click.Command, list[str], str]:
    cmd: click.Command = cli
    path = "adaptvc"
    while isinstance(cmd, click.Group) and tokens and not tokens[0].startswith("-"):
        name = tokens.pop(0)
        assert name in cmd.commands, f"`{path} {name}` is not a command"
        cmd, path = cmd.commands[name], f"{path} {name}"
    return cmd, tokens, path


ALL_LINES = [(p.name, line) for p in DOCS for line in _command_lines(p)]


def test_the_docs_show_commands_at_all():
    assert len(ALL_LINES) >= 20
    assert {p for p, _ in ALL_LINES} >= {"README.md"}


@pytest.mark.parametrize("doc,line", ALL_LINES, ids=[f"{doc}:{text[:50]}" for doc, text in ALL_LINES])
def test_documented_command_exists_with_its_options(doc, line):
    tokens = shlex.split(line)[1:]
    cmd, rest, path = _resolve(tokens)
    known = {opt for p in cmd.params if isinstance(p, click.Option) for opt in (*p.opts, *p.secondary_opts)}
    known |= {"--help", "-h"}
    for token in rest:
        if token.startswith("-") and token != "-":
            option = token.split("=", 1)[0]
            assert option in known, f"{doc}: `{line}` uses {option}, which `{path}` does not have"


def test_readme_names_the_two_setup_commands_and_ci_runs_the_test_one():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert "./dev.sh example" in readme and "./dev.sh test" in readme
    ci = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "./dev.sh test" in ci
