"""The ``adaptvc`` entry point: the command group and the one error handler.

Commands live in sibling modules (one per concern) and are attached here. Nothing
imported at module level may pull in torch, transformers, peft or ``dvc.repo``:
``adaptvc --help`` must start fast (tests/test_cli_startup.py checks it).
"""

from __future__ import annotations

import os
import sys

import click

from adaptvc import __version__
from adaptvc.cli.output import terminal_progress
from adaptvc.errors import AdaptvcError
from adaptvc.progress import progress_to

TRACEBACK_ENV = "ADAPTVC_TRACEBACK"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="adaptvc")
@click.option(
    "--traceback",
    is_flag=True,
    envvar=TRACEBACK_ENV,
    help=f"Show the full Python traceback on unexpected errors (or set {TRACEBACK_ENV}=1).",
)
@click.pass_context
def cli(ctx: click.Context, traceback: bool) -> None:
    """Version control for fine-tuned LoRA-style adapters, built on git and DVC.

    \b
    A typical life of an adapter:
      adaptvc init                                  set up DVC and adaptvc in a git repo
      adaptvc save --adapter task_a -m "epoch 3"    version adapters/task_a/
      adaptvc log task_a                            versions, lineage, metrics
      adaptvc diff task_a@v2 task_a@v3              what changed, layer by layer
      adaptvc checkout task_a@v2                    older weights back in the workspace
      adaptvc push / adaptvc pull                   share through git + a DVC remote

    Run `adaptvc COMMAND --help` for the details of a command.
    """
    ctx.ensure_object(dict)
    ctx.obj["traceback"] = traceback


def _register_commands() -> None:
    # One import per command module; each module defines Click commands and adds
    # them to ``cli``. Keep these modules free of heavy imports at top level.
    from adaptvc.cli import convert_cmd, diff_cmd, hooks_cmd, inspect_cmd, remote_cmd, versioning_cmd

    for module in (versioning_cmd, diff_cmd, remote_cmd, hooks_cmd, inspect_cmd, convert_cmd):
        for command in module.COMMANDS:
            cli.add_command(command)


_register_commands()


def _split_traceback_flag(argv: list[str]) -> tuple[list[str], bool]:
    """Take ``--traceback`` out of ``argv`` wherever it is: the hint tells users to "run
    again with --traceback", and they add it at the end (``adaptvc diff a b --traceback``),
    where Click would reject it as an option of the subcommand."""
    if "--" in argv:
        head, tail = argv[: argv.index("--")], argv[argv.index("--"):]
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
        click.echo(f"Error: unexpected {type(exc).__name__}: {exc}", err=True)
        click.echo(f"Hint: run again with --traceback (or {TRACEBACK_ENV}=1) to see where it happened", err=True)
        sys.exit(1)
    # Non-standalone Click returns the exit code of --help/--version as an int.
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
