"""``adaptvc verify``: check (and with --repair heal) the stored weights of every version."""

from __future__ import annotations

import click

from adaptvc import api
from adaptvc.cli.output import emit_json, human_bytes, info, style, terminal_progress
from adaptvc.errors import VerificationFailedError
from adaptvc.progress import progress_to

_COLOURS = {"ok": "green", "repaired": "cyan", "modified": "yellow"}


def _state(state: str | None) -> str:
    return style(state or "-", fg=_COLOURS.get(state or "", "red"))


def _print_report(report) -> None:
    width = max((len(o.local) for o in report.objects), default=2)
    for o in report.objects:
        where = f"  remote: {_state(o.remote)}" if o.remote is not None else ""
        pad = " " * (width - len(o.local))
        line = f"{_state(o.local)}{pad}  {o.md5[:12]}  {', '.join(o.versions)}{where}"
        click.echo(line + (f"  ({o.detail})" if o.detail else ""))
    for w in report.workspace:
        click.echo(f"{_state(w.state)}  {w.path}" + (f"  ({w.detail})" if w.detail else ""))


def _summary(report) -> str:
    counts = ", ".join(f"{n} {state.replace('_', ' ')}" for state, n in sorted(report.counts().items()))
    checked = f"; DVC remote {report.remote}{' (deep)' if report.deep else ''} checked" if report.remote else ""
    return (
        f"Verified {len(report.objects)} object(s) ({human_bytes(report.bytes_hashed)} hashed in "
        f"{report.seconds:.1f} s){checked}: {counts or 'nothing to check'}"
    )


@click.command("verify")
@click.argument("refs", nargs=-1, metavar="[REF]...")
@click.option("--all", "all_refs", is_flag=True, help="Also the versions recorded on every local branch and tag.")
@click.option(
    "-r",
    "--remote",
    "remote",
    metavar="NAME",
    help="Also check each object on this DVC remote (present, size); repairs use it too.",
)
@click.option("--deep", is_flag=True, help="Download each object from the remote and check its MD5 (slow).")
@click.option(
    "--repair",
    is_flag=True,
    help="Fetch missing or damaged local objects from the remote; upload again the ones the remote lacks or has damaged.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout instead of text.")
def verify_command(refs, all_refs, remote, deep, repair, quiet, as_json) -> None:
    """Rehash every version's stored weights; --repair heals them.

    Rehashes every DVC cache object the versions need (REF: NAME for every version of
    an adapter, NAME@vN for one; default: every version of every adapter) and each
    adapter's workspace weights. With --remote, also checks each object on that DVC
    remote: present and of the right size, and with --deep its MD5 after download.
    One line per object: ok, missing, corrupt or repaired. Exits 1 while anything stays
    missing or corrupt.

    --repair heals: a missing or damaged local object is fetched from the remote
    (--remote, else the default one; MD5-checked) or rebuilt from an intact workspace
    copy, and an object the remote lacks or holds damaged is uploaded again from the
    intact local copy.

    \b
    Examples:
      adaptvc verify
      adaptvc verify task_a@v2 --remote storage --deep
      adaptvc verify --repair
      adaptvc verify --all --remote storage --repair --json | jq .counts
    """
    with progress_to(terminal_progress(quiet=quiet or as_json)):
        report = api.verify(
            list(refs),
            all_refs=all_refs,
            remote=remote,
            check_remote=remote is not None or deep,
            deep=deep,
            repair=repair,
        )
    if as_json:
        emit_json(report)
    else:
        _print_report(report)
        info(_summary(report))
    broken = report.broken
    if broken:
        hint = (
            "the damaged or missing objects have no good copy here or on the remote: push them from a clone that "
            "has them (adaptvc push), then adaptvc verify --repair"
            if repair
            else "adaptvc verify --repair" + (f" --remote {remote}" if remote else "")
        )
        raise VerificationFailedError(f"{len(broken)} object(s) stay missing or corrupt", broken=len(broken), hint=hint)


COMMANDS = [verify_command]
