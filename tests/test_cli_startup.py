"""The CLI starts without the heavy libraries, and renders errors in one place."""

from __future__ import annotations

import pytest

from tests.conftest import imported_modules, run_cli

HEAVY = ("torch", "transformers", "peft", "dvc.repo", "dvc")


def test_help_does_not_import_heavy_libraries():
    mods = imported_modules("--help")
    assert "click" in mods  # the probe itself works
    for heavy in HEAVY:
        assert heavy not in mods, f"`adaptvc --help` imported {heavy}"


def test_every_command_help_does_not_import_heavy_libraries():
    from adaptvc.cli.main import cli

    for name in cli.commands:
        mods = imported_modules(name, "--help")
        for heavy in HEAVY:
            assert heavy not in mods, f"`adaptvc {name} --help` imported {heavy}"


def test_error_renders_error_and_hint_and_exits_1(tmp_path):
    proc = run_cli("inspect", str(tmp_path / "missing"))
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith("Error: ")
    assert "Traceback" not in proc.stderr


def test_usage_error_exits_2():
    proc = run_cli("inspect")
    assert proc.returncode == 2
    assert "Missing argument" in proc.stderr


def test_unknown_command_exits_2():
    proc = run_cli("no-such-command")
    assert proc.returncode == 2


def test_version():
    proc = run_cli("--version")
    assert proc.returncode == 0
    assert "adaptvc" in proc.stdout


def test_every_command_and_option_has_help_text():
    import click

    from adaptvc.cli.main import cli

    def walk(cmd: click.Command, path: str):
        assert (cmd.help or "").strip(), f"{path} has no help text"
        for param in cmd.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert (param.help or "").strip(), f"{path} option {param.opts} has no help text"
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, f"{path} {name}")

    walk(cli, "adaptvc")


def test_the_lazy_command_table_matches_the_commands():
    # `adaptvc --help` lists commands from COMMAND_TABLE without importing them: each
    # entry must name the module that defines the command and its help's first paragraph.
    import importlib

    from adaptvc.cli.main import COMMAND_TABLE

    defined = {}
    for module in sorted({m for m, _ in COMMAND_TABLE.values()}):
        for command in importlib.import_module(f"adaptvc.cli.{module}").COMMANDS:
            # The overview shortens `help`; a short_help, hidden or deprecated command
            # would be listed differently.
            assert not (command.short_help or command.hidden or command.deprecated), command.name
            defined[command.name] = (module, command.help.partition("\n\n")[0].strip())
    assert defined == COMMAND_TABLE


def test_a_command_imports_only_its_own_module():
    mods = imported_modules("diff", "--help")
    assert "adaptvc.cli.diff_cmd" in mods
    for other in ("versioning_cmd", "remote_cmd", "hooks_cmd", "inspect_cmd", "convert_cmd"):
        assert f"adaptvc.cli.{other}" not in mods, f"`adaptvc diff --help` imported {other}"
    mods = imported_modules("--help")
    assert not any(m.endswith("_cmd") for m in mods), "`adaptvc --help` imported a command module"


def test_the_api_table_names_where_each_function_lives():
    import importlib

    import adaptvc
    import adaptvc.api as api

    for name, where in {**api._WHERE, **api._CLI_ONLY}.items():
        module = importlib.import_module(f"adaptvc.api.{where}")
        func = getattr(api, name)
        assert func is getattr(module, name) and func.__module__ == module.__name__, name
    assert all(getattr(adaptvc, name) is getattr(api, name) for name in api.__all__)
    assert set(api.__all__) <= set(dir(adaptvc))
    with pytest.raises(AttributeError):
        api.no_such_function  # noqa: B018 - the lookup must refuse it


def test_a_command_loads_only_its_own_part_of_the_api(tmp_path):
    # status: reading versions; not the operations that write them, not the transfers of
    # sharing, not numpy (the diff's)
    mods = imported_modules("-C", str(tmp_path), "status")
    assert "adaptvc.api._history" in mods
    unwanted = {"adaptvc.api._save", "adaptvc.api._checkout", "adaptvc.api._sharing", "adaptvc.api._diff"}
    assert not (unwanted | {"numpy", "adaptvc.versioning.save", "adaptvc.storage.transfer"}) & mods
    # diff of two directories: the diff API alone, no versioning operations
    mods = imported_modules("diff", str(tmp_path / "a"), str(tmp_path / "b"))
    assert "adaptvc.api._diff" in mods
    assert not {"adaptvc.api._save", "adaptvc.api._checkout", "adaptvc.api._sharing", "adaptvc.transaction"} & mods
