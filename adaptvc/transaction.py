"""The one transaction primitive: every adaptvc operation that writes goes through it.

An operation (save, checkout, alias, merge repair, a remote-config change, init, ...)
is written as::

    with transaction(repo, "save", label="task_a@v3") as txn:
        txn.write_bytes(path, data)                  # backed up, journaled, atomic
        txn.put(weights, lambda p: cache.materialise(md5, p))
        txn.commit(paths, message, tags=[(name, msg)])   # HEAD by compare-and-swap
        txn.set_state("task_a", record)              # per-clone state, applied at the end

and the primitive does the rest, in one place:

1. **lock**: one adaptvc transaction at a time per repository (an ``flock`` in the
   common git dir; SIGTERM/SIGHUP raise like Ctrl-C while it is held: see
   :mod:`adaptvc.storage.lock`);
2. **recovery**: a journal left by a process killed outright is settled first
   (:func:`recover`);
3. **backup + journal**: before a path is first replaced it is hard-linked into a backup
   directory, and the :class:`Journal` (the one record of what the transaction did) is
   rewritten, so a process killed between two writes can be undone by the next one;
4. **commit**: the commit *object* is made first and its id journaled, then HEAD is moved
   to it only if HEAD is still where the transaction began (``update-ref NEW OLD``), then
   tags are created and the real index's entries for those paths refreshed;
5. **rollback** on any exception, Ctrl-C and SIGTERM included, with signals held off until
   it is done: files back from the backups, HEAD back, tags deleted, index entries and
   per-clone state restored.

Whether a transaction's commit landed is decided one way, :func:`_landed`: HEAD is the
journaled commit, or has it as an ancestor. Recovery rolls a landed transaction forward
(tags, index, state) and any other back; when HEAD moved elsewhere meanwhile (someone
committed), the files are left alone rather than old bytes put over their work.
Git's ref transactions (``ref_transaction_begin/update/commit`` in ``refs.h``) and DVC's
``@locked`` repository operations are the models.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adaptvc.errors import LockTimeoutError
from adaptvc.repo import AdapterRepo
from adaptvc.storage import git_ops
from adaptvc.storage.files import process_is_gone, sweep_dead_temporaries, write_atomic
from adaptvc.storage.lock import repo_lock, signals_deferred

JOURNAL_NAME = "transaction.json"
log = logging.getLogger("adaptvc")

StateRecord = dict[str, Any] | None


@dataclass
class Journal:
    """What a transaction has done so far, rewritten before each step that a killed
    process could leave half-done. Written and read only by this module."""

    operation: str  # "save", "checkout", "alias", ... (for the message after recovery)
    label: str  # what the user knows it as: "task_a@v3"
    pid: int
    head: str | None  # HEAD when the transaction began
    backup_root: str  # the transaction's scratch directory (backups inside), removed at the end
    commits: bool = True  # False: work-tree copies only (checkout), always undone when killed
    files: list[tuple[str, str | None]] = field(default_factory=list)  # path, backup (None: was absent)
    paths: list[str] = field(default_factory=list)  # committed paths (their index entries)
    remove: list[str] = field(default_factory=list)  # paths the commit drops from git
    index: str = ""  # `ls-files -s` of paths + remove before the commit
    commit: str | None = None  # the commit object, journaled before HEAD moves to it
    tags: list[tuple[str, str]] = field(default_factory=list)  # (name, message), made after the commit
    state: dict[str, StateRecord] = field(default_factory=dict)  # per-clone state to set at the end
    state_before: dict[str, StateRecord] = field(default_factory=dict)

    def dumps(self) -> bytes:
        return json.dumps(dataclasses.asdict(self)).encode()

    @classmethod
    def read(cls, path: Path) -> Journal | None:
        """The journal at ``path``; ``None`` when there is none, or it is unreadable
        (written partly: before any file was touched, as it is rewritten atomically)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            data["files"] = [tuple(f) for f in data.get("files", [])]
            data["tags"] = [tuple(t) for t in data.get("tags", [])]
            return cls(**data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError):
            path.unlink(missing_ok=True)
            return None


class Transaction:
    """Writes into the work tree, one commit and per-clone state that either all happen
    or are all undone. Made by :func:`transaction`; see the module docstring."""

    def __init__(self, repo: AdapterRepo, operation: str, label: str, *, commits: bool, durable: bool) -> None:
        self.repo = repo
        self.root = repo.root
        # Scratch space of the operation's own (staging a conversion, ...); backups go in
        # its backup/ folder. Inside .git, so on the work tree's filesystem: links work.
        # The pid in its name lets a later transaction remove it should this process be
        # killed before it wrote any journal (see _sweep_dead_scratch).
        self.workdir = Path(tempfile.mkdtemp(dir=repo.state_dir, prefix=f"{operation}-{os.getpid()}-"))
        head = git_ops.head_commit(repo.root) if commits else None
        self.journal = Journal(operation, label, os.getpid(), head, str(self.workdir), commits)
        self.journal_path = repo.state_dir / JOURNAL_NAME
        # fsync the journal where the writes it guards are fsync'ed (commits); each fsync
        # costs ~15 ms, pointless for rebuildable workspace copies (checkout).
        self.durable = durable
        self.tags_taken: list[str] = []  # tags another version already had (not created)
        self._backed_up: set[Path] = set()  # the paths journal.files lists
        self._journaled = False
        self._state_applied = False

    @property
    def head(self) -> str | None:
        """HEAD when the transaction began."""
        return self.journal.head

    @property
    def label(self) -> str:
        return self.journal.label

    @label.setter
    def label(self, value: str) -> None:  # once the operation knows it ("task_a@v3")
        self.journal.label = value

    # -- files ------------------------------------------------------------------------------
    def write_bytes(self, path: Path, data: bytes, *, fsync: bool = True) -> None:
        """Replace ``path`` with ``data`` (atomically), undoable."""
        self._backup(path)
        write_atomic(path, data, fsync=fsync)

    def write_if_changed(self, path: Path, data: bytes, *, fsync: bool = True) -> bool:
        """:meth:`write_bytes` unless ``path`` already holds ``data``; whether it wrote."""
        if path.is_file() and path.read_bytes() == data:
            return False
        self.write_bytes(path, data, fsync=fsync)
        return True

    def put(self, path: Path, produce: Callable[[Path], object]) -> None:
        """Let ``produce(path)`` create ``path`` atomically, undoable."""
        self._backup(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        produce(path)

    def remove(self, path: Path) -> None:
        self._backup(path)
        path.unlink(missing_ok=True)

    def _backup(self, path: Path) -> None:
        if path in self._backed_up:
            return
        backup: Path | None = None
        if path.exists():
            backup = self.workdir / "backup" / f"{len(self._backed_up)}-{path.name}"
            backup.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, backup)  # the replacement is a new file: the link keeps the old bytes
            except OSError:
                shutil.copy2(path, backup)
        self._backed_up.add(path)
        self.journal.files.append((str(path), str(backup) if backup else None))
        self._write_journal()

    # -- per-clone state --------------------------------------------------------------------
    def set_state(self, adapter: str, record: StateRecord) -> None:
        """Record the version ``adapter``'s directory is at, when the transaction ends."""
        if adapter not in self.journal.state_before:
            self.journal.state_before[adapter] = self.repo.state.at(adapter)
        self.journal.state[adapter] = record
        if self._journaled:
            self._write_journal()

    # -- the commit -------------------------------------------------------------------------
    def commit(
        self,
        paths: Sequence[str],
        message: str,
        *,
        remove: Sequence[str] = (),
        tags: Sequence[tuple[str, str]] = (),
        skip_if_unchanged: bool = False,
    ) -> str | None:
        """Commit the work-tree content of exactly ``paths`` on top of the HEAD the
        transaction began at, then create ``tags`` (name, message) on it and refresh the
        real index's entries for ``paths``. Returns the commit (``None`` when
        ``skip_if_unchanged`` and nothing changed).

        Raises:
            GitError: git refused (no identity; HEAD moved meanwhile). The transaction
                then rolls back, as on any exception.
        """
        j = self.journal
        if j.commit is not None or not j.commits:
            raise RuntimeError(f"a {j.operation} transaction cannot commit here")  # a programming error
        j.paths, j.remove = list(paths), list(remove)
        j.index = git_ops.index_entries(self.root, [*paths, *remove])
        commit = git_ops.make_commit(
            self.root,
            paths,
            message,
            parent=j.head,
            tmp_dir=self.workdir,
            remove=remove,
            skip_if_unchanged=skip_if_unchanged,
        )
        if commit is None:
            return None
        j.commit, j.tags = commit, list(tags)
        self._write_journal()  # from here on, a killed process is settled by looking at HEAD
        subject = message.splitlines()[0] if message else ""
        git_ops.update_head(self.root, commit, j.head, reason=subject)
        self.tags_taken = _create_tags(self.root, j)
        git_ops.refresh_index(self.root, j.paths, remove=j.remove)
        return commit

    def stage(self, paths: Sequence[str]) -> None:
        """Update the real index's entries for ``paths`` to the work tree, undoably,
        without committing (what ``git add`` would do for exactly those paths)."""
        j = self.journal
        if j.paths or j.commit is not None:
            raise RuntimeError(f"a {j.operation} transaction stages or commits once")  # a programming error
        j.paths, j.index = list(paths), git_ops.index_entries(self.root, paths)
        self._write_journal()
        git_ops.refresh_index(self.root, j.paths)

    # -- the end ----------------------------------------------------------------------------
    def _finish(self) -> None:
        self._state_applied = bool(self.journal.state)
        for adapter, record in self.journal.state.items():
            self.repo.state.set_at(adapter, record)
        self.journal_path.unlink(missing_ok=True)

    def _rollback(self) -> None:
        """Undo everything, each step on its own (a failing step is logged and the others
        still run)."""
        j = self.journal
        steps: list[Callable[[], None]] = []
        if j.commit is not None and git_ops.head_commit(self.root) == j.commit:
            steps += [lambda: git_ops.update_head(self.root, j.head, j.commit, reason="roll back")]
        steps += [lambda: _delete_tags(self.root, j, keep=self.tags_taken)]
        steps += [lambda: _restore_files(j)]
        if self._state_applied:
            steps += [lambda: _restore_state(self.repo, j)]
        if j.paths or j.remove:
            steps += [lambda: git_ops.restore_index_entries(self.root, [*j.paths, *j.remove], j.index)]
        for step in steps:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - report it and keep undoing the rest
                log.error("rollback step failed: %s", exc)
        self.journal_path.unlink(missing_ok=True)

    def _write_journal(self) -> None:
        write_atomic(self.journal_path, self.journal.dumps(), fsync=self.durable)
        self._journaled = True


@contextlib.contextmanager
def transaction(
    repo: AdapterRepo,
    operation: str,
    label: str = "",
    *,
    commits: bool = True,
    durable: bool = True,
    timeout: float | None = None,
) -> Iterator[Transaction]:
    """Run the block as one transaction on ``repo`` (see the module docstring).

    Args:
        operation, label: what a user reads after a recovery ("a save of task_a@v3 was
            interrupted ...").
        commits: the block may call :meth:`Transaction.commit`; ``False`` for work-tree
            copies only (checkout), which a killed process always has undone.
        durable: fsync the journal (where the writes it guards are fsync'ed).

    Raises:
        LockTimeoutError: another adaptvc process held the lock for ``timeout`` seconds
            (default: ``lock_timeout`` in ``.adaptvc/config.toml``).
    """
    with locked(repo, timeout=timeout):
        txn = Transaction(repo, operation, label, commits=commits, durable=durable)
        try:
            yield txn
            txn._finish()
        except BaseException:
            # A second Ctrl-C or `kill` must not cut the rollback short: held off until done.
            with signals_deferred():
                txn._rollback()
            raise
        finally:
            shutil.rmtree(txn.workdir, ignore_errors=True)


@contextlib.contextmanager
def locked(repo: AdapterRepo, *, timeout: float | None = None) -> Iterator[None]:
    """The repository lock, with a killed transaction settled first: the outer part of
    :func:`transaction` and of :func:`settle_interrupted`."""
    repo.state_dir.mkdir(parents=True, exist_ok=True)
    with repo_lock(repo.lock_path, timeout=repo.config.lock_timeout if timeout is None else timeout):
        recover(repo)
        yield


def settle_interrupted(repo: AdapterRepo) -> None:
    """Settle a transaction killed outright, if there is one and its process is gone:
    what read-only commands call (one ``stat`` when there is nothing to do)."""
    if not (repo.state_dir / JOURNAL_NAME).exists():
        return
    try:
        with locked(repo, timeout=0):
            pass
    except LockTimeoutError:
        pass  # held: the transaction is alive and still working; nothing to settle


# --- recovery ----------------------------------------------------------------------------------


def recover(repo: AdapterRepo) -> str | None:
    """Settle the journal of a transaction whose process was killed outright (SIGKILL,
    the OOM killer, power loss); call with the lock held.

    Returns:
        ``"completed it"``, ``"rolled it back"``, ``"left the files as they are ..."``, or
        ``None`` when there was no journal.
    """
    path = repo.state_dir / JOURNAL_NAME
    sweep_dead_temporaries(path)  # killed while rewriting the journal
    j = Journal.read(path)
    if j is None:
        _sweep_dead_scratch(repo.state_dir)
        return None
    for written, _ in j.files:  # killed while writing one of them
        sweep_dead_temporaries(Path(written))
    landed = _landed(repo.root, j)
    if landed is not None:
        _create_tags(repo.root, j)
        if landed == "at HEAD":  # nothing happened since: the index and state are still to do
            git_ops.refresh_index(repo.root, j.paths, remove=j.remove)
            for adapter, record in j.state.items():
                repo.state.set_at(adapter, record)
        outcome = "completed it"
    elif not j.commits or git_ops.head_commit(repo.root) == j.head:
        # Work-tree copies only (checkout), or HEAD never moved: undo.
        _restore_files(j)
        _restore_state(repo, j)
        if j.paths or j.remove:
            git_ops.restore_index_entries(repo.root, [*j.paths, *j.remove], j.index)
        outcome = "rolled it back"
    else:
        # Someone committed since (HEAD moved, and not to this transaction's commit): the
        # files may hold their work now; putting old bytes back could lose it.
        outcome = "left the files as they are (HEAD has moved since): check them with adaptvc status"
    if Path(j.backup_root).parent == repo.state_dir:
        shutil.rmtree(j.backup_root, ignore_errors=True)
    path.unlink(missing_ok=True)
    _sweep_dead_scratch(repo.state_dir)
    log.warning("adaptvc: a %s of %s was interrupted (process %s killed); %s", j.operation, j.label, j.pid, outcome)
    return outcome


_SCRATCH_NAME = re.compile(r"^[\w ]+-(?P<pid>[0-9]+)-\w+$")  # "<operation>-<pid>-<random>"


def _sweep_dead_scratch(state_dir: Path) -> None:
    """Remove the scratch directories of transactions whose process is gone (killed
    before it had written anything to undo; with a journal, recovery removes it)."""
    try:
        entries = [e for e in os.scandir(state_dir) if _SCRATCH_NAME.match(e.name) and e.is_dir()]
    except OSError:
        return
    for entry in entries:
        match = _SCRATCH_NAME.match(entry.name)
        assert match is not None
        if process_is_gone(int(match["pid"])):
            shutil.rmtree(entry.path, ignore_errors=True)


def _landed(root: Path, j: Journal) -> str | None:
    """Did HEAD move to the transaction's commit? ``"at HEAD"``, ``"below HEAD"`` (someone
    committed on top since), or ``None`` (no commit, or HEAD never had it)."""
    if j.commit is None:
        return None
    head = git_ops.head_commit(root)
    if head == j.commit:
        return "at HEAD"
    if head is not None and head != j.head and git_ops.is_ancestor(root, j.commit, head):
        return "below HEAD"
    return None


def _create_tags(root: Path, j: Journal) -> list[str]:
    """Create the journal's tags on its commit; the names that were already taken."""
    assert j.commit is not None
    return [name for name, message in j.tags if not git_ops.create_tag(root, name, j.commit, message)]


def _delete_tags(root: Path, j: Journal, *, keep: Sequence[str]) -> None:
    for name, _ in j.tags:
        if name not in keep and git_ops.rev_parse(root, f"refs/tags/{name}^{{commit}}") == j.commit:
            git_ops.delete_tag(root, name)


def _restore_files(j: Journal) -> None:
    for path_text, backup_text in reversed(j.files):
        path = Path(path_text)
        try:
            if backup_text is None:
                path.unlink(missing_ok=True)
            else:
                try:
                    os.replace(backup_text, path)
                except OSError:  # backup on another filesystem than the work tree
                    shutil.copy2(backup_text, path)
        except OSError as exc:  # keep restoring the others
            log.error("could not restore %s: %s", path, exc)


def _restore_state(repo: AdapterRepo, j: Journal) -> None:
    for adapter, record in j.state_before.items():
        repo.state.set_at(adapter, record)
