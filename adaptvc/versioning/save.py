"""``save``: one version of one adapter, as one transaction.

Under the repository lock:

1. find and validate the adapter files (PEFT config, safetensors header, no base-model
   weights; a legacy ``.bin`` is converted in a staging directory) - nothing written yet;
2. put the weights in the DVC cache (hashing while copying: one pass). An orphan object
   after a failure is harmless, as with ``dvc add`` (``dvc gc`` removes it);
3. if the content (weights md5 and normalised config) equals the version the workspace
   is at, stop: no version is created;
4. write the adapter's files - config, weights, ``.dvc`` pointer, ``.gitignore``, the
   manifest line - each atomically and backed up;
5. commit exactly those paths (temporary index; HEAD moved by compare-and-swap), tag
   ``NAME@vN``, update those paths in the real index, record the per-clone state.

Any exception in 4-5 (Ctrl-C, SIGTERM and SIGHUP included: see
:mod:`adaptvc.storage.lock`) restores the files, moves HEAD back, deletes the tag and
restores the index entries: the repository is left as it was. A process killed outright
(SIGKILL) cannot undo anything itself; the journal ``.git/adaptvc/transaction.json``,
written before each file is replaced, lets the next adaptvc command that takes the lock
finish the job (:mod:`adaptvc.versioning.recovery`).
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import os
import re
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from adaptvc.errors import AdaptvcError, InvalidAdapterError
from adaptvc.formats import CONFIG_NAME, LEGACY_WEIGHTS_NAME, WEIGHTS_NAME
from adaptvc.manifest import AdapterVersion, PeftSummary, appended, dumps_record
from adaptvc.refs import resolve_version, validate_name
from adaptvc.repo import AdapterRepo
from adaptvc.storage import git_ops
from adaptvc.storage.dvc_cache import dumps_pointer
from adaptvc.storage.lock import signals_deferred
from adaptvc.versioning import validate
from adaptvc.base_model import base_model_link
from adaptvc.versioning.recovery import JOURNAL_NAME
from adaptvc.versioning.workspace import (
    POINTER_NAME,
    FileTransaction,
    committed_missing_files,
    config_bytes,
    ensure_gitignore,
    sha256,
    state_record,
    workspace_version,
)

log = logging.getLogger("adaptvc")
_TAG_VERSION_RE = re.compile(r"@v([0-9]+)$")


def check_metrics(metrics: Mapping[str, Any] | None) -> dict[str, Any]:
    """Metrics as JSON values: numbers (finite), strings, booleans."""
    out: dict[str, Any] = {}
    for key, value in (metrics or {}).items():
        if not isinstance(key, str) or not key:
            raise InvalidAdapterError(f"metric name {key!r} must be a non-empty string")
        if hasattr(value, "item"):  # numpy / torch scalars
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidAdapterError(f"metric {key}={value} is not a finite number")
        if not isinstance(value, (int, float, str, bool)) and value is not None:
            raise InvalidAdapterError(f"metric {key}={value!r}: use a number or a string")
        out[key] = value
    return out


def parse_metric(text: str) -> tuple[str, Any]:
    """``"eval_loss=1.92"`` → ``("eval_loss", 1.92)``; non-numbers stay strings."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise InvalidAdapterError(f"metric {text!r} is not KEY=VALUE", hint="--metric eval_loss=1.92")
    raw = raw.strip()
    value: Any = raw
    for cast in (int, float):
        try:
            value = cast(raw)
            break
        except ValueError:
            continue
    return key.strip(), value


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def _next_number(repo: AdapterRepo, adapter: str, versions: list[AdapterVersion]) -> int:
    """1 + the highest N in the manifest or among this clone's ``NAME@vN`` tags, so two
    branches of one clone never mint the same number (clones can: see docs)."""
    numbers = [v.version for v in versions]
    for tag in git_ops.tag_names(repo.root, f"{adapter}@v*"):
        m = _TAG_VERSION_RE.search(tag)
        if m and tag.startswith(f"{adapter}@"):
            numbers.append(int(m.group(1)))
    return max(numbers, default=0) + 1


def _commit_message(version: AdapterVersion) -> str:
    first, _, rest = version.message.strip().partition("\n")
    body = f"\n\n{rest.strip()}" if rest.strip() else ""
    trailer = git_ops.trailer_value(version.adapter, version.version, version.id, version.created_at)
    return f"{version.ref}: {first}{body}\n\n{git_ops.TRAILER}: {trailer}\n"


def _peft_summary(config: dict[str, Any], weights: Path) -> PeftSummary:
    from adaptvc.formats.safetensors_header import read_header

    header = read_header(weights)
    tm = config.get("target_modules")
    return PeftSummary(
        type=str(config.get("peft_type")),
        r=config.get("r"),
        alpha=config.get("lora_alpha"),
        target_modules=tuple(sorted(tm)) if isinstance(tm, (list, tuple, set)) else tm,
        parameter_count=header.parameter_count,
        bytes=header.file_size,
        task_type=config.get("task_type"),
    )


def save_version(
    repo: AdapterRepo,
    adapter: str,
    message: str,
    *,
    source: str | os.PathLike[str] | None = None,
    metrics: Mapping[str, Any] | None = None,
    parent: str | None = None,
    base_model: str | None = None,
) -> AdapterVersion:
    """Record the adapter's current files as a new version (see the module docstring).

    Args:
        repo: an initialised repository.
        adapter: the adapter's name (``adapters/<adapter>/``).
        message: what this version is ("epoch 3").
        source: a training output to copy in (``--from``); default: the adapter's directory.
        metrics: ``{"eval_loss": 1.92}``.
        parent: a ref recorded as the parent instead of the version the workspace is at
            (e.g. a fork from another adapter).
        base_model: overrides ``base_model_name_or_path`` for the base-model link.

    Returns:
        The new version (``new=True``), or the version the workspace is at when the
        content is identical (``new=False``; nothing was written).

    Raises:
        InvalidAdapterError: bad or missing files, base-model weights, a bad metric.
        LockTimeoutError: another adaptvc process kept the lock.
        GitError: git refused (e.g. no identity); nothing was changed.
    """
    validate_name(adapter)
    if not message or not message.strip():
        raise InvalidAdapterError("a version needs a message", hint='adaptvc save --adapter NAME -m "what changed"')
    metrics = check_metrics(metrics)
    target = repo.adapter_dir(adapter)
    src = validate.pick_source(Path(source) if source is not None else target, adapter)
    in_place = src.resolve() == target.resolve()
    repo.state_dir.mkdir(parents=True, exist_ok=True)

    with repo.lock():
        with tempfile.TemporaryDirectory(dir=repo.state_dir, prefix="save-") as tmp:
            stage = Path(tmp)
            from adaptvc.formats.adapter_config import read_config

            config = read_config(src / CONFIG_NAME)
            cbytes = config_bytes(config)
            weights = validate.weights_file(src)
            converted = weights.name == LEGACY_WEIGHTS_NAME
            if converted:
                weights = _convert_bin(src, stage / "converted")
            validate.check_weights(weights, config)

            md5, size = repo.dvc_cache.add(weights)
            versions = repo.versions(adapter)
            at = workspace_version(repo, adapter, versions)
            if at is not None and at.id == md5 and at.config_sha256 == sha256(cbytes):
                log.info("%s: content identical to %s; no version created", adapter, at.ref)
                return replace(at, new=False)

            parents = (resolve_version(repo, parent, with_commit=False).link(),) if parent else ()
            if not parent:
                base = at or (max(versions, key=lambda v: (v.created_at, v.version)) if versions else None)
                parents = (base.link(),) if base else ()

            version = AdapterVersion(
                adapter=adapter,
                version=_next_number(repo, adapter, versions),
                id=md5,
                size=size,
                message=message.strip(),
                author=git_ops.author_ident(repo.root),
                created_at=_now(),
                parents=parents,
                base_model=base_model_link(config, override=base_model, root=Path.cwd()),
                peft=_peft_summary(config, weights),
                metrics=metrics,
                config_sha256=sha256(cbytes),
                config_blob=git_ops.hash_object(repo.root, cbytes),
                directory=repo.adapter_rel(adapter),
            )
            commit = _write_and_commit(repo, version, cbytes, in_place=in_place, converted=converted,
                                       backup_dir=stage / "backup")
    # During a rebase HEAD is detached, but what is committed there lands on the branch.
    rebasing = any((repo.git_dir / d).exists() for d in ("rebase-merge", "rebase-apply"))
    if not rebasing and git_ops.run_git(repo.root, "symbolic-ref", "-q", "HEAD", check=False) == "":
        log.warning("HEAD is detached: %s is on no branch (only its tag keeps it; `git switch` elsewhere and "
                    "the branch's manifest will not list it); keep it with: git switch -c BRANCH", version.ref)
    if git_ops.run_git(repo.root, "config", "--get", "merge.adaptvc.driver", check=False) == "":
        log.warning("this clone has no adaptvc merge driver (git does not copy .git/config when cloning), so "
                    "merging a branch that also saved %s will conflict; run `adaptvc init` once in this clone",
                    adapter)
    log.info("saved %s (%s)", version.ref, md5[:12])
    return replace(version, commit=commit, new=True)


def _convert_bin(src: Path, stage: Path) -> Path:
    """Convert a legacy ``adapter_model.bin`` in a staging copy (the source is untouched)."""
    import shutil

    from adaptvc.formats.legacy_bin import convert

    stage.mkdir(parents=True)
    shutil.copy2(src / CONFIG_NAME, stage / CONFIG_NAME)
    shutil.copy2(src / LEGACY_WEIGHTS_NAME, stage / LEGACY_WEIGHTS_NAME)
    return Path(convert(stage))


def _write_and_commit(repo: AdapterRepo, version: AdapterVersion, cbytes: bytes, *, in_place: bool,
                      converted: bool, backup_dir: Path) -> str:
    root = repo.root
    d = repo.adapter_dir(version.adapter)
    rel = repo.adapter_rel(version.adapter)
    paths = [f"{rel}/{CONFIG_NAME}", f"{rel}/{POINTER_NAME}", f"{rel}/.gitignore", f"{rel}/versions.jsonl"]
    head = git_ops.head_commit(root)
    saved_index = git_ops.index_entries(root, paths + [f"{rel}/{WEIGHTS_NAME}"])
    trailer = git_ops.trailer_value(version.adapter, version.version, version.id, version.created_at)
    txn = FileTransaction(backup_dir, journal=repo.state_dir / JOURNAL_NAME, journal_data={
        "operation": "save", "pid": os.getpid(), "head": head, "trailer": trailer, "tag": version.ref,
        "tag_message": f"{version.ref}: {version.message}", "paths": paths, "remove": [f"{rel}/{WEIGHTS_NAME}"],
        "index": saved_index, "adapter": version.adapter, "state": state_record(version),
        "backup_root": str(backup_dir.parent),
    })
    txn.write_journal()
    commit: str | None = None
    tagged = False
    try:
        d.mkdir(parents=True, exist_ok=True)
        if not (d / CONFIG_NAME).is_file() or (d / CONFIG_NAME).read_bytes() != cbytes:
            txn.write_bytes(d / CONFIG_NAME, cbytes)
        if not in_place or converted:
            txn.put(d / WEIGHTS_NAME, lambda p: repo.dvc_cache.materialise(version.id, p))
            if in_place and converted:
                txn.remove(d / LEGACY_WEIGHTS_NAME)
        txn.write_bytes(d / POINTER_NAME, dumps_pointer(version.id, version.size, WEIGHTS_NAME).encode())
        # Directory deleted (rm -rf) while its versions are committed: the manifest (and
        # aliases, .gitignore) come back from HEAD first, so this version extends the history.
        for fname, data in committed_missing_files(repo, version.adapter).items():
            txn.write_bytes(d / fname, data)
        ignore = ensure_gitignore(d / ".gitignore")
        if ignore is not None:
            txn.write_bytes(d / ".gitignore", ignore)
        txn.write_bytes(d / "versions.jsonl", appended(d / "versions.jsonl", [dumps_record(version)]))

        commit = git_ops.commit_paths(root, paths, _commit_message(version), tmp_dir=backup_dir.parent,
                                      expected_head=head, remove=[f"{rel}/{WEIGHTS_NAME}"])
        tagged = git_ops.create_tag(root, version.ref, commit, f"{version.ref}: {version.message}")
        if not tagged:
            log.warning("tag %s already exists (another branch); %s is addressed by its id", version.ref, version.ref)
        git_ops.refresh_index(root, paths, remove=[f"{rel}/{WEIGHTS_NAME}"])
        repo.state.set_at(version.adapter, state_record(version))
        repo.state.remember(d / WEIGHTS_NAME, version.id, written_by_us=not in_place or converted)
        txn.drop_journal()
        return commit
    except BaseException:
        # A second Ctrl-C or `kill` must not cut the rollback short: held off until it is done.
        with signals_deferred():
            if commit is None:  # interrupted inside commit_paths, maybe after HEAD moved
                commit = _our_commit_at_head(root, head, trailer)
            _undo(repo, txn, head, commit, version.ref if tagged else None, paths + [f"{rel}/{WEIGHTS_NAME}"],
                  saved_index)
            txn.drop_journal()
        raise


def _our_commit_at_head(root: Path, head: str | None, trailer: str) -> str | None:
    current = git_ops.head_commit(root)
    if current and current != head:
        message = git_ops.run_git(root, "log", "-1", "--format=%B", current, check=False)
        if f"{git_ops.TRAILER}: {trailer}" in message:
            return current
    return None


def _undo(repo: AdapterRepo, txn: FileTransaction, head: str | None, commit: str | None, tag: str | None,
          paths: list[str], saved_index: str) -> None:
    """Best effort, each step independent: put back files, HEAD, tag and index entries."""
    root = repo.root
    steps = [txn.rollback]
    if tag:
        steps.append(lambda: git_ops.delete_tag(root, tag))
    if commit:
        steps.append(lambda: git_ops.move_head_back(root, head, commit))
    steps.append(lambda: git_ops.restore_index_entries(root, paths, saved_index))
    for step in steps:
        try:
            step()
        except (AdaptvcError, OSError) as exc:  # report, keep undoing the rest
            log.error("rollback step failed: %s", exc)
