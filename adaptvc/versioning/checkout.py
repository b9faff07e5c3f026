"""Getting a version's files back: into the workspace (``checkout``), into any directory
(``export``), or into a per-clone read-only directory (``resolve``).

The config comes from git (the blob recorded in the manifest, sha256-checked), the
weights from the DVC cache (md5-checked while copied). Neither moves HEAD nor touches
any other path.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from adaptvc.errors import AdaptvcError, DirtyWorkspaceError
from adaptvc.formats import CONFIG_NAME, WEIGHTS_NAME
from adaptvc.manifest import AdapterVersion, write_atomic
from adaptvc.refs import parse_ref, select
from adaptvc.repo import AdapterRepo
from adaptvc.storage import git_ops
from adaptvc.storage.dvc_cache import dumps_pointer
from adaptvc.storage.fetch import ensure_versions
from adaptvc.storage.lock import signals_deferred
from adaptvc.versioning.recovery import JOURNAL_NAME
from adaptvc.versioning.workspace import (
    CONFLICT,
    MODIFIED,
    FileTransaction,
    POINTER_NAME,
    adapter_status,
    committed_missing_files,
    ensure_gitignore,
    sha256,
    state_record,
)


def checkout_version(repo: AdapterRepo, ref: str, *, force: bool = False) -> AdapterVersion:
    """Put ``ref``'s files into the adapter's directory.

    Refuses when the directory holds unsaved changes (weights or config differing from
    the version it is at), unless ``force``. ``checkout NAME`` returns to the newest.

    Raises:
        DirtyWorkspaceError: unsaved changes and not ``force``.
        ObjectMissingError: the weights are not in the local cache (hint ``adaptvc pull``).
    """
    parsed = parse_ref(ref)
    with repo.lock():
        versions = repo.versions(parsed.adapter, must_exist=True)
        target = select(parsed, versions, repo.aliases(parsed.adapter, versions))
        ensure_versions(repo, [target])
        d = repo.adapter_dir(target.adapter)
        status = adapter_status(repo, target.adapter, versions)
        if status.state == CONFLICT and not force:
            raise DirtyWorkspaceError(
                f"{repo.adapter_rel(target.adapter)}/{POINTER_NAME} has an unresolved merge conflict",
                hint=f"adaptvc checkout {ref} --force puts that version's pair in place (then git add "
                f"{repo.adapter_rel(target.adapter)} and commit the merge); adaptvc init installs the merge driver",
            )
        if status.state == MODIFIED and not force:
            at = status.version.ref if status.version else "its last saved version"
            raise DirtyWorkspaceError(
                f"{repo.adapter_rel(target.adapter)}/ has unsaved changes ({', '.join(status.changes)}) since {at}",
                hint=f'save them first (adaptvc save --adapter {target.adapter} -m "...") or discard them: '
                f"adaptvc checkout {ref} --force",
            )
        config = repo.version_config(target)
        restore = committed_missing_files(repo, target.adapter)
        d.mkdir(parents=True, exist_ok=True)
        weights = d / WEIGHTS_NAME
        current = status.weights_md5 or (repo.state.md5(weights)[0] if weights.is_file() else None)
        pointer = dumps_pointer(target.id, target.size, WEIGHTS_NAME).encode()
        # Weights first (the long copy), then config and pointer; all undone together if
        # anything fails or the user interrupts, so the directory never holds one
        # version's weights next to another's config (r=8 config, r=4 tensors).
        backup_root = Path(tempfile.mkdtemp(dir=repo.state_dir, prefix="checkout-"))
        was_at = repo.state.at(target.adapter)
        # The journal lets the next command put things back should this process be killed
        # outright between two of the writes (adaptvc.versioning.recovery).
        txn = FileTransaction(backup_root / "backup", journal=repo.state_dir / JOURNAL_NAME, journal_data={
            "operation": "checkout", "pid": os.getpid(), "adapter": target.adapter, "tag": target.ref,
            "was_at": was_at, "backup_root": str(backup_root)}, durable_journal=False)
        wrote = False
        try:
            if current != target.id:
                txn.put(weights, lambda p: repo.dvc_cache.materialise(target.id, p))
                wrote = True
            # Workspace copies: atomic (rename) but not fsync'ed, like the weights and like
            # `dvc checkout`; git and the DVC cache hold the durable copies.
            if not (d / CONFIG_NAME).is_file() or (d / CONFIG_NAME).read_bytes() != config:
                txn.write_bytes(d / CONFIG_NAME, config, fsync=False)
            if not (d / POINTER_NAME).is_file() or (d / POINTER_NAME).read_bytes() != pointer:
                txn.write_bytes(d / POINTER_NAME, pointer, fsync=False)
            # The directory was deleted (rm -rf) while its versions are committed: the
            # manifest, aliases and .gitignore come back as HEAD has them.
            for fname, data in restore.items():
                txn.write_bytes(d / fname, data, fsync=False)
            ignore = ensure_gitignore(d / ".gitignore")
            if ignore is not None:
                txn.write_bytes(d / ".gitignore", ignore, fsync=False)
            repo.state.set_at(target.adapter, state_record(target))
        except BaseException:
            with signals_deferred():
                txn.rollback()
                repo.state.set_at(target.adapter, was_at)
                txn.drop_journal()
            raise
        finally:
            shutil.rmtree(backup_root, ignore_errors=True)
        txn.drop_journal()
        repo.state.remember(weights, target.id, written_by_us=wrote)
    return target


def export_version(repo: AdapterRepo, ref: str, directory: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write ``ref``'s config and weights into ``directory`` (PEFT format).

    Raises:
        AdaptvcError: ``directory`` already holds adapter files and not ``force``.
    """
    from adaptvc.refs import resolve_version

    repo.settle_interrupted()
    version = resolve_version(repo, ref, with_commit=False)
    ensure_versions(repo, [version])
    out = Path(directory)
    if not force and any((out / n).exists() for n in (CONFIG_NAME, WEIGHTS_NAME, "adapter_model.bin")):
        raise AdaptvcError(f"{out} already holds adapter files", hint=f"choose an empty directory or: adaptvc export {ref} {out} --force")
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / CONFIG_NAME, repo.version_config(version))
    repo.dvc_cache.materialise(version.id, out / WEIGHTS_NAME)
    return out


def resolve_directory(repo: AdapterRepo, ref: str) -> Path:
    """A directory holding ``ref``'s files, for ``PeftModel.from_pretrained``.

    Kept per clone in ``.git/adaptvc/resolved/<name>/<id>-<config hash>/`` and built
    once (in a temp directory renamed into place, so a reader never sees half of it);
    the weights are hard links to the read-only DVC cache object when possible.
    """
    from adaptvc.refs import resolve_version

    repo.settle_interrupted()
    version = resolve_version(repo, ref, with_commit=False)
    final = repo.state_dir / "resolved" / version.adapter / f"{version.id}-{version.config_sha256[:12]}"
    if (final / CONFIG_NAME).is_file() and (final / WEIGHTS_NAME).is_file():
        return final
    ensure_versions(repo, [version])
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=".building-"))
    try:
        write_atomic(tmp / CONFIG_NAME, repo.version_config(version))
        repo.dvc_cache.materialise(version.id, tmp / WEIGHTS_NAME, link=True)
        try:
            os.rename(tmp, final)
        except OSError:  # another process finished first: use theirs
            if not (final / WEIGHTS_NAME).is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
