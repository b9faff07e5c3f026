"""Adapter names and refs: one regex to parse them, one function to resolve them.

A ref names one version of one adapter::

    task_a              the newest version (same as task_a@latest)
    task_a@latest       the newest version
    task_a@v3           version number 3
    task_a@3f2a9c1e     a content id (the weights' md5) prefix, at least 4 hex digits
    task_a@production   an alias (``adaptvc alias task_a@v3 production``)

Selectors are tried in that order; an alias whose name also looks like a hex prefix
wins over the id. Names become parts of git tags (``task_a@v3``) and of paths
(``adapters/task_a/``), hence the strict alphabet.

Resolution (:func:`resolve_version`) reads the manifest. When two merged branches both
minted ``task_a@v3`` with different weights, ``task_a@v3`` is ambiguous and the error
lists ``task_a@<id>`` for each; versions with identical content are interchangeable, so
a ref matching only those resolves to the newest of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from adaptvc.errors import AmbiguousRefError, InvalidRefError, VersionNotFoundError
from adaptvc.manifest import recency

if TYPE_CHECKING:  # pragma: no cover
    from adaptvc.manifest import AdapterVersion


class Versions(Protocol):
    """What resolving a ref reads (an :class:`~adaptvc.repo.AdapterRepo`, which sits above
    this module): an adapter's versions and its aliases."""

    def versions(self, name: str, *, with_commits: bool = ..., must_exist: bool = ...) -> list[AdapterVersion]: ...

    def aliases(self, name: str, versions: list[AdapterVersion] | None = ...) -> dict[str, AdapterVersion]: ...


# Name: starts with a letter or digit; letters, digits, "_", "-" and single inner dots.
# (No "..", no trailing "." and no "/" - git refuses those in tag names - and no "@",
# which separates the selector.) The selector uses the same alphabet.
_PART = r"[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*"
REF_RE = re.compile(rf"^(?P<adapter>{_PART})(?:@(?P<selector>{_PART}))?$")
MAX_NAME_LENGTH = 64

_VERSION_RE = re.compile(r"^v(?P<n>[0-9]+)$")
_HEX_RE = re.compile(r"^[0-9a-f]{4,32}$")
RESERVED_SELECTORS = frozenset({"latest"})

NAME_RULES = (
    "letters, digits, '_', '-' and inner single dots, starting with a letter or digit, "
    f"at most {MAX_NAME_LENGTH} characters (e.g. task_a, llama-7b.sql)"
)
REF_RULES = "NAME, NAME@latest, NAME@vN, NAME@<id prefix (4+ hex digits)> or NAME@<alias>"


@dataclass(frozen=True)
class Ref:
    """A parsed ref: the adapter name and what follows ``@`` (``None`` = latest)."""

    adapter: str
    selector: str | None = None

    @property
    def kind(self) -> str:
        """``"latest"``, ``"version"``, or ``"name"`` (an alias or an id prefix)."""
        if self.selector is None or self.selector == "latest":
            return "latest"
        if _VERSION_RE.match(self.selector):
            return "version"
        return "name"

    @property
    def version_number(self) -> int | None:
        m = _VERSION_RE.match(self.selector or "")
        return int(m.group("n")) if m else None

    def __str__(self) -> str:
        return self.adapter if self.selector is None else f"{self.adapter}@{self.selector}"


def _check_length(text: str, what: str) -> None:
    if len(text) > MAX_NAME_LENGTH:
        raise InvalidRefError(f"{what} {text!r} is longer than {MAX_NAME_LENGTH} characters", hint=f"use {NAME_RULES}")


def validate_name(name: str) -> str:
    """Check an adapter name; returns it unchanged.

    Raises:
        InvalidRefError: the name breaks the rules (the message says which are allowed).
    """
    m = REF_RE.match(name or "")
    if not m or m.group("selector") is not None or name.endswith(".lock"):
        raise InvalidRefError(f"invalid adapter name {name!r}", hint=f"use {NAME_RULES}")
    _check_length(name, "adapter name")
    return name


def validate_alias(alias: str) -> str:
    """Check an alias name (``production``, ``best-eval``); not ``latest`` nor ``vN``."""
    m = REF_RE.match(alias or "")
    if not m or m.group("selector") is not None or alias.endswith(".lock"):
        raise InvalidRefError(f"invalid alias {alias!r}", hint=f"use {NAME_RULES}")
    if alias in RESERVED_SELECTORS or _VERSION_RE.match(alias):
        raise InvalidRefError(
            f"alias {alias!r} would shadow a built-in selector", hint="pick a name that is not 'latest' or 'vN'"
        )
    if _HEX_RE.match(alias):  # NAME@<alias> is looked up before ids: it would hide the versions whose id starts so
        raise InvalidRefError(
            f"alias {alias!r} would read as a version id (4+ hex digits)",
            hint="pick a name with a letter after 'f', e.g. production, best-eval",
        )
    _check_length(alias, "alias")
    return alias


def parse_ref(text: str) -> Ref:
    """Parse ``NAME`` or ``NAME@SELECTOR``.

    Args:
        text: the ref as typed by the user.

    Returns:
        A :class:`Ref`.

    Raises:
        InvalidRefError: the text does not parse; the message lists the allowed forms.

    Example:
        >>> parse_ref("task_a@v3")
        Ref(adapter='task_a', selector='v3')
    """
    m = REF_RE.match((text or "").strip())
    if not m:
        raise InvalidRefError(f"invalid ref {text!r}", hint=f"use {REF_RULES}; names: {NAME_RULES}")
    _check_length(m.group("adapter"), "adapter name")
    return Ref(m.group("adapter"), m.group("selector"))


def unique_ref(version: AdapterVersion, versions: Sequence[AdapterVersion]) -> str:
    """The shortest ref naming ``version`` among ``versions``: ``NAME@vN`` unless another
    version with different content shares N, then ``NAME@<id>``."""
    clash = any(v.version == version.version and v.id != version.id for v in versions)
    return f"{version.adapter}@{version.id}" if clash else version.ref


def select(
    ref: Ref, versions: Sequence[AdapterVersion], aliases: dict[str, AdapterVersion] | None = None
) -> AdapterVersion:
    """Pick the version ``ref`` names among ``versions`` (all of one adapter).

    Raises:
        VersionNotFoundError: no match; the message lists the versions that exist.
        AmbiguousRefError: several matches with different content.
    """
    if not versions:
        raise VersionNotFoundError(
            f"adapter {ref.adapter!r} has no saved version",
            name=ref.adapter,
            version=ref.selector,
            hint=f"adaptvc save --adapter {ref.adapter} -m MESSAGE",
        )
    newest_first = sorted(versions, key=recency, reverse=True)
    kind = ref.kind
    if kind == "latest":
        return newest_first[0]
    if kind == "version":
        matches = [v for v in newest_first if v.version == ref.version_number]
    else:
        sel = ref.selector or ""
        if aliases and sel in aliases:
            return aliases[sel]
        matches = [v for v in newest_first if _HEX_RE.match(sel) and v.id.startswith(sel)]
    if not matches:
        raise VersionNotFoundError(
            f"no version {ref}; {ref.adapter} has {_listing(newest_first, aliases)}",
            name=ref.adapter,
            version=ref.selector,
            hint=f"adaptvc log {ref.adapter}",
        )
    if len({(v.id, v.config_sha256) for v in matches}) > 1:
        candidates = [f"{v.adapter}@{v.id}" for v in matches]
        raise AmbiguousRefError(
            f"{ref} names {len(matches)} different versions (saved on branches that were merged): "
            + ", ".join(f"{c} ({v.message!r})" for c, v in zip(candidates, matches, strict=True)),
            candidates=candidates,
            hint=f"address one by its id, e.g. adaptvc show {candidates[0]}",
        )
    return matches[0]  # identical content: the newest of them


def _listing(versions: Sequence[AdapterVersion], aliases: dict[str, AdapterVersion] | None) -> str:
    shown = [unique_ref(v, versions).split("@", 1)[1] for v in versions[:20]]
    more = f" and {len(versions) - 20} more" if len(versions) > 20 else ""
    text = ", ".join(shown) + more
    if aliases:
        text += "; aliases: " + ", ".join(sorted(aliases))
    return text


def resolve_version(repo: Versions, ref: str | Ref, *, with_commit: bool = True) -> AdapterVersion:
    """Resolve a ref to the :class:`~adaptvc.manifest.AdapterVersion` it names.

    Args:
        repo: an open :class:`~adaptvc.repo.AdapterRepo`.
        ref: ``"task_a"``, ``"task_a@v3"``, ``"task_a@3f2a"``, ``"task_a@production"`` or a :class:`Ref`.
        with_commit: fill ``commit`` (one ``git log`` call for the adapter).

    Returns:
        The version (frozen dataclass).

    Raises:
        InvalidRefError, AdapterNotFoundError, VersionNotFoundError, AmbiguousRefError.

    Example:
        >>> resolve_version(AdapterRepo.open("."), "task_a@v2").id     # doctest: +SKIP
        '3f2a9c1e...'
    """
    parsed = ref if isinstance(ref, Ref) else parse_ref(ref)
    versions = repo.versions(parsed.adapter, with_commits=with_commit, must_exist=True)
    return select(parsed, versions, repo.aliases(parsed.adapter, versions))
