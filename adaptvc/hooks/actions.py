"""What adaptvc's git hooks do (``adaptvc hooks run NAME ARGS``).

- ``post-checkout`` (branch checkouts) and ``post-merge``: make each adapter's weights
  match the checked-out ``.dvc`` pointer, from the cache or fetched from the DVC remote
  (:mod:`adaptvc.versioning.sync`). Problems are warnings naming the version and the
  fix; these hooks never fail.
- ``post-merge`` and ``post-rewrite`` (after a rebase) first repair a pointer and config
  that git took from two different versions (:mod:`adaptvc.versioning.merge`).
- ``pre-push``: upload the weights of the versions in the commits and tags being pushed
  (those the remote side does not already have); refuse the push if that fails.
- ``pre-commit``: refuse adapter weight files staged into git, and staged ``.dvc``
  pointers whose object is in neither the local cache nor the DVC remote.

Each returns a :class:`HookOutcome` (exit code and messages); the CLI prints them.
Warnings go to the ``adaptvc`` logger, which the CLI prints as ``Warning: …``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from adaptvc.errors import AdaptvcError, InvalidAdapterError, RemoteNotFoundError, UnknownHookError
from adaptvc.manifest import AdapterVersion
from adaptvc.repo import AdapterRepo
from adaptvc.sharing.push import upload_versions
from adaptvc.storage import git_ops
from adaptvc.storage.dvc_cache import parse_pointer
from adaptvc.storage.transfer import remote_has
from adaptvc.versioning.merge import repair_merge, repair_staged_merge
from adaptvc.versioning.sync import sync_workspace

WEIGHT_FILE_NAMES = frozenset({"adapter_model.safetensors", "adapter_model.bin"})
WEIGHT_SUFFIXES = frozenset({".safetensors", ".bin", ".pt", ".pth", ".ckpt"})
log = logging.getLogger("adaptvc")


@dataclass(frozen=True)
class HookOutcome:
    exit_code: int = 0
    messages: tuple[str, ...] = field(default=())


def run(name: str, args: list[str], repo: AdapterRepo, *, stdin: str = "") -> HookOutcome:
    """Run hook ``name`` with git's arguments (and, for pre-push and post-rewrite, git's
    stdin) in ``repo`` (opened whether or not adaptvc is initialised there).

    Raises:
        UnknownHookError: adaptvc has no hook ``name``.
    """
    handlers: dict[str, Callable[[AdapterRepo, list[str], str], HookOutcome]] = {
        "post-checkout": post_checkout,
        "post-merge": post_merge,
        "post-rewrite": post_rewrite,
        "pre-push": pre_push,
        "pre-commit": pre_commit,
    }
    if name not in handlers:
        raise UnknownHookError(f"unknown hook {name!r}; adaptvc has: {', '.join(handlers)}", name=name)
    return handlers[name](repo, args, stdin)


def git_input_from_pre_commit(name: str, environ: Mapping[str, str], root: Path) -> tuple[list[str], str]:
    """git's arguments and stdin for hook ``name``, rebuilt from the ``PRE_COMMIT_*``
    variables the pre-commit framework gives its hooks instead (it reads git's stdin itself).

    For pre-push, pre-commit passes the first ref being pushed that has new commits (one
    line of git's input): the versions in that ref's manifests are the ones uploaded. For
    post-rewrite there is no list of rewritten commits: :func:`post_rewrite` then takes
    ORIG_HEAD..HEAD, the rebased branch.
    """
    get = environ.get
    if name == "post-checkout" and get("PRE_COMMIT_CHECKOUT_TYPE"):
        return [get("PRE_COMMIT_FROM_REF", ""), get("PRE_COMMIT_TO_REF", ""), get("PRE_COMMIT_CHECKOUT_TYPE", "")], ""
    if name == "post-merge" and get("PRE_COMMIT_IS_SQUASH_MERGE"):
        return [get("PRE_COMMIT_IS_SQUASH_MERGE", "")], ""
    if name == "post-rewrite" and get("PRE_COMMIT_REWRITE_COMMAND"):
        return [get("PRE_COMMIT_REWRITE_COMMAND", "")], ""
    if name == "pre-push" and get("PRE_COMMIT_REMOTE_NAME"):
        local_ref = get("PRE_COMMIT_LOCAL_BRANCH") or "HEAD"
        # No PRE_COMMIT_TO_REF when the remote has none of the commits: the ref's tip, all new.
        local_sha = get("PRE_COMMIT_TO_REF") or git_ops.rev_parse(root, local_ref) or git_ops.ZERO
        remote_sha = get("PRE_COMMIT_FROM_REF") or git_ops.ZERO
        remote_ref = get("PRE_COMMIT_REMOTE_BRANCH") or local_ref
        args = [get("PRE_COMMIT_REMOTE_NAME", ""), get("PRE_COMMIT_REMOTE_URL", "")]
        return args, f"{local_ref} {local_sha} {remote_ref} {remote_sha}\n"
    return [], ""


def _sync(repo: AdapterRepo) -> HookOutcome:
    if not repo.is_initialised:  # adaptvc not initialised here (yet): nothing for the hook to do
        return HookOutcome()
    try:
        result = sync_workspace(repo)
    except AdaptvcError as exc:  # never fail a checkout or merge
        log.warning("adaptvc could not update adapter weights: %s", exc.message)
        return HookOutcome()
    msgs = [f"adaptvc: weights of {name} updated to the checked-out version" for name in result.updated]
    msgs += [
        f"adaptvc: removed the weights of {name}, which this commit does not have (they are in the DVC cache)"
        for name in result.removed
    ]
    return HookOutcome(0, tuple(msgs))


def post_checkout(repo: AdapterRepo, args: list[str], stdin: str) -> HookOutcome:
    # args: previous HEAD, new HEAD, 1 for a branch checkout / 0 for a file checkout.
    # File checkouts (`git checkout REV -- path`, also what tools do internally) are left
    # alone: the user asked for those paths only.
    if len(args) >= 3 and args[2] != "1":
        return HookOutcome()
    return _sync(repo)


def _repair_then_sync(repo: AdapterRepo, rewritten: dict[str, str] | None) -> HookOutcome:
    # First make each adapter's pointer and config one version again, should git have
    # taken them from different versions (adaptvc.versioning.merge); then the weights follow.
    repaired: tuple[str, ...] = ()
    if repo.is_initialised:
        try:
            repaired = tuple(f"adaptvc: {m}" for m in repair_merge(repo, rewritten).messages)
        except AdaptvcError as exc:  # never fail a merge
            log.warning("adaptvc could not check the merged adapter files: %s", exc.message)
    outcome = _sync(repo)
    return HookOutcome(outcome.exit_code, repaired + outcome.messages)


def post_merge(repo: AdapterRepo, args: list[str], stdin: str) -> HookOutcome:
    return _repair_then_sync(repo, None)


def post_rewrite(repo: AdapterRepo, args: list[str], stdin: str) -> HookOutcome:
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
        orig, head = git_ops.rev_parse(repo.root, "ORIG_HEAD"), git_ops.rev_parse(repo.root, "HEAD")
        if orig and head:
            rewritten = {head: orig}
    return _repair_then_sync(repo, rewritten)


def _versions_to_push(repo: AdapterRepo, stdin: str) -> dict[tuple[str, int, str], AdapterVersion]:
    """The versions in the refs git is pushing (stdin: ``<local ref> <local sha> <remote
    ref> <remote sha>`` per line) that the remote side does not have yet."""
    versions: dict[tuple[str, int, str], AdapterVersion] = {}
    for line in stdin.splitlines():
        parts = line.split()
        if len(parts) != 4 or parts[1] == git_ops.ZERO:  # malformed, or deleting a ref
            continue
        _local_ref, local_sha, _remote_ref, remote_sha = parts
        new = repo.versions_at(local_sha)
        if remote_sha != git_ops.ZERO and git_ops.has_object(repo.root, f"{remote_sha}^{{commit}}"):
            # The remote side already has these manifests, so their weights were pushed then.
            old = {v.id for v in repo.versions_at(remote_sha)}
            new = [v for v in new if v.id not in old]
        for v in new:
            versions.setdefault((v.adapter, v.version, v.id), v)
    return versions


def pre_push(repo: AdapterRepo, args: list[str], stdin: str) -> HookOutcome:
    if not repo.is_initialised:
        return HookOutcome()
    versions = _versions_to_push(repo, stdin)
    if not versions:
        return HookOutcome()
    git_remote = args[0] if args else "the git remote"
    try:
        uploaded, _there, result = upload_versions(repo, list(versions.values()))
    except RemoteNotFoundError:
        refs = ", ".join(sorted({v.ref for v in versions.values()}))
        return HookOutcome(
            1,
            (
                f"adaptvc: refusing to push {refs} to {git_remote}: no DVC remote is configured, so nobody "
                "else could get their weights.",
                "Hint: adaptvc remote add storage URL --default   (or push anyway with git push --no-verify)",
            ),
        )
    except AdaptvcError as exc:
        return HookOutcome(
            1,
            (f"adaptvc: refusing to push to {git_remote}: {exc.message}",)
            + ((f"Hint: {exc.hint}",) if exc.hint else ()),
        )
    msgs = (
        (f"adaptvc: uploaded the weights of {', '.join(v.ref for v in uploaded)} to DVC remote {result.remote}",)
        if uploaded
        else ()
    )
    return HookOutcome(0, msgs)


def pre_commit(repo: AdapterRepo, args: list[str], stdin: str) -> HookOutcome:
    try:
        adapters_dir = PurePosixPath(repo.config.adapters_dir)
    except AdaptvcError:
        adapters_dir = PurePosixPath("adapters")
    notes: tuple[str, ...] = ()
    if (repo.git_dir / "MERGE_HEAD").exists() and repo.is_initialised:
        # Concluding a merge that stopped: post-merge will not run, so repair it here.
        try:
            notes = tuple(f"adaptvc: {m}" for m in repair_staged_merge(repo))
        except AdaptvcError as exc:
            log.warning("adaptvc could not check the merged adapter files: %s", exc.message)
    staged = git_ops.staged_names(repo.root)
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
    if pointers and (repo.root / ".dvc").is_dir():
        problems += _unbacked_pointers(repo, pointers)
    if problems:
        return HookOutcome(
            1,
            notes
            + tuple(f"adaptvc: {p}" for p in problems)
            + ("adaptvc: commit refused (bypass once with git commit --no-verify)",),
        )
    return HookOutcome(0, notes)


def _staged_pointer_md5s(repo: AdapterRepo, pointers: list[str]) -> dict[str, str]:
    """md5 → path of each staged ``.dvc`` pointer (as staged: ``:PATH`` in the index)."""
    wanted: dict[str, str] = {}
    for path, blob in zip(pointers, git_ops.cat_blobs(repo.root, [f":{p}" for p in pointers]), strict=True):
        try:
            wanted[parse_pointer((blob or b"").decode("utf-8", errors="replace"), path=path).md5] = path
        except InvalidAdapterError:
            continue  # no md5 (or conflict markers): nothing to look for
    return wanted


def _unbacked_pointers(repo: AdapterRepo, pointers: list[str]) -> list[str]:
    wanted = _staged_pointer_md5s(repo, pointers)
    # A pointer may name a directory's object (DVC stores it as "<md5>.dir"), which
    # DvcCache.has() does not take: either name backs the pointer.
    objects = repo.dvc_cache.path / "files" / "md5"
    names = {m: (m, m + ".dir") for m in wanted}
    local_missing = [m for m in wanted if not any((objects / n[:2] / n[2:]).is_file() for n in names[m])]
    if not local_missing:
        return []
    try:
        on_remote = remote_has(repo.root, [n for m in local_missing for n in names[m]])
        where = "the DVC remote"
    except RemoteNotFoundError:
        on_remote, where = set(), "any DVC remote (none is configured)"
    except AdaptvcError as exc:
        return [f"cannot check the DVC remote for {', '.join(wanted[m] for m in local_missing)}: {exc.message}"]
    return [
        f"{wanted[m]}: its object {m} is neither in the local DVC cache nor on {where}; "
        f"nobody could check it out. Run dvc add / adaptvc save again, or restore the object"
        for m in local_missing
        if not on_remote.intersection(names[m])
    ]
