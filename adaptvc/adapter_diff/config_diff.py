"""The config side of a diff: changed keys, and whether both adapters share a base model."""

from __future__ import annotations

from typing import Any

from adaptvc.adapter_diff.result import BaseModelCheck
from adaptvc.adapter_diff.sources import AdapterSource
from adaptvc.errors import BaseModelMismatchError
from adaptvc.formats.adapter_config import normalize_config


def config_changes(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Keys whose values differ → ``(old, new)``, sorted by key; a missing key is None.

    Set-valued fields (``target_modules``, ...) are compared as sorted lists, since PEFT
    writes sets in arbitrary order.
    """
    na, nb = normalize_config(a), normalize_config(b)
    changes: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(na) | set(nb)):
        old, new = na.get(key), nb.get(key)
        if old != new:
            changes[key] = (old, new)
    return changes


def check_base_models(a: AdapterSource, b: AdapterSource, *, force: bool = False) -> BaseModelCheck:
    """Decide whether ``a`` and ``b`` were trained on the same base model.

    Fingerprints decide when both sides have one. Without them, the recorded names (and
    revisions, when both have one) decide: a name is weak evidence (one model may live at
    two paths), which is why the error says how to override it.

    Raises:
        BaseModelMismatchError: they differ and ``force`` is False.
    """
    ba, bb = a.base_model, b.base_model
    fa, fb = ba.get("fingerprint"), bb.get("fingerprint")
    na, nb = ba.get("name_or_path"), bb.get("name_or_path")
    names_a = {na, ba.get("config_name")} - {None, ""}
    names_b = {nb, bb.get("config_name")} - {None, ""}
    ra, rb = ba.get("revision"), bb.get("revision")
    problem = ""
    if fa and fb:
        status = "match" if fa == fb else "mismatch"
        problem = "same fingerprint"
        if fa != fb:
            problem = (
                f"base-model fingerprints differ: {a.label} was trained on {na or '?'} ({_short(fa)}), "
                f"{b.label} on {nb or '?'} ({_short(fb)})"
            )
    elif names_a and names_b:
        if not names_a & names_b:
            status, problem = "mismatch", f"recorded base models differ: {a.label} names {na!r}, {b.label} names {nb!r}"
        elif ra and rb and ra != rb:
            status, problem = (
                "mismatch",
                f"base model {na!r} at different revisions: {ra} ({a.label}) vs {rb} ({b.label})",
            )
        else:
            status, problem = "match", "same name; no fingerprints recorded on both sides to compare"
    else:
        status, problem = "unknown", "not recorded on both sides"
    if status == "mismatch" and not force:  # `problem` is the mismatch's explanation here
        raise BaseModelMismatchError(
            f"{problem}; updates to different base models are not comparable",
            hint="if they are in fact the same weights, compare anyway with `adaptvc diff --force` "
            "(Python: adaptvc.diff(..., force=True))",
        )
    return BaseModelCheck(a=dict(ba), b=dict(bb), status=status, detail=problem)


def _short(fingerprint: str) -> str:
    algo, _, digest = fingerprint.partition(":")
    return f"{algo}:{digest[:12]}" if digest else fingerprint[:16]
