"""Versioning commands: init, save, log, show, status, checkout, export, alias.

Each command parses, calls one :mod:`adaptvc.api` function and prints: human text on
stdout, one JSON document with ``--json``, remarks on stderr. Nothing heavy is imported
here (``log``/``show``/``status`` must start fast).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import click

from adaptvc import api
from adaptvc.cli.output import emit_json, human_bytes, human_count, info, style
from adaptvc.cli.params import not_empty
from adaptvc.errors import AdapterNotFoundError, AdaptvcError
from adaptvc.progress import progress_to

JSON_HELP = "Print one JSON document on stdout instead of text."


# --- init -------------------------------------------------------------------------------


@click.command("init")
def init_command() -> None:
    """Set up adaptvc in the current git repository.

    Initialises DVC if the repository has none, writes .adaptvc/config.toml and the merge
    rules in .gitattributes (committed, those files only), and configures adaptvc's merge
    driver in .git/config. Safe to run again (and needed once in every new clone): a second
    run changes nothing and says so.

    \b
    Example:
      git init && adaptvc init
    """
    result = api.init(".")
    if not result.changes:
        info(f"adaptvc is already set up in {result.root}; nothing changed.")
        return
    for change in result.changes:
        info(f"  {change}")
    click.echo(f"Initialised adaptvc in {result.root}")


# --- save -------------------------------------------------------------------------------


def _parse_metrics(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> dict[str, Any]:
    """``--metric KEY=VALUE`` → dict; a malformed one is a usage error (exit 2)."""
    try:
        return dict(api.parse_metric(v) for v in values)
    except AdaptvcError as exc:
        raise click.BadParameter(f"{exc.message}; write it as KEY=VALUE, e.g. --metric eval_loss=1.92") from None


@click.command("save")
@click.option(
    "--adapter",
    "-a",
    "adapter",
    required=True,
    metavar="NAME",
    help="Name of the adapter (its directory is adapters/NAME/).",
)
@click.option("--message", "-m", required=True, metavar="MESSAGE", help="What this version is, e.g. 'epoch 3'.")
@click.option(
    "--from",
    "source",
    type=click.Path(file_okay=False, path_type=str),
    callback=not_empty,
    help="Copy the adapter in from a training output (a folder with <name>/ subfolders picks NAME's).",
)
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    metavar="KEY=VALUE",
    callback=_parse_metrics,
    help="A metric to record (repeatable).",
)
@click.option("--parent", metavar="REF", help="Record REF as the parent instead of the version the workspace is at.")
@click.option(
    "--base-model", metavar="PATH_OR_ID", help="Base model to link instead of the config's base_model_name_or_path."
)
@click.option(
    "--training-state",
    type=click.Path(file_okay=False, path_type=str),
    callback=not_empty,
    metavar="CHECKPOINT_DIR",
    help="Also store the Trainer checkpoint's optimizer, scheduler, RNG and trainer state (DVC, never git).",
)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def save_command(
    adapter: str,
    message: str,
    source: str | None,
    metrics: dict[str, Any],
    parent: str | None,
    base_model: str | None,
    training_state: str | None,
    as_json: bool,
) -> None:
    """Save the adapter's current files as a new version.

    Weights go to DVC (a stock .dvc pointer, the object in the DVC cache); config, pointer
    and manifest are committed to git in a commit that contains only this adapter's files,
    tagged NAME@vN. Whatever else you had staged or modified stays as it was. Saving content
    identical to the version the workspace is at creates no version.

    Companion files beside the adapter (tokenizer files, README.md, generation_config.json,
    chat_template.jinja; names set by companion_files in .adaptvc/config.toml) are part of
    the version: small text files in git, large or binary ones in DVC. --training-state
    stores a Trainer checkpoint's state too, so that training can resume from this version.

    \b
    Examples:
      adaptvc save --adapter task_a -m "epoch 3" --metric eval_loss=1.92
      adaptvc save --adapter task_a --from outputs/checkpoint-500 -m "step 500"
      adaptvc save --adapter task_a --from outputs/checkpoint-500 --training-state outputs/checkpoint-500 -m "step 500"
    """
    version = api.save(
        source,
        adapter=adapter,
        message=message,
        metrics=metrics,
        parent=parent,
        base_model=base_model,
        training_state=training_state,
    )
    if as_json:
        emit_json({**version.to_dict(), "created": version.new})
        return
    if not version.new:
        info(f"No changes: {version.directory}/ is identical to {version.ref}; no version created.")
        return
    commit = (version.commit or "")[:10]
    click.echo(
        f"Saved {style(version.ref, bold=True)} ({version.id[:12]}, {human_bytes(version.size)}) in commit {commit}"
    )


# --- log --------------------------------------------------------------------------------


def _short_time(iso: str) -> str:
    return iso[:16].replace("T", " ") if iso else "?"


def _metrics_text(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())


def _base_text(v) -> str:
    b = v.base_model
    text = b.name_or_path or "(not recorded)"
    if b.revision:
        text += f"@{b.revision}"
    if b.fingerprint:
        text += f" [{b.fingerprint.split(':')[-1][:8]}]"
    return text


def graph_rows(
    nodes: Sequence[Hashable], parents_of: Callable[[Hashable], list[Hashable]]
) -> list[tuple[str, Any, str]]:
    """A `git log --graph`-like drawing of a DAG listed newest first.

    Returns rows ``(prefix, node, continuation)`` for node lines (``continuation`` is the
    prefix for the node's detail lines) and ``(line, None, "")`` for the lines that join
    branches.
    """
    cols: list[Hashable | None] = []
    rows: list[tuple[str, Any, str]] = []
    for node in nodes:
        waiting = [i for i, k in enumerate(cols) if k == node]
        if len(waiting) > 1:  # branches meet at this node: draw "|/" and collapse them
            keep, merging = waiting[0], set(waiting[1:])
            line = [" "] * (2 * len(cols))
            for i in range(len(cols)):
                if i in merging:
                    line[2 * i - 1] = "/"
                elif cols[i] is not None:
                    line[2 * i] = "|"
            rows.append(("".join(line).rstrip(), None, ""))
            cols = [k for i, k in enumerate(cols) if i not in merging or i == keep]
        if node not in cols:
            cols.append(node)
        c = cols.index(node)
        prefix = "".join("* " if i == c else ("| " if k is not None else "  ") for i, k in enumerate(cols))
        parents = parents_of(node)
        cols[c] = parents[0] if parents else None
        for p in parents[1:]:
            if p not in cols:
                cols.append(p)
        while cols and cols[-1] is None:
            cols.pop()
        rows.append((prefix, node, "".join("| " if k is not None else "  " for k in cols)))
    return rows


def _render_log(versions: list) -> None:
    by_adapter: dict[str, list] = {}
    for v in versions:
        by_adapter.setdefault(v.adapter, []).append(v)
    for i, (name, vs) in enumerate(by_adapter.items()):
        if i:
            click.echo()
        _render_adapter_log(name, vs)


def _with_merge_inputs(name: str, nodes: list, key: dict, by_link: dict) -> tuple[list, dict]:
    """``nodes`` with a node for every input of a merge that is not one of ``name``'s
    listed versions (another adapter's), placed after the last version it is a parent of
    so the graph stays newest first; and each version's parents among the nodes."""
    parents: dict[Any, list] = {}
    last_child: dict[Any, int] = {}
    for i, k in enumerate(nodes):
        links = key[k].parents
        parents[k] = []
        for p in links:
            if p.adapter == name and (p.version, p.id) in by_link:
                parents[k].append(by_link[(p.version, p.id)])
            elif len(links) > 1:  # a merge: draw its other inputs too
                ext = ("input", p.adapter, p.version, p.id)
                parents[k].append(ext)
                last_child[ext] = i
    out = []
    for i, k in enumerate(nodes):
        out.append(k)
        out.extend(ext for ext, j in last_child.items() if j == i)
    return out, parents


def _render_adapter_log(name: str, vs: list) -> None:
    """One adapter's versions (newest first) as a graph with each version's details; a
    merge's inputs from other adapters are drawn as ``o`` nodes where its branches end."""
    key = {(v.version, v.id, v.created_at): v for v in vs}
    by_link: dict[tuple[int, str], Any] = {}
    for v in vs:  # newest first: keep the newest of identical links
        by_link.setdefault((v.version, v.id), (v.version, v.id, v.created_at))
    nodes, graph_parents = _with_merge_inputs(name, list(key), key, by_link)

    def parents_of(k):
        return graph_parents.get(k, [])

    ids_of: dict[int, set[str]] = {}
    for v in vs:  # one pass: a scan per number would be quadratic in the versions
        ids_of.setdefault(v.version, set()).add(v.id)
    dup = {n for n, ids in ids_of.items() if len(ids) > 1}
    out: list[str] = []  # echoed at once: a click.echo per line costs ~10 µs each
    for prefix, k, cont in graph_rows(nodes, parents_of):
        if k is None:
            out.append(prefix)
            continue
        if k[0] == "input":  # another adapter's version, merged into one of this adapter's
            _, adapter, number, vid = k
            out.append(prefix.replace("*", "o") + f"{adapter}@v{number}  {vid[:8]}  (merged in; adaptvc log {adapter})")
            continue
        v = key[k]
        ref = f"{v.adapter}@{v.id[:12]}" if v.version in dup else v.ref  # a vN two branches minted
        head = (
            f"{style(ref, fg='yellow', bold=True)}  {v.id[:8]}  {_short_time(v.created_at)}  {v.author.split(' <')[0]}"
        )
        if v.aliases:
            head += "  (" + ", ".join(v.aliases) + ")"
        out.append(prefix + head)
        details = []
        parents = [(f"{p.adapter}@{p.id[:12]}" if p.adapter == name and p.version in dup else p.ref) for p in v.parents]
        if parents:
            details.append("parents: " + ", ".join(parents))
        details.append(f"base: {_base_text(v)}")
        details.append(f"{human_bytes(v.size)}")
        if v.training_state:
            details.append(f"training state {human_bytes(v.training_state.size)}")
        out.append(f"{cont}    {_first_line(v.message)}")
        out.append(f"{cont}    " + " · ".join(details))
        if v.metrics:  # a line of their own: Trainer runs log many
            out.append(f"{cont}    metrics: " + _metrics_text(v.metrics))
        if v.pruned:
            out.append(f"{cont}    " + style(_pruned_text(v.pruned), fg="red"))
    if out:
        click.echo("\n".join(out))


def _pruned_text(p) -> str:
    return f"pruned {_short_time(p.pruned_at)} by {p.by.split(' <')[0]} (adaptvc gc, {p.policy}): weights gone"


@click.command("log")
@click.argument("adapter", required=False)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def log_command(adapter: str | None, as_json: bool) -> None:
    """List versions newest first, with lineage and metrics.

    Each version: ref, id, date, author, message, parents, base model, size and metrics.
    Every adapter when ADAPTER is not given. The lineage is drawn as a graph (a version
    saved after `checkout task_a@v2` branches off v2; merged team branches join).

    \b
    Examples:
      adaptvc log task_a
      adaptvc log --json | jq '.[] | {ref, metrics}'
    """
    if adapter and "@" in adapter:
        # `log` lists an adapter's versions; a ref names one version, which `show` prints.
        name = adapter.split("@", 1)[0]
        raise click.BadParameter(
            f"{adapter!r} is a ref; log takes an adapter name: `adaptvc log {name}` "
            f"(or `adaptvc show {adapter}` for that version)",
            param_hint="'ADAPTER'",
        )
    versions = api.log(adapter)
    if as_json:
        emit_json([v.to_dict() for v in versions])
        return
    if not versions:
        info(
            f"No versions of {adapter} saved yet. Save one: adaptvc save --adapter {adapter} -m MESSAGE"
            if adapter
            else "No versions saved yet. Save one: adaptvc save --adapter NAME -m MESSAGE"
        )
        return
    _render_log(versions)


# --- show -------------------------------------------------------------------------------


@click.command("show")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def show_command(ref: str, as_json: bool) -> None:
    """Show one version in full.

    Lineage, message, author, commit, base model (name, revision, fingerprint), PEFT
    summary (type, rank, alpha, targets, parameters), size, metrics and files.

    REF is NAME (the newest version), NAME@vN, NAME@<alias> or NAME@<id prefix>.

    \b
    Examples:
      adaptvc show task_a@v2
      adaptvc show task_a@production --json
    """
    v = api.show(ref)
    if as_json:
        emit_json(v.to_dict())
        return
    p = v.peft
    tm = ", ".join(p.target_modules) if isinstance(p.target_modules, tuple) else (p.target_modules or "-")
    rows = [
        ("version", v.ref + (f"  (aliases: {', '.join(v.aliases)})" if v.aliases else "")),
        ("id", v.id),
        ("message", v.message),
        ("author", v.author),
        ("created", v.created_at),
        ("commit", v.commit or "(not found in this branch's history)"),
        ("parents", ", ".join(f"{x.ref} ({x.id[:8]})" for x in v.parents) or "-"),
        ("base model", v.base_model.name_or_path or "(not recorded)"),
        ("  revision", v.base_model.revision or "-"),
        ("  fingerprint", v.base_model.fingerprint or "-"),
        ("type", p.type + (f" ({p.task_type})" if p.task_type else "")),
        ("rank", "-" if p.r is None else str(p.r)),
        ("alpha", "-" if p.alpha is None else f"{p.alpha:g}"),
        ("targets", tm),
        ("parameters", f"{human_count(p.parameter_count)} ({p.parameter_count:,})"),
        ("size", human_bytes(v.size)),
        ("companions", ", ".join(c.name for c in v.companions) or "-"),
        (
            "training state",
            f"{human_bytes(v.training_state.size)} in {len(v.training_state.files)} files" if v.training_state else "-",
        ),
        ("metrics", _metrics_text(v.metrics) or "-"),
    ]
    if v.pruned:
        rows.append(("pruned", f"{v.pruned.pruned_at} by {v.pruned.by} (policy: {v.pruned.policy})"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key:<{width}}  {value}")
    click.echo("files")
    files = v.files()
    path_width = max((len(f["path"]) for f in files), default=0)
    for f in files:
        where = f"dvc md5 {f['md5']}" if f["storage"] == "dvc" else "git"
        click.echo(f"  {f['path']:<{path_width}}  ({where})")


# --- status -----------------------------------------------------------------------------


_STATUS_HINTS = {
    "modified": "{name}: keep the changes with adaptvc save --adapter {name} -m MESSAGE, "
    "or drop them with adaptvc checkout {ref} --force",
    "weights missing": "{name}: adaptvc checkout {ref} (restores the weights, fetching them if needed)",
    "never saved": "{name}: adaptvc save --adapter {name} -m MESSAGE",
    "deleted": "{name}: adaptvc checkout {name} (restores the directory: files from git, weights from the DVC "
    "cache); or, to drop it for good, commit the deletion (git rm -r on its directory, git commit)",
}


@click.command("status")
@click.argument("adapters", nargs=-1, metavar="[ADAPTER]...")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def status_command(adapters: tuple[str, ...], as_json: bool) -> None:
    """Show which version each adapter is at, and its changes.

    One line per adapter in adapters/ (or per ADAPTER given): the version its directory is at, then its state:
    clean, modified (weights, config and/or companion files differ), weights missing (run
    `adaptvc checkout NAME@vN` or `adaptvc pull`), never saved, deleted (the directory is gone
    but its versions are committed: `adaptvc checkout NAME` restores it); and the newest version
    when the directory is at an older one. Files in an adapter's directory that no
    version holds (not adapter or companion files: see companion_files in
    .adaptvc/config.toml) are listed as "not versioned".

    \b
    Examples:
      adaptvc status
      adaptvc status task_a
      adaptvc status --json | jq '.[] | select(.state != "clean")'
    """
    statuses = api.status()
    if adapters:
        known = {s.adapter for s in statuses}
        for name in adapters:
            if name not in known:
                raise AdapterNotFoundError(
                    f"no adapter {name!r}"
                    + (f"; adapters: {', '.join(sorted(known))}" if known else "; no adapter saved yet"),
                    name=name,
                    hint="adaptvc status" if known else f"adaptvc save --adapter {name} -m MESSAGE",
                )
        statuses = [s for s in statuses if s.adapter in adapters]
    if as_json:
        emit_json([s.to_dict() for s in statuses])
        return
    if not statuses:
        info("No adapters yet. Save one: adaptvc save --adapter NAME -m MESSAGE")
        return
    width = max(len(s.adapter) for s in statuses)
    at_width = max(len(s.version.ref) if s.version else 1 for s in statuses)
    for s in statuses:
        at = s.version.ref if s.version else "-"
        extra = f" ({', '.join(s.changes)})" if s.state == "modified" and s.changes else ""
        if s.latest and s.version and s.latest != s.version:
            extra += f"  [latest: {s.latest.ref}]"
        colour = {"clean": "green", "modified": "yellow"}.get(s.state, "red")
        click.echo(f"{s.adapter:<{width}}  {at:<{at_width}}  {style(s.state, fg=colour)}{extra}")
        if s.unknown:
            click.echo(f"{'':<{width}}  not versioned: {', '.join(s.unknown)}")
    for s in statuses:  # the next command for each state that needs one (stderr: talk)
        hint = _STATUS_HINTS.get(s.state)
        if hint:
            info("Hint: " + hint.format(name=s.adapter, ref=s.version.ref if s.version else s.adapter))


# --- checkout / export / alias -----------------------------------------------------------


def _first_line(message: str) -> str:
    return next((line for line in (message or "").splitlines() if line.strip()), "(no message)")


QUIET_HELP = "No progress bar."


def _quiet_progress(quiet: bool) -> AbstractContextManager[None]:
    """With --quiet or --json, no progress bar for on-demand fetches (stderr stays quiet
    for scripts); otherwise the bar main() installed stays in force."""
    return progress_to(None) if quiet else nullcontext()


@click.command("checkout")
@click.argument("ref")
@click.option("--force", "-f", is_flag=True, help="Overwrite unsaved changes in the adapter's directory.")
@click.option("--quiet", "-q", is_flag=True, help=QUIET_HELP)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def checkout_command(ref: str, force: bool, quiet: bool, as_json: bool) -> None:
    """Put version REF's files into its adapter's directory.

    REF is NAME (the newest version), NAME@vN, NAME@<alias> or NAME@<id prefix>.
    Config from git, weights from the DVC cache (hash-checked, fetched from the DVC
    remote if missing); HEAD and other paths are not touched. The next save records REF
    as its parent. Unsaved changes in the directory are refused unless --force.

    \b
    Examples:
      adaptvc checkout task_a@v2
      adaptvc checkout task_a                 # back to the newest version
    """
    with _quiet_progress(quiet or as_json):
        v = api.checkout(ref, force=force)
    if as_json:
        emit_json(v.to_dict())
        return
    click.echo(f"{v.directory}/ is now at {style(v.ref, bold=True)} ({v.id[:12]}): {_first_line(v.message)}")


@click.command("export")
@click.argument("ref")
@click.argument("directory", type=click.Path(file_okay=False, path_type=str), callback=not_empty)
@click.option("--force", "-f", is_flag=True, help="Overwrite adapter files already in DIRECTORY.")
@click.option(
    "--training-state",
    is_flag=True,
    help="Also write the version's training state: a directory trainer.train(resume_from_checkpoint=DIR) resumes from.",
)
@click.option("--quiet", "-q", is_flag=True, help=QUIET_HELP)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def export_command(ref: str, directory: str, force: bool, training_state: bool, quiet: bool, as_json: bool) -> None:
    """Write version REF into DIRECTORY, in PEFT format.

    Writes adapter_config.json, the weights (adapter_model.safetensors) and the
    version's companion files (tokenizer, README.md, ...). With --training-state also
    the optimizer, scheduler, RNG and trainer state saved with it, so the Trainer
    resumes from DIRECTORY. DIRECTORY is created if needed; adapter files already there
    are refused unless --force. The result loads with PeftModel.from_pretrained; the
    workspace is not touched. Prints the directory written on stdout (what was exported
    on stderr).

    \b
    Examples:
      adaptvc export task_a@v2 /tmp/task_a_v2
      adaptvc export task_a@production deploy/task_a --force
      adaptvc export task_a@v6 resume/ --training-state   # then: trainer.train(resume_from_checkpoint="resume")
    """
    with _quiet_progress(quiet or as_json):
        out = api.export(ref, directory, force=force, training_state=training_state)
    v = api.show(ref)
    if as_json:
        emit_json({"ref": v.ref, "id": v.id, "directory": str(out)})
        return
    if not quiet:
        info(f"Exported {v.ref} ({v.id[:12]}) to {out}/")
    click.echo(str(out))  # stdout: the directory alone, for $(adaptvc export ...)


@click.command("alias")
@click.argument("ref")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def alias_command(ref: str, name: str, as_json: bool) -> None:
    """Point an alias such as task_a@production at version REF.

    NAME is the alias alone (production, best-eval); afterwards ADAPTER@NAME works
    wherever a ref does. Setting an existing alias moves it. Each move is a git commit
    of adapters/ADAPTER/aliases.jsonl, so its history is in `git log`.

    \b
    Examples:
      adaptvc alias task_a@v3 production
      adaptvc show task_a@production
    """
    v = api.alias(ref, name)
    if as_json:
        emit_json({"alias": f"{v.adapter}@{name}", "ref": v.ref, "id": v.id})
        return
    click.echo(f"{v.adapter}@{name} -> {v.ref}")


COMMANDS = [
    init_command,
    save_command,
    log_command,
    show_command,
    status_command,
    checkout_command,
    export_command,
    alias_command,
]
