"""``adaptvc gc``: remove the weights of versions nobody keeps, from the local DVC cache
and (``remote=``) the DVC remote, without ever losing one a kept version needs.

The rules, in the order they are applied (docs/storage.md tells users the same):

1. **Always kept**: every object a ``.dvc`` pointer or ``dvc.lock`` names at the tip of a
   branch, a tag (adaptvc's own ``NAME@vN`` tags aside: every version has one),
   ``refs/remotes/*``, HEAD, and the work tree; with ``remote=``, at the tip of every ref
   of the git remote too (fetched first, into ``refs/adaptvc-gc/<remote>/``).
   Aliased versions (unless ``keep_aliased=False``) and ``keep`` refs.
2. **Policy** (:mod:`adaptvc.versioning.retention`) decides among the rest: the
   ``keep_last`` newest of each adapter, and those younger than ``older_than``, stay.
3. Objects are content-addressed: an object of a version that goes, which a kept version
   also uses, stays (reported as shared).
4. **Grace period**: an object on the remote modified less than ``grace_period`` ago is
   never removed from it (a teammate's push in flight: weights go up before the git refs
   that name them), as git's ``gc.pruneExpire`` spares young loose objects.
5. A local copy of an object the remote holds is **evicted** (checkout fetches it back).
   A version whose weights are then on neither side is **pruned**: a prune record is
   appended to its manifest and committed (see :class:`adaptvc.manifest.PruneRecord`).
   Without ``remote=``, an object no remote holds is the only copy and stays, unless no
   DVC remote is configured at all (the cache is then the only storage, and gc prunes).

The removal runs as one transaction: the prune records are committed first (HEAD by
compare-and-swap), then the objects are deleted, remote first, with signals held off. A
process killed while deleting leaves a landed transaction that the next command completes;
the next ``gc`` deletes what is left of the pruned versions, which it always treats as
gone. Unknown objects (no version we can see names them) are never touched.
"""

from __future__ import annotations

import datetime as _dt
import logging
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from adaptvc.errors import AdapterNotFoundError, AdaptvcError, RemoteNotFoundError
from adaptvc.manifest import (
    ALIASES_NAME,
    MANIFEST_NAME,
    AdapterVersion,
    PruneRecord,
    StoredObject,
    appended,
    dumps_prune_record,
    newest_first,
    read_jsonl,
)
from adaptvc.refs import REF_RE, parse_ref, select, unique_ref, validate_name
from adaptvc.repo import AdapterRepo
from adaptvc.storage import git_ops
from adaptvc.storage.dvc_cache import POINTER_SUFFIX, read_pointer, referenced_md5s
from adaptvc.storage.lock import signals_deferred
from adaptvc.transaction import Transaction, settle_interrupted, transaction
from adaptvc.versioning.retention import RetentionPolicy, format_duration

log = logging.getLogger("adaptvc")
GC_NAMESPACE = "refs/adaptvc-gc"
GC_TRAILER = "Adaptvc-Gc"

KEPT, GOES, SHARED = "kept", "goes", "shared"


def version_objects(version: AdapterVersion, *, training_state_only: bool = False) -> list[StoredObject]:
    """Every DVC object ``version`` owns (:meth:`AdapterVersion.objects`: weights, large
    companion files, training state); ``training_state_only``: just its training state."""
    objects = version.objects()
    return [o for o in objects if o.kind == "training_state"] if training_state_only else list(objects)


@dataclass(frozen=True)
class GcVersion:
    """One version as gc judged it. ``decision``: ``"kept"`` (``reason`` says why),
    ``"goes"`` (its objects are removed, ``action`` says how: ``evict`` = local copy only,
    ``prune`` = no copy left, ``none`` = nothing stored to remove, ``partial`` = some
    objects held back) or ``"shared"`` (goes, but a kept version uses its objects)."""

    ref: str
    adapter: str
    version: int
    id: str
    created_at: str
    size: int
    decision: str
    reason: str
    action: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "adapter": self.adapter,
            "version": self.version,
            "id": self.id,
            "created_at": self.created_at,
            "size": self.size,
            "decision": self.decision,
            "reason": self.reason,
            "action": self.action,
        }


@dataclass(frozen=True)
class GcResult:
    """What ``gc`` did (or, with ``dry_run``, would do)."""

    dry_run: bool
    policy: RetentionPolicy
    remote: str | None  # the DVC remote removed from (None: local cache only)
    versions: tuple[GcVersion, ...] = ()
    local_removed: tuple[str, ...] = ()  # md5s deleted from the local cache
    remote_removed: tuple[str, ...] = ()  # md5s deleted from the DVC remote
    young: tuple[str, ...] = ()  # md5s the grace period kept on the remote
    only_copy: tuple[str, ...] = ()  # md5s kept locally: no remote holds them
    local_bytes: int = 0
    remote_bytes: int = 0
    pruned: tuple[str, ...] = ()  # refs marked pruned
    failed: dict[str, str] = field(default_factory=dict)  # md5 -> why it could not be removed
    commit: str | None = None  # the commit holding the prune records

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "policy": self.policy.to_dict(),
            "remote": self.remote,
            "versions": [v.to_dict() for v in self.versions],
            "local_removed": list(self.local_removed),
            "remote_removed": list(self.remote_removed),
            "young": list(self.young),
            "only_copy": list(self.only_copy),
            "local_bytes": self.local_bytes,
            "remote_bytes": self.remote_bytes,
            "pruned": list(self.pruned),
            "failed": dict(self.failed),
            "commit": self.commit,
        }


# --- what is always kept ------------------------------------------------------------------------


def _is_version_tag(refname: str) -> bool:
    """adaptvc's own ``NAME@vN`` tags (any namespace): every version has one, so they keep nothing."""
    if "/tags/" not in refname:
        return False
    m = REF_RE.match(refname.rsplit("/tags/", 1)[1])
    return bool(m and m["selector"] and m["selector"][1:].isdigit() and m["selector"][0] == "v")


def _describe_ref(refname: str) -> str:
    for prefix, what in (
        ("refs/heads/", "branch"),
        ("refs/tags/", "tag"),
        ("refs/remotes/", "remote branch"),
        (f"{GC_NAMESPACE}/", "remote ref"),
    ):
        if refname.startswith(prefix):
            return f"{what} {refname[len(prefix) :]}"
    return refname


def protecting_tips(repo: AdapterRepo, git_remote: str | None) -> dict[str, str]:
    """``commit -> what names it`` for every commit whose versions gc must keep: HEAD,
    branches, tags (not ``NAME@vN``), remote-tracking refs, and with ``git_remote`` every
    ref of that remote, fetched first into ``refs/adaptvc-gc/<remote>/``.

    Raises:
        GitError: the git remote cannot be fetched from.
    """
    prefixes = ["refs/heads/", "refs/tags/", "refs/remotes/"]
    if git_remote:
        namespace = f"{GC_NAMESPACE}/{git_remote}/"
        git_ops.fetch_all_refs(repo.root, git_remote, namespace)
        prefixes.append(namespace)
    tips: dict[str, str] = {}
    head = git_ops.head_commit(repo.root)
    if head:
        tips[head] = "HEAD"
    for name, commit in git_ops.ref_tips(repo.root, prefixes):
        if not _is_version_tag(name):
            tips.setdefault(commit, _describe_ref(name))
    return tips


def _pointed_md5s(repo: AdapterRepo, tips: dict[str, str]) -> dict[str, str]:
    """``md5 -> why it stays`` for every object a ``.dvc`` file or ``dvc.lock`` names at
    the tips, or in the work tree's adapter directories."""
    kept: dict[str, str] = {}
    for commit, why in tips.items():
        paths = [
            p
            for p in git_ops.tree_paths(repo.root, commit, ".")
            if p.endswith(POINTER_SUFFIX) or p.endswith("dvc.lock")
        ]
        for blob in git_ops.cat_blobs(repo.root, [f"{commit}:{p}" for p in paths]):
            for md5 in referenced_md5s((blob or b"").decode("utf-8", errors="replace")):
                kept.setdefault(md5, f"at {why}")
    for name in repo.list_adapters():
        for pointer in repo.adapter_dir(name).glob(f"*{POINTER_SUFFIX}"):
            try:
                p = read_pointer(pointer)
            except AdaptvcError:
                continue  # a conflicted pointer: the versions on both sides are at the tips
            if p is not None:
                kept.setdefault(p.md5, "in the work tree")
    return kept


def _known_versions(repo: AdapterRepo, tips: dict[str, str]) -> tuple[list[AdapterVersion], dict[tuple, str]]:
    """Every version recorded at the tips and in the work tree (duplicates merged, prune
    marks from any of them), and ``version key -> alias`` for the aliased ones."""
    by_key: dict[tuple, AdapterVersion] = {}
    aliased: dict[tuple, str] = {}
    for name in repo.list_adapters(committed=True):
        try:
            for v in repo.versions(name):
                _merge_version(by_key, v)
                for alias in v.aliases:
                    aliased.setdefault(_key(v), f"alias {v.adapter}@{alias}")
        except AdaptvcError as exc:
            log.warning("gc: %s left out of the work tree's versions: %s", name, exc.message)
    for commit in tips:
        found = repo.versions_at(commit)
        for v in found:
            _merge_version(by_key, v)
        for key, alias in _aliases_at(repo, commit, found).items():
            aliased.setdefault(key, alias)
    return list(by_key.values()), aliased


def _key(v: AdapterVersion) -> tuple:
    return (v.adapter, v.version, v.id, v.created_at)


def _merge_version(by_key: dict[tuple, AdapterVersion], v: AdapterVersion) -> None:
    old = by_key.get(_key(v))
    if old is None or (old.pruned is None and v.pruned is not None):
        by_key[_key(v)] = v


def _aliases_at(repo: AdapterRepo, commit: str, versions: list[AdapterVersion]) -> dict[tuple, str]:
    """``version key -> "alias NAME@x"`` for the aliases recorded at ``commit``."""
    by_adapter: dict[str, list[AdapterVersion]] = {}
    for v in versions:
        by_adapter.setdefault(v.adapter, []).append(v)
    out: dict[tuple, str] = {}
    specs = [f"{commit}:{vs[0].directory}/{ALIASES_NAME}" for vs in by_adapter.values()]
    for (name, vs), blob in zip(by_adapter.items(), git_ops.cat_blobs(repo.root, specs), strict=True):
        if not blob:
            continue
        try:
            records = read_jsonl(repo.root / ALIASES_NAME, text=blob.decode("utf-8", errors="replace"))
        except AdaptvcError:
            continue
        for alias, v in repo.aliases(name, vs, records).items():
            out.setdefault(_key(v), f"alias {name}@{alias}")
    return out


# --- deciding -----------------------------------------------------------------------------------


@dataclass
class _Plan:
    versions: list[GcVersion]
    goes: list[AdapterVersion]  # versions whose objects may be removed
    removable: dict[str, int]  # md5 -> size: objects of going versions no kept version needs
    labels: dict[str, str]  # md5 -> a ref that owns it
    training_state_only: bool = False  # --drop-training-state: the weights of every version stay


def _policy_reason(v: AdapterVersion, rank: int, policy: RetentionPolicy, now: float) -> str | None:
    """Why the policy keeps ``v`` (its ``rank`` among its adapter's versions, newest 0), or None."""
    if policy.keep_last is not None and rank < policy.keep_last:
        return f"among the {policy.keep_last} newest"
    if policy.older_than is not None:
        try:
            created = _dt.datetime.fromisoformat(v.created_at.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return "creation time unreadable"
        if now - created < policy.older_than:
            return f"younger than {format_duration(policy.older_than)}"
    return None


def _kept_refs(repo: AdapterRepo, refs: Iterable[str], versions: list[AdapterVersion]) -> set[tuple]:
    """Keys of the versions ``--keep`` names (resolved among every known version).

    Raises:
        InvalidRefError, VersionNotFoundError, AmbiguousRefError: a ref that names none.
    """
    out: set[tuple] = set()
    for ref in refs:
        parsed = parse_ref(ref)
        mine = [v for v in versions if v.adapter == parsed.adapter]
        aliases = repo.aliases(parsed.adapter, mine) if parsed.kind == "name" and mine else None
        out.add(_key(select(parsed, mine, aliases)))
    return out


def _decide(
    repo: AdapterRepo,
    versions: list[AdapterVersion],
    pointed: dict[str, str],
    aliased: dict[tuple, str],
    policy: RetentionPolicy,
    adapters: Sequence[str],
) -> dict[tuple, tuple[str, str]]:
    """``version key -> (KEPT or GOES, reason)``."""
    keep_refs = _kept_refs(repo, policy.keep, versions)
    now = time.time()
    out: dict[tuple, tuple[str, str]] = {}
    by_adapter: dict[str, list[AdapterVersion]] = {}
    for v in versions:
        by_adapter.setdefault(v.adapter, []).append(v)
    for name, vs in by_adapter.items():
        for rank, v in enumerate(newest_first(vs)):
            k = _key(v)
            if adapters and name not in adapters:
                out[k] = (KEPT, "adapter not selected")
            elif v.id in pointed:
                out[k] = (KEPT, pointed[v.id])
            elif policy.keep_aliased and k in aliased:
                out[k] = (KEPT, aliased[k])
            elif k in keep_refs:
                out[k] = (KEPT, "--keep")
            elif v.pruned is not None:
                out[k] = (GOES, f"pruned on {v.pruned.pruned_at[:10]}")
            else:
                reason = _policy_reason(v, rank, policy, now)
                out[k] = (KEPT, reason) if reason else (GOES, policy.describe())
    return out


def plan_gc(
    repo: AdapterRepo,
    policy: RetentionPolicy,
    *,
    adapters: Sequence[str] = (),
    git_remote: str | None = None,
    training_state_only: bool = False,
) -> _Plan:
    """Judge every known version (see the module docstring); nothing is removed.
    ``training_state_only``: the versions that go lose only their training state."""
    tips = protecting_tips(repo, git_remote)
    pointed = _pointed_md5s(repo, tips)
    versions, aliased = _known_versions(repo, tips)
    known = sorted({v.adapter for v in versions})
    for name in adapters:
        if validate_name(name) not in known:
            raise AdapterNotFoundError(
                f"no adapter {name!r} has versions" + (f"; adapters: {', '.join(known)}" if known else ""),
                name=name,
                hint="adaptvc du (lists the adapters and their versions)",
            )
    decisions = _decide(repo, versions, pointed, aliased, policy, adapters)
    kept_md5s = set(pointed)
    for v in versions:
        if decisions[_key(v)][0] == KEPT:
            kept_md5s.update(o.md5 for o in version_objects(v))
    goes = [v for v in versions if decisions[_key(v)][0] == GOES]
    removable: dict[str, int] = {}
    labels: dict[str, str] = {}
    judged: list[GcVersion] = []
    by_adapter: dict[str, list[AdapterVersion]] = {}
    for v in versions:
        by_adapter.setdefault(v.adapter, []).append(v)
    for v in sorted(versions, key=lambda v: (v.adapter, v.version, v.created_at)):
        decision, reason = decisions[_key(v)]
        objects = version_objects(v, training_state_only=training_state_only)
        if decision == GOES and all(o.md5 in kept_md5s for o in objects):
            decision, reason = SHARED, "its weights are also a kept version's"
        if decision == GOES:
            for o in objects:
                if o.md5 not in kept_md5s:
                    removable[o.md5] = o.size
                    labels.setdefault(o.md5, unique_ref(v, by_adapter[v.adapter]))
        judged.append(
            GcVersion(
                unique_ref(v, by_adapter[v.adapter]), v.adapter, v.version, v.id, v.created_at, v.size, decision, reason
            )
        )
    return _Plan(judged, goes, removable, labels, training_state_only)


# --- where the objects are, and what removing them means ----------------------------------------


@dataclass
class _Outcome:
    plan: _Plan
    remote: str | None  # the DVC remote removed from (remote mode)
    store: Any  # the RemoteStore consulted (None: no DVC remote configured)
    local_delete: dict[str, int]  # md5 -> bytes in the cache
    remote_delete: set[str]
    young: set[str]
    only_copy: set[str]
    to_prune: list[AdapterVersion]
    actions: dict[tuple, str]


def _open_store(repo: AdapterRepo, remote: str | None) -> Any:
    # Imported here: the transfer machinery (fsspec, DVC's filesystems) is needed only
    # when there is something to remove.
    from adaptvc.storage.transfer import RemoteStore

    if remote is not None:
        return RemoteStore(repo.root, remote)
    try:
        return RemoteStore(repo.root, None)
    except RemoteNotFoundError:
        return None  # no DVC remote at all: the local cache is the only storage


def _locate(repo: AdapterRepo, plan: _Plan, remote: str | None, policy: RetentionPolicy) -> _Outcome:
    """Where each removable object is, and so what gc removes: see the module docstring."""
    cache = repo.dvc_cache
    sizes = {m: cache.object_size(m) for m in plan.removable}
    local = {m: s for m, s in sizes.items() if s is not None}
    store = _open_store(repo, remote) if plan.removable or remote is not None else None
    on_remote = store.existing(plan.removable) if store is not None else set()
    young: set[str] = set()
    if remote is not None:
        now = time.time()
        times: dict[str, float | None] = store.modified_times(on_remote) if store is not None and on_remote else {}
        young = {m for m in on_remote if (t := times.get(m)) is None or now - t < policy.grace_period}
        remote_delete = on_remote - young
        local_delete = local
        only_copy: set[str] = set()
    else:
        remote_delete = set()
        if store is None:
            local_delete, only_copy = local, set()
        else:
            local_delete = {m: s for m, s in local.items() if m in on_remote}
            only_copy = set(local) - on_remote
    outcome = _Outcome(plan, remote, store, local_delete, remote_delete, young, only_copy, [], {})
    for v in plan.goes:
        outcome.actions[_key(v)] = action = _action(v, outcome, on_remote, local)
        if plan.training_state_only and action == "prune":
            outcome.actions[_key(v)] = "drop training state"  # the weights stay: not pruned
        elif action == "prune" and v.pruned is None:
            outcome.to_prune.append(v)
    return outcome


def _action(v: AdapterVersion, o: _Outcome, on_remote: set[str], local: dict[str, int]) -> str:
    """``prune`` (no copy left), ``evict`` (the remote keeps one), ``partial`` (some
    objects held back: only copy), ``none`` (nothing stored here to remove)."""
    mine = [x.md5 for x in version_objects(v) if x.md5 in o.plan.removable]
    if not mine:
        return "none"
    removed = [m for m in mine if m in o.local_delete or m in o.remote_delete]
    left = [
        m for m in mine if (m in on_remote and m not in o.remote_delete) or (m in local and m not in o.local_delete)
    ]
    if any(m in o.only_copy for m in mine):
        return "partial"
    if not removed:
        return "none"
    if left:
        return "evict"
    return "prune"


def _result(outcome: _Outcome, policy: RetentionPolicy, *, dry_run: bool, **done: Any) -> GcResult:
    plan = outcome.plan
    versions = tuple(
        GcVersion(**{**g.__dict__, "action": outcome.actions.get((g.adapter, g.version, g.id, g.created_at), "")})
        for g in plan.versions
    )
    local_removed = done.get("local_removed", tuple(sorted(outcome.local_delete)))
    remote_removed = done.get("remote_removed", tuple(sorted(outcome.remote_delete)))
    return GcResult(
        dry_run=dry_run,
        policy=policy,
        remote=outcome.remote,
        versions=versions,
        local_removed=local_removed,
        remote_removed=remote_removed,
        young=tuple(sorted(outcome.young)),
        only_copy=tuple(sorted(outcome.only_copy)),
        local_bytes=sum(outcome.local_delete.get(m, 0) for m in local_removed),
        remote_bytes=sum(plan.removable.get(m, 0) for m in remote_removed),
        pruned=tuple(plan.labels.get(v.id, v.ref) for v in outcome.to_prune),
        failed=done.get("failed", {}),
        commit=done.get("commit"),
    )


# --- doing it -------------------------------------------------------------------------------------


def _record_prunes(txn: Transaction, outcome: _Outcome, policy: RetentionPolicy) -> str | None:
    """Append a prune record per pruned version to its adapter's manifest; one commit."""
    if not outcome.to_prune:
        return None
    repo = txn.repo
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")
    record = PruneRecord(now, git_ops.author_ident(repo.root), policy.describe())
    by_adapter: dict[str, list[AdapterVersion]] = {}
    for v in outcome.to_prune:
        by_adapter.setdefault(v.adapter, []).append(v)
    paths = []
    for name, vs in sorted(by_adapter.items()):
        path = repo.manifest_path(name)
        if not path.is_file():
            log.warning("gc: %s/ is not in the work tree; its pruned versions are not marked here", name)
            continue
        txn.write_bytes(path, appended(path, [dumps_prune_record(v, record) for v in vs]))
        paths.append(f"{repo.adapter_rel(name)}/{MANIFEST_NAME}")
    if not paths:
        return None
    refs = ", ".join(outcome.plan.labels.get(v.id, v.ref) for v in outcome.to_prune)
    where = f"DVC remote {outcome.remote!r}" if outcome.remote else "the local cache"
    message = f"adaptvc gc: pruned {refs}\n\nWeights removed from {where} ({policy.describe()}).\n\n"
    message += f"{GC_TRAILER}: {record.pruned_at}\n"
    return txn.commit(paths, message)


def _delete(repo: AdapterRepo, outcome: _Outcome) -> tuple[tuple[str, ...], tuple[str, ...], dict[str, str]]:
    """Remote first, then the local cache and the per-clone resolved copies."""
    failed: dict[str, str] = {}
    remote_removed: list[str] = []
    if outcome.remote_delete:
        errors = outcome.store.remove(sorted(outcome.remote_delete))
        failed.update({m: e.message for m, e in errors.items()})
        remote_removed = [m for m in sorted(outcome.remote_delete) if m not in errors]
    local_removed = []
    for md5 in sorted(outcome.local_delete):
        try:
            repo.dvc_cache.remove(md5)
            local_removed.append(md5)
        except OSError as exc:
            failed[md5] = f"local cache: {exc.strerror or exc}"
        for resolved in (repo.state_dir / "resolved").glob(f"*/{md5}-*"):
            shutil.rmtree(resolved, ignore_errors=True)  # hard links to the object: they would keep its bytes
    return tuple(local_removed), tuple(remote_removed), failed


def run_gc(
    repo: AdapterRepo,
    policy: RetentionPolicy,
    *,
    adapters: Sequence[str] = (),
    remote: str | None = None,
    git_remote: str | None = "origin",
    dry_run: bool = True,
    training_state_only: bool = False,
) -> GcResult:
    """Judge every version and, unless ``dry_run``, remove what goes (module docstring).

    Args:
        repo: the opened repository.
        policy: the retention policy in force.
        adapters: limit removal to these adapters (the others' versions are all kept).
        remote: the DVC remote to remove from as well; ``None``: the local cache only.
        git_remote: with ``remote``, the git remote whose refs are fetched and kept too
            (skipped, with a warning, when there is no such git remote).
        dry_run: only say what would go.
        training_state_only: remove only the training state of the versions that go;
            every version keeps its weights (``--drop-training-state``).

    Raises:
        RemoteNotFoundError: no DVC remote ``remote``.
        RemoteError: the DVC remote cannot be reached.
        GitError: the git remote cannot be fetched from.
        VersionNotFoundError, AmbiguousRefError: a ``keep`` ref that names no single version.
    """
    fetch_from = None
    if remote is not None and git_remote:
        if git_ops.has_git_remote(repo.root, git_remote):
            fetch_from = git_remote
        else:
            log.warning("no git remote %r: only this clone's branches and tags protect versions", git_remote)
    if dry_run:
        settle_interrupted(repo)
        return _result(_judged(repo, policy, adapters, remote, fetch_from, training_state_only), policy, dry_run=True)
    label = f"{', '.join(adapters) or 'all adapters'} ({policy.describe()})"
    with transaction(repo, "gc", label) as txn:
        outcome = _judged(repo, policy, adapters, remote, fetch_from, training_state_only)
        commit = _record_prunes(txn, outcome, policy)
        # From here the prune records are committed: a Ctrl-C must not roll them back
        # while objects are half deleted (held off until the deletions end). A process
        # killed outright leaves a landed transaction, completed by the next command.
        with signals_deferred():
            local_removed, remote_removed, failed = _delete(repo, outcome)
    return _result(
        outcome,
        policy,
        dry_run=False,
        local_removed=local_removed,
        remote_removed=remote_removed,
        failed=failed,
        commit=commit,
    )


def _judged(
    repo: AdapterRepo,
    policy: RetentionPolicy,
    adapters: Sequence[str],
    remote: str | None,
    git_remote: str | None,
    training_state_only: bool = False,
) -> _Outcome:
    try:
        plan = plan_gc(repo, policy, adapters=adapters, git_remote=git_remote, training_state_only=training_state_only)
    finally:
        if git_remote:
            git_ops.delete_refs(repo.root, f"{GC_NAMESPACE}/{git_remote}/")
    return _locate(repo, plan, remote, policy)
