"""Getting a version's files back: into the workspace (``checkout``), into any directory
(``export``), or into a per-clone read-only directory (``resolve``).

The config comes from git (the blob recorded in the manifest, sha256-checked), the
weights from the DVC cache (md5-checked while copied). Neither moves HEAD nor touches
any other path.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from adaptvc.errors import DestinationNotEmptyError, DirtyWorkspaceError, ObjectMissingError, TrainingStateMissingError
from adaptvc.formats import CONFIG_NAME, WEIGHTS_NAME
from adaptvc.manifest import AdapterVersion
from adaptvc.refs import parse_ref, resolve_version, select
from adaptvc.repo import AdapterRepo
from adaptvc.storage.dvc_cache import dumps_pointer
from adaptvc.storage.fetch import ensure_versions
from adaptvc.storage.files import write_atomic
from adaptvc.storage.verified import VerifiedRecord
from adaptvc.transaction import Transaction, settle_interrupted, transaction
from adaptvc.versioning.companions import export_extras, gitignore_lines, write_extras
from adaptvc.versioning.workspace import (
    CONFLICT,
    MODIFIED,
    POINTER_NAME,
    AdapterStatus,
    adapter_status,
    committed_missing_files,
    ensure_gitignore,
    state_record,
)

log = logging.getLogger("adaptvc")


def checkout_version(repo: AdapterRepo, ref: str, *, force: bool = False) -> AdapterVersion:
    """Put ``ref``'s files into the adapter's directory.

    Refuses when the directory holds unsaved changes (weights or config differing from
    the version it is at), unless ``force``. ``checkout NAME`` returns to the newest.

    Raises:
        DirtyWorkspaceError: unsaved changes and not ``force``.
        ObjectMissingError: the weights are not in the local cache (hint ``adaptvc pull``).
    """
    parsed = parse_ref(ref)
    # Work-tree copies, atomic (rename) but not fsync'ed, like `dvc checkout`: git and the
    # DVC cache hold the durable copies, so the journal need not be durable either.
    with transaction(repo, "checkout", str(parsed), commits=False, durable=False) as txn:
        versions = repo.versions(parsed.adapter, must_exist=True)
        target = select(parsed, versions, repo.aliases(parsed.adapter, versions))
        txn.label = target.ref
        ensure_versions(repo, [target], training_state=False)
        _fetch_training_state(repo, target)
        status = adapter_status(repo, target.adapter, versions)
        _refuse_unsaved_changes(repo, ref, target, status, force=force)
        wrote = _write_version(txn, target, status)
    repo.state.remember(repo.adapter_dir(target.adapter) / WEIGHTS_NAME, target.id, written_by_us=wrote)
    return target


def _fetch_training_state(repo: AdapterRepo, version: AdapterVersion) -> None:
    """The version's training state, when it is still stored: ``gc --drop-training-state``
    removes it from old versions, which still check out (weights and companions), with
    their pointer and without the state files, as ``dvc checkout`` leaves missing data."""
    if version.training_state is None:
        return
    try:
        ensure_versions(repo, [version])
    except ObjectMissingError:
        log.warning(
            "%s: its training state is stored nowhere any more (adaptvc gc --drop-training-state); "
            "checked out without it",
            version.ref,
        )


def _refuse_unsaved_changes(
    repo: AdapterRepo, ref: str, target: AdapterVersion, status: AdapterStatus, *, force: bool
) -> None:
    rel = repo.adapter_rel(target.adapter)
    if status.state == CONFLICT and not force:
        raise DirtyWorkspaceError(
            f"{rel}/{POINTER_NAME} has an unresolved merge conflict",
            hint=f"adaptvc checkout {ref} --force puts that version's pair in place (then git add "
            f"{rel} and commit the merge); adaptvc init installs the merge driver",
        )
    if status.state == MODIFIED and not force:
        at = status.version.ref if status.version else "its last saved version"
        raise DirtyWorkspaceError(
            f"{rel}/ has unsaved changes ({', '.join(status.changes)}) since {at}",
            hint=f'save them first (adaptvc save --adapter {target.adapter} -m "...") or discard them: '
            f"adaptvc checkout {ref} --force",
        )


def _write_version(txn: Transaction, target: AdapterVersion, status: AdapterStatus) -> bool:
    """Write ``target``'s weights, config and pointer into its directory; whether the
    weights were rewritten. Weights first (the long copy), then config and pointer: all
    undone together on failure, so the directory never holds one version's weights next
    to another's config (r=8 config, r=4 tensors)."""
    repo = txn.repo
    d = repo.adapter_dir(target.adapter)
    config = repo.version_config(target)
    restore = committed_missing_files(repo, target.adapter)
    d.mkdir(parents=True, exist_ok=True)
    weights = d / WEIGHTS_NAME
    current = status.weights_md5 or (repo.state.md5(weights)[0] if weights.is_file() else None)
    wrote = current != target.id
    if wrote:
        txn.put(weights, lambda p: repo.dvc_cache.materialise(target.id, p))
    txn.write_if_changed(d / CONFIG_NAME, config, fsync=False)
    txn.write_if_changed(d / POINTER_NAME, dumps_pointer(target.id, target.size, WEIGHTS_NAME).encode(), fsync=False)
    write_extras(txn, target, fsync=False)  # companion files and training state, as the version has them
    # The directory was deleted (rm -rf) while its versions are committed: the manifest,
    # aliases and .gitignore come back as HEAD has them.
    for fname, data in restore.items():
        txn.write_bytes(d / fname, data, fsync=False)
    ignore = ensure_gitignore(d / ".gitignore", gitignore_lines(target))
    if ignore is not None:
        txn.write_bytes(d / ".gitignore", ignore, fsync=False)
    txn.set_state(target.adapter, state_record(target))
    return wrote


def export_version(
    repo: AdapterRepo,
    ref: str,
    directory: str | os.PathLike[str],
    *,
    force: bool = False,
    training_state: bool = False,
) -> Path:
    """Write ``ref``'s config, weights and companion files into ``directory`` (PEFT format).

    Args:
        training_state: also write the version's training state beside the adapter, so
            that ``trainer.train(resume_from_checkpoint=directory)`` resumes from it.

    Raises:
        DestinationNotEmptyError: ``directory`` already holds adapter files and not ``force``.
        TrainingStateMissingError: ``training_state`` and the version has none.
    """
    settle_interrupted(repo)
    version = resolve_version(repo, ref, with_commit=False)
    if training_state and version.training_state is None:
        raise TrainingStateMissingError(
            f"{version.ref} was saved without training state",
            ref=version.ref,
            hint="adaptvc log shows which versions carry it ([training state]); save with "
            "--training-state CHECKPOINT-DIR or AdaptvcCallback(..., training_state=True)",
        )
    ensure_versions(repo, [version], training_state=training_state)
    out = Path(directory)
    if not force and any((out / n).exists() for n in (CONFIG_NAME, WEIGHTS_NAME, "adapter_model.bin")):
        raise DestinationNotEmptyError(
            f"{out} already holds adapter files",
            path=str(out),
            hint=f"choose an empty directory or: adaptvc export {ref} {out} --force",
        )
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / CONFIG_NAME, repo.version_config(version))
    repo.dvc_cache.materialise(version.id, out / WEIGHTS_NAME)
    export_extras(repo, version, out, training_state=training_state)
    return out


def resolve_directory(repo: AdapterRepo, ref: str) -> Path:
    """A directory holding ``ref``'s files, for ``PeftModel.from_pretrained``.

    Kept per clone in ``.git/adaptvc/resolved/<name>/<id>-<config hash>/`` and built
    once (in a temp directory renamed into place, so a reader never sees half of it);
    the weights are hard links to the read-only DVC cache object when possible.
    """
    settle_interrupted(repo)
    version = resolve_version(repo, ref, with_commit=False)
    final = repo.state_dir / "resolved" / version.adapter / f"{version.id}-{_extras_key(version)}"
    if (final / CONFIG_NAME).is_file() and (final / WEIGHTS_NAME).is_file():
        # Built earlier: its weights (usually a hard link to the cache object) are checked
        # again, rehashed only when the verified record does not vouch for them.
        if VerifiedRecord(repo.state_dir).hashes_to(final / WEIGHTS_NAME, version.id):
            return final
        shutil.rmtree(final, ignore_errors=True)  # damaged: rebuilt below from the cache (checked)
    ensure_versions(repo, [version], training_state=False)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=".building-"))
    try:
        write_atomic(tmp / CONFIG_NAME, repo.version_config(version))
        repo.dvc_cache.materialise(version.id, tmp / WEIGHTS_NAME, link=True)
        export_extras(repo, version, tmp, training_state=False, link=True)
        try:
            os.rename(tmp, final)
        except OSError:  # another process finished first: use theirs
            if not (final / WEIGHTS_NAME).is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _extras_key(version: AdapterVersion) -> str:
    """What names a resolved directory besides the weights: the config's hash, and the
    companion files' (versions saved before companions keep their directory name)."""
    if not version.companions:
        return version.config_sha256[:12]
    ids = ",".join(f"{c.name}={c.sha256 or c.md5}" for c in version.companions)
    return f"{version.config_sha256[:12]}-{hashlib.sha256(ids.encode()).hexdigest()[:12]}"
