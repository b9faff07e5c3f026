"""What adaptvc's git hooks do (``adaptvc hooks run NAME ARGS``).

- ``post-checkout`` (branch checkouts) and ``post-merge``: make each adapter's weights
  match the checked-out ``.dvc`` pointer, from the cache or fetched from the DVC remote.
  Problems are warnings naming the version and the fix; these hooks never fail.
- ``post-merge`` and ``post-rewrite`` (after a rebase) first repair a pointer and config
  that git took from two different versions (:mod:`adaptvc.versioning.merge`).
- ``pre-push``: upload the weights of the versions in the commits and tags being pushed
  (those the remote side does not already have); refuse the push if that fails.
- ``pre-commit``: refuse adapter weight files staged into git, and staged ``.dvc``
  pointers whose object is in neither the local cache nor the DVC remote.

Each returns a :class:`HookOutcome` (exit code and messages); the CLI prints them.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from adaptvc.errors import AdaptvcError, RemoteNotFoundError

WEIGHT_FILE_NAMES = frozenset({"adapter_model.safetensors", "adapter_model.bin"})
WEIGHT_SUFFIXES = frozenset({".safetensors", ".bin", ".pt", ".pth", ".ckpt"})
_POINTER_MD5 = re.compile(rb"^\s*-?\s*md5:\s*['\"]?([0-9a-f]{32}(?:\.dir)?)", re.M)


@dataclass(frozen=True)
class HookOutcome:
    exit_code: int = 0
    messages: tuple[str, ...] = field(default=())


def run(name: str, args: list[str], *, repo: str | os.PathLike[str] = ".", stdin: str = "") -> HookOutcome:
    """Run hook ``name`` with git's arguments (and, for pre-push, git's stdin)."""
    handlers = {"post-checkout": post_checkout, "post-merge": post_merge, "post-rewrite": post_rewrite,
                "pre-push": pre_push, "pre-commit": pre_commit}
    if name not in handlers:
        raise AdaptvcError(f"unknown hook {name!r}; adaptvc has: {', '.join(handlers)}")
    return handlers[name](Path(repo), args, stdin)


def _open(root: Path):
    from adaptvc.repo import AdapterRepo

    try:
        return AdapterRepo.open(root)
    except AdaptvcError:
        return None  # adaptvc not initialised here (yet): nothing for the hook to do


def _sync(root: Path) -> HookOutcome:
    from adaptvc.sharing import sync_workspace

    repo = _open(root)
    if repo is None:
        return HookOutcome()
    try:
        result = sync_workspace(repo)
    except AdaptvcError as exc:  # never fail a checkout or merge
        return HookOutcome(0, (f"Warning: adaptvc could not update adapter weights: {exc.message}",))
    msgs = [f"adaptvc: weights of {name} updated to the checked-out version" for name in result.updated]
    msgs += [f"adaptvc: removed the weights of {name}, which this commit does not have (they are in the DVC cache)"
             for name in result.removed]
    msgs += [f"Warning: {w}" for w in result.warnings]
    return HookOutcome(0, tuple(msgs))


def post_checkout(root: Path, args: list[str], stdin: str) -> HookOutcome:
    # args: previous HEAD, new HEAD, 1 for a branch checkout / 0 for a file checkout.
    # File checkouts (`git checkout REV -- path`, also what tools do internally) are left
    # alone: the user asked for those paths only.
    if len(args) >= 3 and args[2] != "1":
        return HookOutcome()
    return _sync(root)


def _repair_then_sync(root: Path, rewritten: dict[str, str] | None) -> HookOutcome:
    # First make each adapter's pointer and config one version again, should git have
    # taken them from different versions (adaptvc.versioning.merge); then the weights follow.
    from adaptvc.versioning.merge import repair_merge

    repo = _open(root)
    repaired: tuple[str, ...] = ()
    if repo is not None:
        try:
            repaired = tuple(f"adaptvc: {m}" for m in repair_merge(repo, rewritten).messages)
        except AdaptvcError as exc:  # never fail a merge
            repaired = (f"Warning: adaptvc could not check the merged adapter files: {exc.message}",)
    outcome = _sync(root)
    return HookOutcome(outcome.exit_code, repaired + outcome.messages)


def post_merge(root: Path, args: list[str], stdin: str) -> HookOutcome:
    return _repair_then_sync(root, None)


def post_rewrite(root: Path, args: list[str], stdin: str) -> HookOutcome:
    # args: "rebase" or "amend"; stdin: "<old> <new>" per rewritten commit. An amend
    # commits what the user staged: nothing for adaptvc to repair or sync.
    if not args or args[0] != "rebase":
        return HookOutcome()
    rewritten = {}
    for line in stdin.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            rewritten[parts[1]] = parts[0]
    if not rewritten:  # an older `adaptvc hooks run` that did not pass stdin on: the rebased tip
        orig = subprocess.run(["git", "rev-parse", "-q", "--verify", "ORIG_HEAD", "HEAD"], cwd=root,
                              capture_output=True, text=True).stdout.split()
        if len(orig) == 2:
            rewritten = {orig[1]: orig[0]}
    return _repair_then_sync(root, rewritten)


def pre_push(root: Path, args: list[str], stdin: str) -> HookOutcome:
    from adaptvc.sharing import ZERO_SHA, upload_versions, versions_at

    repo = _open(root)
    if repo is None:
        return HookOutcome()
    versions = {}
    for line in stdin.splitlines():
        parts = line.split()
        if len(parts) != 4 or parts[1] == ZERO_SHA:  # malformed, or deleting a ref
            continue
        _local_ref, local_sha, _remote_ref, remote_sha = parts
        new = versions_at(repo, local_sha)
        if remote_sha != ZERO_SHA and _has_object(root, remote_sha):
            # The remote side already has these manifests, so their weights were pushed then.
            old = {v.id for v in versions_at(repo, remote_sha)}
            new = [v for v in new if v.id not in old]
        for v in new:
            versions.setdefault((v.adapter, v.version, v.id), v)
    if not versions:
        return HookOutcome()
    git_remote = args[0] if args else "the git remote"
    try:
        uploaded, _there, result = upload_versions(repo, list(versions.values()))
    except RemoteNotFoundError:
        refs = ", ".join(sorted({v.ref for v in versions.values()}))
        return HookOutcome(1, (
            f"adaptvc: refusing to push {refs} to {git_remote}: no DVC remote is configured, so nobody "
            "else could get their weights.",
            "Hint: adaptvc remote add storage URL --default   (or push anyway with git push --no-verify)",
        ))
    except AdaptvcError as exc:
        return HookOutcome(1, (f"adaptvc: refusing to push to {git_remote}: {exc.message}",)
                           + ((f"Hint: {exc.hint}",) if exc.hint else ()))
    msgs = (f"adaptvc: uploaded the weights of {', '.join(v.ref for v in uploaded)} to DVC remote {result.remote}",) \
        if uploaded else ()
    return HookOutcome(0, msgs)


def _has_object(root: Path, sha: str) -> bool:
    return subprocess.run(["git", "cat-file", "-e", f"{sha}^{{commit}}"], cwd=root,
                          capture_output=True).returncode == 0


def _staged(root: Path) -> list[str]:
    proc = subprocess.run(["git", "diff", "--cached", "--name-only", "-z", "--diff-filter=ACMR"], cwd=root,
                          capture_output=True, text=True)
    return [p for p in proc.stdout.split("\0") if p]


def pre_commit(root: Path, args: list[str], stdin: str) -> HookOutcome:
    from adaptvc.repo import AdapterRepo, find_git_root

    top, git_dir = find_git_root(root)
    repo = AdapterRepo(top, git_dir)
    try:
        adapters_dir = PurePosixPath(repo.config.adapters_dir)
    except AdaptvcError:
        adapters_dir = PurePosixPath("adapters")
    notes: tuple[str, ...] = ()
    if (git_dir / "MERGE_HEAD").exists() and repo.is_initialised:
        # Concluding a merge that stopped: post-merge will not run, so repair it here.
        from adaptvc.versioning.merge import repair_staged_merge

        try:
            notes = tuple(f"adaptvc: {m}" for m in repair_staged_merge(repo))
        except AdaptvcError as exc:
            notes = (f"Warning: adaptvc could not check the merged adapter files: {exc.message}",)
    staged = _staged(top)
    problems: list[str] = []
    for path in staged:
        p = PurePosixPath(path)
        in_adapters = adapters_dir in p.parents
        if p.name in WEIGHT_FILE_NAMES or (in_adapters and p.suffix in WEIGHT_SUFFIXES):
            name = p.parent.name if in_adapters else "NAME"
            problems.append(
                f"{path}: adapter weights do not go into git (adaptvc tracks them with DVC). "
                f"Unstage it: git rm --cached {path}; then: adaptvc save --adapter {name} -m MESSAGE"
            )
    pointers = [p for p in staged if p.endswith(".dvc")]
    if pointers and (top / ".dvc").is_dir():
        problems += _unbacked_pointers(repo, pointers)
    if problems:
        return HookOutcome(1, notes + tuple(f"adaptvc: {p}" for p in problems)
                           + ("adaptvc: commit refused (bypass once with git commit --no-verify)",))
    return HookOutcome(0, notes)


def _unbacked_pointers(repo, pointers: list[str]) -> list[str]:
    from adaptvc.sharing import _cat_blobs
    from adaptvc.storage.transfer import remote_has

    wanted: dict[str, str] = {}
    for path, blob in zip(pointers, _cat_blobs(repo.root, [f":{p}" for p in pointers])):
        match = _POINTER_MD5.search(blob or b"")
        if match:
            wanted[match.group(1).decode()] = path
    # Not DvcCache.has(): that only takes file md5s, and pointers may name a directory (".dir").
    local_missing = [m for m in wanted if not (repo.dvc_cache.path / "files" / "md5" / m[:2] / m[2:]).is_file()]
    if not local_missing:
        return []
    try:
        on_remote = remote_has(repo.root, local_missing)
        where = "the DVC remote"
    except RemoteNotFoundError:
        on_remote, where = set(), "any DVC remote (none is configured)"
    except AdaptvcError as exc:
        return [f"cannot check the DVC remote for {', '.join(wanted[m] for m in local_missing)}: {exc.message}"]
    return [
        f"{wanted[m]}: its object {m} is neither in the local DVC cache nor on {where}; "
        f"nobody could check it out. Run dvc add / adaptvc save again, or restore the object"
        for m in local_missing if m not in on_remote
    ]
