"""`adaptvc hooks install|uninstall|status` and the hidden `adaptvc hooks run` the hooks call."""

from __future__ import annotations

import sys

import click

from adaptvc.cli.output import emit_json, info

COMMANDS: list = []


@click.group("hooks")
def hooks() -> None:
    """Git hooks that keep adapter weights in step with git.

    \b
    post-checkout, post-merge  weights follow `git checkout`, `git switch`, `git pull`
    pre-push                   upload the weights of the versions being pushed (or refuse)
    pre-commit                 refuse weight files in git and pointers with no object
    Your own hooks are kept and run first; core.hooksPath is honoured.
    """


def _print_status(statuses, as_json: bool) -> None:
    if as_json:
        emit_json([s.to_dict() for s in statuses])
        return
    for s in statuses:
        extra = f"  (runs your {s.chained.name} first)" if s.chained else ""
        click.echo(f"{s.name}\t{s.state}\t{s.path}{extra}")


@hooks.command("install")
@click.option("--json", "as_json", is_flag=True, help="Print the hooks' status as one JSON list.")
def hooks_install(as_json: bool) -> None:
    """Install adaptvc's hooks (your existing hooks are kept and chained)."""
    from adaptvc import api

    statuses = api.hooks_install()
    _print_status(statuses, as_json)
    info("adaptvc's git hooks are installed; `adaptvc hooks uninstall` removes them")


@hooks.command("uninstall")
@click.option("--json", "as_json", is_flag=True, help="Print the hooks' status as one JSON list.")
def hooks_uninstall(as_json: bool) -> None:
    """Remove adaptvc's hooks and put back the hooks they had replaced."""
    from adaptvc import api

    _print_status(api.hooks_uninstall(), as_json)


@hooks.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list.")
def hooks_status(as_json: bool) -> None:
    """Show each hook: installed, stale (its Python is gone), foreign or missing."""
    from adaptvc import api

    _print_status(api.hooks_status(), as_json)


@hooks.command("run", hidden=True, context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def hooks_run(name: str, args: tuple[str, ...]) -> None:
    """Run one hook (called by the hook scripts with git's arguments)."""
    from adaptvc.cli.output import terminal_progress
    from adaptvc.hooks.actions import run
    from adaptvc.progress import progress_to

    stdin = sys.stdin.read() if name == "pre-push" else ""
    with progress_to(terminal_progress(quiet=False)):
        outcome = run(name, list(args), stdin=stdin)
    for message in outcome.messages:
        click.echo(message, err=True)
    if outcome.exit_code:
        sys.exit(outcome.exit_code)


COMMANDS.append(hooks)
