"""The ``adaptvc`` entry point: the command group and the one error handler.

Commands live in sibling modules (one per concern) and are attached here lazily: a
command's module is imported only when that command runs (or its help is shown), so
``adaptvc diff`` does not pay for parsing the other fifteen commands. ``adaptvc --help``
lists every command from the static table :data:`COMMAND_TABLE` (module and first
paragraph of the help; tests/test_cli_startup.py checks it against the commands
themselves). Nothing imported at module level may pull in torch, transformers, peft or
``dvc.repo``: ``adaptvc --help`` must start fast.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator, MutableMapping

import click

from adaptvc import __version__
from adaptvc.cli.output import terminal_progress
from adaptvc.errors import AdaptvcError, from_os_error
from adaptvc.progress import progress_to

TRACEBACK_ENV = "ADAPTVC_TRACEBACK"


# name → (module under adaptvc.cli, first paragraph of the command's help). The first
# paragraph is what `adaptvc --help` shows (shortened to the terminal's width exactly as
# Click shortens it); listing commands must not import their modules.
COMMAND_TABLE: dict[str, tuple[str, str]] = {
    "init": ("versioning_cmd", "Set up adaptvc in the current git repository."),
    "save": ("versioning_cmd", "Save the adapter's current files as a new version."),
    "log": ("versioning_cmd", "List versions newest first, with lineage and metrics."),
    "show": ("versioning_cmd", "Show one version in full."),
    "status": ("versioning_cmd", "Show which version each adapter is at, and its changes."),
    "checkout": ("versioning_cmd", "Put version REF's files into its adapter's directory."),
    "export": ("versioning_cmd", "Write version REF into DIRECTORY, in PEFT format."),
    "alias": ("versioning_cmd", "Point an alias such as task_a@production at version REF."),
    "diff": ("diff_cmd", "Compare two adapters layer by layer, without the base model."),
    "compare": ("overview_cmd", "Compare versions side by side: hyper-parameters and metrics."),
    "best": ("overview_cmd", "Print the ref of the best version of ADAPTER by a metric."),
    "report": ("overview_cmd", "Write a self-contained HTML report of the versions."),
    "remote": ("remote_cmd", "Manage the DVC remotes that hold the adapter weights."),
    "push": ("remote_cmd", "Upload weights to the DVC remote, then push to git."),
    "pull": ("remote_cmd", "Update the branch from git, then fetch the weights needed."),
    "clone": ("remote_cmd", "Clone a project and fetch the newest weights."),
    "hooks": ("hooks_cmd", "Manage the git hooks that keep weights in step with git."),
    "inspect": ("inspect_cmd", "Summarise the PEFT adapter in DIRECTORY, without torch."),
    "convert": ("convert_cmd", "Convert a legacy adapter_model.bin to safetensors."),
    "gc": ("storage_cmd", "Remove the weights of versions nobody keeps."),
    "du": ("storage_cmd", "Show the bytes each adapter and version takes."),
    "verify": ("verify_cmd", "Rehash every version's stored weights; --repair heals them."),
    "merge": ("algebra_cmd", "Merge saved LoRA versions into one new version."),
    "compress": ("algebra_cmd", "Reduce a saved LoRA version's rank, as a new version."),
}


class LazyCommands(MutableMapping):
    """``cli.commands``: the names of :data:`COMMAND_TABLE`, each command's module
    imported on first access to it (its ``COMMANDS`` list adds every command it defines).
    Membership and iteration never import anything."""

    def __init__(self, table: dict[str, tuple[str, str]]) -> None:
        self._table = table
        self._loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._loaded and name in self._table:
            module = importlib.import_module(f"adaptvc.cli.{self._table[name][0]}")
            for command in module.COMMANDS:
                self._loaded.setdefault(command.name, command)
        return self._loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self._loaded.pop(name, None)
        self._table = {k: v for k, v in self._table.items() if k != name}

    def __contains__(self, name: object) -> bool:
        return name in self._table or name in self._loaded

    def __iter__(self) -> Iterator[str]:
        return iter({**dict.fromkeys(self._table), **dict.fromkeys(self._loaded)})

    def __len__(self) -> int:
        return len({*self._table, *self._loaded})

    def listing(self, name: str) -> click.Command:
        """The command for the overview: the real one if loaded, else a stand-in with the
        table's help (Click shortens it the same way)."""
        if name in self._loaded or name not in self._table:
            return self[name]
        return click.Command(name, help=self._table[name][1])


class LazyGroup(click.Group):
    """A group whose overview lists commands without importing them."""

    commands: LazyCommands

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Click's Group.format_commands, with the stand-ins of unloaded commands.
        commands = [(name, cmd) for name in self.list_commands(ctx) if not (cmd := self.commands.listing(name)).hidden]
        if commands:
            limit = formatter.width - 6 - max(len(name) for name, _ in commands)
            rows = [(name, cmd.get_short_help_str(limit)) for name, cmd in commands]
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    commands=LazyCommands(COMMAND_TABLE),
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="adaptvc")
@click.option(
    "--traceback",
    is_flag=True,
    envvar=TRACEBACK_ENV,
    help=f"Show the full Python traceback on unexpected errors (or set {TRACEBACK_ENV}=1).",
)
@click.option(
    "-C",
    "directories",
    metavar="PATH",
    multiple=True,
    help="Run as if adaptvc was started in PATH instead of the current directory, as git -C does "
    "(several -C: each relative to the one before).",
)
@click.pass_context
def cli(ctx: click.Context, traceback: bool, directories: tuple[str, ...]) -> None:
    """Version control for fine-tuned LoRA-style adapters, built on git and DVC.

    \b
    A typical life of an adapter:
      adaptvc init                                  set up DVC and adaptvc in a git repo
      adaptvc save --adapter task_a -m "epoch 3"    version adapters/task_a/
      adaptvc log task_a                            versions, lineage, metrics
      adaptvc diff task_a@v2 task_a@v3              what changed, layer by layer
      adaptvc checkout task_a@v2                    older weights back in the workspace
      adaptvc push / adaptvc pull                   share through git + a DVC remote

    Scripts need not cd: adaptvc -C path/to/repo log task_a

    Run `adaptvc COMMAND --help` for the details of a command.
    """
    ctx.ensure_object(dict)
    ctx.obj["traceback"] = traceback
    if directories:
        start = os.getcwd()
        ctx.call_on_close(lambda: os.chdir(start))  # in-process callers keep their directory
        for directory in directories:
            try:
                os.chdir(directory)
            except OSError as exc:
                raise click.BadParameter(f"cannot change to {directory!r}: {exc.strerror}", param_hint="'-C'") from None
    # While the command runs, the library's warnings (logging) are printed once as
    # `Warning: ...` on stderr, and a --json document lists them. Imported here, not at
    # the top: it imports logging (~3 ms), which `adaptvc --help` does without.
    from adaptvc.cli.library_log import rendering_library_log

    ctx.with_resource(rendering_library_log())


def _split_traceback_flag(argv: list[str]) -> tuple[list[str], bool]:
    """Take ``--traceback`` out of ``argv`` wherever it is: the hint tells users to "run
    again with --traceback", and they add it at the end (``adaptvc diff a b --traceback``),
    where Click would reject it as an option of the subcommand."""
    if "--" in argv:
        head, tail = argv[: argv.index("--")], argv[argv.index("--") :]
    else:
        head, tail = argv, []
    wanted = "--traceback" in head
    return [a for a in head if a != "--traceback"] + tail, wanted


def _want_traceback(flag: bool = False) -> bool:
    return flag or os.environ.get(TRACEBACK_ENV, "") not in ("", "0")


def main(argv: list[str] | None = None) -> None:
    """Run the CLI: ``AdaptvcError`` → ``Error:``/``Hint:`` on stderr, exit 1.

    Usage mistakes are Click's (exit 2). Anything unexpected prints one line and how to
    see the traceback, unless ``--traceback`` / ``ADAPTVC_TRACEBACK=1`` asks for it.
    """
    argv, traceback_flag = _split_traceback_flag(list(sys.argv[1:] if argv is None else argv))
    # Plain `adaptvc` (or `adaptvc remote`, `adaptvc hooks`): the overview on stdout, as with
    # --help; Click would print it on stderr and exit 2, as for a mistake.
    if not argv or (len(argv) == 1 and isinstance(cli.commands.get(argv[0]), click.Group)):
        argv = [*argv, "--help"]
    if traceback_flag:
        argv = ["--traceback", *argv]
    try:
        # Transfers deep inside any command (checkout/export/diff fetching old weights
        # on demand) draw one progress bar on a terminal; commands with --quiet or
        # --json install their own (None) for their duration.
        with progress_to(terminal_progress(quiet=False)):
            rv = cli.main(args=argv, prog_name="adaptvc", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:  # usage errors, bad parameters: exit 2
        exc.show()
        sys.exit(exc.exit_code)
    except AdaptvcError as exc:
        click.echo(f"Error: {exc.message}", err=True)
        if exc.hint:
            click.echo(f"Hint: {exc.hint}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except BrokenPipeError:  # e.g. `adaptvc log | head`
        sys.exit(0)
    except Exception as exc:  # noqa: BLE001 - the one place that reports the unexpected
        if _want_traceback(traceback_flag):
            raise
        # A full disk, a permission: the operating system's refusal, said plainly.
        typed = from_os_error(exc) if isinstance(exc, OSError) else None
        if typed is not None:
            click.echo(f"Error: {typed.message}", err=True)
            click.echo(f"Hint: {typed.hint}", err=True)
            sys.exit(1)
        click.echo(f"Error: unexpected {type(exc).__name__}: {exc}", err=True)
        click.echo(f"Hint: run again with --traceback (or {TRACEBACK_ENV}=1) to see where it happened", err=True)
        sys.exit(1)
    # Non-standalone Click returns the exit code of --help/--version as an int.
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
