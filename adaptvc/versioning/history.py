"""Looking at versions: ``log``, ``show``, ``status``; and naming them: ``alias``."""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from adaptvc.errors import AdapterNotFoundError
from adaptvc.manifest import ALIASES_NAME, MANIFEST_NAME, AdapterVersion, appended
from adaptvc.refs import parse_ref, resolve_version, validate_alias, validate_name
from adaptvc.repo import AdapterRepo
from adaptvc.storage import git_ops
from adaptvc.storage.lock import signals_deferred
from adaptvc.versioning.recovery import JOURNAL_NAME
from adaptvc.versioning.workspace import AdapterStatus, FileTransaction, adapter_status


ALIAS_TRAILER = "Adaptvc-Alias"


def newest_first(versions: list[AdapterVersion]) -> list[AdapterVersion]:
    return sorted(versions, key=lambda v: (v.created_at, v.version), reverse=True)


def log_versions(repo: AdapterRepo, adapter: str | None = None) -> list[AdapterVersion]:
    """Versions newest first (grouped by adapter when ``adapter`` is None), commits filled
    in by ONE ``git log`` over the manifests, whatever the number of versions."""
    repo.settle_interrupted()
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
    repo.settle_interrupted()
    return resolve_version(repo, ref, with_commit=True)


def status(repo: AdapterRepo) -> list[AdapterStatus]:
    """Every adapter directory: the version it is at and whether it changed since; and
    every adapter whose directory was deleted while its versions are in HEAD (``deleted``)."""
    repo.settle_interrupted()
    return [adapter_status(repo, name, repo.versions(name)) for name in repo.list_adapters(committed=True)]


def set_alias(repo: AdapterRepo, ref: str, alias: str) -> AdapterVersion:
    """Point ``NAME@alias`` at ``ref``'s version; the move is one commit of
    ``adapters/NAME/aliases.jsonl`` (append-only, newest record wins)."""
    validate_alias(alias)
    parsed = parse_ref(ref)
    repo.state_dir.mkdir(parents=True, exist_ok=True)
    with repo.lock():
        version = resolve_version(repo, parsed, with_commit=False)
        if not version:  # pragma: no cover - resolve raises
            raise AdapterNotFoundError(f"no adapter {parsed.adapter!r}")
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")
        record = {"alias": alias, "adapter": version.adapter, "version": version.version, "id": version.id,
                  "created_at": now, "author": git_ops.author_ident(repo.root)}
        path = repo.adapter_dir(version.adapter) / ALIASES_NAME
        rel = f"{repo.adapter_rel(version.adapter)}/{ALIASES_NAME}"
        head = git_ops.head_commit(repo.root)
        index_before = git_ops.index_entries(repo.root, [rel])
        # A trailer that names this move alone: how a rollback (or the next command, after
        # SIGKILL: adaptvc.versioning.recovery) tells whether HEAD already holds it.
        marker = f"{ALIAS_TRAILER}: {version.adapter}@{alias} {now}"
        backup_root = Path(tempfile.mkdtemp(dir=repo.state_dir, prefix="alias-"))
        txn = FileTransaction(backup_root / "backup", journal=repo.state_dir / JOURNAL_NAME, journal_data={
            "operation": "alias", "pid": os.getpid(), "head": head, "marker": marker, "paths": [rel],
            "remove": [], "index": index_before, "tag": f"{version.adapter}@{alias}",
            "backup_root": str(backup_root)})
        commit = None
        try:
            txn.write_bytes(path, appended(path, [json.dumps(record, sort_keys=True, separators=(",", ":"))]))
            commit = git_ops.commit_paths(repo.root, [rel], f"{version.adapter}@{alias} -> {version.ref}\n\n{marker}\n",
                                          tmp_dir=repo.state_dir, expected_head=head)
            git_ops.refresh_index(repo.root, [rel])
            txn.drop_journal()
        except BaseException:
            with signals_deferred():
                current = git_ops.head_commit(repo.root)
                if commit is None and current != head and marker in git_ops.run_git(
                        repo.root, "log", "-1", "--format=%B", "HEAD", check=False):
                    commit = current  # interrupted inside commit_paths, after HEAD moved
                txn.rollback()
                if commit:
                    git_ops.move_head_back(repo.root, head, commit)
                git_ops.restore_index_entries(repo.root, [rel], index_before)
                txn.drop_journal()
            raise
        finally:
            shutil.rmtree(backup_root, ignore_errors=True)
    return replace(version, aliases=tuple(sorted({*version.aliases, alias})))


def summary_dict(v: AdapterVersion) -> dict[str, Any]:
    return v.to_dict()
