"""The command line as a newcomer meets it: help that teaches, one JSON document with
--json, aligned text, errors with a hint and no traceback, nothing changed by a failure."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import click
import pytest

from adaptvc.cli.main import cli
from adaptvc.hooks import HOOK_NAMES
from tests.conftest import run_cli
from tests.versioning_helpers import _initialised_template, avc_repo, git, write_adapter  # noqa: F401

# Pure CLI on files: also run where adaptvc is installed without torch (./dev.sh test).
pytestmark = pytest.mark.torchless

JSON_HELP = "Print one JSON document on stdout instead of text."


def _commands(group: click.Group = cli, path: str = "adaptvc"):
    for name, cmd in sorted(group.commands.items()):
        if cmd.hidden:
            continue
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, f"{path} {name}")
        else:
            yield f"{path} {name}", cmd


ALL_COMMANDS = list(_commands())


@pytest.mark.parametrize("path,cmd", ALL_COMMANDS, ids=[p for p, _ in ALL_COMMANDS])
def test_every_command_help_has_a_summary_and_an_example(path, cmd):
    ctx = click.Context(cmd, info_name=path)
    text = cmd.get_help(ctx)
    assert "Example" in text, f"`{path} --help` shows no example"
    # The summary fits the command listing of its group (Click cuts it with "..." otherwise).
    assert not cmd.get_short_help_str(limit=60).endswith("..."), f"`{path}`: summary too long for the listing"


@pytest.mark.parametrize("path,cmd", ALL_COMMANDS, ids=[p for p, _ in ALL_COMMANDS])
def test_json_option_is_described_the_same_way_everywhere(path, cmd):
    for param in cmd.params:
        if isinstance(param, click.Option) and "--json" in param.opts:
            assert param.help.startswith(JSON_HELP[:-1]), f"`{path} --json`: {param.help!r}"


def test_group_listings_are_not_truncated():
    for args in ([], ["remote"], ["hooks"]):
        proc = run_cli(*args, "--help", check=True)
        listing = proc.stdout.split("Commands:")[1]
        assert "..." not in listing, listing


def test_commands_that_change_or_read_a_version_have_json():
    for name in ("log", "show", "status", "save", "checkout", "export", "alias", "diff"):
        assert any("--json" in p.opts for p in cli.commands[name].params if isinstance(p, click.Option)), name
    assert "-f" in next(p for p in cli.commands["diff"].params if "--force" in getattr(p, "opts", ())).opts


# --- output ------------------------------------------------------------------------------


def _save(name: str, seed: int, message: str = "m") -> None:
    write_adapter(f"adapters/{name}", seed)
    run_cli("save", "--adapter", name, "-m", message, check=True)


def test_status_columns_stay_aligned_with_long_refs(avc_repo):
    _save("a", 0)
    _save("a_much_longer_adapter_name", 1)
    lines = run_cli("status", check=True).stdout.splitlines()
    starts = [line.index("clean") for line in lines]
    assert len(lines) == 2 and len(set(starts)) == 1, lines


def test_checkout_export_alias_print_one_json_document(avc_repo, tmp_path):
    _save("task_a", 0, "first")
    _save("task_a", 1, "second")
    proc = run_cli("checkout", "task_a@v1", "--json", check=True)
    assert json.loads(proc.stdout)["ref"] == "task_a@v1"
    proc = run_cli("export", "task_a@v2", str(tmp_path / "out"), "--json", check=True)
    doc = json.loads(proc.stdout)
    assert doc["ref"] == "task_a@v2" and doc["directory"] == str(tmp_path / "out")
    assert (tmp_path / "out" / "adapter_model.safetensors").exists()
    proc = run_cli("alias", "task_a@v2", "production", "--json", check=True)
    assert json.loads(proc.stdout) == {
        "alias": "task_a@production",
        "ref": "task_a@v2",
        "id": json.loads(run_cli("show", "task_a@v2", "--json").stdout)["id"],
    }


def test_checkout_and_log_survive_a_message_without_a_first_line(avc_repo):
    write_adapter("adapters/task_a", 0)
    run_cli("save", "--adapter", "task_a", "-m", "\nnotes below a blank line", check=True)
    proc = run_cli("checkout", "task_a@v1", check=True)
    assert "notes below a blank line" in proc.stdout
    assert "notes below a blank line" in run_cli("log", check=True).stdout


def test_remote_list_when_empty_says_how_to_add_one(avc_repo):
    proc = run_cli("remote", "list", check=True)
    assert proc.stdout == "" and "adaptvc remote add" in proc.stderr
    assert json.loads(run_cli("remote", "list", "--json", check=True).stdout) == []


def test_hooks_output_is_aligned_and_uninstall_says_what_it_did(avc_repo):
    lines = run_cli("hooks", "status", check=True).stdout.splitlines()
    assert len({line.index("/") for line in lines}) == 1, lines  # the path column lines up
    proc = run_cli("hooks", "uninstall", check=True)
    assert "removed" in proc.stderr and "adaptvc hooks install" in proc.stderr
    assert [line.split()[1] for line in proc.stdout.splitlines()] == ["missing"] * len(HOOK_NAMES)


# --- diff ----------------------------------------------------------------------------------


def test_diff_lists_changed_modules_only_and_counts_the_rest(avc_repo, tmp_path):
    from tests.versioning_helpers import lora_tensors

    a = write_adapter(tmp_path / "a", 0)
    tensors = lora_tensors(0)
    key = next(k for k in tensors if k.endswith("lora_B.weight"))
    tensors[key] = tensors[key] * 1.5
    b = write_adapter(tmp_path / "b", tensors=tensors)
    out = run_cli("diff", str(a), str(b), check=True).stdout
    table = out.split("modules by relative change:")[1].strip().splitlines()
    assert len(table) == 1 + 1 + 1, table  # header, the one changed module, the count
    assert "(3 other modules unchanged)" in table[-1]
    assert f"a: {a}\n" in out and f"({a})" not in out  # a directory is not named twice
    same = run_cli("diff", str(a), str(a), check=True).stdout
    assert "modules by relative change" not in same and "identical" in same


def test_diff_plot_into_a_missing_directory_is_a_usage_error_before_any_work(avc_repo, tmp_path):
    a = write_adapter(tmp_path / "a", 0)
    proc = run_cli("diff", str(a), str(a), "--plot", str(tmp_path / "nowhere" / "x.png"))
    assert proc.returncode == 2 and proc.stdout == ""
    assert "--plot" in proc.stderr and "nowhere" in proc.stderr
    assert "unexpected" not in proc.stderr and "Traceback" not in proc.stderr


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("show", "task_a@v99"),
        ("checkout", "task_a@v99"),
        ("export", "task_a@v99", "out"),
        ("alias", "task_a@v99", "prod"),
        ("diff", "task_a@v99"),
        ("log", "nosuch"),
        ("show", "task a"),
    ],
)
def test_bad_refs_fail_with_error_and_hint_and_change_nothing(avc_repo, args):
    _save("task_a", 0)
    head = git(avc_repo, "rev-parse", "HEAD")
    status = git(avc_repo, "status", "--porcelain")
    proc = run_cli(*args, "--json") if args[0] in ("show", "log", "checkout", "diff") else run_cli(*args)
    assert proc.returncode == 1 and proc.stdout == ""
    assert re.match(r"Error: .+\nHint: .+\n$", proc.stderr), proc.stderr
    assert git(avc_repo, "rev-parse", "HEAD") == head and git(avc_repo, "status", "--porcelain") == status
    assert not (avc_repo / "out").exists()


def test_show_aligns_the_files(avc_repo):
    _save("task_a", 0)
    lines = run_cli("show", "task_a", check=True).stdout.split("files\n")[1].splitlines()
    assert len(lines) == 4 and len({line.index("(") for line in lines}) == 1, lines


def test_checkout_and_export_take_quiet_like_push_and_pull(avc_repo, tmp_path):
    _save("task_a", 0)
    for args in (("checkout", "task_a@v1"), ("export", "task_a@v1", str(tmp_path / "out"))):
        proc = run_cli(*args, "-q", check=True)
        assert proc.stderr == ""


def test_inspect_a_folder_that_is_not_an_adapter_says_so_with_a_hint(tmp_path):
    (tmp_path / "notes").mkdir()
    proc = run_cli("inspect", str(tmp_path / "notes"))
    assert proc.returncode == 1 and proc.stdout == ""
    assert "not a PEFT adapter directory" in proc.stderr and "Hint: " in proc.stderr


def test_status_takes_adapter_names_like_log(avc_repo):
    _save("task_a", 0)
    _save("task_b", 1)
    proc = run_cli("status", "task_b", check=True)
    assert [line.split()[0] for line in proc.stdout.splitlines()] == ["task_b"]
    assert [s["adapter"] for s in json.loads(run_cli("status", "task_a", "--json", check=True).stdout)] == ["task_a"]
    proc = run_cli("status", "task_c")
    assert proc.returncode == 1 and proc.stdout == ""
    assert "no adapter 'task_c'" in proc.stderr and "task_a, task_b" in proc.stderr and "Hint: " in proc.stderr


def test_log_given_a_ref_points_to_log_and_show(avc_repo):
    _save("task_a", 0)
    proc = run_cli("log", "task_a@v1")
    assert proc.returncode == 2 and proc.stdout == ""
    assert "adaptvc log task_a" in proc.stderr and "adaptvc show task_a@v1" in proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("remote", "add", "storage", ""),
        ("remote", "modify", "storage", "url", ""),
        ("export", "task_a@v1", ""),
        ("save", "--adapter", "task_a", "-m", "x", "--from", ""),
        ("diff", "task_a@v1", "--plot", ""),
        ("inspect", ""),
        ("convert", ""),
        ("clone", ""),
        ("clone", "/somewhere", ""),
    ],
)
def test_an_empty_path_or_url_is_a_usage_error_not_the_current_directory(avc_repo, args):
    adaptvc_remote = run_cli("remote", "add", "storage", str(avc_repo.parent / "store"), check=True)
    assert adaptvc_remote.returncode == 0
    _save("task_a", 0)
    head = git(avc_repo, "rev-parse", "HEAD")
    config = (avc_repo / ".dvc" / "config").read_text()
    proc = run_cli(*args)
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    assert "empty" in proc.stderr and "Traceback" not in proc.stderr
    assert git(avc_repo, "rev-parse", "HEAD") == head and (avc_repo / ".dvc" / "config").read_text() == config
    assert git(avc_repo, "status", "--porcelain") == ""


@pytest.mark.parametrize(
    "argv,traceback",
    [
        (["log"], False),
        (["log", "--traceback"], True),
        (["--traceback", "log"], True),
    ],
)
def test_traceback_flag_works_where_the_hint_makes_users_put_it(avc_repo, argv, traceback):
    import os
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    code = (
        "import adaptvc.api as api\napi.log = lambda *a, **k: 1 / 0\n"
        f"from adaptvc.cli.main import main\nmain({argv!r})\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ADAPTVC_TRACEBACK"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    proc = subprocess.run([sys.executable, "-c", code], cwd=avc_repo, env=env, capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stdout == ""
    if traceback:
        assert "Traceback (most recent call last)" in proc.stderr and "ZeroDivisionError" in proc.stderr
    else:
        assert proc.stderr.splitlines()[0] == "Error: unexpected ZeroDivisionError: division by zero"
        assert "--traceback" in proc.stderr and "Traceback (most" not in proc.stderr


def test_push_says_what_it_found_when_there_is_nothing_to_upload(avc_repo):
    run_cli("remote", "add", "storage", str(avc_repo.parent / "store"), "--default", check=True)
    proc = run_cli("push", "--no-git", check=True)
    assert "No saved versions to upload" in proc.stderr and "(0)" not in proc.stderr
    _save("task_a", 0)
    run_cli("push", "--no-git", check=True)
    proc = run_cli("push", "--no-git", "task_a@v1", check=True)
    assert "already has the weights of 1 version(s): task_a@v1" in proc.stderr


def test_hooks_help_names_every_hook_adaptvc_installs():
    text = run_cli("hooks", "--help", check=True).stdout
    assert all(name in text for name in HOOK_NAMES)


@pytest.mark.parametrize("args", [("log",), ("status",), ("save", "--adapter", "task_a", "-m", "x"), ("init",)])
def test_outside_git_the_hint_gives_both_commands(tmp_path, args):
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.endswith("Hint: git init && adaptvc init\n"), proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_alias_that_reads_as_a_version_id_is_refused(avc_repo):
    _save("task_a", 0)
    _save("task_a", 1)
    v1 = json.loads(run_cli("show", "task_a@v1", "--json", check=True).stdout)["id"]
    head = git(avc_repo, "rev-parse", "HEAD")
    proc = run_cli("alias", "task_a@v2", v1[:6])
    assert proc.returncode == 1 and "would read as a version id" in proc.stderr and "Hint: " in proc.stderr
    assert git(avc_repo, "rev-parse", "HEAD") == head
    assert json.loads(run_cli("show", f"task_a@{v1[:6]}", "--json", check=True).stdout)["ref"] == "task_a@v1"


def test_export_prints_the_directory_on_stdout_and_what_it_did_on_stderr(avc_repo, tmp_path):
    _save("task_a", 0)
    proc = run_cli("export", "task_a", str(tmp_path / "out"), check=True)
    assert proc.stdout == f"{tmp_path / 'out'}\n"
    assert proc.stderr.startswith("Exported task_a@v1 (")


@pytest.mark.parametrize("path,cmd", ALL_COMMANDS, ids=[p for p, _ in ALL_COMMANDS])
def test_options_name_what_they_take(path, cmd):
    ctx = click.Context(cmd, info_name=path)
    for param in cmd.params:
        if isinstance(param, click.Option) and not param.is_flag:
            assert param.make_metavar(ctx) != "TEXT", f"`{path} {param.opts[-1]}` shows TEXT"


def test_log_of_a_never_saved_adapter_says_how_to_save_it(avc_repo):
    write_adapter("adapters/task_b", 0)
    proc = run_cli("log", "task_b", check=True)
    assert proc.stdout == "" and "adaptvc save --adapter task_b -m MESSAGE" in proc.stderr
    assert run_cli("log", "task_b", "--json", check=True).stdout.strip() == "[]"


def test_status_gives_the_next_command_for_each_state_that_needs_one(avc_repo):
    _save("task_a", 0)
    _save("task_b", 1)
    write_adapter("adapters/task_c", 2)
    write_adapter("adapters/task_a", 3)  # modified
    (avc_repo / "adapters" / "task_b" / "adapter_model.safetensors").unlink()  # weights missing
    proc = run_cli("status", check=True)
    assert [line.split()[0] for line in proc.stdout.splitlines()] == ["task_a", "task_b", "task_c"]
    hints = proc.stderr.splitlines()
    assert (
        "Hint: task_a: keep the changes with adaptvc save --adapter task_a -m MESSAGE, "
        "or drop them with adaptvc checkout task_a@v1 --force" in hints
    )
    assert any(h.startswith("Hint: task_b: adaptvc checkout task_b@v1") for h in hints)
    assert "Hint: task_c: adaptvc save --adapter task_c -m MESSAGE" in hints
    run_cli("checkout", "task_b@v1", check=True)  # the hint works
    assert "task_b" not in run_cli("status", check=True).stderr
    assert run_cli("status", "--json", check=True).stderr == ""


@pytest.mark.parametrize("args", [(), ("remote",), ("hooks",)])
def test_a_bare_command_group_shows_its_help_on_stdout(args):
    proc = run_cli(*args)
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.startswith(f"Usage: adaptvc {' '.join(args)}".rstrip() + " [OPTIONS] COMMAND")


def test_dash_c_runs_a_command_as_if_started_in_that_directory(avc_repo, tmp_path):
    write_adapter("adapters/task_a", 0)
    run_cli("save", "--adapter", "task_a", "-m", "first", cwd=avc_repo, check=True)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "deeper").mkdir(parents=True)
    # from outside the repository, absolute and relative, and -C twice (each relative to the last)
    absolute = run_cli("-C", str(avc_repo), "log", "task_a", "--json", cwd=elsewhere, check=True)
    assert [v["ref"] for v in json.loads(absolute.stdout)] == ["task_a@v1"]
    relative = run_cli(
        "-C", "..", "-C", os.path.relpath(avc_repo, elsewhere), "status", "--json", cwd=elsewhere / "deeper"
    )
    assert relative.returncode == 0, relative.stderr
    assert json.loads(relative.stdout)[0]["version"] == "task_a@v1"
    # a path relative to -C: export into the repository's own folder
    run_cli("-C", str(avc_repo), "export", "task_a@v1", "out", cwd=elsewhere, check=True)
    assert (avc_repo / "out" / "adapter_config.json").is_file() and not (elsewhere / "out").exists()
    # not a directory: a usage error (exit 2) naming it, nothing run
    missing = run_cli("-C", str(tmp_path / "nope"), "log", cwd=elsewhere)
    assert missing.returncode == 2 and "nope" in missing.stderr


def test_dash_c_leaves_an_in_process_caller_where_it_was(avc_repo, tmp_path, monkeypatch):
    from adaptvc.cli.main import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(["-C", str(avc_repo), "status"])
    assert done.value.code in (0, None)
    assert Path.cwd() == tmp_path
