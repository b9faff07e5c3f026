"""``push``: the weights to the DVC remote first, then the branch and version tags to git
(only when every upload succeeded, so nobody can pull a version whose weights are missing)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adaptvc.errors import CorruptObjectError, DetachedHeadError, GitRemoteError, ObjectMissingError, RemoteError
from adaptvc.manifest import AdapterVersion
from adaptvc.refs import resolve_version, unique_ref
from adaptvc.repo import AdapterRepo
from adaptvc.sharing import SKIP_HOOKS_ENV, require_git_remote, version_labels
from adaptvc.storage import git_ops
from adaptvc.storage.transfer import DEFAULT_JOBS, TransferResult, push_objects
from adaptvc.transaction import settle_interrupted


@dataclass(frozen=True)
class PushResult:
    """What ``push`` did: weights uploaded (by version ref), weights already on the DVC
    remote, and the git refs pushed (empty when ``git_remote`` was None)."""

    remote: str
    git_remote: str | None
    branch: str | None
    uploaded: tuple[str, ...] = ()
    already_there: tuple[str, ...] = ()
    bytes: int = 0
    seconds: float = 0.0
    git_pushed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "remote": self.remote,
            "git_remote": self.git_remote,
            "branch": self.branch,
            "uploaded": list(self.uploaded),
            "already_there": list(self.already_there),
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "git_pushed": self.git_pushed,
        }


def upload_versions(
    repo: AdapterRepo, versions: Sequence[AdapterVersion], *, remote: str | None = None, jobs: int | None = None
) -> tuple[list[AdapterVersion], list[AdapterVersion], TransferResult]:
    """Make sure the DVC remote holds the weights of ``versions`` (those marked pruned
    by ``adaptvc gc`` aside).

    Returns ``(uploaded, already_there, transfer_result)``.

    Raises:
        ObjectMissingError: a version's weights are neither in the local cache nor on the
            remote (someone saved it and never pushed).
        CorruptObjectError: a version's local weights are damaged (hint: ``adaptvc verify --repair``).
        RemoteError: an upload failed; the message names the versions.
    """
    # Pruned versions (adaptvc gc) have no weights anywhere by design: nothing to upload.
    versions = [v for v in versions if v.pruned is None]
    labels = version_labels(versions)
    result = push_objects(repo.root, list(labels), remote=remote, jobs=jobs or DEFAULT_JOBS)
    if result.failed:
        _raise_failed(result, labels)
    by_id: dict[str, list[AdapterVersion]] = {}
    for v in versions:
        by_id.setdefault(v.id, []).append(v)

    def order(v: AdapterVersion) -> tuple[str, int]:
        return v.adapter, v.version

    uploaded = sorted((v for m in result.transferred for v in by_id.get(m, [])), key=order)
    there = sorted((v for m in result.skipped for v in by_id.get(m, [])), key=order)
    return uploaded, there, result


def _raise_failed(result: TransferResult, labels: dict[str, str]) -> None:
    """The error for a push that left some objects behind: the ones missing locally
    first (the transfer tells them by type), else every failure with its reason."""
    missing = [m for m, exc in result.failed.items() if isinstance(exc, ObjectMissingError)]
    if missing:
        names = ", ".join(labels[m] for m in missing)
        raise ObjectMissingError(
            f"the weights of {names} are neither in the local cache nor on DVC remote {result.remote!r}",
            md5s=tuple(missing),
            hint="push from the clone that saved them (adaptvc push), or fetch them there first",
        )
    damaged = [(m, exc) for m, exc in sorted(result.failed.items()) if isinstance(exc, CorruptObjectError)]
    if damaged:  # never spread to the team; verify --repair heals it from the remote or the workspace
        m, exc = damaged[0]
        names = ", ".join(labels[d] for d, _ in damaged)
        raise CorruptObjectError(
            f"the local weights of {names} are damaged (they do not hash to their id); nothing was uploaded for them",
            what=exc.what,
            path=exc.path,
            hint=exc.hint,
        )
    details = "; ".join(f"{labels[m]}: {exc.message}" for m, exc in sorted(result.failed.items()))
    raise RemoteError(
        f"uploading weights to DVC remote {result.remote!r} failed: {details}",
        hint=f"re-run adaptvc push (what was uploaded is kept); check: dvc status -c -r {result.remote}",
    )


def push(
    repo: AdapterRepo,
    refs: Sequence[str] = (),
    *,
    remote: str | None = None,
    git_remote: str | None = "origin",
    jobs: int | None = None,
) -> PushResult:
    """Upload weights to the DVC remote, then push the branch and version tags to git.

    Args:
        repo: the opened repository.
        refs: versions whose weights to upload (``task_a@v3``, ``task_a``); default: every
            version in the manifests of the current commit.
        remote: the DVC remote (default: DVC's default remote).
        git_remote: the git remote to push the current branch and its annotated version
            tags to (``--follow-tags``); ``None`` uploads weights only.
        jobs: parallel uploads.

    Raises:
        ObjectMissingError, RemoteError: an upload failed; nothing was pushed to git.
        RemoteNotFoundError: no DVC remote configured, or no git remote ``git_remote``.
        DetachedHeadError: HEAD is detached (with a ``git_remote``).
        GitRemoteError: the weights are uploaded but ``git push`` failed.
    """
    settle_interrupted(repo)
    if refs:
        versions = [resolve_version(repo, ref, with_commit=False) for ref in refs]
    else:
        versions = repo.versions_at("HEAD")
    branch = git_ops.current_branch(repo.root) if git_remote else None
    if git_remote and branch is None:
        raise DetachedHeadError(
            "HEAD is detached: there is no branch to push", command="push", hint="git switch BRANCH, then adaptvc push"
        )
    if git_remote:
        require_git_remote(repo.root, git_remote, "push")
    uploaded, there, result = upload_versions(repo, versions, remote=remote, jobs=jobs)
    if git_remote and branch:
        _git_push(repo.root, git_remote, branch, dvc_remote=result.remote)

    same_adapter: dict[str, list[AdapterVersion]] = {}
    for v in versions:
        same_adapter.setdefault(v.adapter, []).append(v)

    def name(v: AdapterVersion) -> str:  # task_a@<id> for a vN minted twice
        return unique_ref(v, same_adapter[v.adapter])

    return PushResult(
        result.remote,
        git_remote,
        branch,
        tuple(name(v) for v in uploaded),
        tuple(name(v) for v in there),
        result.bytes,
        result.seconds,
        git_pushed=bool(git_remote),
    )


def _git_push(root: Path, git_remote: str, branch: str, *, dvc_remote: str) -> None:
    """``git push --follow-tags`` of ``branch`` (setting its upstream the first time);
    the pre-push hook skips itself (the weights are up already).

    Raises:
        GitRemoteError: git refused; ``rejected`` when the remote has commits we lack.
    """
    args = ["push", "--follow-tags", "--porcelain"] + ([] if git_ops.has_upstream(root, branch) else ["--set-upstream"])
    proc = git_ops.run(
        root,
        *args,
        git_remote,
        f"refs/heads/{branch}:refs/heads/{branch}",
        env={SKIP_HOOKS_ENV: "pre-push"},
        check=False,
    )
    if proc.returncode == 0:
        return
    text = git_ops.output_text(proc)
    # git ran under LC_ALL=C (git_ops.run), so these are git's English words in any locale.
    said = (proc.stdout + proc.stderr).decode("utf-8", errors="replace")
    behind = any(w in said for w in ("[rejected]", "non-fast-forward", "fetch first"))
    hint = (
        f"{git_remote} has commits you do not: git pull --no-rebase {git_remote} {branch} (manifests "
        "merge by themselves), then adaptvc push again (uploaded weights are not sent twice)"
        if behind
        else "fix what git says, then adaptvc push again (uploaded weights are not sent twice)"
    )
    raise GitRemoteError(
        f"the weights are on DVC remote {dvc_remote!r}, but git push to {git_remote} failed: {text}",
        command="push",
        remote=git_remote,
        stderr=text,
        rejected=behind,
        hint=hint,
    )
