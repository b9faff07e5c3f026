"""``verify``: rehash every object the versions need, check the DVC remote, and heal.

Three passes, then repairs:

1. **local**: each DVC cache object the versions need is rehashed in full (the record of
   :mod:`adaptvc.storage.verified`, which lets ``diff`` skip rehashing, is never trusted
   here; it is updated: intact objects are recorded, damaged ones dropped);
2. **remote** (with a remote named): each object is present with its size, and with
   ``deep`` its bytes hash to its md5 (:func:`adaptvc.storage.transfer.check_remote_objects`);
3. **workspace**: each adapter's weights file is rehashed against the version its
   directory is at. Different bytes are unsaved changes (``modified``), not damage,
   unless the stat cache had recorded the version's md5 for this very size, mtime and
   inode: then the bytes changed underneath (``corrupt``).

``repair`` then, under the repository lock: a missing or damaged local object is fetched
from the remote (MD5-checked, renamed over the damaged copy only when complete:
:func:`~adaptvc.storage.transfer.fetch_objects`), else rebuilt from an intact workspace
copy; a missing or damaged object on the remote is uploaded again from the intact local
copy (:func:`~adaptvc.storage.transfer.push_objects`); damaged workspace weights are
rewritten from the cache through the transaction, as ``checkout`` writes them.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adaptvc.errors import AdaptvcError
from adaptvc.formats import WEIGHTS_NAME
from adaptvc.manifest import AdapterVersion
from adaptvc.progress import ProgressCallback, TransferEvent, default_progress
from adaptvc.refs import parse_ref, resolve_version
from adaptvc.repo import AdapterRepo
from adaptvc.storage import git_ops
from adaptvc.storage.dvc_cache import file_md5
from adaptvc.storage.transfer import check_remote_objects, fetch_objects, push_objects
from adaptvc.storage.verified import Hashed, VerifiedRecord
from adaptvc.transaction import locked, transaction
from adaptvc.versioning.workspace import state_record, workspace_version

OK, MISSING, CORRUPT, REPAIRED, MODIFIED = "ok", "missing", "corrupt", "repaired", "modified"
BROKEN = frozenset({MISSING, CORRUPT})


@dataclass(frozen=True)
class ObjectReport:
    """One DVC object (a version's weights): its state in the local cache and, when a
    remote was checked, there (``None`` otherwise). ``detail`` says why it is broken or
    how it was repaired."""

    md5: str
    size: int
    versions: tuple[str, ...]
    local: str  # ok | missing | corrupt | repaired
    remote: str | None = None  # ok | missing | corrupt | repaired | None: not checked
    detail: str = ""

    @property
    def broken(self) -> bool:
        return self.local in BROKEN or self.remote in BROKEN

    def to_dict(self) -> dict[str, Any]:
        return {
            "md5": self.md5,
            "size": self.size,
            "versions": list(self.versions),
            "local": self.local,
            "remote": self.remote,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class WorkspaceReport:
    """One adapter's weights in the work tree against the version its directory is at:
    ``ok``, ``modified`` (unsaved changes), ``missing`` (not checked out), ``corrupt``
    (changed without its size or mtime changing) or ``repaired``. Only ``corrupt`` is broken."""

    adapter: str
    path: str
    version: str | None
    state: str
    detail: str = ""

    @property
    def broken(self) -> bool:
        return self.state == CORRUPT

    def to_dict(self) -> dict[str, Any]:
        return {
            "adapter": self.adapter,
            "path": self.path,
            "version": self.version,
            "state": self.state,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify` found and did; ``ok`` when nothing stays broken."""

    objects: tuple[ObjectReport, ...] = ()
    workspace: tuple[WorkspaceReport, ...] = ()
    remote: str | None = None
    deep: bool = False
    repair: bool = False
    bytes_hashed: int = 0
    seconds: float = 0.0

    @property
    def broken(self) -> list[ObjectReport | WorkspaceReport]:
        return [o for o in self.objects if o.broken] + [w for w in self.workspace if w.broken]

    @property
    def ok(self) -> bool:
        return not self.broken

    def counts(self) -> dict[str, int]:
        """Objects per state, local and remote states counted apart (``remote_ok``...)."""
        out: dict[str, int] = {}
        for o in self.objects:
            out[o.local] = out.get(o.local, 0) + 1
            if o.remote is not None:
                out[f"remote_{o.remote}"] = out.get(f"remote_{o.remote}", 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "remote": self.remote,
            "deep": self.deep,
            "repair": self.repair,
            "counts": self.counts(),
            "broken": len(self.broken),
            "objects": [o.to_dict() for o in self.objects],
            "workspace": [w.to_dict() for w in self.workspace],
            "bytes_hashed": self.bytes_hashed,
            "seconds": round(self.seconds, 3),
        }


# --- which versions -------------------------------------------------------------------------


def versions_to_verify(repo: AdapterRepo, refs: Sequence[str] = (), *, all_refs: bool = False) -> list[AdapterVersion]:
    """The versions named by ``refs`` (``NAME``: every version of it; ``NAME@vN``...: that
    one), by default every version of every adapter in the work tree's manifests; with
    ``all_refs`` also every version recorded on any local branch or tag. Versions that
    ``adaptvc gc`` pruned are left out: their weights are gone by design."""
    out: list[AdapterVersion] = []
    for ref in refs:
        parsed = parse_ref(ref)
        if parsed.selector is None:
            out += repo.versions(parsed.adapter, must_exist=True)
        else:
            out.append(resolve_version(repo, parsed, with_commit=False))
    if not refs:
        for name in repo.list_adapters(committed=True):
            out += repo.versions(name)
    if all_refs:
        for commit in git_ops.ref_commits(repo.root):
            out += repo.versions_at(commit)
    return [v for v in out if v.pruned is None]  # gc removed those weights on purpose


def _objects(versions: Sequence[AdapterVersion]) -> dict[str, tuple[int, tuple[str, ...]]]:
    """md5 → (size, the refs of the versions with those weights), in a stable order."""
    found: dict[str, tuple[int, list[str]]] = {}
    for v in versions:
        size, refs = found.setdefault(v.id, (v.size, []))
        if v.ref not in refs:
            refs.append(v.ref)
    return {m: (size, tuple(refs)) for m, (size, refs) in sorted(found.items(), key=lambda kv: kv[1][1][0])}


# --- the passes -----------------------------------------------------------------------------


def _hash(path: Path, md5: str, progress: ProgressCallback | None) -> Hashed:
    before = path.stat()
    if progress:
        progress(TransferEvent("start", md5, before.st_size))
    start = time.time_ns()
    actual, _ = file_md5(path)
    if progress:
        progress(TransferEvent("done", md5, before.st_size))
    return Hashed(path, actual, before, start)


def _check_local(
    repo: AdapterRepo, objects: dict[str, tuple[int, tuple[str, ...]]], progress: ProgressCallback | None
) -> tuple[dict[str, tuple[str, str]], int]:
    """Per md5 ``(state, detail)`` of the local cache object, and the bytes hashed."""
    cache, record = repo.dvc_cache, VerifiedRecord(repo.state_dir)
    states: dict[str, tuple[str, str]] = {}
    intact: list[Hashed] = []
    damaged: list[Path] = []
    nbytes = 0
    for md5 in objects:
        path = cache.object_path(md5)
        if not path.is_file():
            states[md5] = (MISSING, f"not in the local DVC cache ({cache.path})")
            continue
        h = _hash(path, md5, progress)
        nbytes += h.before.st_size
        if h.md5 == md5:
            states[md5] = (OK, "")
            intact.append(h)
        else:
            states[md5] = (CORRUPT, f"the local copy hashes to {h.md5}")
            damaged.append(path)
    record.forget(damaged)
    record.update(intact)
    return states, nbytes


def _check_workspace(
    repo: AdapterRepo, adapters: set[str], progress: ProgressCallback | None
) -> tuple[list[WorkspaceReport], dict[str, Path], int]:
    """The workspace weights of ``adapters``; also md5 → an intact workspace copy."""
    reports: list[WorkspaceReport] = []
    copies: dict[str, Path] = {}
    nbytes = 0
    for name in sorted(adapters):
        versions = repo.versions(name)
        weights = repo.adapter_dir(name) / WEIGHTS_NAME
        rel = repo.rel(weights)
        try:
            at = workspace_version(repo, name, versions)
        except AdaptvcError as exc:  # a pointer with conflict markers: status says so
            reports.append(WorkspaceReport(name, rel, None, MODIFIED, exc.message))
            continue
        ref = at.ref if at else None
        if not weights.is_file():
            reports.append(WorkspaceReport(name, rel, ref, MISSING, f"not checked out: adaptvc checkout {ref or name}"))
            continue
        recorded = repo.state.recorded_md5(weights)
        h = _hash(weights, at.id if at else "", progress)
        nbytes += h.before.st_size
        copies.setdefault(h.md5, weights)
        if at is not None and h.md5 == at.id:
            reports.append(WorkspaceReport(name, rel, ref, OK))
        elif at is not None and recorded == at.id:
            # The stat cache's entry is the evidence (and what `status` trusts): kept until
            # --repair rewrites the file, so that every verify reports it until then.
            detail = f"hashes to {h.md5}, not {at.id}, yet its size, mtime and inode are those recorded for {ref}"
            reports.append(WorkspaceReport(name, rel, ref, CORRUPT, detail))
            continue
        else:
            reports.append(WorkspaceReport(name, rel, ref, MODIFIED, "unsaved changes (adaptvc status)"))
        repo.state.remember(weights, h.md5)
    return reports, copies, nbytes


# --- repairs ----------------------------------------------------------------------------------


def _repair_local(
    repo: AdapterRepo,
    local: dict[str, tuple[str, str]],
    remote_states: dict[str, tuple[str, str]] | None,
    copies: dict[str, Path],
    remote: str | None,
) -> None:
    """Heal broken local objects in ``local`` (updated in place): from the remote, then
    from an intact workspace copy."""
    broken = [m for m, (state, _) in local.items() if state in BROKEN]
    from_remote = [m for m in broken if remote_states is None or remote_states[m][0] == OK]
    if from_remote:
        try:
            result = fetch_objects(repo.root, from_remote, remote=remote, replace=from_remote)
        except AdaptvcError as exc:  # no remote, or unreachable: each object says so
            for m in from_remote:
                local[m] = (local[m][0], f"{local[m][1]}; no good copy fetched: {exc.message}")
        else:
            for m in result.transferred:
                local[m] = (REPAIRED, f"fetched from DVC remote {result.remote!r} (MD5-checked)")
            for m, why in result.failed.items():
                local[m] = (local[m][0], f"{local[m][1]}; not fetched from DVC remote {result.remote!r}: {why.message}")
    cache = repo.dvc_cache
    for m in broken:
        if local[m][0] in BROKEN and m in copies:
            cache.object_path(m).unlink(missing_ok=True)  # damaged: the add below may not skip it
            if cache.add(copies[m])[0] == m:  # hashed while copied
                local[m] = (REPAIRED, f"rebuilt from the workspace copy {repo.rel(copies[m])}")


def _repair_remote(
    repo: AdapterRepo, local: dict[str, tuple[str, str]], remote_states: dict[str, tuple[str, str]], remote: str | None
) -> None:
    """Upload again the objects missing or damaged on the remote whose local copy is intact."""
    broken = [m for m, (state, _) in remote_states.items() if state in BROKEN]
    good = [m for m in broken if local[m][0] in (OK, REPAIRED)]
    for m in set(broken) - set(good):
        remote_states[m] = (remote_states[m][0], f"{remote_states[m][1]}; no intact local copy to upload")
    if not good:
        return
    result = push_objects(repo.root, good, remote=remote, replace=good)
    for m in result.transferred:
        remote_states[m] = (REPAIRED, f"uploaded again to DVC remote {result.remote!r}")
    for m, exc in result.failed.items():
        remote_states[m] = (remote_states[m][0], f"{remote_states[m][1]}; upload failed: {exc.message}")


def _repair_workspace(repo: AdapterRepo, reports: list[WorkspaceReport], local: dict[str, tuple[str, str]]) -> None:
    """Rewrite damaged workspace weights from their (intact) cache object, as checkout does."""
    for i, w in enumerate(reports):
        if w.state != CORRUPT or w.version is None:
            continue
        target = resolve_version(repo, w.version, with_commit=False)
        if local.get(target.id, (OK, ""))[0] not in (OK, REPAIRED) or not repo.dvc_cache.has(target.id):
            continue
        weights = repo.root / w.path
        with transaction(repo, "verify", w.version, commits=False, durable=False) as txn:
            txn.put(weights, functools.partial(repo.dvc_cache.materialise, target.id))
            txn.set_state(target.adapter, state_record(target))
        repo.state.remember(weights, target.id, written_by_us=True)
        reports[i] = WorkspaceReport(
            w.adapter, w.path, w.version, REPAIRED, f"rewritten from {target.ref}'s cache object"
        )


def _object_reports(
    objects: dict[str, tuple[int, tuple[str, ...]]],
    local: dict[str, tuple[str, str]],
    remote_states: dict[str, tuple[str, str]] | None,
) -> tuple[ObjectReport, ...]:
    out = []
    for m, (size, refs) in objects.items():
        remote = remote_states[m] if remote_states is not None else None
        details = [d for d in (local[m][1], remote[1] if remote else "") if d]
        out.append(ObjectReport(m, size, refs, local[m][0], remote[0] if remote else None, "; ".join(details)))
    return tuple(out)


# --- the operation ----------------------------------------------------------------------------


def verify(
    repo: AdapterRepo,
    refs: Sequence[str] = (),
    *,
    all_refs: bool = False,
    remote: str | None = None,
    check_remote: bool = False,
    deep: bool = False,
    repair: bool = False,
    progress: ProgressCallback | None = None,
) -> VerifyReport:
    """Rehash every object the versions need, check the remote, and (``repair``) heal.

    Args:
        repo: the opened repository.
        refs: ``NAME`` (every version of it) or ``NAME@vN``...; default: every version of
            every adapter.
        all_refs: also the versions recorded on every local branch and tag.
        remote: the DVC remote to check (with ``check_remote``) and to repair from/to
            (default: DVC's default remote).
        check_remote: check each object on ``remote`` (present, size).
        deep: also download each remote object and check its MD5 (implies ``check_remote``).
        repair: fetch broken local objects, upload broken remote ones, rewrite damaged
            workspace weights.
        progress: hashing and transfer progress (default: the callback in force).

    Returns:
        A :class:`VerifyReport`; nothing is raised for broken objects (``report.ok``).

    Raises:
        RemoteNotFoundError, RemoteError: the remote to check is unknown or unreachable.
        InvalidRefError, AdapterNotFoundError, VersionNotFoundError: a bad ref.
    """
    start = time.perf_counter()
    progress = progress if progress is not None else default_progress()
    versions = versions_to_verify(repo, refs, all_refs=all_refs)
    objects = _objects(versions)
    local, nbytes = _check_local(repo, objects, progress)
    remote_states: dict[str, tuple[str, str]] | None = None
    remote_name = None
    if check_remote or deep:
        sizes = {m: size for m, (size, _) in objects.items()}
        checked = check_remote_objects(repo.root, sizes, remote=remote, deep=deep, progress=progress)
        remote_states, remote_name, nbytes = dict(checked.states), checked.remote, nbytes + checked.bytes
    in_work_tree = set(repo.list_adapters()) & {v.adapter for v in versions}
    workspace, copies, ws_bytes = _check_workspace(repo, in_work_tree, progress)
    if repair:
        with locked(repo):  # nothing is saved or checked out while objects are replaced
            _repair_local(repo, local, remote_states, copies, remote_name or remote)
            if remote_states is not None:
                _repair_remote(repo, local, remote_states, remote_name)
        _repair_workspace(repo, workspace, local)
    return VerifyReport(
        _object_reports(objects, local, remote_states),
        tuple(workspace),
        remote_name,
        deep,
        repair,
        nbytes + ws_bytes,
        time.perf_counter() - start,
    )
