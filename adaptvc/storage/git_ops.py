"""git operations adaptvc needs, run as ``git`` subprocesses.

The hot paths (``save``, ``checkout``, ``log``) call git directly rather than through
GitPython: importing GitPython alone costs ~130 ms, a quarter of ``save``'s budget, and
every operation here is one plumbing command anyway. Tests drive the same repositories
with GitPython.

The key operation is :func:`commit_paths`: a commit of exactly some paths, made in a
temporary index (``GIT_INDEX_FILE``) built from HEAD, so whatever else the user has
staged or modified stays staged/modified and uncommitted. It goes
``read-tree HEAD`` → ``update-index --add --remove -- PATHS`` → ``write-tree`` →
``commit-tree`` → ``update-ref HEAD NEW OLD`` (compare-and-swap: if HEAD moved
meanwhile, nothing is overwritten). Then :func:`refresh_index` updates only those paths
in the real index.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Iterable, Sequence

from adaptvc.errors import AdaptvcError

TRAILER = "Adaptvc-Version"
ZERO = "0" * 40


class GitError(AdaptvcError, RuntimeError):
    """A git command failed; the message carries git's own words."""


def run_git(root: Path, *args: str, env: dict[str, str] | None = None, input: bytes | None = None,
            check: bool = True) -> str:
    """Run ``git ARGS`` in ``root``; returns stdout (text, trailing newline stripped)."""
    full_env = None
    if env:
        full_env = dict(os.environ)
        full_env.update(env)
    proc = subprocess.run(["git", *args], cwd=root, env=full_env, input=input, capture_output=True)
    if check and proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        hint = None
        if "Please tell me who you are" in err or "empty ident" in err:
            hint = 'git config user.name "Your Name" && git config user.email you@example.com'
        elif "index.lock" in err:
            hint = "another git process is using the repository; when it has finished, run the command again"
        elif args[0] == "update-ref" and "expected" in err:
            hint = "HEAD moved while adaptvc was working (a concurrent git commit?); nothing was saved, run it again"
        raise GitError(f"git {args[0]} failed: {err or proc.returncode}", hint=hint)
    return proc.stdout.decode("utf-8", errors="replace").rstrip("\n")


def head_commit(root: Path) -> str | None:
    """HEAD's commit, or ``None`` on an unborn branch."""
    out = run_git(root, "rev-parse", "-q", "--verify", "HEAD^{commit}", check=False)
    return out or None


def author_ident(root: Path) -> str:
    """``"Name <email>"`` as git would record the author (environment and config)."""
    ident = run_git(root, "var", "GIT_AUTHOR_IDENT")
    return ident.rsplit(" ", 2)[0]  # drop "<timestamp> <tz>"


def hash_object(root: Path, data: bytes, *, write: bool = True) -> str:
    """The blob id of ``data`` (written to the object store when ``write``)."""
    args = ["hash-object", "--stdin"] + (["-w"] if write else [])
    return run_git(root, *args, input=data)


def cat_blob(root: Path, blob: str) -> bytes:
    proc = subprocess.run(["git", "cat-file", "blob", blob], cwd=root, capture_output=True)
    if proc.returncode != 0:
        raise GitError(f"git has no blob {blob}: {proc.stderr.decode(errors='replace').strip()}",
                       hint="git fetch (the commit holding it may not be in this clone)")
    return proc.stdout


def commit_paths(root: Path, paths: Sequence[str], message: str, *, tmp_dir: Path,
                 expected_head: str | None = None, remove: Sequence[str] = (),
                 skip_if_unchanged: bool = False) -> str | None:
    """Commit the workspace content of exactly ``paths`` on top of HEAD; returns the commit.

    Args:
        root: the work tree.
        paths: repo-relative posix paths (deleted files are removed from the commit).
        message: the full commit message.
        tmp_dir: where the temporary index lives (inside .git, so on the same disk).
        expected_head: HEAD as the caller saw it; the ref update fails if it moved.
        remove: paths to drop from the commit whatever the workspace holds (e.g. weights
            that must be tracked by DVC, not git).
        skip_if_unchanged: return ``None`` (no commit) when the tree equals HEAD's.

    Raises:
        GitError: any step failed; HEAD is then unchanged.
    """
    head = expected_head if expected_head is not None else head_commit(root)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    index = tmp_dir / f"index.{os.getpid()}.tmp"
    env = {"GIT_INDEX_FILE": str(index)}
    try:
        if head:
            run_git(root, "read-tree", head, env=env)
        else:
            run_git(root, "read-tree", "--empty", env=env)
        run_git(root, "update-index", "--add", "--remove", "--", *paths, env=env)
        if remove:
            run_git(root, "update-index", "--force-remove", "--", *remove, env=env)
        tree = run_git(root, "write-tree", env=env)
    finally:
        if index.exists():
            index.unlink()
    if skip_if_unchanged and head and tree == run_git(root, "rev-parse", f"{head}^{{tree}}"):
        return None
    parents = ["-p", head] if head else []
    commit = run_git(root, "commit-tree", tree, *parents, "-F", "-", input=message.encode("utf-8"))
    subject = message.splitlines()[0] if message else ""
    run_git(root, "update-ref", "-m", f"adaptvc: {subject}", "HEAD", commit, head or ZERO)
    return commit


def move_head_back(root: Path, to: str | None, from_: str) -> None:
    """Undo :func:`commit_paths`'s ref update (only if HEAD is still ``from_``)."""
    if to:
        run_git(root, "update-ref", "-m", "adaptvc: roll back", "HEAD", to, from_)
    else:
        run_git(root, "update-ref", "-d", "HEAD", from_)


def refresh_index(root: Path, paths: Sequence[str], *, remove: Sequence[str] = ()) -> None:
    """Make the real index's entries for ``paths`` match the workspace (which now matches
    the commit just made); other entries are not touched."""
    run_git(root, "update-index", "--add", "--remove", "--", *paths)
    if remove:
        run_git(root, "update-index", "--force-remove", "--", *remove)


def index_entries(root: Path, paths: Sequence[str]) -> str:
    """The real index's entries for ``paths`` (``ls-files -s`` format), to restore them."""
    return run_git(root, "ls-files", "-s", "--", *paths)


def restore_index_entries(root: Path, paths: Sequence[str], entries: str) -> None:
    """Put back entries captured by :func:`index_entries` (removing the others of ``paths``)."""
    run_git(root, "update-index", "--force-remove", "--", *paths)
    if entries.strip():  # `ls-files -s` lines are exactly what --index-info reads
        run_git(root, "update-index", "--index-info", input=(entries.strip("\n") + "\n").encode("utf-8"))


def tag_exists(root: Path, name: str) -> bool:
    return bool(run_git(root, "rev-parse", "-q", "--verify", f"refs/tags/{name}", check=False))


def create_tag(root: Path, name: str, commit: str, message: str) -> bool:
    """An annotated tag; ``False`` (and nothing done) when the name is taken."""
    if tag_exists(root, name):
        return False
    run_git(root, "tag", "-a", name, commit, "-m", message)
    return True


def delete_tag(root: Path, name: str) -> None:
    run_git(root, "tag", "-d", name, check=False)


def tag_names(root: Path, pattern: str) -> list[str]:
    """Tag names matching a ``for-each-ref`` pattern (e.g. ``task_a@v*``)."""
    out = run_git(root, "for-each-ref", "--format=%(refname:strip=2)", f"refs/tags/{pattern}")
    return [line for line in out.splitlines() if line]


def version_commits(root: Path, pathspecs: Iterable[str]) -> dict[str, str]:
    """Map each ``Adaptvc-Version`` trailer value to the commit carrying it.

    ONE ``git log`` over the manifest paths, whatever the number of versions.
    ``--full-history`` keeps commits of both sides of merges.
    """
    fmt = f"%H%x00%(trailers:key={TRAILER},valueonly,separator=%x1f)%x1e"
    out = run_git(root, "log", "--full-history", f"--format={fmt}", "HEAD", "--", *pathspecs, check=False)
    found: dict[str, str] = {}
    for record in out.split("\x1e"):
        record = record.strip("\n")
        if "\x00" not in record:
            continue
        commit, trailers = record.split("\x00", 1)
        for value in trailers.strip().split("\x1f"):
            value = value.strip()
            if value and value not in found:  # newest commit first: keep the first seen
                found[value] = commit.strip()
    return found


def trailer_value(adapter: str, version: int, md5: str, created_at: str) -> str:
    """What identifies a version in its commit message (unique even for a duplicate vN)."""
    return f"{adapter}@v{version} {md5} {created_at}"



def head_files(root: Path, paths: Sequence[str]) -> dict[str, bytes | None]:
    """The bytes of each repo-relative path as committed in HEAD (``None`` where HEAD has
    no such file, or no HEAD at all): ONE ``git cat-file --batch``, no history walk."""
    if not paths:
        return {}
    proc = subprocess.run(["git", "cat-file", "--batch"], cwd=root, capture_output=True,
                          input="".join(f"HEAD:{p}\n" for p in paths).encode("utf-8"))
    out: dict[str, bytes | None] = {p: None for p in paths}
    if proc.returncode != 0:
        return out
    data, pos = proc.stdout, 0
    for p in paths:
        end = data.find(b"\n", pos)
        if end < 0:
            break
        header = data[pos:end].split(b" ")
        pos = end + 1
        # "<oid> <type> <size>" then the content, or "<what was asked> missing" alone
        # (the path may hold spaces: tell them apart by the shape of the first line).
        if len(header) == 3 and header[2].isdigit() and not header[0].startswith(b"HEAD:"):
            size = int(header[2])
            if header[1] == b"blob":
                out[p] = data[pos:pos + size]
            pos += size + 1  # the content is followed by a newline
    return out


def head_paths(root: Path, directory: str) -> list[str]:
    """Every file path under ``directory`` in HEAD's tree (ONE ``git ls-tree``); ``[]`` on
    an unborn branch."""
    out = run_git(root, "ls-tree", "-r", "-z", "--name-only", "HEAD", "--", directory, check=False)
    return [p for p in out.split("\0") if p]
