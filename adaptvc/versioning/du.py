"""``adaptvc du``: where the bytes of the adapters' versions are.

Per adapter and per version: the weights' size, whether the local DVC cache and the DVC
remote hold them, which versions share one object (content-addressed: identical weights
are stored once), what ``gc`` would free under the team's policy, and the base model's
size beside the adapter's when the save could measure it (its safetensors headers).
Local figures are the cache files' sizes (what ``du -b`` counts for them); remote ones are
the versions' recorded sizes of the objects the remote holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from adaptvc.errors import NoRetentionPolicyError
from adaptvc.manifest import AdapterVersion, newest, newest_first
from adaptvc.refs import unique_ref, validate_name
from adaptvc.repo import AdapterRepo
from adaptvc.transaction import settle_interrupted
from adaptvc.versioning.gc import GcResult, run_gc, version_objects
from adaptvc.versioning.retention import policy_from


@dataclass(frozen=True)
class VersionUsage:
    """One version: its objects' bytes, where they are, who shares them."""

    ref: str
    id: str
    bytes: int
    local: bool  # every object in the local cache
    remote: bool | None  # every object on the DVC remote (None: not asked)
    shared_with: tuple[str, ...] = ()  # other versions owning one of its objects
    pruned: bool = False
    training_state_bytes: int = 0  # its training state still stored (not in ``bytes``; gc can drop it)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "id": self.id,
            "bytes": self.bytes,
            "local": self.local,
            "remote": self.remote,
            "shared_with": list(self.shared_with),
            "pruned": self.pruned,
            "training_state_bytes": self.training_state_bytes,
        }


@dataclass(frozen=True)
class AdapterUsage:
    """One adapter: ``bytes`` counts each object once (``shared_bytes`` is what sharing
    saves over one copy per version); ``base_model_bytes`` when measured at save."""

    adapter: str
    versions: tuple[VersionUsage, ...]
    bytes: int
    local_bytes: int
    remote_bytes: int | None
    shared_bytes: int
    newest_bytes: int
    base_model: str | None = None
    base_model_bytes: int | None = None

    @property
    def times_smaller(self) -> float | None:
        """How many times the base model's weights outweigh the newest version's."""
        if not self.base_model_bytes or not self.newest_bytes:
            return None
        return self.base_model_bytes / self.newest_bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "adapter": self.adapter,
            "bytes": self.bytes,
            "local_bytes": self.local_bytes,
            "remote_bytes": self.remote_bytes,
            "shared_bytes": self.shared_bytes,
            "newest_bytes": self.newest_bytes,
            "base_model": self.base_model,
            "base_model_bytes": self.base_model_bytes,
            "times_smaller": None if self.times_smaller is None else round(self.times_smaller, 1),
            "versions": [v.to_dict() for v in self.versions],
        }


@dataclass(frozen=True)
class DiskUsage:
    """The whole picture. ``cache_bytes``: every object file in the local DVC cache,
    adaptvc's or not; ``gc``: the dry run under the configured policy (None: none set)."""

    adapters: tuple[AdapterUsage, ...]
    remote: str | None
    local_bytes: int
    remote_bytes: int | None
    cache_bytes: int
    shared_bytes: int
    gc: GcResult | None = None

    def to_dict(self) -> dict[str, Any]:
        gc = self.gc
        return {
            "remote": self.remote,
            "local_bytes": self.local_bytes,
            "remote_bytes": self.remote_bytes,
            "cache_bytes": self.cache_bytes,
            "shared_bytes": self.shared_bytes,
            "gc": None
            if gc is None
            else {
                "policy": gc.policy.to_dict(),
                "local_bytes": gc.local_bytes,
                "remote_bytes": gc.remote_bytes,
                "versions": [v.ref for v in gc.versions if v.decision == "goes"],
            },
            "adapters": [a.to_dict() for a in self.adapters],
        }


def disk_usage(repo: AdapterRepo, adapters: Sequence[str] = (), *, remote: str | None = None) -> DiskUsage:
    """Bytes per adapter and version, locally and (``remote``) on the DVC remote.

    Raises:
        AdapterNotFoundError: an adapter in ``adapters`` that does not exist.
        RemoteNotFoundError, RemoteError: the DVC remote is unknown or unreachable.
    """
    settle_interrupted(repo)
    names = [validate_name(a) for a in adapters] or repo.list_adapters(committed=True)
    versions = {name: repo.versions(name, must_exist=bool(adapters)) for name in names}
    files = repo.dvc_cache.object_files()
    owners: dict[str, list[str]] = {}
    for vs in versions.values():
        for v in vs:
            for o in version_objects(v):
                owners.setdefault(o.md5, []).append(unique_ref(v, vs))
    on_remote: set[str] | None = None
    if remote is not None:
        from adaptvc.storage.transfer import RemoteStore  # fsspec and DVC's filesystems: only when asked

        store = RemoteStore(repo.root, remote)
        remote = store.name
        on_remote = store.existing(owners)
    usage = tuple(_adapter_usage(name, vs, files, on_remote, owners) for name, vs in versions.items())
    sizes = {o.md5: o.size for vs in versions.values() for v in vs if v.pruned is None for o in version_objects(v)}
    return DiskUsage(
        adapters=usage,
        remote=remote,
        local_bytes=sum(files[m] for m in sizes if m in files),
        remote_bytes=None if on_remote is None else sum(sizes.get(m, 0) for m in on_remote),
        cache_bytes=sum(files.values()),
        shared_bytes=sum(a.shared_bytes for a in usage) + _across_adapters(versions, sizes),
        gc=_gc_preview(repo, adapters, remote),
    )


def _adapter_usage(
    name: str,
    vs: list[AdapterVersion],
    files: dict[str, int],
    on_remote: set[str] | None,
    owners: dict[str, list[str]],
) -> AdapterUsage:
    rows = []
    sizes: dict[str, int] = {}
    for v in newest_first(vs):
        everything = version_objects(v)
        # Training state is counted apart: gc --drop-training-state removes it alone.
        objects = [o for o in everything if o.kind != "training_state"]
        state = [o for o in everything if o.kind == "training_state"]
        stored_state = [o for o in state if o.md5 in files or (on_remote is not None and o.md5 in on_remote)]
        if v.pruned is None:  # a pruned version's weights are stored nowhere
            sizes.update({o.md5: o.size for o in [*objects, *stored_state]})
        ref = unique_ref(v, vs)
        rows.append(
            VersionUsage(
                ref=ref,
                id=v.id,
                bytes=sum(o.size for o in objects),
                local=all(o.md5 in files for o in objects),
                remote=None if on_remote is None else all(o.md5 in on_remote for o in objects),
                shared_with=tuple(sorted({r for o in objects for r in owners.get(o.md5, []) if r != ref})),
                pruned=v.pruned is not None,
                training_state_bytes=sum(o.size for o in stored_state),
            )
        )
    top = newest(vs)
    return AdapterUsage(
        adapter=name,
        versions=tuple(rows),
        bytes=sum(sizes.values()),
        local_bytes=sum(files[m] for m in sizes if m in files),
        remote_bytes=None if on_remote is None else sum(s for m, s in sizes.items() if m in on_remote),
        shared_bytes=sum(r.bytes for r in rows if not r.pruned) - sum(sizes.values()),
        newest_bytes=top.size if top else 0,
        base_model=top.base_model.name_or_path if top else None,
        base_model_bytes=top.base_model.bytes if top and top.base_model.fingerprint else None,
    )


def _across_adapters(versions: dict[str, list[AdapterVersion]], sizes: dict[str, int]) -> int:
    """Bytes saved by objects that versions of different adapters share (each adapter's
    figure counts them once for itself)."""
    counted = sum(
        sum(sizes[m] for m in {o.md5 for v in vs if v.pruned is None for o in version_objects(v)})
        for vs in versions.values()
    )
    return counted - sum(sizes.values())


def _gc_preview(repo: AdapterRepo, adapters: Sequence[str], remote: str | None) -> GcResult | None:
    """What ``gc`` with no flags would free (the team's ``[gc]`` policy), or None."""
    try:
        policy = policy_from(repo.config.gc)
    except NoRetentionPolicyError:
        return None
    return run_gc(repo, policy, adapters=adapters, remote=remote, git_remote=None, dry_run=True)
