"""Team sharing: push, pull and clone through a git remote plus a DVC remote.

The git remote carries configs, ``.dvc`` pointers, manifests and version tags; the DVC
remote carries the weights. The order of operations is what keeps a teammate from ever
seeing a version whose weights are missing:

- ``push`` uploads the weights first and pushes git only when every upload succeeded;
- ``pull`` fast-forwards git, then brings the weights the workspace needs;
- ``clone`` clones git, does the per-clone set-up (hooks, merge driver) and fetches the
  newest version of every adapter. Older versions are fetched on demand by whatever
  reads them (:func:`adaptvc.storage.fetch.ensure_objects`).

:func:`sync_workspace` — make each adapter's weights match its checked-out pointer — is
shared by ``pull``, ``clone`` and the ``post-checkout``/``post-merge`` hooks.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from adaptvc.errors import AdaptvcError, ObjectMissingError, RemoteError, RemoteNotFoundError
from adaptvc.manifest import MANIFEST_NAME, AdapterVersion
from adaptvc.repo import AdapterRepo

ZERO_SHA = "0" * 40
# `adaptvc push` has uploaded already when it runs `git push`; `pull` syncs the workspace
# itself after `git pull`. The hook scripts skip themselves for names listed here.
SKIP_HOOKS_ENV = "ADAPTVC_SKIP_HOOKS"


def _git(root: Path, *args: str, env: dict[str, str] | None = None, check: bool = True,
         input: str | None = None) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ, **(env or {}))
    proc = subprocess.run(["git", *args], cwd=root, env=full_env, capture_output=True, text=True, input=input)
    if check and proc.returncode != 0:
        raise RemoteError(f"git {args[0]} failed: {(proc.stderr or proc.stdout).strip()}", hint="git status")
    return proc


def _cat_blobs(root: Path, specs: Sequence[str]) -> list[bytes | None]:
    """The contents of ``rev:path`` blobs, with one ``git cat-file --batch`` for all."""
    proc = subprocess.run(["git", "cat-file", "--batch"], cwd=root, capture_output=True,
                          input="".join(f"{s}\n" for s in specs).encode())
    data, pos, out = proc.stdout, 0, []
    for _ in specs:
        end = data.index(b"\n", pos)
        header = data[pos:end].split()
        pos = end + 1
        if len(header) == 3 and header[1] == b"blob":
            size = int(header[2])
            out.append(data[pos:pos + size])
            pos += size + 1  # the blob is followed by a newline
        else:
            out.append(None)  # "<spec> missing"
    return out


# --- versions at a commit (no checkout) -------------------------------------------------


def versions_at(repo: AdapterRepo, commit: str) -> list[AdapterVersion]:
    """Every version recorded in the manifests of ``commit`` (a commit, tag or branch)."""
    adapters_dir = repo.config.adapters_dir
    listing = _git(repo.root, "ls-tree", "-r", "-z", "--name-only", commit, "--", adapters_dir, check=False)
    if listing.returncode != 0:
        return []
    paths = [p for p in listing.stdout.split("\0") if p.endswith("/" + MANIFEST_NAME)]
    if not paths:
        return []
    out: list[AdapterVersion] = []
    for path, blob in zip(paths, _cat_blobs(repo.root, [f"{commit}:{p}" for p in paths])):
        if blob is None:
            continue
        directory = path.rsplit("/", 1)[0]
        for line in blob.decode("utf-8", errors="replace").splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                out.append(AdapterVersion.from_record(json.loads(line), directory=directory))
            except (ValueError, KeyError, TypeError):
                continue  # a damaged line is the manifest reader's business, not sharing's
    return out


def _labels(versions: Iterable[AdapterVersion]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for v in versions:
        labels.setdefault(v.id, v.ref)
    return labels


# --- the workspace ------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncResult:
    """What :func:`sync_workspace` did. ``warnings`` are for the user (a missing object,
    unsaved weights kept); they never make a checkout fail."""

    updated: tuple[str, ...] = ()      # adapters whose weights were (re)written
    unchanged: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()      # adapters the checked-out commit lacks: saved weights removed

    def to_dict(self) -> dict[str, Any]:
        return {"updated": list(self.updated), "unchanged": list(self.unchanged), "warnings": list(self.warnings),
                "removed": list(self.removed)}


def sync_workspace(repo: AdapterRepo, *, fetch: bool = True) -> SyncResult:
    """Make every adapter's weights file match its checked-out ``.dvc`` pointer.

    Weights come from the local cache, fetched from the default DVC remote when missing
    (``fetch=True``). Weights in the workspace that were never saved (their md5 is in no
    cache) are kept, with a warning: a ``git checkout`` must not destroy work. Problems
    are warnings naming the version and the command that fixes it.
    """
    from adaptvc.formats import WEIGHTS_NAME
    from adaptvc.storage.dvc_cache import read_pointer
    from adaptvc.storage.fetch import ensure_objects
    from adaptvc.versioning.workspace import POINTER_NAME, state_record

    updated, unchanged, warnings = [], [], []
    wanted: dict[str, tuple[Path, str, AdapterVersion | None]] = {}
    for name in repo.list_adapters():
        try:
            pointer = read_pointer(repo.adapter_dir(name) / POINTER_NAME)
        except AdaptvcError as exc:
            warnings.append(f"{name}: {exc.message}")
            continue
        if pointer is None:
            continue
        weights = repo.adapter_dir(name) / WEIGHTS_NAME
        same = [v for v in repo.versions(name) if v.id == pointer.md5]
        version = max(same, key=lambda v: (v.created_at, v.version)) if same else None
        label = version.ref if version else f"{name} ({pointer.md5[:8]})"
        if weights.is_file():
            current, _ = repo.state.md5(weights)
            if current == pointer.md5:
                unchanged.append(name)
                continue
            if not repo.dvc_cache.has(current):
                warnings.append(
                    f"{name}: kept the weights in the workspace, which were never saved; the checked-out "
                    f"pointer is {label}. Save them (adaptvc save --adapter {name} -m ...) or discard them "
                    f"(adaptvc checkout {version.ref if version else name} --force)"
                )
                continue
        wanted[name] = (weights, pointer.md5, version)
    removed, kept = _drop_orphan_weights(repo)
    warnings += kept
    if not wanted:
        return SyncResult((), tuple(unchanged), tuple(warnings), tuple(removed))

    md5s = [md5 for _, md5, _ in wanted.values()]
    labels = {md5: (v.ref if v else name) for name, (_, md5, v) in wanted.items()}
    missing: set[str] = set()
    try:
        if fetch:
            ensure_objects(repo, md5s, labels=labels)
        else:
            missing = {m for m in md5s if not repo.dvc_cache.has(m)}
    except ObjectMissingError as exc:
        missing = set(exc.md5s)
    except RemoteError as exc:  # the remote cannot be reached: keep going with what we have
        missing = {m for m in md5s if not repo.dvc_cache.has(m)}
        warnings.append(f"could not fetch from the DVC remote: {exc.message}")

    for name, (weights, md5, version) in wanted.items():
        if md5 in missing:
            ref = version.ref if version else name
            warnings.append(
                f"{labels[md5]}: weights are neither in the local cache nor on the DVC remote; "
                f"{weights.relative_to(repo.root)} was left as it was. Fix: adaptvc pull (or ask whoever saved "
                f"{ref} to run adaptvc push), then adaptvc checkout {ref}"
            )
            continue
        try:
            repo.dvc_cache.materialise(md5, weights)
        except AdaptvcError as exc:
            warnings.append(f"{labels[md5]}: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""))
            continue
        repo.state.remember(weights, md5)
        if version is not None:
            repo.state.set_at(name, state_record(version))
        updated.append(name)
    return SyncResult(tuple(updated), tuple(unchanged), tuple(warnings), tuple(removed))


def _drop_orphan_weights(repo: AdapterRepo) -> tuple[list[str], list[str]]:
    """Weights left in ``adapters/NAME/`` after git removed that adapter's pointer, config,
    manifest and ``.gitignore`` (a checkout of a branch without NAME): untracked, they
    would show in ``git status`` and go into git with ``git add -A``. Weights that are
    in the DVC cache come back with the branch, so they are removed; others are kept,
    with a warning."""
    from adaptvc.formats import CONFIG_NAME, WEIGHTS_NAME
    from adaptvc.versioning.workspace import POINTER_NAME

    removed: list[str] = []
    warnings: list[str] = []
    try:
        dirs = sorted(d for d in repo.adapters_path.iterdir() if d.is_dir())
    except FileNotFoundError:
        return removed, warnings
    for d in dirs:
        weights = d / WEIGHTS_NAME
        if not weights.is_file() or any((d / n).exists() for n in (POINTER_NAME, CONFIG_NAME, MANIFEST_NAME)):
            continue
        md5, _ = repo.state.md5(weights)
        rel = weights.relative_to(repo.root).as_posix()
        if not repo.dvc_cache.has(md5):
            warnings.append(f"{rel}: this branch has no adapter {d.name}, and these weights were never saved; "
                            "kept (save them on a branch that has it, or delete the file)")
            continue
        weights.unlink()
        removed.append(d.name)
        try:
            d.rmdir()  # only when nothing else is left in it
        except OSError:
            pass
    return removed, warnings


# --- push ---------------------------------------------------------------------------------


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
        return {"remote": self.remote, "git_remote": self.git_remote, "branch": self.branch,
                "uploaded": list(self.uploaded), "already_there": list(self.already_there),
                "bytes": self.bytes, "seconds": round(self.seconds, 3), "git_pushed": self.git_pushed}


def upload_versions(repo: AdapterRepo, versions: Sequence[AdapterVersion], *, remote: str | None = None,
                    jobs: int | None = None) -> tuple[list[AdapterVersion], list[AdapterVersion], Any]:
    """Make sure the DVC remote holds the weights of ``versions``.

    Returns ``(uploaded, already_there, transfer_result)``.

    Raises:
        ObjectMissingError: a version's weights are neither in the local cache nor on the
            remote (someone saved it and never pushed).
        RemoteError: an upload failed; the message names the versions.
    """
    from adaptvc.storage.transfer import DEFAULT_JOBS, push_objects

    labels = _labels(versions)
    result = push_objects(repo.root, list(labels), remote=remote, jobs=jobs or DEFAULT_JOBS)
    if result.failed:
        missing = [m for m, why in result.failed.items() if "not in the local DVC cache" in why]
        if missing:
            names = ", ".join(labels[m] for m in missing)
            raise ObjectMissingError(
                f"the weights of {names} are neither in the local cache nor on DVC remote {result.remote!r}",
                md5s=tuple(missing),
                hint="push from the clone that saved them (adaptvc push), or fetch them there first",
            )
        details = "; ".join(f"{labels[m]}: {why}" for m, why in sorted(result.failed.items()))
        raise RemoteError(f"uploading weights to DVC remote {result.remote!r} failed: {details}",
                          hint=f"re-run adaptvc push (what was uploaded is kept); check: dvc status -c -r {result.remote}")
    by_id: dict[str, list[AdapterVersion]] = {}
    for v in versions:
        by_id.setdefault(v.id, []).append(v)
    order = lambda v: (v.adapter, v.version)  # noqa: E731
    uploaded = sorted((v for m in result.transferred for v in by_id.get(m, [])), key=order)
    there = sorted((v for m in result.skipped for v in by_id.get(m, [])), key=order)
    return uploaded, there, result


def _current_branch(root: Path) -> str | None:
    proc = _git(root, "symbolic-ref", "-q", "--short", "HEAD", check=False)
    return proc.stdout.strip() or None


def push(refs: Sequence[str] = (), *, repo: str | os.PathLike[str] = ".", remote: str | None = None,
         git_remote: str | None = "origin", jobs: int | None = None) -> PushResult:
    """Upload weights to the DVC remote, then push the branch and version tags to git.

    Args:
        refs: versions whose weights to upload (``task_a@v3``, ``task_a``); default: every
            version in the manifests of the current commit.
        repo: a path inside the repository.
        remote: the DVC remote (default: DVC's default remote).
        git_remote: the git remote to push the current branch and its annotated version
            tags to (``--follow-tags``); ``None`` uploads weights only.
        jobs: parallel uploads.

    Returns:
        A :class:`PushResult`.

    Raises:
        ObjectMissingError, RemoteError: an upload failed; nothing was pushed to git.
        RemoteNotFoundError: no DVC remote configured.

    Example:
        >>> push(git_remote="origin")  # doctest: +SKIP
    """
    from adaptvc.refs import resolve_version

    r = AdapterRepo.open(repo)
    if refs:
        versions = [resolve_version(r, ref, with_commit=False) for ref in refs]
    else:
        versions = versions_at(r, "HEAD")
    branch = _current_branch(r.root) if git_remote else None
    if git_remote and branch is None:
        raise RemoteError("HEAD is detached: there is no branch to push", hint="git switch BRANCH, then adaptvc push")
    if git_remote:
        _require_git_remote(r.root, git_remote, "push")
    uploaded, there, result = upload_versions(r, versions, remote=remote, jobs=jobs)
    pushed = False
    if git_remote:
        upstream = _git(r.root, "rev-parse", "--abbrev-ref", f"{branch}@{{upstream}}", check=False).returncode == 0
        args = ["push", "--follow-tags", "--porcelain"] + ([] if upstream else ["--set-upstream"])
        proc = _git(r.root, *args, git_remote, f"refs/heads/{branch}:refs/heads/{branch}",
                    env={SKIP_HOOKS_ENV: "pre-push"}, check=False)
        if proc.returncode != 0:
            text = (proc.stderr or proc.stdout).strip()
            behind = any(w in proc.stdout + proc.stderr for w in ("[rejected]", "non-fast-forward", "fetch first"))
            hint = (f"{git_remote} has commits you do not: git pull --no-rebase {git_remote} {branch} (manifests "
                    "merge by themselves), then adaptvc push again (uploaded weights are not sent twice)"
                    if behind else "fix what git says, then adaptvc push again (uploaded weights are not sent twice)")
            raise RemoteError(
                f"the weights are on DVC remote {result.remote!r}, but git push to {git_remote} failed: {text}",
                hint=hint,
            )
        pushed = True
    from adaptvc.refs import unique_ref

    same_adapter: dict[str, list[AdapterVersion]] = {}
    for v in versions:
        same_adapter.setdefault(v.adapter, []).append(v)
    name = lambda v: unique_ref(v, same_adapter[v.adapter])  # noqa: E731 - task_a@<id> for a vN minted twice
    return PushResult(result.remote, git_remote, branch, tuple(name(v) for v in uploaded),
                      tuple(name(v) for v in there), result.bytes, result.seconds, pushed)


# --- pull ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PullResult:
    """What ``pull`` did: the commits git moved between, and the workspace sync."""

    git_remote: str | None
    branch: str | None
    old_commit: str | None
    new_commit: str | None
    sync: SyncResult = field(default_factory=SyncResult)

    def to_dict(self) -> dict[str, Any]:
        return {"git_remote": self.git_remote, "branch": self.branch, "old_commit": self.old_commit,
                "new_commit": self.new_commit, **self.sync.to_dict()}


def pull(*, repo: str | os.PathLike[str] = ".", remote: str | None = None,
         git_remote: str | None = "origin") -> PullResult:
    """Fast-forward the current branch and tags from git, then fetch the weights the
    workspace needs from the DVC remote (older versions come on demand).

    Args:
        repo: a path inside the repository.
        remote: the DVC remote (default: DVC's default remote).
        git_remote: where to pull from; ``None`` only syncs the workspace's weights.

    Returns:
        A :class:`PullResult`; problems with single versions are in ``sync.warnings``.

    Raises:
        RemoteError: git cannot fast-forward (the branches diverged) or cannot reach the remote.
        RemoteNotFoundError: there is no git remote ``git_remote``.
        DirtyWorkspaceError: unsaved changes (named by adapter) are in the way; nothing was pulled.
    """
    from adaptvc.storage.git_ops import head_commit
    from adaptvc.storage.transfer import use_remote

    r = AdapterRepo.open(repo)
    branch = _current_branch(r.root)
    old = head_commit(r.root)
    if git_remote:
        if branch is None:
            raise RemoteError("HEAD is detached: there is no branch to pull", hint="git switch BRANCH")
        _require_git_remote(r.root, git_remote, "pull")
        skip = {SKIP_HOOKS_ENV: "post-merge,post-checkout"}  # we sync the workspace below
        # The branch first and the tags apart: a version tag that two clones both minted
        # (task_a@v3) makes `git fetch --tags` fail with "would clobber existing tag",
        # which must not stop the pull (versions are addressed by id, never by tag).
        proc = _git(r.root, "pull", "--ff-only", "--no-tags", "--no-rebase", git_remote, branch, env=skip,
                    check=False)
        if proc.returncode != 0:
            text = (proc.stderr or proc.stdout).strip()
            diverged = "would be overwritten" not in text and ("fast-forward" in text or "diverg" in text)
            # Nothing was lost: git refuses before touching anything. Name what is in the way.
            _raise_if_unsaved_in_the_way(r, text, diverged=diverged,
                                         then=f"git pull --no-rebase {git_remote} {branch}" if diverged
                                         else "adaptvc pull")
            if diverged:
                hint = (f"git pull --no-rebase {git_remote} {branch}   (merges; manifests merge by themselves), "
                        "then adaptvc pull")
            else:
                hint = f"git pull {git_remote} {branch} shows the same; fix what git says, then adaptvc pull"
            raise RemoteError(f"git pull from {git_remote} failed: {text}", hint=hint)
        tag_warnings = _fetch_tags(r.root, git_remote)
    else:
        tag_warnings = []
    new = head_commit(r.root)
    with use_remote(remote):
        sync = sync_workspace(AdapterRepo.open(r.root))
    if tag_warnings:
        sync = SyncResult(sync.updated, sync.unchanged, tuple(tag_warnings) + sync.warnings, sync.removed)
    return PullResult(git_remote, branch, old, new, sync)


def _require_git_remote(root: Path, git_remote: str, command: str) -> None:
    """Refuse early, in adaptvc's words, when ``git_remote`` is not configured (git's own
    "does not appear to be a git repository" reads like a network problem)."""
    if _git(root, "remote", "get-url", git_remote, check=False).returncode == 0:
        return
    others = _git(root, "remote", check=False).stdout.split()
    known = f" (git remotes: {', '.join(others)})" if others else ""
    raise RemoteNotFoundError(
        f"there is no git remote {git_remote!r}{known}",
        hint=f"git remote add {git_remote} URL   (or adaptvc {command} --git-remote NAME; "
             f"--no-git {'uploads' if command == 'push' else 'fetches'} only the weights)",
    )


def _raise_if_unsaved_in_the_way(repo: AdapterRepo, git_text: str, *, diverged: bool, then: str) -> None:
    """When git refused to pull because local changes would be overwritten (or, for a
    diverged branch, would be by the merge it takes next), say which adapters hold them
    and how to keep or drop them. Git touched nothing, so nothing is lost."""
    from adaptvc.errors import DirtyWorkspaceError

    paths: list[str] = []
    untracked = in_list = False
    for line in git_text.splitlines():  # "error: ... would be overwritten by merge:" then "\tPATH" lines
        if "would be overwritten" in line:
            untracked, in_list = untracked or "untracked" in line, True
        elif in_list and line.startswith("\t"):
            paths.append(line.strip())
        else:
            in_list = False
    if diverged and not paths:  # --ff-only stopped first; the merge would refuse these
        mine = set(_git(repo.root, "diff", "--name-only", "HEAD", check=False).stdout.splitlines())
        theirs = _git(repo.root, "diff", "--name-only", "HEAD...FETCH_HEAD", check=False).stdout.splitlines()
        paths = [p for p in theirs if p in mine]
    if not paths:
        return
    prefix = repo.config.adapters_dir.strip("/") + "/"
    owner = {p: p[len(prefix):].split("/", 1)[0] for p in paths if p.startswith(prefix) and p.count("/") > prefix.count("/")}
    adapters = sorted(set(owner.values()))
    others = [p for p in paths if p not in owner]
    files = ", ".join(sorted(set(paths))[:5]) + (", ..." if len(set(paths)) > 5 else "")
    if adapters and not untracked:
        names = ", ".join(adapters)
        saves = " and ".join(f"adaptvc save --adapter {a} -m …" for a in adapters)
        drops = " and ".join(f"adaptvc checkout {a} --force" for a in adapters)
        raise DirtyWorkspaceError(
            f"adapter{'s' if len(adapters) > 1 else ''} {names} ha{'ve' if len(adapters) > 1 else 's'} unsaved "
            f"changes ({files}) that the pull would overwrite; nothing was pulled"
            + (f" (other local changes in the way: {', '.join(others[:5])})" if others else ""),
            hint=f"{saves} (or {drops} to drop them), then {then}",
        )
    if adapters:  # untracked: an adapter never saved here that the pull brings a saved one of
        a = adapters[0]
        raise DirtyWorkspaceError(
            f"adapter {', '.join(adapters)} was never saved here, and the pull brings a saved one of the same "
            f"name ({files}); nothing was pulled",
            hint=f"move {prefix}{a}/ out of {prefix} (to keep it as a version: adaptvc save --adapter OTHER "
                 f"--from WHERE-YOU-MOVED-IT -m …), then {then}",
        )
    what = "untracked files" if untracked else "local changes"
    raise DirtyWorkspaceError(
        f"{what} would be overwritten by the pull ({files}); nothing was pulled",
        hint=(f"move them aside (or save them as another adapter), then {then}" if untracked
              else f"git commit or git stash them, then {then}"),
    )


def _fetch_tags(root: Path, git_remote: str) -> list[str]:
    """``git fetch --tags``; a tag that would clobber a local one of the same name (the
    same ``vN`` minted in two clones) is a warning, and so is any other failure: the
    branch has been pulled by then and the tags are a convenience."""
    proc = _git(root, "fetch", "--tags", "--no-recurse-submodules", git_remote, check=False)
    if proc.returncode == 0:
        return []
    text = (proc.stderr or proc.stdout).strip()
    clobbered = [line for line in text.splitlines() if "would clobber existing tag" in line]
    if clobbered:
        names = sorted({line.split("->")[-1].split("(")[0].strip() for line in clobbered})
        return [f"kept your tag{'s' if len(names) > 1 else ''} {', '.join(names)}: {git_remote} has "
                f"{'tags' if len(names) > 1 else 'a tag'} of the same name on another version (the same vN "
                "was saved in two clones); both versions are in the manifest, addressed by id (adaptvc log)"]
    return [f"could not fetch the version tags from {git_remote}: {text}"]


# --- clone --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CloneResult:
    """The new clone, the versions whose weights were fetched, and any warnings."""

    path: Path
    fetched: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "fetched": list(self.fetched), "warnings": list(self.warnings)}


def clone(url: str, directory: str | os.PathLike[str] | None = None, *, remote: str | None = None,
          hooks: bool = True) -> CloneResult:
    """``git clone`` plus the weights of the newest version of every adapter.

    Also does what ``adaptvc init`` does for each clone (the per-clone git config such as
    the merge driver, and the git hooks) — settings git does not carry over a clone.

    Args:
        url: the git URL (anything ``git clone`` accepts).
        directory: where to clone (default: git's choice from the URL).
        remote: the DVC remote to fetch from (default: the repository's default).
        hooks: install adaptvc's git hooks in the clone.

    Returns:
        A :class:`CloneResult`. Weights that could not be fetched are warnings, not
        errors: the clone is usable and ``adaptvc pull`` retries.

    Raises:
        RemoteError: git clone failed.
    """
    from adaptvc.storage.transfer import fetch_objects, use_remote

    target = Path(directory) if directory is not None else Path(_clone_dir_name(url))
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        _refuse_clone_target(url, target)  # before git: no network round trip for a typo'd path
    args = ["clone", "-q", url] + ([os.fspath(directory)] if directory is not None else [])
    proc = subprocess.run(["git", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        text = (proc.stderr or proc.stdout).strip()
        if "already exists and is not an empty directory" in text:
            _refuse_clone_target(url, target)
        raise RemoteError(f"git clone {url} failed: {text}", hint="git ls-remote " + url)
    path = target.resolve()
    warnings: list[str] = []
    setup_clone(path, hooks=hooks, warnings=warnings)
    if _git(path, "rev-parse", "--verify", "-q", "HEAD", check=False).returncode != 0:
        branches = [b for b in _git(path, "for-each-ref", "--format=%(refname:lstrip=3)", "refs/remotes/",
                                    check=False).stdout.split() if b != "HEAD"]
        if not branches:
            note = (f"{url} has no commits yet: the clone is empty, nothing to fetch (to start the project: "
                    "adaptvc init in the clone, save a version, adaptvc push)")
        else:
            note = (f"the default branch of {url} has no commits yet; its branches: {', '.join(branches)} "
                    f"(git switch {branches[0]}, in {path})")
        return CloneResult(path, (), tuple(warnings) + (note,))
    try:
        r = AdapterRepo.open(path)
    except AdaptvcError as exc:
        return CloneResult(path, (), (f"not an adaptvc repository: {exc.message}",))
    newest: dict[str, AdapterVersion] = {}
    for name in r.list_adapters():
        vs = r.versions(name)
        if vs:
            newest[name] = max(vs, key=lambda v: (v.created_at, v.version))
    fetched: list[str] = []
    if newest:
        labels = _labels(newest.values())
        try:
            result = fetch_objects(r.root, list(labels), remote=remote)
            fetched = [labels[m] for m in (*result.transferred, *result.skipped)]
            warnings += [f"{labels[m]}: weights not fetched: {why}" for m, why in sorted(result.failed.items())]
        except AdaptvcError as exc:
            warnings.append(f"weights not fetched: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""))
    with use_remote(remote):
        sync = sync_workspace(r)
    warnings += [w for w in sync.warnings if w not in warnings]
    return CloneResult(path, tuple(sorted(fetched)), tuple(warnings))


def _refuse_clone_target(url: str, target: Path) -> None:
    what = "is not a directory" if not target.is_dir() else "is not empty"
    raise AdaptvcError(f"{target} already exists and {what}",
                       hint=f"pick another directory: adaptvc clone {url} NEW-DIR")


def _clone_dir_name(url: str) -> str:
    name = url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return name[:-4] if name.endswith(".git") else name


def setup_clone(root: Path, *, hooks: bool = True, warnings: list[str] | None = None) -> None:
    """The per-clone part of ``adaptvc init`` (git does not carry ``.git/config`` or hooks
    over a clone): ``init`` is idempotent and commits nothing in an initialised clone, so
    run it, then make sure the hooks are there."""
    from adaptvc.repo import CONFIG_FILE

    if (root / CONFIG_FILE).is_file():
        from adaptvc.versioning.init_repo import init_repo

        try:
            init_repo(str(root))
        except AdaptvcError as exc:
            if warnings is not None:
                warnings.append(f"per-clone set-up (adaptvc init) failed: {exc.message}")
    if hooks:
        from adaptvc.hooks import install

        try:
            install(root)
        except AdaptvcError as exc:
            if warnings is not None:
                warnings.append(f"git hooks not installed: {exc.message}")
