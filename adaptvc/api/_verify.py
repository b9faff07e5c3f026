"""The API for checking and healing a repository's stored weights: verify."""

from __future__ import annotations

import os
from collections.abc import Sequence

from adaptvc.repo import AdapterRepo
from adaptvc.versioning.verify import VerifyReport
from adaptvc.versioning.verify import verify as verify_versions


def verify(
    refs: Sequence[str] = (),
    *,
    repo: str | os.PathLike[str] = ".",
    all_refs: bool = False,
    remote: str | None = None,
    check_remote: bool = False,
    deep: bool = False,
    repair: bool = False,
) -> VerifyReport:
    """Rehash the workspace weights and every DVC cache object the versions need; with
    ``check_remote`` check each object on the DVC remote; with ``repair`` heal.

    Args:
        refs: ``task_a`` (every version of it), ``task_a@v3``...; default: every version
            of every adapter.
        repo: the repository.
        all_refs: also every version recorded on any local branch or tag.
        remote: the DVC remote to check and to repair from or to (default: the default one).
        check_remote: check each object on the remote: present, with its size.
        deep: also download each object from the remote and check its MD5.
        repair: a missing or damaged local object is fetched from the remote (MD5-checked)
            or rebuilt from an intact workspace copy; a missing or damaged object on the
            remote is uploaded again from the intact local copy; damaged workspace
            weights are rewritten from the cache.

    Returns:
        A :class:`~adaptvc.versioning.verify.VerifyReport`: one entry per object (``local``
        and ``remote`` states: ok / missing / corrupt / repaired) and per adapter's
        workspace weights; ``ok`` when nothing stays broken; ``to_dict()`` is the
        ``--json`` document. Broken objects are reported, not raised.

    Raises:
        RemoteNotFoundError, RemoteError: the remote to check is unknown or unreachable.
        InvalidRefError, AdapterNotFoundError, VersionNotFoundError: a bad ref.

    Example:
        >>> report = adaptvc.verify(remote="storage", check_remote=True, repair=True)  # doctest: +SKIP
        >>> report.ok, [o.md5 for o in report.broken]  # doctest: +SKIP
    """
    return verify_versions(
        AdapterRepo.open(repo),
        tuple(refs),
        all_refs=all_refs,
        remote=remote,
        check_remote=check_remote,
        deep=deep,
        repair=repair,
    )
