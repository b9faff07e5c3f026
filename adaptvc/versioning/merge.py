"""After a ``git merge``: keep each adapter's pointer and config a consistent pair.

The ``adaptvc`` merge driver keeps our side's pointer and config when *both* sides
changed that file, but git only calls a driver for a file both sides changed. When one
side saved new weights with the same config and the other a version with a new config
(``r`` 4 → 8), git merges the pointer with the driver (ours) and takes the config from
the only side that changed it (theirs): the merge commit then holds r=8's config next
to r=4's weights, which no version ever had, and PEFT cannot load.

:func:`repair_merge` runs from the ``post-merge`` hook. For each adapter whose pointer
and config in a merge commit match no recorded version, it puts back our side's pair
(the first parent's) and commits those two files alone, so the branch is coherent
again. A rebase (``git pull --rebase``) breaks pairs the same way when it replays a
save onto a branch that saved too; the ``post-rewrite`` hook repairs those, putting
back the pair the replayed commit had. Every version of both sides
stays addressable through the union-merged manifest, as before.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adaptvc.formats import CONFIG_NAME
from adaptvc.manifest import AdapterVersion, write_atomic
from adaptvc.refs import unique_ref
from adaptvc.repo import AdapterRepo
from adaptvc.storage import git_ops
from adaptvc.storage.dvc_cache import _PTR_MD5
from adaptvc.versioning.workspace import POINTER_NAME, FileTransaction, state_record


@dataclass(frozen=True)
class MergeRepair:
    """What :func:`repair_merge` did: one message per adapter repaired or left alone,
    and the fix-up commit (``None`` when nothing needed repairing)."""

    messages: tuple[str, ...] = ()
    commit: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"messages": list(self.messages), "commit": self.commit}


def _blob_ids(repo: AdapterRepo, rev: str, paths: list[str]) -> list[str | None]:
    out = []
    for p in paths:
        blob = git_ops.run_git(repo.root, "rev-parse", "-q", "--verify", f"{rev}:{p}", check=False)
        out.append(blob or None)
    return out


def _pair_version(repo: AdapterRepo, rev: str, rel: str,
                  versions: list[AdapterVersion]) -> tuple[AdapterVersion | None, tuple]:
    """The version whose weights and config ``rev`` holds for this adapter, and the blobs."""
    pointer_blob, config_blob = _blob_ids(repo, rev, [f"{rel}/{POINTER_NAME}", f"{rel}/{CONFIG_NAME}"])
    if pointer_blob is None or config_blob is None:
        return None, (pointer_blob, config_blob)
    m = _PTR_MD5.search(git_ops.cat_blob(repo.root, pointer_blob).decode("utf-8", errors="replace"))
    md5 = m.group(1) if m else None
    matches = [v for v in versions if v.id == md5 and v.config_blob == config_blob]
    best = max(matches, key=lambda v: (v.created_at, v.version)) if matches else None
    return best, (pointer_blob, config_blob)


def repair_merge(repo: AdapterRepo, rewritten: dict[str, str] | None = None) -> MergeRepair:
    """Put back a consistent pointer/config pair where a merge or a rebase broke it, and
    commit it (see the module docstring).

    Args:
        repo: the repository, HEAD just moved by ``git merge`` / ``git pull`` (post-merge)
            or by ``git rebase`` / ``git pull --rebase`` (post-rewrite).
        rewritten: for a rebase, ``{new commit: old commit}`` as git gives post-rewrite;
            ``None`` for a merge.

    Only a pair that the merge or rebase itself broke is repaired: for a merge commit,
    when its first parent (ours) held a saved version and the merge does not; after a
    rebase, when HEAD's commit held one before it was replayed. A config you changed and
    committed yourself is never touched. Adapters with changes in the work tree or index
    since are left alone, with a message saying how to fix them by hand.

    Returns:
        A :class:`MergeRepair`; ``commit`` is the fix-up commit, or ``None``.
    """
    root = repo.root
    parents = git_ops.run_git(root, "rev-list", "--parents", "-n", "1", "HEAD", check=False).split()
    if not parents:
        return MergeRepair()
    head = parents[0]
    if rewritten is None:
        if len(parents) < 3:  # not a merge commit
            return MergeRepair()
        before, what = parents[1], "the merge"
    else:
        if head not in rewritten:
            return MergeRepair()
        before, what = rewritten[head], "the rebase"
    messages: list[str] = []
    restore: dict[str, tuple[AdapterVersion, str, str]] = {}
    labels: dict[str, str] = {}
    for name in repo.list_adapters():
        rel = repo.adapter_rel(name)
        try:
            versions = repo.versions(name)
        except Exception as exc:  # noqa: BLE001 - a damaged manifest is reported by log/status
            messages.append(f"{name}: not checked after {what}: {exc}")
            continue
        if not versions:
            continue
        merged, (p_blob, c_blob) = _pair_version(repo, head, rel, versions)
        if merged is not None or p_blob is None or c_blob is None:
            continue
        keep, (kp, kc) = _pair_version(repo, before, rel, versions)
        if keep is None or kp is None or kc is None:
            continue  # it was no saved version before either: someone's own commit, not ours to undo
        paths = [f"{rel}/{POINTER_NAME}", f"{rel}/{CONFIG_NAME}"]
        if _dirty(repo, paths):
            messages.append(
                f"{name}: {what} paired the weights of one version with the config of another; {rel}/ has "
                f"changes since, so adaptvc left it: adaptvc checkout {keep.ref} --force, then commit"
            )
            continue
        restore[name] = (keep, kp, kc)
        labels[name] = unique_ref(keep, versions)
    if not restore:
        return MergeRepair(tuple(messages))
    all_paths: list[str] = []
    with repo.lock():
        backup_root = Path(tempfile.mkdtemp(dir=repo.state_dir, prefix="repair-"))
        txn = FileTransaction(backup_root)
        try:
            for name, (keep, kp, kc) in restore.items():
                d = repo.adapter_dir(name)
                rel = repo.adapter_rel(name)
                txn.write_bytes(d / POINTER_NAME, git_ops.cat_blob(root, kp))
                txn.write_bytes(d / CONFIG_NAME, git_ops.cat_blob(root, kc))
                all_paths += [f"{rel}/{POINTER_NAME}", f"{rel}/{CONFIG_NAME}"]
            names = ", ".join(labels.values())
            message = (f"adaptvc: after {what}, keep {names} whole (weights and config of one version)\n\n"
                       f"git took the .dvc pointer and adapter_config.json of these adapters from different\n"
                       "versions; every version stays in the manifest.\n")
            commit = git_ops.commit_paths(root, all_paths, message, tmp_dir=repo.state_dir, expected_head=head)
        except BaseException:
            txn.rollback()  # the merge result stays as git left it; status reports it
            raise
        finally:
            shutil.rmtree(backup_root, ignore_errors=True)
        git_ops.refresh_index(root, all_paths)
        for name, (keep, _, _) in restore.items():
            repo.state.set_at(name, state_record(keep))
            messages.append(f"{name}: {what} paired one version's weights with another's config; "
                            f"kept {labels[name]} whole (commit {(commit or '')[:10]})")
    return MergeRepair(tuple(messages), commit)


def _dirty(repo: AdapterRepo, paths: list[str]) -> bool:
    """Changed in the work tree or the index relative to HEAD."""
    import subprocess

    for args in (["diff", "--quiet", "--", *paths], ["diff", "--cached", "--quiet", "--", *paths]):
        if subprocess.run(["git", *args], cwd=repo.root, capture_output=True).returncode != 0:
            return True
    return False


def repair_staged_merge(repo: AdapterRepo) -> tuple[str, ...]:
    """The same repair for a merge that stopped (a conflict elsewhere, or ``--no-commit``)
    and is being concluded with ``git commit``: ``post-merge`` does not run then, so the
    ``pre-commit`` hook puts our pair back in the work tree and the index before the
    merge commit is written. Returns one message per adapter repaired."""
    root = repo.root
    if not (repo.git_dir / "MERGE_HEAD").exists():
        return ()
    messages: list[str] = []
    with repo.lock():
        for name in repo.list_adapters():
            rel = repo.adapter_rel(name)
            try:
                versions = repo.versions(name)
            except Exception:  # noqa: BLE001 - reported by log/status
                continue
            if not versions:
                continue
            staged, (p_blob, c_blob) = _pair_version(repo, "", rel, versions)  # ":path" = the index
            if staged is not None or p_blob is None or c_blob is None:
                continue
            keep, (kp, kc) = _pair_version(repo, "HEAD", rel, versions)
            if keep is None or kp is None or kc is None:
                continue
            paths = [f"{rel}/{POINTER_NAME}", f"{rel}/{CONFIG_NAME}"]
            if _worktree_differs_from_index(repo, paths):
                continue  # the user is editing these files: not ours to overwrite
            d = repo.adapter_dir(name)
            write_atomic(d / POINTER_NAME, git_ops.cat_blob(root, kp))
            write_atomic(d / CONFIG_NAME, git_ops.cat_blob(root, kc))
            git_ops.refresh_index(root, paths)
            repo.state.set_at(name, state_record(keep))
            messages.append(f"{name}: the merge paired one version's weights with another's config; "
                            f"kept {unique_ref(keep, versions)} whole in this merge commit")
    return tuple(messages)


def _worktree_differs_from_index(repo: AdapterRepo, paths: list[str]) -> bool:
    import subprocess

    return subprocess.run(["git", "diff", "--quiet", "--", *paths], cwd=repo.root,
                          capture_output=True).returncode != 0
