"""Looking at versions: ``log``, ``show``, ``status``; and naming them: ``alias``."""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import replace

from adaptvc.manifest import ALIASES_NAME, MANIFEST_NAME, AdapterVersion, appended, newest_first
from adaptvc.refs import parse_ref, resolve_version, validate_alias, validate_name
from adaptvc.repo import AdapterRepo
from adaptvc.storage import git_ops
from adaptvc.transaction import settle_interrupted, transaction
from adaptvc.versioning.workspace import AdapterStatus, adapter_status

ALIAS_TRAILER = "Adaptvc-Alias"


def log_versions(repo: AdapterRepo, adapter: str | None = None) -> list[AdapterVersion]:
    """Versions newest first (grouped by adapter when ``adapter`` is None), commits filled
    in by ONE ``git log`` over the manifests, whatever the number of versions."""
    settle_interrupted(repo)
    names = [validate_name(adapter)] if adapter else repo.list_adapters(committed=True)
    out: list[AdapterVersion] = []
    for name in names:
        out.extend(newest_first(repo.versions(name, must_exist=bool(adapter))))
    if out:
        specs = [f"{repo.adapter_rel(n)}/{MANIFEST_NAME}" for n in names]
        out = repo.attach_commits(out, specs)
    return out


def show_version(repo: AdapterRepo, ref: str) -> AdapterVersion:
    """One version in full (commit filled in)."""
    settle_interrupted(repo)
    return resolve_version(repo, ref, with_commit=True)


def status(repo: AdapterRepo) -> list[AdapterStatus]:
    """Every adapter directory: the version it is at and whether it changed since; and
    every adapter whose directory was deleted while its versions are in HEAD (``deleted``)."""
    settle_interrupted(repo)
    return [adapter_status(repo, name, repo.versions(name)) for name in repo.list_adapters(committed=True)]


def set_alias(repo: AdapterRepo, ref: str, alias: str) -> AdapterVersion:
    """Point ``NAME@alias`` at ``ref``'s version; the move is one commit of
    ``adapters/NAME/aliases.jsonl`` (append-only, newest record wins)."""
    validate_alias(alias)
    parsed = parse_ref(ref)
    repo.refuse_mid_operation("alias")
    with transaction(repo, "alias", f"{parsed.adapter}@{alias}") as txn:
        version = resolve_version(repo, parsed, with_commit=False)
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")
        record = {
            "alias": alias,
            "adapter": version.adapter,
            "version": version.version,
            "id": version.id,
            "created_at": now,
            "author": git_ops.author_ident(repo.root),
        }
        path = repo.adapter_dir(version.adapter) / ALIASES_NAME
        txn.write_bytes(path, appended(path, [json.dumps(record, sort_keys=True, separators=(",", ":"))]))
        # A trailer that names this move alone, for whoever reads the history.
        marker = f"{ALIAS_TRAILER}: {version.adapter}@{alias} {now}"
        txn.commit(
            [f"{repo.adapter_rel(version.adapter)}/{ALIASES_NAME}"],
            f"{version.adapter}@{alias} -> {version.ref}\n\n{marker}\n",
        )
    return replace(version, aliases=tuple(sorted({*version.aliases, alias})))
