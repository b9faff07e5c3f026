"""Storage-life commands: ``gc`` (remove the weights of versions nobody keeps) and ``du``
(where the bytes are). Each parses, calls one :mod:`adaptvc.api` function and prints."""

from __future__ import annotations

from typing import Any

import click

from adaptvc import api
from adaptvc.cli.output import emit_json, human_bytes, info, style
from adaptvc.errors import AdaptvcError

JSON_HELP = "Print one JSON document on stdout instead of text."


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A duration option: checked here (a bad one is a usage error), passed on as typed."""
    if value is None:
        return None
    try:
        api.parse_duration(value)
    except AdaptvcError as exc:
        raise click.BadParameter(f"{exc.message}; {exc.hint}") from None
    return value


@click.command("gc")
@click.argument("adapters", nargs=-1, metavar="[ADAPTER]...")
@click.option(
    "--keep-last", type=click.IntRange(min=0), metavar="N", help="Keep the N newest versions of each adapter."
)
@click.option(
    "--keep-aliased/--no-keep-aliased",
    default=None,
    help="Keep versions an alias points at (the default).",
)
@click.option("--keep", "keep", multiple=True, metavar="REF", help="Always keep this version (repeatable).")
@click.option(
    "--older-than", metavar="DURATION", callback=_duration, help="Only versions older than this may go (30d, 12h, 2w)."
)
@click.option(
    "--remote", "-r", metavar="NAME", help="Remove from this DVC remote too (and protect the git remote's refs)."
)
@click.option(
    "--git-remote",
    default="origin",
    show_default=True,
    metavar="NAME",
    help="With --remote: the git remote whose refs (fetched first) keep versions too.",
)
@click.option(
    "--grace-period",
    metavar="DURATION",
    callback=_duration,
    help="Never remove remote objects younger than this (default 14d; 0 turns it off).",
)
@click.option(
    "--drop-training-state",
    is_flag=True,
    help="Versions that go lose only their training state (optimizer, scheduler, RNG); all keep their weights.",
)
@click.option("--dry-run", "dry_run", flag_value=True, default=True, help="Only list what would go (the default).")
@click.option("--yes", "-y", "dry_run", flag_value=False, help="Remove it.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def gc_command(
    adapters: tuple[str, ...],
    keep_last: int | None,
    keep_aliased: bool | None,
    keep: tuple[str, ...],
    older_than: str | None,
    remote: str | None,
    git_remote: str,
    grace_period: str | None,
    drop_training_state: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Remove the weights of versions nobody keeps.

    A dry run unless --yes: it lists what would go and the bytes freed. Always kept: the version each branch and tag points at (NAME@vN tags aside), HEAD and
    the work tree; with --remote, every ref of the git remote too; aliased versions
    (unless --no-keep-aliased) and --keep REFs. The policy decides among the rest:
    --keep-last N newest per adapter, and versions younger than --older-than stay.
    Settings not given come from [gc] in .adaptvc/config.toml (the team's policy).

    Without --remote, local copies the DVC remote holds are evicted (checkout fetches
    them back). With --remote, objects go from the remote too, except those younger than
    the grace period; versions whose weights are then nowhere are marked pruned in their
    manifest (committed: push it) and stay in the log with their config and metrics.

    \b
    Examples:
      adaptvc gc --keep-last 3                     # what would go, and the bytes freed
      adaptvc gc --keep-last 3 --yes               # evict those local copies
      adaptvc gc --older-than 30d --remote storage --yes
      adaptvc gc task_a --keep-last 5 --keep task_a@v1 --json
      adaptvc gc --keep-last 2 --drop-training-state --yes   # resume state of the 2 newest only
    """
    result = api.gc(
        list(adapters),
        keep_last=keep_last,
        keep_aliased=keep_aliased,
        keep=list(keep),
        older_than=older_than,
        remote=remote,
        git_remote=git_remote,
        grace_period=grace_period,
        dry_run=dry_run,
        drop_training_state=drop_training_state,
    )
    if as_json:
        emit_json(result.to_dict())
        return
    _render_gc(result)


def _render_gc(result: Any) -> None:
    goes = [v for v in result.versions if v.decision == "goes"]
    kept = [v for v in result.versions if v.decision != "goes"]
    where = f"the local cache and DVC remote {result.remote!r}" if result.remote else "the local cache"
    head = "Would remove" if result.dry_run else "Removed"
    info(f"Policy: {result.policy.describe()}; grace period {result.policy.to_dict()['grace_period']}")
    if not goes:
        click.echo(f"Nothing to remove from {where}: every version is kept.")
    else:
        click.echo(f"{head} the weights of {len(goes)} version(s) from {where}:")
        width = max(len(v.ref) for v in goes)
        for v in goes:
            click.echo(f"  {style(v.ref, fg='yellow'):<{width}}  {human_bytes(v.size):>9}  {v.action:<7}  ({v.reason})")
    for v in kept:
        info(f"  kept {v.ref}: {v.reason}")
    verb = "would free" if result.dry_run else "freed"
    freed = f"{human_bytes(result.local_bytes)} locally"
    if result.remote:
        freed += f", {human_bytes(result.remote_bytes)} on DVC remote {result.remote!r}"
    click.echo(f"{'Would free' if result.dry_run else 'Freed'} {freed}." if goes else f"Nothing {verb}.")
    if result.young:
        info(f"{len(result.young)} object(s) stay on the remote: younger than the grace period.")
    if result.only_copy:
        info(
            f"{len(result.only_copy)} object(s) stay in the local cache: no DVC remote holds them "
            "(adaptvc push first, or gc --remote NAME to prune them)."
        )
    for md5, why in result.failed.items():
        info(f"Warning: could not remove {md5}: {why} (run gc again)")
    if result.pruned and not result.dry_run:
        info(f"Marked pruned: {', '.join(result.pruned)} (commit {(result.commit or '')[:10]}); share it: adaptvc push")
    if result.dry_run and goes:
        info("Dry run: nothing was removed. Run again with --yes to remove.")


@click.command("du")
@click.argument("adapters", nargs=-1, metavar="[ADAPTER]...")
@click.option("--remote", "-r", metavar="NAME", help="Also count what this DVC remote holds.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def du_command(adapters: tuple[str, ...], remote: str | None, as_json: bool) -> None:
    """Show the bytes each adapter and version takes.

    Locally, and with --remote on the DVC remote too.

    Per version: size, whether the local DVC cache (and with --remote the DVC remote)
    holds it, and the versions it shares its weights with (stored once). Per adapter:
    totals, what sharing saves, and the base model's size beside the adapter's when the
    save measured it. At the end: what `adaptvc gc` with no flags would free under the
    policy in .adaptvc/config.toml.

    \b
    Examples:
      adaptvc du
      adaptvc du task_a --remote storage --json
    """
    usage = api.du(list(adapters), remote=remote)
    if as_json:
        emit_json(usage.to_dict())
        return
    for a in usage.adapters:
        _render_adapter(a, remote=usage.remote is not None)
    total = f"Total: {human_bytes(usage.local_bytes)} in the local cache"
    if usage.remote_bytes is not None:
        total += f", {human_bytes(usage.remote_bytes)} on DVC remote {usage.remote!r}"
    click.echo(total + f" (the cache holds {human_bytes(usage.cache_bytes)} in all).")
    if usage.shared_bytes:
        click.echo(f"Shared weights save {human_bytes(usage.shared_bytes)} over one copy per version.")
    if usage.gc is None:
        info("No retention policy in .adaptvc/config.toml ([gc] keep_last / older_than): gc would need flags.")
    else:
        click.echo(
            f"adaptvc gc ({usage.gc.policy.describe()}) would free {human_bytes(usage.gc.local_bytes)} locally"
            + (f", {human_bytes(usage.gc.remote_bytes)} on the remote." if usage.remote else ".")
        )


def _render_adapter(a: Any, *, remote: bool) -> None:
    line = f"{style(a.adapter, bold=True)}: {len(a.versions)} version(s), {human_bytes(a.bytes)}"
    line += f" ({human_bytes(a.local_bytes)} local"
    line += f", {human_bytes(a.remote_bytes)} on the remote)" if remote and a.remote_bytes is not None else ")"
    if a.shared_bytes:
        line += f"; sharing saves {human_bytes(a.shared_bytes)}"
    click.echo(line)
    if a.times_smaller:
        click.echo(
            f"  base model {a.base_model}: {human_bytes(a.base_model_bytes)}; the adapter "
            f"({human_bytes(a.newest_bytes)}) is about {a.times_smaller:,.0f}x smaller"
        )
    width = max((len(v.ref) for v in a.versions), default=0)
    for v in a.versions:
        where = ["local" if v.local else "-"]
        if remote:
            where.append("remote" if v.remote else "-")
        if v.pruned:
            where = ["pruned"]
        shared = f"  shares with {', '.join(v.shared_with)}" if v.shared_with else ""
        state = f"  + training state {human_bytes(v.training_state_bytes)}" if v.training_state_bytes else ""
        click.echo(f"  {v.ref:<{width}}  {human_bytes(v.bytes):>9}  {' '.join(where)}{shared}{state}")


COMMANDS = [gc_command, du_command]
