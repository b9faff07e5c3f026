"""Finishing a ``save`` (or ``checkout``, ``alias``) whose process was killed outright
(SIGKILL, OOM killer, power loss).

Ctrl-C, SIGTERM and SIGHUP make ``save`` roll itself back. SIGKILL gives it no chance, so
before it replaces each file ``save`` rewrites a journal, ``.git/adaptvc/transaction.json``:
the version's commit trailer, HEAD before, the index entries before, and where each
replaced file's backup is. A journal that exists when the repository lock is taken was
left by a dead process (the lock is released by the kernel only when its holder exits),
and :func:`recover` settles it from the one fact that decides a git transaction: did
HEAD move to the version's commit?

- yes: the save is complete but for the tag, the index entries and the per-clone
  state; those are finished (rolled forward);
- no: the files are put back from the backups and the index entries restored (rolled
  back), exactly as a failed save does.

A killed ``alias`` is settled the same way (its commit carries an ``Adaptvc-Alias:``
line). A killed ``checkout`` (same journal, no commit) is always rolled back: the adapter's
directory gets back the one version's weights, config and pointer it had.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from adaptvc.repo import AdapterRepo

JOURNAL_NAME = "transaction.json"
log = logging.getLogger("adaptvc")


def recover(repo: "AdapterRepo") -> str | None:
    """Settle an interrupted save's journal (call with the lock held).

    Returns:
        ``"completed it"``, ``"rolled it back"``, or ``None`` when there was nothing to do.
    """
    from adaptvc.storage import git_ops
    from adaptvc.versioning.workspace import FileTransaction

    path = repo.state_dir / JOURNAL_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        path.unlink(missing_ok=True)  # unreadable: written partly, before any file was touched
        return None
    root = repo.root
    if data.get("operation") == "checkout":  # no commit involved: always put the files back
        txn = FileTransaction(Path(data.get("backup_root", repo.state_dir)) / "backup")
        txn.saved = {Path(p): Path(b) if b else None for p, b in data.get("files", [])}
        txn.rollback()
        repo.state.set_at(data["adapter"], data.get("was_at"))
        return _done(repo, path, data, "rolled it back")
    # save: the version's trailer; alias: its own marker line
    marker = data.get("marker") or (f"{git_ops.TRAILER}: {data['trailer']}" if data.get("trailer") else "")
    head = git_ops.head_commit(root)
    commit = None
    if head and head != data.get("head") and marker:
        found = git_ops.run_git(root, "log", "-1", "--format=%H", "--fixed-strings", f"--grep={marker}", head,
                                check=False)
        commit = found or None
    if commit:
        if data.get("operation", "save") == "save":
            git_ops.create_tag(root, data["tag"], commit, data.get("tag_message") or data["tag"])  # False: taken
        if commit == head:  # nothing happened since: the index entries are still to update
            git_ops.refresh_index(root, data.get("paths", []), remove=data.get("remove", []))
            if data.get("state"):
                repo.state.set_at(data["adapter"], data["state"])
        outcome = "completed it"
    elif head != data.get("head"):
        # Someone committed since (HEAD moved, and not to this transaction's commit): the
        # files may hold their work now; putting old bytes back could lose it.
        outcome = "left the files as they are (HEAD has moved since): check them with adaptvc status"
    else:
        txn = FileTransaction(Path(data.get("backup_root", repo.state_dir)) / "backup")
        txn.saved = {Path(p): Path(b) if b else None for p, b in data.get("files", [])}
        txn.rollback()
        git_ops.restore_index_entries(root, data.get("paths", []) + data.get("remove", []), data.get("index", ""))
        outcome = "rolled it back"
    return _done(repo, path, data, outcome)


def _done(repo: "AdapterRepo", path: Path, data: dict, outcome: str) -> str:
    backup_root = data.get("backup_root")
    if backup_root and Path(backup_root).parent == repo.state_dir:
        shutil.rmtree(backup_root, ignore_errors=True)
    path.unlink(missing_ok=True)
    log.warning("adaptvc: a %s of %s was interrupted (process %s killed); %s", data.get("operation", "save"),
                data.get("tag"), data.get("pid"), outcome)
    return outcome
