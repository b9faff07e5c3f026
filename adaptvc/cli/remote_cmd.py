"""`adaptvc remote ...`: DVC remotes (team config committed, credentials personal).

Also `adaptvc push`, `adaptvc pull` and `adaptvc clone`, which move adapters through a git
remote plus a DVC remote. Every command is one call into :mod:`adaptvc.api`.
"""

from __future__ import annotations

import click

from adaptvc import api
from adaptvc.cli.output import emit_json, human_bytes, info, terminal_progress, warn
from adaptvc.cli.params import not_empty
from adaptvc.progress import progress_to

COMMANDS: list = []


@click.group("remote")
def remote() -> None:
    """Manage the DVC remotes that hold the adapter weights.

    \b
    The URL and options are team configuration (.dvc/config, committed by adaptvc);
    credentials are personal (.dvc/config.local, never committed):
      adaptvc remote add storage s3://team-bucket/adapters --default
      adaptvc remote default storage
      adaptvc remote modify storage endpointurl http://127.0.0.1:9000
      adaptvc remote modify storage secret_access_key ... --local
    """


@remote.command("add")
@click.argument("name")
@click.argument("url", callback=not_empty)
@click.option("-d", "--default", "default", is_flag=True, help="Make it the default remote (push/pull/fetch use it).")
@click.option("--local", is_flag=True, help="A personal remote in .dvc/config.local (not committed).")
@click.option("-f", "--force", is_flag=True, help="Replace an existing remote of that name.")
def remote_add(name: str, url: str, default: bool, local: bool, force: bool) -> None:
    """Add a DVC remote NAME at URL for the weights.

    URL is a directory, s3://bucket/path, ssh://host/path, ... The remote goes to
    .dvc/config, committed by adaptvc (only that file), so teammates get it with git;
    --local keeps it personal.

    \b
    Examples:
      adaptvc remote add storage /mnt/team/adapter-store --default
      adaptvc remote add storage s3://team-bucket/adapters --default --force
    """
    r = api.remote_add(name, url, default=default, local=local, force=force)
    where = ".dvc/config.local" if local else ".dvc/config (committed)"
    info(f"Added remote {r.name} -> {r.url}{' (default)' if r.default else ''} in {where}")


@remote.command("list")
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON document on stdout instead of text (secrets masked)."
)
def remote_list(as_json: bool) -> None:
    """List the DVC remotes.

    One line per remote, NAME<TAB>URL[<TAB>(default)], like `dvc remote list`;
    --json adds each remote's level (repo, local, global) and options, secrets masked.

    \b
    Examples:
      adaptvc remote list
      adaptvc remote list --json | jq '.[] | select(.default) | .url'
    """
    remotes = api.remote_list()
    if as_json:
        emit_json([r.to_dict() for r in remotes])
        return
    if not remotes:
        info("No DVC remotes yet. Add one: adaptvc remote add NAME URL --default")
        return
    for r in remotes:
        click.echo(f"{r.name}\t{r.url}" + ("\t(default)" if r.default else ""))


@remote.command("remove")
@click.argument("name")
def remote_remove(name: str) -> None:
    """Remove the DVC remote NAME.

    Both its team settings (.dvc/config, committed) and your personal ones
    (.dvc/config.local) go; the objects already uploaded stay where they are.

    \b
    Example:
      adaptvc remote remove old-storage
    """
    api.remote_remove(name)
    info(f"Removed remote {name}")


@remote.command("default")
@click.argument("name", required=False)
@click.option("-u", "--unset", is_flag=True, help="Clear the default remote instead of setting it.")
@click.option("--local", is_flag=True, help="A personal default in .dvc/config.local (not committed).")
def remote_default(name: str | None, unset: bool, local: bool) -> None:
    """Make the existing DVC remote NAME the default.

    push, pull and on-demand fetches use the default remote unless given --remote.
    Like `dvc remote default`: without NAME, prints the current default on stdout.
    The default goes to .dvc/config, committed by adaptvc (only that file); --local
    sets a personal default for this clone instead.

    \b
    Examples:
      adaptvc remote default storage
      adaptvc remote default --unset
      adaptvc remote default                  # prints the current default
    """
    if name is not None and unset:
        raise click.UsageError("give NAME or --unset, not both")
    where = ".dvc/config.local" if local else ".dvc/config (committed)"
    if unset:
        api.remote_default(None, local=local)
        info(f"No default remote in {where}")
        return
    if name is None:
        current = next((r.name for r in api.remote_list() if r.default), None)
        if current is None:
            info("No default DVC remote. Set one: adaptvc remote default NAME")
        else:
            click.echo(current)
        return
    r = api.remote_default(name, local=local)
    assert r is not None  # None only when the default is cleared
    info(f"Default remote: {r.name} -> {r.url} in {where}")
    if not r.default:
        warn(
            "your .dvc/config.local names another default, which takes precedence in this clone "
            "(adaptvc remote default --unset --local)"
        )


@remote.command("modify")
@click.argument("name")
@click.argument("key")
@click.argument("value", required=False)
@click.option("--local", is_flag=True, help="Write to .dvc/config.local (required for credentials).")
@click.option(
    "--global", "global_", is_flag=True, help="Write to your DVC global config: applies to remote NAME in every clone."
)
@click.option("-u", "--unset", is_flag=True, help="Remove the option instead of setting it.")
def remote_modify(name: str, key: str, value: str | None, local: bool, global_: bool, unset: bool) -> None:
    """Set option KEY of the DVC remote NAME to VALUE.

    Options are DVC's (url, endpointurl, region, user, port, ...). Credentials
    (access keys, passwords) are refused in the committed .dvc/config: pass --local
    (this clone) or --global (every clone).

    \b
    Examples:
      adaptvc remote modify storage endpointurl http://127.0.0.1:9000
      adaptvc remote modify storage secret_access_key ... --local
      adaptvc remote modify storage region --unset
    """
    if value is None and not unset:
        raise click.UsageError("VALUE is required (or --unset)")
    if value is not None and not value.strip() and not unset:
        raise click.UsageError(f"VALUE is empty; to remove {key} use: adaptvc remote modify {name} {key} --unset")
    if local and global_:
        raise click.UsageError("--local and --global are exclusive")
    api.remote_modify(name, key, None if unset else value, local=local, global_=global_)
    where = "your DVC global config" if global_ else ".dvc/config.local" if local else ".dvc/config (committed)"
    info(f"{'Unset' if unset else 'Set'} {key} of remote {name} in {where}")


@click.command("push")
@click.argument("refs", nargs=-1)
@click.option(
    "-r", "--remote", "remote", metavar="NAME", help="DVC remote for the weights (default: the default remote)."
)
@click.option(
    "--git-remote",
    default="origin",
    show_default=True,
    metavar="NAME",
    help="Git remote for the branch and version tags.",
)
@click.option("--no-git", is_flag=True, help="Upload the weights only; push nothing to git.")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), metavar="N", help="Parallel uploads (default 4).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout instead of text.")
def push(refs, remote, git_remote, no_git, jobs, quiet, as_json) -> None:
    """Upload weights to the DVC remote, then push to git.

    Pushes the current branch and its version tags to the git remote once the weights
    are uploaded. REFS (task_a@v3, task_a) limit the upload to those versions; by default every
    version in the current commit's manifests that the DVC remote lacks is uploaded.
    If any upload fails, nothing is pushed to git.

    \b
    Examples:
      adaptvc push
      adaptvc push task_a@v3 --no-git          # only v3's weights, no git push
      adaptvc push -r backup --git-remote upstream
    """
    with progress_to(terminal_progress(quiet=quiet or as_json)):
        result = api.push(list(refs), remote=remote, git_remote=None if no_git else git_remote, jobs=jobs)
    if as_json:
        emit_json(result)
        return
    if result.uploaded:
        info(
            f"Uploaded {len(result.uploaded)} version(s) to DVC remote {result.remote} "
            f"({human_bytes(result.bytes)} in {result.seconds:.1f} s): {', '.join(result.uploaded)}"
        )
    elif result.already_there:
        there = result.already_there
        named = f": {', '.join(there)}" if len(there) <= 5 else ""
        info(f"DVC remote {result.remote} already has the weights of {len(there)} version(s){named}; nothing to upload")
    else:
        info("No saved versions to upload (save one: adaptvc save --adapter NAME -m MESSAGE)")
    if result.git_pushed:
        info(f"Pushed {result.branch} and its version tags to {result.git_remote}")


@click.command("pull")
@click.option(
    "-r", "--remote", "remote", metavar="NAME", help="DVC remote for the weights (default: the default remote)."
)
@click.option(
    "--git-remote", default="origin", show_default=True, metavar="NAME", help="Git remote to fast-forward from."
)
@click.option("--no-git", is_flag=True, help="Only fetch the weights the workspace needs.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout instead of text.")
def pull(remote, git_remote, no_git, quiet, as_json) -> None:
    """Update the branch from git, then fetch the weights needed.

    Fast-forwards the current branch and fetches version tags from the git remote, then
    downloads the weights of the version each adapter directory is at. Older versions
    are fetched when something needs them (checkout, export, diff).

    \b
    Examples:
      adaptvc pull
      adaptvc pull --no-git                   # only the weights the workspace needs
    """
    with progress_to(terminal_progress(quiet=quiet or as_json)):
        result = api.pull(remote=remote, git_remote=None if no_git else git_remote)
    if as_json:
        emit_json(result)
        return
    if result.git_remote:
        moved = result.old_commit != result.new_commit
        info(
            f"{result.branch}: "
            + (f"{(result.old_commit or '')[:8]}..{(result.new_commit or '')[:8]}" if moved else "already up to date")
        )
    for name in result.sync.updated:
        info(f"Updated the weights of {name}")
    # The pull's warnings were printed as they were logged (cli/library_log.py).


@click.command("clone")
@click.argument("url", callback=not_empty)
@click.argument("directory", required=False, callback=not_empty)
@click.option(
    "-r", "--remote", "remote", metavar="NAME", help="DVC remote for the weights (default: the default remote)."
)
@click.option("--no-hooks", is_flag=True, help="Do not install adaptvc's git hooks in the clone.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout instead of text.")
def clone(url, directory, remote, no_hooks, quiet, as_json) -> None:
    """Clone a project and fetch the newest weights.

    `git clone URL [DIRECTORY]`, then the per-clone set-up (merge driver, git hooks)
    and the weights of the newest version of every adapter from the default DVC
    remote; older versions are fetched when needed.

    \b
    Examples:
      adaptvc clone git@github.com:team/adapters.git
      adaptvc clone /srv/git/adapters.git teammate --no-hooks
    """
    with progress_to(terminal_progress(quiet=quiet or as_json)):
        result = api.clone(url, directory, remote=remote, hooks=not no_hooks)
    if as_json:
        emit_json(result)
        return
    info(f"Cloned into {result.path}" + (f"; weights of {', '.join(result.fetched)}" if result.fetched else ""))
    # The clone's warnings were printed as they were logged (cli/library_log.py).


COMMANDS.extend([remote, push, pull, clone])
