"""The one git layer: every git command adaptvc runs goes through :func:`run`.

git runs as a subprocess under ``LC_ALL=C``, so the messages adaptvc reads back (a
refused fast-forward, a clobbered tag) are git's English ones whatever the user's
locale. The package does not use GitPython: importing it costs ~80 ms, which on the
``save``/``checkout`` path alone would move those benchmarks past their targets (see
docs/benchmarks.md); every operation here is one plumbing command anyway. The tests
drive the same repositories with GitPython.

The commit adaptvc makes is built in two steps, as git's own ref transactions are
(``refs.h``: prepare, then commit): :func:`make_commit` writes the commit *object* for
exactly some paths from a temporary index (``GIT_INDEX_FILE``) built from HEAD, so
whatever else the user staged or modified stays staged/modified and uncommitted; then
:func:`update_head` moves HEAD to it by compare-and-swap. Between the two, the caller
records the commit id in its journal (:mod:`adaptvc.transaction`), which is how a later
process tells whether a killed transaction had landed.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from adaptvc.errors import GitError

TRAILER = "Adaptvc-Version"
ZERO = "0" * 40

__all__ = ["GitError", "TRAILER", "ZERO"]  # and the functions below


# --- running git ---------------------------------------------------------------------------


def run(
    root: Path | str,
    *args: str,
    env: dict[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``git ARGS`` in ``root`` under ``LC_ALL=C``; the finished process.

    Raises:
        GitError: ``check`` and git exited non-zero (git's own words, and a hint for the
            failures a user can fix: no identity, a held ``index.lock``, HEAD moved).
    """
    full_env = {**os.environ, "LC_ALL": "C", **(env or {})}
    proc = subprocess.run(["git", *args], cwd=root, env=full_env, input=input, capture_output=True)
    if check and proc.returncode != 0:
        raise _error(args, proc)
    return proc


def run_git(
    root: Path | str,
    *args: str,
    env: dict[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
) -> str:
    """Run ``git ARGS`` in ``root``; returns stdout as text, trailing newline stripped."""
    proc = run(root, *args, env=env, input=input, check=check)
    return proc.stdout.decode("utf-8", errors="replace").rstrip("\n")


def succeeds(root: Path | str, *args: str) -> bool:
    """Whether ``git ARGS`` exits 0 (``diff --quiet``, ``merge-base --is-ancestor``...)."""
    return run(root, *args, check=False).returncode == 0


def _error(args: Sequence[str], proc: subprocess.CompletedProcess[bytes]) -> GitError:
    err = output_text(proc)
    hint = None
    if "Please tell me who you are" in err or "empty ident" in err:
        hint = 'git config user.name "Your Name" && git config user.email you@example.com'
    elif "index.lock" in err:
        hint = "another git process is using the repository; when it has finished, run the command again"
    elif args[0] == "update-ref" and "expected" in err:
        hint = "HEAD moved while adaptvc was working (a concurrent git commit?); nothing was saved, run it again"
    return GitError(
        f"git {args[0]} failed: {err or proc.returncode}",
        command=args[0],
        returncode=proc.returncode,
        stderr=err,
        hint=hint,
    )


# --- reading -------------------------------------------------------------------------------


def rev_parse(root: Path | str, spec: str) -> str | None:
    """The object id ``spec`` names (``HEAD``, ``REV:path``, ``refs/tags/x``), or ``None``."""
    return run_git(root, "rev-parse", "-q", "--verify", spec, check=False) or None


def head_commit(root: Path | str) -> str | None:
    """HEAD's commit, or ``None`` on an unborn branch."""
    return rev_parse(root, "HEAD^{commit}")


def current_branch(root: Path | str) -> str | None:
    """The branch HEAD is on (short name), or ``None`` when HEAD is detached."""
    return run_git(root, "symbolic-ref", "-q", "--short", "HEAD", check=False) or None


def is_ancestor(root: Path | str, commit: str, of: str) -> bool:
    """Whether ``commit`` is ``of`` or one of its ancestors."""
    return succeeds(root, "merge-base", "--is-ancestor", commit, of)


def has_object(root: Path | str, oid: str) -> bool:
    return succeeds(root, "cat-file", "-e", oid)


def config_get(root: Path | str, key: str) -> str | None:
    return run_git(root, "config", "--get", key, check=False) or None


def config_set(root: Path | str, key: str, value: str) -> None:
    run_git(root, "config", key, value)


def author_ident(root: Path | str) -> str:
    """``"Name <email>"`` as git would record the author (environment and config)."""
    ident = run_git(root, "var", "GIT_AUTHOR_IDENT")
    return ident.rsplit(" ", 2)[0]  # drop "<timestamp> <tz>"


def hash_object(root: Path | str, data: bytes, *, write: bool = True) -> str:
    """The blob id of ``data`` (written to the object store when ``write``)."""
    args = ["hash-object", "--stdin"] + (["-w"] if write else [])
    return run_git(root, *args, input=data)


def cat_blob(root: Path | str, blob: str) -> bytes:
    proc = run(root, "cat-file", "blob", blob, check=False)
    if proc.returncode != 0:
        raise GitError(
            f"git has no blob {blob}: {proc.stderr.decode(errors='replace').strip()}",
            command="cat-file",
            returncode=proc.returncode,
            hint="git fetch (the commit holding it may not be in this clone)",
        )
    return proc.stdout


def cat_blobs(root: Path | str, specs: Sequence[str]) -> list[bytes | None]:
    """The contents of many ``REV:path`` (or object id) specs with ONE ``git cat-file
    --batch``; ``None`` where the object is missing or not a blob."""
    if not specs:
        return []
    proc = run(root, "cat-file", "--batch", input="".join(f"{s}\n" for s in specs).encode("utf-8"), check=False)
    out: list[bytes | None] = [None] * len(specs)
    if proc.returncode != 0:
        return out
    data, pos = proc.stdout, 0
    for i in range(len(specs)):
        end = data.find(b"\n", pos)
        if end < 0:
            break
        header = data[pos:end].split(b" ")
        pos = end + 1
        # "<oid> <type> <size>" then the content, or "<spec> missing" alone (the spec may
        # hold spaces: tell the two apart by the shape of the whole line).
        if len(header) == 3 and header[2].isdigit() and _is_oid(header[0]):
            size = int(header[2])
            if header[1] == b"blob":
                out[i] = data[pos : pos + size]
            pos += size + 1  # the content is followed by a newline
    return out


def _is_oid(token: bytes) -> bool:
    return len(token) in (40, 64) and all(c in b"0123456789abcdef" for c in token)


def head_files(root: Path | str, paths: Sequence[str]) -> dict[str, bytes | None]:
    """The bytes of each repo-relative path as committed in HEAD (``None`` where HEAD has
    no such file, or there is no HEAD): one ``git cat-file --batch``, no history walk."""
    return dict(zip(paths, cat_blobs(root, [f"HEAD:{p}" for p in paths]), strict=True))


def tree_paths(root: Path | str, rev: str, directory: str) -> list[str]:
    """Every file path under ``directory`` in ``rev``'s tree (one ``git ls-tree``); ``[]``
    when ``rev`` does not exist (an unborn branch)."""
    out = run_git(root, "ls-tree", "-r", "-z", "--name-only", rev, "--", directory, check=False)
    return [p for p in out.split("\0") if p]


def head_paths(root: Path | str, directory: str) -> list[str]:
    return tree_paths(root, "HEAD", directory)


def changed(root: Path | str, paths: Sequence[str], *, staged: bool = False) -> bool:
    """Whether ``paths`` differ between the work tree and the index (``staged``: between
    the index and HEAD)."""
    return not succeeds(root, "diff", *(["--cached"] if staged else []), "--quiet", "--", *paths)


# --- writing: commits, HEAD, the index ------------------------------------------------------


def make_commit(
    root: Path | str,
    paths: Sequence[str],
    message: str,
    *,
    parent: str | None,
    tmp_dir: Path,
    remove: Sequence[str] = (),
    skip_if_unchanged: bool = False,
) -> str | None:
    """Write a commit object holding ``parent``'s tree with the work-tree content of
    exactly ``paths``; HEAD and the real index are not touched.

    Args:
        paths: repo-relative posix paths (a deleted file is removed from the tree).
        parent: the commit to build on (HEAD as the caller saw it), ``None`` on an unborn branch.
        tmp_dir: where the temporary index lives (inside .git, so on the same disk).
        remove: paths to drop from the tree whatever the work tree holds (e.g. weights
            that DVC tracks, not git).
        skip_if_unchanged: return ``None`` (no commit) when the tree equals ``parent``'s.
    """
    tmp_dir.mkdir(parents=True, exist_ok=True)
    index = tmp_dir / f"index.{os.getpid()}.tmp"
    env = {"GIT_INDEX_FILE": str(index)}
    try:
        run_git(root, "read-tree", *([parent] if parent else ["--empty"]), env=env)
        run_git(root, "update-index", "--add", "--remove", "--", *paths, env=env)
        if remove:
            run_git(root, "update-index", "--force-remove", "--", *remove, env=env)
        tree = run_git(root, "write-tree", env=env)
    finally:
        index.unlink(missing_ok=True)
    if skip_if_unchanged and parent and tree == run_git(root, "rev-parse", f"{parent}^{{tree}}"):
        return None
    parents = ["-p", parent] if parent else []
    return run_git(root, "commit-tree", tree, *parents, "-F", "-", input=message.encode("utf-8"))


def update_head(root: Path | str, new: str | None, old: str | None, *, reason: str) -> None:
    """Move HEAD from ``old`` to ``new`` (``None``: delete it, back to an unborn branch),
    only if HEAD is still ``old`` (compare-and-swap).

    Raises:
        GitError: HEAD is no longer ``old``; nothing was changed.
    """
    if new is None:
        run_git(root, "update-ref", "-d", "HEAD", old or ZERO)
    else:
        run_git(root, "update-ref", "-m", f"adaptvc: {reason}", "HEAD", new, old or ZERO)


def refresh_index(root: Path | str, paths: Sequence[str], *, remove: Sequence[str] = ()) -> None:
    """Make the real index's entries for ``paths`` match the work tree (which now matches
    the commit just made); other entries are not touched."""
    run_git(root, "update-index", "--add", "--remove", "--", *paths)
    if remove:
        run_git(root, "update-index", "--force-remove", "--", *remove)


def index_entries(root: Path | str, paths: Sequence[str]) -> str:
    """The real index's entries for ``paths`` (``ls-files -s`` format), to restore them."""
    return run_git(root, "ls-files", "-s", "--", *paths)


def restore_index_entries(root: Path | str, paths: Sequence[str], entries: str) -> None:
    """Put back entries captured by :func:`index_entries` (removing the others of ``paths``)."""
    run_git(root, "update-index", "--force-remove", "--", *paths)
    if entries.strip():  # `ls-files -s` lines are exactly what --index-info reads
        run_git(root, "update-index", "--index-info", input=(entries.strip("\n") + "\n").encode("utf-8"))


# --- tags ----------------------------------------------------------------------------------


def tag_exists(root: Path | str, name: str) -> bool:
    return rev_parse(root, f"refs/tags/{name}") is not None


def create_tag(root: Path | str, name: str, commit: str, message: str) -> bool:
    """An annotated tag; ``False`` (and nothing done) when the name is taken."""
    if tag_exists(root, name):
        return False
    run_git(root, "tag", "-a", name, commit, "-m", message)
    return True


def delete_tag(root: Path | str, name: str) -> None:
    run_git(root, "tag", "-d", name, check=False)


def tag_names(root: Path | str, pattern: str) -> list[str]:
    """Tag names matching a ``for-each-ref`` pattern (e.g. ``task_a@v*``)."""
    out = run_git(root, "for-each-ref", "--format=%(refname:strip=2)", f"refs/tags/{pattern}")
    return [line for line in out.splitlines() if line]


# --- versions' commits -----------------------------------------------------------------------


def version_commits(root: Path | str, pathspecs: Iterable[str]) -> dict[str, str]:
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


# --- remotes, branches and the work tree (sharing and hooks) --------------------------------
# git's messages are read back here (a rejected push, a refused pull): LC_ALL=C (see
# :func:`run`) keeps them git's English ones whatever the user's locale.


def output_text(proc: subprocess.CompletedProcess[bytes]) -> str:
    """What a finished git said: stderr, or stdout when stderr is empty, as text."""
    return (proc.stderr or proc.stdout).decode("utf-8", errors="replace").strip()


def git_remotes(root: Path | str) -> list[str]:
    """The names of the git remotes (``git remote``)."""
    return run_git(root, "remote", check=False).split()


def has_git_remote(root: Path | str, name: str) -> bool:
    return succeeds(root, "remote", "get-url", name)


def has_upstream(root: Path | str, branch: str) -> bool:
    """Whether ``branch`` has an upstream (``BRANCH@{upstream}`` resolves)."""
    return succeeds(root, "rev-parse", "--abbrev-ref", f"{branch}@{{upstream}}")


def remote_branches(root: Path | str) -> list[str]:
    """Short names of the remote-tracking branches (``origin/dev`` → ``dev``), without ``HEAD``."""
    out = run_git(root, "for-each-ref", "--format=%(refname:lstrip=3)", "refs/remotes/", check=False)
    return [b for b in out.split() if b != "HEAD"]


def diff_names(root: Path | str, *revs: str) -> list[str]:
    """Paths that differ (``git diff --name-only REVS``: ``HEAD`` = the work tree against
    HEAD; ``A...B`` = what B changed since it forked from A)."""
    return run_git(root, "diff", "--name-only", *revs, check=False).splitlines()


def staged_names(root: Path | str) -> list[str]:
    """Paths staged as added, copied, modified or renamed (what a commit would take in)."""
    out = run_git(root, "diff", "--cached", "--name-only", "-z", "--diff-filter=ACMR", check=False)
    return [p for p in out.split("\0") if p]


def git_path(root: Path | str, name: str) -> Path:
    """Where git keeps ``name`` (``hooks``: honours ``core.hooksPath`` and worktrees),
    absolute."""
    path = Path(run_git(root, "rev-parse", "--git-path", name))
    # --git-path answers relative to the current directory, core.hooksPath relative to the top.
    return path if path.is_absolute() else Path(root).resolve() / path


def clone(url: str, directory: str | None, *, cwd: Path | str = ".") -> subprocess.CompletedProcess[bytes]:
    """``git clone -q URL [DIRECTORY]`` (not checked: the caller reads git's words)."""
    return run(cwd, "clone", "-q", url, *([directory] if directory is not None else []), check=False)


# --- refs that keep versions alive (gc) -------------------------------------------------------


def ref_tips(root: Path | str, prefixes: Sequence[str] = ("refs/heads/", "refs/tags/")) -> list[tuple[str, str]]:
    """``(ref name, commit)`` of every ref under ``prefixes``, annotated tags peeled to
    their commit; refs that name no commit (a tag on a blob) are left out. One
    ``git for-each-ref``."""
    fmt = "%(refname)%00%(objecttype)%00%(objectname)%00%(*objecttype)%00%(*objectname)"
    out = run_git(root, "for-each-ref", f"--format={fmt}", *prefixes, check=False)
    tips: list[tuple[str, str]] = []
    for line in out.splitlines():
        name, kind, oid, peeled_kind, peeled = (line.split("\0") + [""] * 5)[:5]
        if kind == "commit":
            tips.append((name, oid))
        elif peeled_kind == "commit":
            tips.append((name, peeled))
    return tips


def fetch_all_refs(root: Path | str, git_remote: str, namespace: str) -> None:
    """Fetch every ref of ``git_remote`` (branches, tags, anything under ``refs/``) into
    ``namespace`` (e.g. ``refs/adaptvc-gc/origin/``), replacing what an earlier fetch put
    there and dropping refs the remote no longer has, so the namespace mirrors the remote.
    The user's own branches, tags and remote-tracking refs are not touched.

    Raises:
        GitError: the remote cannot be reached (git's own words).
    """
    namespace = namespace.rstrip("/") + "/"
    run_git(
        root, "fetch", "--quiet", "--no-tags", "--prune", "--no-recurse-submodules", git_remote, f"+refs/*:{namespace}*"
    )


def delete_refs(root: Path | str, prefix: str) -> None:
    """Delete every ref under ``prefix`` (one ``update-ref --stdin``)."""
    names = [n for n in run_git(root, "for-each-ref", "--format=%(refname)", prefix, check=False).splitlines() if n]
    if names:
        run_git(root, "update-ref", "--stdin", input="".join(f"delete {n}\n" for n in names).encode("utf-8"))


def ref_commits(root: Path | str) -> list[str]:
    """The distinct commits the local branches and tags point at (annotated tags peeled),
    for operations over every version ever recorded (``adaptvc verify --all``)."""
    return list(dict.fromkeys(commit for _, commit in ref_tips(root)))
