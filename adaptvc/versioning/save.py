"""``save``: one version of one adapter, as one transaction.

It reads top to bottom, inside one :func:`~adaptvc.transaction.transaction`:

1. **read** (:func:`_read_source`): find and validate the adapter files (PEFT config,
   safetensors header, no base-model weights; a legacy ``.bin`` is converted in the
   transaction's scratch directory) - nothing written yet;
2. **store** the weights in the DVC cache, hashing while copying (one pass, which also
   stages the work tree's copy for ``--from``; reflinks where possible); the md5 is
   the version's id. If the content (weights md5 and normalised config) equals the
   version the workspace is at, stop: no version is created. An orphan object after a
   failure is harmless, as with ``dvc add`` (``dvc gc`` removes it);
3. **plan** (:func:`_plan`) the version: number, parents, base-model link, summary;
4. **commit** (:func:`_write_and_commit`): the adapter's files - config, weights, ``.dvc``
   pointer, ``.gitignore``, the manifest line - written through the transaction, then
   exactly those paths committed and tagged ``NAME@vN``.

Any failure, Ctrl-C or SIGTERM included, leaves the repository as it was; a process
killed outright is settled by the next command (see :mod:`adaptvc.transaction`).
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from adaptvc.base_model import base_model_link
from adaptvc.errors import InvalidAdapterError
from adaptvc.extract import save_adapter  # imports torch and peft only when it runs
from adaptvc.formats import CONFIG_NAME, LEGACY_WEIGHTS_NAME, WEIGHTS_NAME
from adaptvc.formats.adapter_dir import open_adapter_dir
from adaptvc.formats.legacy_bin import convert as convert_bin
from adaptvc.formats.safetensors_header import read_header
from adaptvc.manifest import (
    MANIFEST_NAME,
    AdapterVersion,
    BaseModelLink,
    ParentLink,
    PeftSummary,
    appended,
    dumps_record,
    newest,
)
from adaptvc.refs import resolve_version, validate_name
from adaptvc.repo import AdapterRepo
from adaptvc.storage import git_ops
from adaptvc.storage.dvc_cache import dumps_pointer
from adaptvc.transaction import Transaction, transaction
from adaptvc.versioning import validate
from adaptvc.versioning.companions import (
    gitignore_lines,
    source_companions,
    store_companions,
    store_training_state,
    write_extras,
)
from adaptvc.versioning.workspace import (
    POINTER_NAME,
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
            raise InvalidAdapterError(f"metric name {key!r} must be a non-empty string", hint="--metric eval_loss=1.92")
        if hasattr(value, "item"):  # numpy / torch scalars
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidAdapterError(
                f"metric {key}={value} is not a finite number",
                hint="give a finite number or a string: --metric loss=1.92",
            )
        if not isinstance(value, (int, float, str, bool)) and value is not None:
            raise InvalidAdapterError(
                f"metric {key}={value!r}: use a number or a string", hint="--metric eval_loss=1.92"
            )
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


@dataclass(frozen=True)
class _Request:
    """What the caller asked to save, checked."""

    adapter: str
    message: str
    metrics: dict[str, Any]
    parent: str | None
    base_model: str | None
    training_state: Path | None = None  # a Trainer checkpoint directory whose state to store
    parents: tuple[ParentLink, ...] = ()  # recorded as given (merge, compress): all the inputs
    base_link: BaseModelLink | None = None  # recorded as given instead of read from the config

    @classmethod
    def checked(
        cls,
        adapter: str,
        message: str,
        metrics: Mapping[str, Any] | None,
        parent: str | None,
        base_model: str | None,
        training_state: str | os.PathLike[str] | None = None,
    ) -> _Request:
        validate_name(adapter)
        if not message or not message.strip():
            raise InvalidAdapterError("a version needs a message", hint='adaptvc save --adapter NAME -m "what changed"')
        state = Path(training_state) if training_state is not None else None
        if state is not None and not state.is_dir():
            raise InvalidAdapterError(
                f"--training-state {state}: not a directory",
                path=str(state),
                hint="pass the Trainer's checkpoint directory, e.g. outputs/checkpoint-500",
            )
        return cls(adapter, message.strip(), check_metrics(metrics), parent, base_model, state)


@dataclass(frozen=True)
class _Source:
    """The adapter files a save versions, read and validated (nothing written yet)."""

    config: dict[str, Any]
    config_bytes: bytes
    weights: Path  # safetensors: the source's own, or converted from a legacy .bin in scratch space
    converted: bool  # the source held adapter_model.bin
    in_place: bool  # the source is the adapter's own directory
    staged: Path | None  # where the work tree's copy of the weights is written (None: in place)
    companions: dict[str, Path]  # companion files found beside the adapter


def save_version(
    repo: AdapterRepo,
    adapter: str,
    message: str,
    *,
    source: str | os.PathLike[str] | None = None,
    metrics: Mapping[str, Any] | None = None,
    parent: str | None = None,
    base_model: str | None = None,
    training_state: str | os.PathLike[str] | None = None,
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
        training_state: a Trainer checkpoint directory: its optimizer, scheduler, RNG and
            trainer state are stored with the version (one DVC directory object).

    Returns:
        The new version (``new=True``), or the version the workspace is at when the
        content is identical (``new=False``; nothing was written).

    Raises:
        InvalidAdapterError: bad or missing files, base-model weights, a bad metric.
        LockTimeoutError: another adaptvc process kept the lock.
        GitOperationInProgressError: a git merge, cherry-pick or revert stopped half-way.
        GitError: git refused (e.g. no identity); nothing was changed.
    """
    request = _Request.checked(adapter, message, metrics, parent, base_model, training_state)
    target = repo.adapter_dir(adapter)
    directory = validate.pick_source(Path(source) if source is not None else target, adapter)
    with transaction(repo, "save", adapter) as txn:
        version = _record(txn, request, directory, in_place=directory.resolve() == target.resolve())
    if version.new:
        warn_about_unusual_git_state(repo, version)
        log.info("saved %s (%s)", version.ref, version.id[:12])
    return version


def save_derived(
    txn: Transaction,
    directory: Path,
    *,
    adapter: str,
    message: str,
    parents: Sequence[AdapterVersion],
    metrics: Mapping[str, Any] | None = None,
) -> AdapterVersion:
    """Record ``directory`` (an adapter the caller computed in ``txn``'s scratch space) as
    a new version of ``adapter`` whose parents are ``parents``, in the caller's transaction.

    The base-model link is the first parent's: the inputs were checked to share it, and
    the config alone may not reach the base model to fingerprint it again. Call
    :func:`warn_about_unusual_git_state` once the transaction is over.
    """
    request = replace(
        _Request.checked(adapter, message, metrics, None, None),
        parents=tuple(p.link() for p in parents),
        base_link=parents[0].base_model if parents else None,
    )
    return _record(txn, request, directory, in_place=False)


def _record(txn: Transaction, request: _Request, directory: Path, *, in_place: bool) -> AdapterVersion:
    """Read, store, plan and commit one version (``new=False``: identical content, nothing done)."""
    repo = txn.repo
    src = _read_source(repo, directory, in_place=in_place, scratch=txn.workdir)
    # The source is read once: into the cache and, when the work tree needs a copy,
    # into a staged one beside it in the same pass (reflinks where the filesystem can).
    md5, size = repo.dvc_cache.add(src.weights, also=src.staged)
    companions = store_companions(repo, src.companions)
    state = store_training_state(repo, request.training_state) if request.training_state else None
    versions = repo.versions(request.adapter)
    at = workspace_version(repo, request.adapter, versions)
    # Training state counts only when given: re-saving a checked-out version that has
    # one, unchanged and without --training-state, is not a new version.
    if (
        at is not None
        and (at.id, at.config_sha256, at.companions) == (md5, sha256(src.config_bytes), companions)
        and (state is None or state == at.training_state)
    ):
        log.info("%s: content identical to %s; no version created", request.adapter, at.ref)
        return replace(at, new=False)
    # After reading the workspace: a conflict in this adapter's own files is named first.
    repo.refuse_mid_operation("save")
    version = _plan(repo, request, src, md5=md5, size=size, versions=versions, at=at)
    version = replace(version, companions=companions, training_state=state)
    txn.label = version.ref
    commit = _write_and_commit(txn, version, src)
    return replace(version, commit=commit, new=True)


def save_model(
    repo: AdapterRepo,
    model: Any,
    *,
    adapter: str,
    message: str,
    metrics: Mapping[str, Any] | None = None,
    parent: str | None = None,
    base_model: str | None = None,
    training_state: str | os.PathLike[str] | None = None,
) -> AdapterVersion:
    """:func:`save_version` of a live PEFT or transformers model's adapter: written in
    PEFT's format (:func:`adaptvc.extract.save_adapter`; needs torch) to a scratch
    directory first. The model's adapter named ``adapter`` is saved when it has one,
    else its active adapter."""
    peft_names = getattr(model, "peft_config", None) or {}
    repo.state_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=repo.state_dir, prefix="live-") as tmp:
        save_adapter(model, tmp, adapter_name=adapter if adapter in peft_names else None)
        return save_version(
            repo,
            adapter,
            message,
            source=tmp,
            metrics=metrics,
            parent=parent,
            base_model=base_model,
            training_state=training_state,
        )


def _read_source(repo: AdapterRepo, directory: Path, *, in_place: bool, scratch: Path) -> _Source:
    """Read and validate the adapter files (a legacy ``.bin`` is converted in ``scratch``)
    and find the companion files beside them."""
    checked = open_adapter_dir(directory, adapter_only=True)
    config, weights = checked.config, checked.weights
    converted = weights.name == LEGACY_WEIGHTS_NAME
    if converted:
        weights = _convert_bin(directory, scratch / "converted")
    staged = None if in_place and not converted else scratch / f"staged-{WEIGHTS_NAME}"
    return _Source(
        config, config_bytes(config), weights, converted, in_place, staged, source_companions(repo, directory)
    )


def _plan(
    repo: AdapterRepo,
    request: _Request,
    src: _Source,
    *,
    md5: str,
    size: int,
    versions: list[AdapterVersion],
    at: AdapterVersion | None,
) -> AdapterVersion:
    """The new version's record: number, parents, base-model link, summary."""
    if request.parents:
        parents: tuple[ParentLink, ...] = request.parents
    elif request.parent:
        parents = (resolve_version(repo, request.parent, with_commit=False).link(),)
    else:
        base = at or newest(versions)
        parents = (base.link(),) if base else ()
    return AdapterVersion(
        adapter=request.adapter,
        version=_next_number(repo, request.adapter, versions),
        id=md5,
        size=size,
        message=request.message,
        author=git_ops.author_ident(repo.root),
        created_at=_now(),
        parents=parents,
        base_model=request.base_link or base_model_link(src.config, override=request.base_model, root=Path.cwd()),
        peft=_peft_summary(src.config, src.weights),
        metrics=request.metrics,
        config_sha256=sha256(src.config_bytes),
        config_blob=git_ops.hash_object(repo.root, src.config_bytes),
        directory=repo.adapter_rel(request.adapter),
    )


def _write_and_commit(txn: Transaction, version: AdapterVersion, src: _Source) -> str:
    """Write the adapter's files and commit exactly them; tag ``NAME@vN``."""
    repo = txn.repo
    d = repo.adapter_dir(version.adapter)
    rel = repo.adapter_rel(version.adapter)
    d.mkdir(parents=True, exist_ok=True)
    txn.write_if_changed(d / CONFIG_NAME, src.config_bytes)
    staged = src.staged
    if staged is not None:
        txn.put(d / WEIGHTS_NAME, lambda p: _place_staged(repo, staged, version.id, p))
        if src.in_place and src.converted:
            txn.remove(d / LEGACY_WEIGHTS_NAME)
    txn.write_bytes(d / POINTER_NAME, dumps_pointer(version.id, version.size, WEIGHTS_NAME).encode())
    # Directory deleted (rm -rf) while its versions are committed: the manifest (and
    # aliases, .gitignore) come back from HEAD first, so this version extends the history.
    for fname, data in committed_missing_files(repo, version.adapter).items():
        txn.write_bytes(d / fname, data)
    extras = write_extras(txn, version)
    ignore = ensure_gitignore(d / ".gitignore", gitignore_lines(version))
    if ignore is not None:
        txn.write_bytes(d / ".gitignore", ignore)
    txn.write_bytes(d / MANIFEST_NAME, appended(d / MANIFEST_NAME, [dumps_record(version)]))
    txn.set_state(version.adapter, state_record(version))
    paths = [f"{rel}/{CONFIG_NAME}", f"{rel}/{POINTER_NAME}", f"{rel}/.gitignore", f"{rel}/{MANIFEST_NAME}"]
    commit = txn.commit(
        [*paths, *extras.paths],
        _commit_message(version),
        remove=[f"{rel}/{WEIGHTS_NAME}", *extras.remove],
        tags=[(version.ref, f"{version.ref}: {version.message}")],
    )
    assert commit is not None  # the manifest always gains a line
    if version.ref in txn.tags_taken:
        log.warning("tag %s already exists (another branch); %s is addressed by its id", version.ref, version.ref)
    repo.state.remember(d / WEIGHTS_NAME, version.id, written_by_us=src.staged is not None)
    return commit


def _place_staged(repo: AdapterRepo, staged: Path, md5: str, dest: Path) -> None:
    """Rename the copy staged while the weights were hashed into the work tree (the
    scratch space is in ``.git``); from the cache when that is another filesystem."""
    try:
        os.replace(staged, dest)
    except OSError:
        repo.dvc_cache.materialise(md5, dest)


def warn_about_unusual_git_state(repo: AdapterRepo, version: AdapterVersion) -> None:
    # During a rebase HEAD is detached, but what is committed there lands on the branch.
    rebasing = any((repo.git_dir / d).exists() for d in ("rebase-merge", "rebase-apply"))
    if not rebasing and git_ops.current_branch(repo.root) is None:
        log.warning(
            "HEAD is detached: %s is on no branch (only its tag keeps it; `git switch` elsewhere and "
            "the branch's manifest will not list it); keep it with: git switch -c BRANCH",
            version.ref,
        )
    if git_ops.config_get(repo.root, "merge.adaptvc.driver") is None:
        log.warning(
            "this clone has no adaptvc merge driver (git does not copy .git/config when cloning), so "
            "merging a branch that also saved %s will conflict; run `adaptvc init` once in this clone",
            version.adapter,
        )


def _convert_bin(src: Path, stage: Path) -> Path:
    """Convert a legacy ``adapter_model.bin`` in a staging copy (the source is untouched)."""
    stage.mkdir(parents=True)
    shutil.copy2(src / CONFIG_NAME, stage / CONFIG_NAME)
    shutil.copy2(src / LEGACY_WEIGHTS_NAME, stage / LEGACY_WEIGHTS_NAME)
    return Path(convert_bin(stage))
