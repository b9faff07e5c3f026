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

from dataclasses import dataclass
from typing import Any

from adaptvc.errors import AdaptvcError
from adaptvc.formats import CONFIG_NAME
from adaptvc.manifest import AdapterVersion, newest
from adaptvc.refs import unique_ref
from adaptvc.repo import AdapterRepo
from adaptvc.storage import git_ops
from adaptvc.storage.dvc_cache import parse_pointer
from adaptvc.transaction import Transaction, transaction
from adaptvc.versioning.workspace import POINTER_NAME, state_record


@dataclass(frozen=True)
class MergeRepair:
    """What :func:`repair_merge` did: one message per adapter repaired or left alone,
    and the fix-up commit (``None`` when nothing needed repairing)."""

    messages: tuple[str, ...] = ()
    commit: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"messages": list(self.messages), "commit": self.commit}


def _pair_version(
    repo: AdapterRepo, rev: str, rel: str, versions: list[AdapterVersion]
) -> tuple[AdapterVersion | None, str | None, str | None]:
    """The version whose weights and config ``rev`` holds for this adapter (``rev`` ""
    is the index), and the pointer's and config's blob ids."""
    pointer_blob = git_ops.rev_parse(repo.root, f"{rev}:{rel}/{POINTER_NAME}")
    config_blob = git_ops.rev_parse(repo.root, f"{rev}:{rel}/{CONFIG_NAME}")
    if pointer_blob is None or config_blob is None:
        return None, pointer_blob, config_blob
    try:
        md5 = parse_pointer(git_ops.cat_blob(repo.root, pointer_blob).decode("utf-8", errors="replace")).md5
    except AdaptvcError:  # conflict markers, or no md5: no version's pair
        return None, pointer_blob, config_blob
    return newest(v for v in versions if v.id == md5 and v.config_blob == config_blob), pointer_blob, config_blob


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
    parents = git_ops.run_git(repo.root, "rev-list", "--parents", "-n", "1", "HEAD", check=False).split()
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
    restore, messages = _broken_pairs(repo, head, before, what)
    if not restore:
        return MergeRepair(tuple(messages))
    names = ", ".join(label for _, _, _, label in restore.values())
    message = (
        f"adaptvc: after {what}, keep {names} whole (weights and config of one version)\n\n"
        f"git took the .dvc pointer and adapter_config.json of these adapters from different\n"
        "versions; every version stays in the manifest.\n"
    )
    with transaction(repo, "repair", f"{what} ({names})") as txn:
        if txn.head != head:  # HEAD moved since the hook started: judge again next time
            return MergeRepair(tuple(messages))
        paths = _put_back(txn, restore)
        commit = txn.commit(paths, message)
    messages += [
        f"{name}: {what} paired one version's weights with another's config; "
        f"kept {label} whole (commit {(commit or '')[:10]})"
        for name, (_, _, _, label) in restore.items()
    ]
    return MergeRepair(tuple(messages), commit)


_Pair = tuple[AdapterVersion, str, str, str]  # the version to keep, its pointer and config blobs, its label


def _broken_pairs(repo: AdapterRepo, head: str, before: str, what: str) -> tuple[dict[str, _Pair], list[str]]:
    """The adapters whose pointer and config in ``head`` match no version while ``before``
    held a saved version's pair: ``{name: pair to put back}``, and messages for the
    adapters left alone."""
    messages: list[str] = []
    restore: dict[str, _Pair] = {}
    for name in repo.list_adapters():
        rel = repo.adapter_rel(name)
        try:
            versions = repo.versions(name)
        except AdaptvcError as exc:  # a damaged manifest is reported by log/status
            messages.append(f"{name}: not checked after {what}: {exc}")
            continue
        merged, p_blob, c_blob = _pair_version(repo, head, rel, versions)
        if not versions or merged is not None or p_blob is None or c_blob is None:
            continue
        keep, kp, kc = _pair_version(repo, before, rel, versions)
        if keep is None or kp is None or kc is None:
            continue  # it was no saved version before either: someone's own commit, not ours to undo
        paths = [f"{rel}/{POINTER_NAME}", f"{rel}/{CONFIG_NAME}"]
        if git_ops.changed(repo.root, paths) or git_ops.changed(repo.root, paths, staged=True):
            messages.append(
                f"{name}: {what} paired the weights of one version with the config of another; {rel}/ has "
                f"changes since, so adaptvc left it: adaptvc checkout {keep.ref} --force, then commit"
            )
            continue
        restore[name] = (keep, kp, kc, unique_ref(keep, versions))
    return restore, messages


def _put_back(txn: Transaction, restore: dict[str, _Pair]) -> list[str]:
    """Write each adapter's kept pointer and config; the paths written."""
    repo = txn.repo
    paths: list[str] = []
    for name, (keep, pointer_blob, config_blob, _) in restore.items():
        d, rel = repo.adapter_dir(name), repo.adapter_rel(name)
        txn.write_bytes(d / POINTER_NAME, git_ops.cat_blob(repo.root, pointer_blob))
        txn.write_bytes(d / CONFIG_NAME, git_ops.cat_blob(repo.root, config_blob))
        txn.set_state(name, state_record(keep))
        paths += [f"{rel}/{POINTER_NAME}", f"{rel}/{CONFIG_NAME}"]
    return paths


def repair_staged_merge(repo: AdapterRepo) -> tuple[str, ...]:
    """The same repair for a merge that stopped (a conflict elsewhere, or ``--no-commit``)
    and is being concluded with ``git commit``: ``post-merge`` does not run then, so the
    ``pre-commit`` hook puts our pair back in the work tree and the index before the
    merge commit is written. Returns one message per adapter repaired."""
    if not (repo.git_dir / "MERGE_HEAD").exists():
        return ()
    with transaction(repo, "repair", "a merge being committed", commits=False) as txn:
        restore: dict[str, _Pair] = {}
        for name in repo.list_adapters():
            rel = repo.adapter_rel(name)
            try:
                versions = repo.versions(name)
            except AdaptvcError:  # reported by log/status
                continue
            staged, p_blob, c_blob = _pair_version(repo, "", rel, versions)  # ":path" = the index
            if not versions or staged is not None or p_blob is None or c_blob is None:
                continue
            keep, kp, kc = _pair_version(repo, "HEAD", rel, versions)
            if keep is None or kp is None or kc is None:
                continue
            if git_ops.changed(repo.root, [f"{rel}/{POINTER_NAME}", f"{rel}/{CONFIG_NAME}"]):
                continue  # the user is editing these files: not ours to overwrite
            restore[name] = (keep, kp, kc, unique_ref(keep, versions))
        if restore:
            txn.stage(_put_back(txn, restore))
    return tuple(
        f"{name}: the merge paired one version's weights with another's config; kept {label} whole in this merge commit"
        for name, (_, _, _, label) in restore.items()
    )
