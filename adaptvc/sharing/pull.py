"""``pull``: fast-forward the branch and fetch the tags from git, then bring the weights the
workspace needs (:mod:`adaptvc.versioning.sync`).

When git refuses, its stderr says why; it is parsed here to name what is in the way (an
adapter's unsaved changes, a diverged branch). git runs under ``LC_ALL=C``
(:func:`adaptvc.storage.git_ops.run`), so those are git's English messages whatever the
user's locale.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adaptvc.errors import DetachedHeadError, DirtyWorkspaceError, GitRemoteError
from adaptvc.repo import AdapterRepo
from adaptvc.sharing import SKIP_HOOKS_ENV, require_git_remote
from adaptvc.storage import git_ops
from adaptvc.storage.transfer import use_remote
from adaptvc.versioning.sync import SyncResult, sync_workspace

log = logging.getLogger("adaptvc")


@dataclass(frozen=True)
class PullResult:
    """What ``pull`` did: the commits git moved between, and the workspace sync (its
    warnings went to the ``adaptvc`` logger)."""

    git_remote: str | None
    branch: str | None
    old_commit: str | None
    new_commit: str | None
    sync: SyncResult = field(default_factory=SyncResult)

    def to_dict(self) -> dict[str, Any]:
        # "warnings": the CLI's --json document lists the logged ones here.
        return {
            "git_remote": self.git_remote,
            "branch": self.branch,
            "old_commit": self.old_commit,
            "new_commit": self.new_commit,
            **self.sync.to_dict(),
            "warnings": [],
        }


def pull(repo: AdapterRepo, *, remote: str | None = None, git_remote: str | None = "origin") -> PullResult:
    """Fast-forward the current branch and tags from git, then fetch the weights the
    workspace needs from the DVC remote (older versions come on demand).

    Args:
        repo: the opened repository.
        remote: the DVC remote (default: DVC's default remote).
        git_remote: where to pull from; ``None`` only syncs the workspace's weights.

    Returns:
        A :class:`PullResult`; problems with single versions are logged warnings.

    Raises:
        GitRemoteError: git cannot fast-forward (the branches diverged) or cannot reach the remote.
        DetachedHeadError: HEAD is detached.
        RemoteNotFoundError: there is no git remote ``git_remote``.
        DirtyWorkspaceError: unsaved changes (named by adapter) are in the way; nothing was pulled.
        RemoteAccessError, CorruptObjectError: git was pulled but fetching the weights from
            the DVC remote failed (the remote is named; a re-run fetches the rest).
    """
    branch = git_ops.current_branch(repo.root)
    old = git_ops.head_commit(repo.root)
    if git_remote:
        if branch is None:
            raise DetachedHeadError(
                "HEAD is detached: there is no branch to pull", command="pull", hint="git switch BRANCH"
            )
        require_git_remote(repo.root, git_remote, "pull")
        _git_pull(repo, git_remote, branch)
        _fetch_tags(repo.root, git_remote)
    new = git_ops.head_commit(repo.root)
    # A fresh view of the same repository: git may have changed what the old one had read
    # and cached (the adapters directory, the DVC cache location).
    moved = AdapterRepo(repo.root, repo.git_dir)
    with use_remote(remote):
        sync = sync_workspace(moved, strict=True)
    return PullResult(git_remote, branch, old, new, sync)


def _git_pull(repo: AdapterRepo, git_remote: str, branch: str) -> None:
    """``git pull --ff-only`` of the branch alone (tags apart: :func:`_fetch_tags`)."""
    skip = {SKIP_HOOKS_ENV: "post-merge,post-checkout"}  # the caller syncs the workspace
    # The branch first and the tags apart: a version tag that two clones both minted
    # (task_a@v3) makes `git fetch --tags` fail with "would clobber existing tag",
    # which must not stop the pull (versions are addressed by id, never by tag).
    proc = git_ops.run(
        repo.root, "pull", "--ff-only", "--no-tags", "--no-rebase", git_remote, branch, env=skip, check=False
    )
    if proc.returncode == 0:
        return
    text = git_ops.output_text(proc)
    diverged = "would be overwritten" not in text and ("fast-forward" in text or "diverg" in text)
    # Nothing was lost: git refuses before touching anything. Name what is in the way.
    _raise_if_unsaved_in_the_way(
        repo,
        text,
        diverged=diverged,
        then=f"git pull --no-rebase {git_remote} {branch}" if diverged else "adaptvc pull",
    )
    if diverged:
        hint = (
            f"git pull --no-rebase {git_remote} {branch}   (merges; manifests merge by themselves), then adaptvc pull"
        )
    else:
        hint = f"git pull {git_remote} {branch} shows the same; fix what git says, then adaptvc pull"
    raise GitRemoteError(
        f"git pull from {git_remote} failed: {text}",
        command="pull",
        remote=git_remote,
        stderr=text,
        rejected=diverged,
        hint=hint,
    )


def _paths_in_the_way(repo: AdapterRepo, git_text: str, *, diverged: bool) -> tuple[list[str], bool]:
    """The paths git named as in the way (``"error: ... would be overwritten by merge:"``
    then one ``"\\tPATH"`` line each), and whether they are untracked. For a diverged
    branch ``--ff-only`` stopped first: the paths the merge would refuse to overwrite."""
    paths: list[str] = []
    untracked = in_list = False
    for line in git_text.splitlines():
        if "would be overwritten" in line:
            untracked, in_list = untracked or "untracked" in line, True
        elif in_list and line.startswith("\t"):
            paths.append(line.strip())
        else:
            in_list = False
    if diverged and not paths:
        mine = set(git_ops.diff_names(repo.root, "HEAD"))
        paths = [p for p in git_ops.diff_names(repo.root, "HEAD...FETCH_HEAD") if p in mine]
    return paths, untracked


def _raise_if_unsaved_in_the_way(repo: AdapterRepo, git_text: str, *, diverged: bool, then: str) -> None:
    """When git refused to pull because local changes would be overwritten (or, for a
    diverged branch, would be by the merge it takes next), say which adapters hold them
    and how to keep or drop them. Git touched nothing, so nothing is lost.

    Raises:
        DirtyWorkspaceError: naming the adapters (or the files) in the way.
    """
    paths, untracked = _paths_in_the_way(repo, git_text, diverged=diverged)
    if not paths:
        return
    prefix = repo.config.adapters_dir.strip("/") + "/"
    owner = {
        p: p[len(prefix) :].split("/", 1)[0] for p in paths if p.startswith(prefix) and p.count("/") > prefix.count("/")
    }
    adapters = sorted(set(owner.values()))
    others = [p for p in paths if p not in owner]
    files = ", ".join(sorted(set(paths))[:5]) + (", ..." if len(set(paths)) > 5 else "")
    if adapters and not untracked:
        many = len(adapters) > 1
        saves = " and ".join(f"adaptvc save --adapter {a} -m …" for a in adapters)
        drops = " and ".join(f"adaptvc checkout {a} --force" for a in adapters)
        raise DirtyWorkspaceError(
            f"adapter{'s' if many else ''} {', '.join(adapters)} ha{'ve' if many else 's'} unsaved "
            f"changes ({files}) that the pull would overwrite; nothing was pulled"
            + (f" (other local changes in the way: {', '.join(others[:5])})" if others else ""),
            hint=f"{saves} (or {drops} to drop them), then {then}",
        )
    if adapters:  # untracked: an adapter never saved here that the pull brings a saved one of
        raise DirtyWorkspaceError(
            f"adapter {', '.join(adapters)} was never saved here, and the pull brings a saved one of the same "
            f"name ({files}); nothing was pulled",
            hint=f"move {prefix}{adapters[0]}/ out of {prefix} (to keep it as a version: adaptvc save --adapter "
            f"OTHER --from WHERE-YOU-MOVED-IT -m …), then {then}",
        )
    what = "untracked files" if untracked else "local changes"
    raise DirtyWorkspaceError(
        f"{what} would be overwritten by the pull ({files}); nothing was pulled",
        hint=(
            f"move them aside (or save them as another adapter), then {then}"
            if untracked
            else f"git commit or git stash them, then {then}"
        ),
    )


def _fetch_tags(root: Path, git_remote: str) -> None:
    """``git fetch --tags``; a tag that would clobber a local one of the same name (the
    same ``vN`` minted in two clones) is a warning, and so is any other failure: the
    branch has been pulled by then and the tags are a convenience."""
    proc = git_ops.run(root, "fetch", "--tags", "--no-recurse-submodules", git_remote, check=False)
    if proc.returncode == 0:
        return
    text = git_ops.output_text(proc)
    clobbered = [line for line in text.splitlines() if "would clobber existing tag" in line]
    if not clobbered:
        log.warning("could not fetch the version tags from %s: %s", git_remote, text)
        return
    names = sorted({line.split("->")[-1].split("(")[0].strip() for line in clobbered})
    many = len(names) > 1
    log.warning(
        "kept your tag%s %s: %s has %s of the same name on another version (the same vN was saved in two "
        "clones); both versions are in the manifest, addressed by id (adaptvc log)",
        "s" if many else "",
        ", ".join(names),
        git_remote,
        "tags" if many else "a tag",
    )
