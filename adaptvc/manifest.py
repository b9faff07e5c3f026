"""The manifest: every version of one adapter, one JSON object per line.

``adapters/<name>/versions.jsonl`` is append-only JSON Lines, committed to git. Append-only
lines are what git's built-in ``union`` merge driver merges without conflicts (``adaptvc
init`` declares it in ``.gitattributes``), so two branches that each saved versions
merge into a manifest holding both sides' versions.

A line records what is known when the version is saved: number, content id (the
weights' md5, which is also the DVC cache key), size, message, author, time, parents,
base-model link, PEFT summary, metrics and the config's hashes. It cannot hold its own
git commit (the commit contains the line), so ``commit`` is looked up afterwards through
the commit-message trailer ``Adaptvc-Version:`` (see :mod:`adaptvc.storage.git_ops`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from adaptvc.errors import InvalidAdapterError

MANIFEST_NAME = "versions.jsonl"
PRUNED_RECORD = "pruned"  # the "record" field of a line that marks a version pruned (adaptvc gc)
ALIASES_NAME = "aliases.jsonl"
SCHEMA = 1


@dataclass(frozen=True)
class BaseModelLink:
    """What the adapter was trained on. ``fingerprint`` is ``"sha256:<hex>"`` over the
    base model's config and safetensors headers, when it was reachable locally."""

    name_or_path: str | None = None
    revision: str | None = None
    fingerprint: str | None = None
    bytes: int | None = None  # its weights' size, from the same headers (``du`` compares)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name_or_path": self.name_or_path, "revision": self.revision}
        d["fingerprint"] = self.fingerprint
        if self.bytes is not None:  # absent from records saved before it was measured
            d["bytes"] = self.bytes
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> BaseModelLink:
        d = d or {}
        size = d.get("bytes")
        return cls(d.get("name_or_path"), d.get("revision"), d.get("fingerprint"), int(size) if size else None)


@dataclass(frozen=True)
class PeftSummary:
    """The adapter's shape, from its config and its safetensors header."""

    type: str
    r: int | None = None
    alpha: float | None = None
    target_modules: tuple[str, ...] | str | None = None
    parameter_count: int = 0
    bytes: int = 0
    task_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        tm = list(self.target_modules) if isinstance(self.target_modules, tuple) else self.target_modules
        return {
            "type": self.type,
            "r": self.r,
            "alpha": self.alpha,
            "target_modules": tm,
            "parameter_count": self.parameter_count,
            "bytes": self.bytes,
            "task_type": self.task_type,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> PeftSummary:
        d = d or {}
        tm = d.get("target_modules")
        return cls(
            type=d.get("type") or "UNKNOWN",
            r=d.get("r"),
            alpha=d.get("alpha"),
            target_modules=tuple(tm) if isinstance(tm, list) else tm,
            parameter_count=int(d.get("parameter_count") or 0),
            bytes=int(d.get("bytes") or 0),
            task_type=d.get("task_type"),
        )


@dataclass(frozen=True)
class ParentLink:
    """A parent version: adapter, number and content id (the id disambiguates a ``vN``
    that two merged branches both minted)."""

    adapter: str
    version: int
    id: str

    @property
    def ref(self) -> str:
        return f"{self.adapter}@v{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {"adapter": self.adapter, "version": self.version, "id": self.id}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ParentLink:
        return cls(str(d["adapter"]), int(d["version"]), str(d["id"]))


@dataclass(frozen=True)
class PruneRecord:
    """A version's weights were removed from the DVC remote (and every cache adaptvc knew
    of) by ``adaptvc gc``: when, by whom, under which policy. Appended to the manifest as a
    line of its own (``"record": "pruned"``), which names the version by number, id and
    creation time: the union merge carries it to every branch like a version line, and a
    branch that lacks the version ignores it until the version arrives."""

    pruned_at: str  # ISO 8601, UTC
    by: str  # "Name <email>"
    policy: str  # what decided it, e.g. "keep-last 3, older-than 14d"

    def to_dict(self) -> dict[str, Any]:
        return {"pruned_at": self.pruned_at, "by": self.by, "policy": self.policy}


@dataclass(frozen=True)
class AdapterVersion:
    """One saved version of one adapter.

    ``id`` is the content id: the md5 of ``adapter_model.safetensors``, which is also its
    key in the DVC cache. ``commit``, ``aliases`` and ``directory`` are
    not stored in the manifest line; they are filled in when versions are loaded.
    ``new`` is True only on the value returned by the ``save`` that created it.
    """

    adapter: str
    version: int
    id: str
    size: int
    message: str
    author: str
    created_at: str  # ISO 8601, UTC
    parents: tuple[ParentLink, ...] = ()
    base_model: BaseModelLink = field(default_factory=BaseModelLink)
    peft: PeftSummary = field(default_factory=lambda: PeftSummary("UNKNOWN"))
    metrics: dict[str, Any] = field(default_factory=dict, hash=False)
    config_sha256: str = ""
    config_blob: str = ""  # git blob id of adapter_config.json: `git cat-file blob <id>`
    commit: str | None = field(default=None, compare=False)
    aliases: tuple[str, ...] = field(default=(), compare=False)
    directory: str = field(default="", compare=False)  # e.g. "adapters/task_a", posix, repo-relative
    pruned: PruneRecord | None = field(default=None, compare=False)  # weights removed by adaptvc gc
    new: bool = field(default=False, compare=False, repr=False)

    @property
    def ref(self) -> str:
        """``"task_a@v3"``."""
        return f"{self.adapter}@v{self.version}"

    def link(self) -> ParentLink:
        return ParentLink(self.adapter, self.version, self.id)

    def files(self) -> list[dict[str, Any]]:
        """The version's files in the workspace layout and where each is stored."""
        d = self.directory or f"adapters/{self.adapter}"
        return [
            {
                "path": f"{d}/adapter_config.json",
                "storage": "git",
                "git_blob": self.config_blob,
                "sha256": self.config_sha256,
            },
            {"path": f"{d}/adapter_model.safetensors", "storage": "dvc", "md5": self.id, "size": self.size},
            {"path": f"{d}/adapter_model.safetensors.dvc", "storage": "git"},
            {"path": f"{d}/{MANIFEST_NAME}", "storage": "git"},
        ]

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` form of ``log`` and ``show``."""
        return {
            "adapter": self.adapter,
            "version": self.version,
            "ref": self.ref,
            "id": self.id,
            "parents": [p.ref for p in self.parents],
            "parent_ids": [p.id for p in self.parents],
            "message": self.message,
            "author": self.author,
            "created_at": self.created_at,
            "metrics": dict(self.metrics),
            "base_model": self.base_model.to_dict(),
            "peft": self.peft.to_dict(),
            "size": self.size,
            "commit": self.commit,
            "aliases": list(self.aliases),
            "config_sha256": self.config_sha256,
            "files": self.files(),
            "pruned": self.pruned.to_dict() if self.pruned else None,
        }

    def to_record(self) -> dict[str, Any]:
        """The manifest line (what is known before the commit exists)."""
        return {
            "schema": SCHEMA,
            "adapter": self.adapter,
            "version": self.version,
            "id": self.id,
            "size": self.size,
            "message": self.message,
            "author": self.author,
            "created_at": self.created_at,
            "parents": [p.to_dict() for p in self.parents],
            "base_model": self.base_model.to_dict(),
            "peft": self.peft.to_dict(),
            "metrics": dict(self.metrics),
            "config": {"sha256": self.config_sha256, "git_blob": self.config_blob},
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any], *, directory: str = "") -> AdapterVersion:
        config = rec.get("config") or {}
        return cls(
            adapter=str(rec["adapter"]),
            version=int(rec["version"]),
            id=str(rec["id"]),
            size=int(rec.get("size") or 0),
            message=str(rec.get("message") or ""),
            author=str(rec.get("author") or ""),
            created_at=str(rec.get("created_at") or ""),
            parents=tuple(ParentLink.from_dict(p) for p in rec.get("parents") or ()),
            base_model=BaseModelLink.from_dict(rec.get("base_model")),
            peft=PeftSummary.from_dict(rec.get("peft")),
            metrics=dict(rec.get("metrics") or {}),
            config_sha256=str(config.get("sha256") or ""),
            config_blob=str(config.get("git_blob") or ""),
            directory=directory,
        )


def dumps_prune_record(version: AdapterVersion, record: PruneRecord) -> str:
    """The manifest line that marks ``version`` pruned (no newline; keys sorted). It
    carries the version's number, id and creation time, the key :func:`read_manifest`
    identifies versions by, so a reader that does not know pruning drops it as a duplicate."""
    line = {
        "schema": SCHEMA,
        "record": PRUNED_RECORD,
        "adapter": version.adapter,
        "version": version.version,
        "id": version.id,
        "created_at": version.created_at,
        **record.to_dict(),
    }
    return json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def dumps_record(version: AdapterVersion) -> str:
    """One manifest line (no newline): compact, keys sorted, so lines are stable."""
    return json.dumps(version.to_record(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def read_jsonl(path: Path, *, text: str | None = None) -> list[dict[str, Any]]:
    """Objects of a JSON Lines file; ``[]`` when it does not exist. ``text``: the file's
    contents read elsewhere (from git), ``path`` then only names it in errors.

    Raises:
        InvalidAdapterError: a line that is not a JSON object (e.g. conflict markers left by
            a merge without adaptvc's ``.gitattributes``), naming file and line.
    """
    return [obj for _, obj in _numbered_records(path, text)]


def _numbered_records(path: Path, text: str | None = None) -> list[tuple[int, dict[str, Any]]]:
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
    out: list[tuple[int, dict[str, Any]]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            obj = None
        if not isinstance(obj, dict):
            raise InvalidAdapterError(
                f"{path}:{lineno}: not a manifest record: {line[:60]!r}",
                path=str(path),
                hint="a merge without adaptvc's .gitattributes may have left conflict markers; keep every "
                "record line, delete the markers, commit; then run `adaptvc init` to install the merge drivers"
                if line.startswith(("<<<<<<<", "|||||||", "=======", ">>>>>>>"))
                else "the line is not valid JSON (edited by hand, or cut short?): restore it from git "
                f"(git log -p -- {path.name}) or delete it",
            )
        out.append((lineno, obj))
    return out


def read_manifest(path: Path, *, directory: str = "", text: str | None = None) -> list[AdapterVersion]:
    """Every version recorded in a manifest file, in file order; duplicates (the same
    line reaching a branch twice) are dropped. ``text``: as for :func:`read_jsonl`."""
    seen: set[tuple[Any, ...]] = set()
    versions = []
    pruned: dict[tuple[Any, ...], PruneRecord] = {}
    for lineno, rec in _numbered_records(path, text):
        if rec.get("record") == PRUNED_RECORD:
            key, record = _prune_entry(rec)
            pruned.setdefault(key, record)  # the first pruning is the one that happened
            continue
        try:
            v = AdapterVersion.from_record(rec, directory=directory)
        except (KeyError, TypeError, ValueError) as exc:
            what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise InvalidAdapterError(
                f"{path}:{lineno}: malformed version record ({what}): {json.dumps(rec)[:80]}",
                path=str(path),
                hint=f"restore the line from git (git log -p -- {path.name}) or delete it",
            ) from None
        key = (v.version, v.id, v.created_at)
        if key not in seen:
            seen.add(key)
            versions.append(v)
    return with_prune_records(versions, pruned)


def _prune_entry(rec: dict[str, Any]) -> tuple[tuple[Any, ...], PruneRecord]:
    key = (rec.get("version"), rec.get("id"), rec.get("created_at"))
    return key, PruneRecord(str(rec.get("pruned_at") or ""), str(rec.get("by") or ""), str(rec.get("policy") or ""))


def with_prune_records(
    versions: list[AdapterVersion], pruned: dict[tuple[Any, ...], PruneRecord]
) -> list[AdapterVersion]:
    """``versions`` with ``pruned`` set where a prune record names them (records of
    versions not in the list wait for a merge to bring their version)."""
    if not pruned:
        return versions
    return [
        replace(v, pruned=pruned[(v.version, v.id, v.created_at)]) if (v.version, v.id, v.created_at) in pruned else v
        for v in versions
    ]


def prune_records(text: str) -> dict[tuple[Any, ...], PruneRecord]:
    """The prune records in a manifest's text (damaged lines skipped): for readers that
    parse version lines themselves (:meth:`adaptvc.repo.AdapterRepo.versions_at`)."""
    out: dict[tuple[Any, ...], PruneRecord] = {}
    for line in text.splitlines():
        if PRUNED_RECORD not in line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and rec.get("record") == PRUNED_RECORD:
            key, record = _prune_entry(rec)
            out.setdefault(key, record)
    return out


def appended(path: Path, lines: Iterable[str]) -> bytes:
    """The file's bytes with ``lines`` appended, a newline after each (and before, when
    the file lacked a final newline) - what the caller then writes atomically."""
    try:
        old = path.read_bytes()
    except FileNotFoundError:
        old = b""
    if old and not old.endswith(b"\n"):
        old += b"\n"
    return old + b"".join(line.encode("utf-8") + b"\n" for line in lines)


def recency(version: AdapterVersion) -> tuple[str, int]:
    """The order of versions in time: creation time, then number (the sort key)."""
    return (version.created_at, version.version)


def newest(versions: Iterable[AdapterVersion]) -> AdapterVersion | None:
    """The most recently created version, or ``None`` for none."""
    return max(versions, key=recency, default=None)


def newest_first(versions: Iterable[AdapterVersion]) -> list[AdapterVersion]:
    return sorted(versions, key=recency, reverse=True)
