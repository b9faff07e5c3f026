"""`adaptvc hooks install|uninstall|status` and the hidden `adaptvc hooks run` the hooks call."""

from __future__ import annotations

import sys

import click

from adaptvc import api
from adaptvc.cli.output import emit_json, info, terminal_progress
from adaptvc.progress import progress_to

COMMANDS: list = []

JSON_HELP = "Print one JSON document on stdout instead of text."


@click.group("hooks")
def hooks() -> None:
    """Manage the git hooks that keep weights in step with git.

    `adaptvc init` and `adaptvc clone` install them; these commands repair, inspect or
    remove them.

    \b
    post-checkout, post-merge  weights follow `git checkout`, `git switch`, `git pull`
    post-rewrite               repair an adapter git mixed from two versions after a rebase
    pre-push                   upload the weights of the versions being pushed (or refuse)
    pre-commit                 refuse weight files in git and pointers with no object
    Your own hooks are kept and run first; core.hooksPath is honoured.

    \b
    Examples:
      adaptvc hooks status
      adaptvc hooks install      # after moving or recreating the virtualenv
    """


def _print_status(statuses, as_json: bool) -> None:
    if as_json:
        emit_json([s.to_dict() for s in statuses])
        return
    name_width = max((len(s.name) for s in statuses), default=0)
    state_width = max((len(s.state) for s in statuses), default=0)
    for s in statuses:
        extra = f"  (runs your {s.chained.name} first)" if s.chained else ""
        click.echo(f"{s.name:<{name_width}}  {s.state:<{state_width}}  {s.path}{extra}")


@hooks.command("install")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def hooks_install(as_json: bool) -> None:
    """Install or repair adaptvc's git hooks.

    Your existing hooks are kept and run first. Safe to run again; needed when the
    Python the hooks call has moved (state `stale`).

    \b
    Example:
      adaptvc hooks install
    """
    statuses = api.hooks_install()
    _print_status(statuses, as_json)
    info("adaptvc's git hooks are installed; `adaptvc hooks uninstall` removes them")


@hooks.command("uninstall")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def hooks_uninstall(as_json: bool) -> None:
    """Remove adaptvc's git hooks.

    The hooks they had replaced are put back; weights then no longer follow
    `git checkout`, and `git push` no longer uploads them.

    \b
    Example:
      adaptvc hooks uninstall
    """
    _print_status(api.hooks_uninstall(), as_json)
    info("adaptvc's git hooks are removed; `adaptvc hooks install` puts them back")


@hooks.command("status")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def hooks_status(as_json: bool) -> None:
    """Show the state of each git hook adaptvc uses.

    States: installed, stale (the Python it calls is gone: run `adaptvc hooks
    install`), foreign (another hook is there instead of adaptvc's) or missing.

    \b
    Example:
      adaptvc hooks status --json
    """
    _print_status(api.hooks_status(), as_json)


@hooks.command("run", hidden=True, context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def hooks_run(name: str, args: tuple[str, ...]) -> None:
    """Run one hook (called by the hook scripts with git's arguments)."""
    stdin = sys.stdin.read() if name in ("pre-push", "post-rewrite") else ""
    with progress_to(terminal_progress(quiet=False)):
        outcome = api.hooks_run(name, args, stdin=stdin)
    for message in outcome.messages:
        click.echo(message, err=True)
    if outcome.exit_code:
        sys.exit(outcome.exit_code)


COMMANDS.append(hooks)
