"""`adaptvc remote ...`: DVC remotes (team config committed, credentials personal).

Also `adaptvc push`, `adaptvc pull` and `adaptvc clone`, which move adapters through a git
remote plus a DVC remote. Every command is one call into :mod:`adaptvc.api`.
"""

from __future__ import annotations

import click

from adaptvc.cli.output import emit_json, info

COMMANDS: list = []


@click.group("remote")
def remote() -> None:
    """Manage the DVC remotes that hold the adapter weights.

    \b
    The URL and options are team configuration (.dvc/config, committed by adaptvc);
    credentials are personal (.dvc/config.local, never committed):
      adaptvc remote add storage s3://team-bucket/adapters --default
      adaptvc remote modify storage endpointurl http://127.0.0.1:9000
      adaptvc remote modify storage secret_access_key ... --local
    """


@remote.command("add")
@click.argument("name")
@click.argument("url")
@click.option("-d", "--default", "default", is_flag=True, help="Make it the default remote (push/pull/fetch use it).")
@click.option("--local", is_flag=True, help="A personal remote in .dvc/config.local (not committed).")
@click.option("-f", "--force", is_flag=True, help="Replace an existing remote of that name.")
def remote_add(name: str, url: str, default: bool, local: bool, force: bool) -> None:
    """Add a DVC remote NAME at URL (a directory, s3://, ssh://...)."""
    from adaptvc import api

    r = api.remote_add(name, url, default=default, local=local, force=force)
    where = ".dvc/config.local" if local else ".dvc/config (committed)"
    info(f"Added remote {r.name} -> {r.url}{' (default)' if r.default else ''} in {where}")


@remote.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list of remotes (secrets masked).")
def remote_list(as_json: bool) -> None:
    """List the remotes: NAME<TAB>URL[<TAB>(default)], like `dvc remote list`."""
    from adaptvc import api

    remotes = api.remote_list()
    if as_json:
        emit_json([r.to_dict() for r in remotes])
        return
    for r in remotes:
        click.echo(f"{r.name}\t{r.url}" + ("\t(default)" if r.default else ""))


@remote.command("remove")
@click.argument("name")
def remote_remove(name: str) -> None:
    """Remove the remote NAME (team and personal settings)."""
    from adaptvc import api

    api.remote_remove(name)
    info(f"Removed remote {name}")


@remote.command("modify")
@click.argument("name")
@click.argument("key")
@click.argument("value", required=False)
@click.option("--local", is_flag=True, help="Write to .dvc/config.local (required for credentials).")
@click.option("-u", "--unset", is_flag=True, help="Remove the option instead of setting it.")
def remote_modify(name: str, key: str, value: str | None, local: bool, unset: bool) -> None:
    """Set option KEY of remote NAME to VALUE (credentials need --local)."""
    from adaptvc import api

    if value is None and not unset:
        raise click.UsageError("VALUE is required (or --unset)")
    api.remote_modify(name, key, None if unset else value, local=local)
    where = ".dvc/config.local" if local else ".dvc/config (committed)"
    info(f"{'Unset' if unset else 'Set'} {key} of remote {name} in {where}")


COMMANDS.append(remote)
