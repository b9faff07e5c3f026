"""Retention: which versions ``adaptvc gc`` may take the weights of, and for how long a
remote object is safe from it.

The team's policy lives in ``.adaptvc/config.toml`` (committed, so every clone's ``gc``
does what the team agreed); command-line flags override it key by key::

    [gc]
    keep_last = 5            # the 5 newest versions of each adapter stay
    older_than = "30d"       # ... and every version younger than 30 days
    keep_aliased = true      # versions an alias points at stay (the default)
    keep = ["task_a@v1"]     # refs that always stay
    grace_period = "14d"     # remote objects younger than this are never removed (default)

Durations are a number and a unit: ``90s``, ``30m``, ``12h``, ``14d``, ``2w`` (``0``
alone is zero), as git's ``gc.pruneExpire`` takes "2.weeks.ago".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from adaptvc.errors import InvalidRetentionError, NoRetentionPolicyError

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
DEFAULT_GRACE_PERIOD = 14 * 86400.0
_DURATION_RE = re.compile(r"^\s*(?P<n>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[smhdw])\s*$")
_KEYS = frozenset({"keep_last", "older_than", "keep_aliased", "keep", "grace_period"})
DURATION_RULES = "a number and a unit: 90s, 30m, 12h, 14d, 2w (0 for none)"


def parse_duration(text: str | int | float, *, setting: str = "duration") -> float:
    """``"14d"`` → seconds (``1209600.0``); ``"0"`` → 0.

    Raises:
        InvalidRetentionError: not a number with one of the units s, m, h, d, w.

    Example:
        >>> parse_duration("2w") == parse_duration("14d")
        True
    """
    raw = str(text).strip()
    if raw in ("0", "0.0") or (isinstance(text, (int, float)) and not isinstance(text, bool) and text == 0):
        return 0.0
    m = _DURATION_RE.match(raw.lower())
    if not m:
        raise InvalidRetentionError(
            f"{setting}: {raw!r} is not a duration", setting=setting, value=raw, hint=f"write {DURATION_RULES}"
        )
    return float(m["n"]) * UNITS[m["unit"]]


def format_duration(seconds: float) -> str:
    """The largest unit that divides ``seconds`` exactly: 1209600 → ``"2w"``, 0 → ``"0"``."""
    if seconds <= 0:
        return "0"
    for unit in ("w", "d", "h", "m"):
        n = seconds / UNITS[unit]
        if n >= 1 and n == int(n):
            return f"{int(n)}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True)
class RetentionPolicy:
    """What ``gc`` keeps beyond what is always kept (branch and tag tips, the workspace).

    ``keep_last``: the N newest versions of each adapter stay. ``older_than`` (seconds):
    only versions older than this may go. Both set: a version goes when it is neither
    among the newest N nor younger than ``older_than``.
    """

    keep_last: int | None = None
    older_than: float | None = None
    keep_aliased: bool = True
    keep: tuple[str, ...] = ()
    grace_period: float = DEFAULT_GRACE_PERIOD

    @property
    def has_rule(self) -> bool:
        return self.keep_last is not None or self.older_than is not None

    def describe(self) -> str:
        """``"keep-last 3, older-than 30d"``: what a prune record says decided it."""
        parts = []
        if self.keep_last is not None:
            parts.append(f"keep-last {self.keep_last}")
        if self.older_than is not None:
            parts.append(f"older-than {format_duration(self.older_than)}")
        if not self.keep_aliased:
            parts.append("no-keep-aliased")
        parts += [f"keep {ref}" for ref in self.keep]
        return ", ".join(parts) or "none"

    def to_dict(self) -> dict[str, Any]:
        return {
            "keep_last": self.keep_last,
            "older_than": None if self.older_than is None else format_duration(self.older_than),
            "keep_aliased": self.keep_aliased,
            "keep": list(self.keep),
            "grace_period": format_duration(self.grace_period),
        }


def policy_from(
    section: dict[str, Any],
    *,
    keep_last: int | None = None,
    older_than: str | float | None = None,
    keep_aliased: bool | None = None,
    keep: tuple[str, ...] | list[str] = (),
    grace_period: str | float | None = None,
    require_rule: bool = True,
) -> RetentionPolicy:
    """The policy in force: ``[gc]`` of ``.adaptvc/config.toml`` (``section``), each
    setting overridden by the matching argument when that is given. ``keep`` adds to the
    configured refs.

    Raises:
        InvalidRetentionError: a bad value, or a key ``[gc]`` does not know.
        NoRetentionPolicyError: ``require_rule`` and neither ``keep_last`` nor
            ``older_than`` is set anywhere.
    """
    unknown = sorted(set(section) - _KEYS)
    if unknown:
        raise InvalidRetentionError(
            f".adaptvc/config.toml: unknown key {unknown[0]!r} in [gc]",
            setting=f"gc.{unknown[0]}",
            value=str(section[unknown[0]]),
            hint="the keys are: " + ", ".join(sorted(_KEYS)),
        )
    last = keep_last if keep_last is not None else section.get("keep_last")
    if last is not None and (isinstance(last, bool) or not isinstance(last, int) or last < 0):
        raise InvalidRetentionError(
            f"keep_last must be a whole number >= 0, not {last!r}", setting="keep_last", value=str(last)
        )
    older = older_than if older_than is not None else section.get("older_than")
    grace = grace_period if grace_period is not None else section.get("grace_period")
    configured_keep = section.get("keep", [])
    if not isinstance(configured_keep, list) or not all(isinstance(r, str) for r in configured_keep):
        raise InvalidRetentionError(
            "gc.keep must be a list of refs", setting="gc.keep", value=str(configured_keep), hint='keep = ["task_a@v1"]'
        )
    aliased = keep_aliased if keep_aliased is not None else section.get("keep_aliased", True)
    policy = RetentionPolicy(
        keep_last=last,
        older_than=None if older is None else parse_duration(older, setting="older_than"),
        keep_aliased=bool(aliased),
        keep=tuple(dict.fromkeys([*configured_keep, *keep])),
        grace_period=DEFAULT_GRACE_PERIOD if grace is None else parse_duration(grace, setting="grace_period"),
    )
    if require_rule and not policy.has_rule:
        raise NoRetentionPolicyError(
            "no retention policy: gc does not guess which versions the team can do without",
            hint="adaptvc gc --keep-last 5 (or --older-than 30d); for the team, put keep_last / older_than "
            "under [gc] in .adaptvc/config.toml and commit it",
        )
    return policy
