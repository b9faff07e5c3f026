"""The parts of a version beyond config and weights: companion files and training state.

- **Companion files** (tokenizer files, ``README.md``, ``generation_config.json``,
  ``chat_template.jinja``; the names are configurable, see
  :mod:`adaptvc.formats.companions`) sit in the adapter's directory. Small text files are
  committed to git beside the config; large or binary ones are DVC objects with a stock
  ``NAME.dvc`` pointer each (the file itself git-ignored), like the weights.
- **Training state** (a Trainer checkpoint's optimizer, scheduler, RNG and trainer state)
  is ONE DVC directory object, named by ``training_state.dvc`` and materialised as
  ``training_state/`` (git-ignored; hard links to the read-only cache when possible).
  adaptvc copies bytes and never unpickles them.

Save and checkout both call :func:`write_extras`, which makes the adapter's directory
hold exactly a version's extras (writing, replacing and removing through the
transaction), so ``dvc status``/``dvc checkout``/``dvc pull`` agree with adaptvc.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from adaptvc.errors import InvalidAdapterError
from adaptvc.formats.companions import TRAINING_STATE_PATTERNS, find_files, goes_to_git, matches
from adaptvc.manifest import TRAINING_STATE_DIR, AdapterVersion, StoredFile, TrainingState
from adaptvc.repo import AdapterRepo
from adaptvc.storage import git_ops
from adaptvc.storage.dvc_cache import POINTER_SUFFIX, dumps_pointer
from adaptvc.transaction import Transaction

TRAINING_STATE_POINTER = TRAINING_STATE_DIR + POINTER_SUFFIX


# -- storing --------------------------------------------------------------------------


def source_companions(repo: AdapterRepo, directory: Path) -> dict[str, Path]:
    """The companion files in a source directory (by the repository's configured names)."""
    return find_files(directory, repo.config.companion_files)


def store_companions(repo: AdapterRepo, files: dict[str, Path]) -> tuple[StoredFile, ...]:
    """Put companion files where they belong: small text into git's object store (a blob,
    committed when the version is), the rest into the DVC cache."""
    out = []
    for name, path in sorted(files.items()):
        if goes_to_git(path, repo.config.companion_git_max_bytes):
            data = path.read_bytes()
            blob = git_ops.hash_object(repo.root, data)
            out.append(StoredFile(name, len(data), git_blob=blob, sha256=hashlib.sha256(data).hexdigest()))
        else:
            md5, size = repo.dvc_cache.add(path)
            out.append(StoredFile(name, size, md5=md5))
    return tuple(out)


def store_training_state(repo: AdapterRepo, directory: Path) -> TrainingState:
    """The state files of a Trainer checkpoint directory, as one DVC directory object.

    Raises:
        InvalidAdapterError: ``directory`` holds none of the state files.
    """
    files = find_files(directory, TRAINING_STATE_PATTERNS)
    if "trainer_state.json" not in files:
        found = f" (it holds: {', '.join(sorted(files))})" if files else ""
        raise InvalidAdapterError(
            f"{directory} is not a Trainer checkpoint: no trainer_state.json{found}",
            path=str(directory),
            hint="pass a directory the Trainer wrote, e.g. --training-state outputs/checkpoint-500",
        )
    key, entries = repo.dvc_cache.add_directory(files)
    return TrainingState(key, tuple(StoredFile(rel, size, md5=md5) for rel, md5, size in entries))


# -- the adapter's directory ------------------------------------------------------------


@dataclass(frozen=True)
class ExtraPaths:
    """What a save commits for the extras: ``paths`` (git content, or deleted) and
    ``remove`` (never in git: DVC-tracked files)."""

    paths: tuple[str, ...]
    remove: tuple[str, ...]


def gitignore_lines(version: AdapterVersion) -> list[str]:
    """The ``.gitignore`` lines the version's DVC-tracked extras need (as ``dvc add``)."""
    lines = [f"/{c.name}" for c in version.companions if c.storage == "dvc"]
    return lines + ([f"/{TRAINING_STATE_DIR}"] if version.training_state else [])


def write_extras(txn: Transaction, version: AdapterVersion, *, fsync: bool = True) -> ExtraPaths:
    """Make the adapter's directory hold exactly ``version``'s companion files and training
    state (and their pointers), removing other versions' ones; undoable."""
    repo = txn.repo
    d = repo.adapter_dir(version.adapter)
    rel = repo.adapter_rel(version.adapter)
    paths: list[str] = []
    remove: list[str] = []
    wanted = {c.name: c for c in version.companions}
    for c in version.companions:
        if c.storage == "git":
            txn.write_if_changed(d / c.name, repo.git_blob(c.git_blob, sha256=c.sha256), fsync=fsync)
            txn.remove(d / f"{c.name}{POINTER_SUFFIX}")
            paths += [f"{rel}/{c.name}", f"{rel}/{c.name}{POINTER_SUFFIX}"]
        else:
            _put_object(txn, d / c.name, c.md5)
            txn.write_if_changed(
                d / f"{c.name}{POINTER_SUFFIX}", dumps_pointer(c.md5, c.size, c.name).encode(), fsync=fsync
            )
            paths.append(f"{rel}/{c.name}{POINTER_SUFFIX}")
            remove.append(f"{rel}/{c.name}")
    for name in _present_companions(repo, d):
        if name not in wanted:
            txn.remove(d / name)
            paths.append(f"{rel}/{name}")
            if (d / f"{name}{POINTER_SUFFIX}").exists():
                txn.remove(d / f"{name}{POINTER_SUFFIX}")
                paths.append(f"{rel}/{name}{POINTER_SUFFIX}")
    paths.append(f"{rel}/{TRAINING_STATE_POINTER}")
    _write_training_state(txn, d, version.training_state, fsync=fsync)
    return ExtraPaths(tuple(paths), tuple(remove))


def write_dvc_files(txn: Transaction, version: AdapterVersion) -> None:
    """Only the DVC-tracked extras of ``version`` whose pointer is in the directory
    (after git moved the pointers: what ``dvc checkout`` would write); nothing removed."""
    d = txn.repo.adapter_dir(version.adapter)
    for c in version.companions:
        if c.storage == "dvc" and (d / f"{c.name}{POINTER_SUFFIX}").is_file():
            _put_object(txn, d / c.name, c.md5)
    if version.training_state and (d / TRAINING_STATE_POINTER).is_file():
        for f in version.training_state.files:
            _put_object(txn, d / TRAINING_STATE_DIR / f.name, f.md5, link=True)


def drop_orphan_dvc_files(txn: Transaction, adapter: str) -> None:
    """DVC-tracked extras left in the directory after git removed their pointers (a
    ``git checkout`` of a commit whose version has none): git no longer ignores them, so
    they would show in ``git status`` and go into git with ``git add -A`` (optimizer state
    in git). Removed when the DVC cache holds their content (they come back with their
    version, as ``sync`` removes orphan weights); otherwise kept."""
    repo = txn.repo
    d = repo.adapter_dir(adapter)
    state = d / TRAINING_STATE_DIR
    if state.is_dir() and not (d / TRAINING_STATE_POINTER).exists():
        files = [p for p in state.rglob("*") if p.is_file()]
        if all(repo.dvc_cache.has(repo.state.md5(p)[0]) for p in files):
            for p in files:
                txn.remove(p)
            for sub in sorted((p for p in state.rglob("*") if p.is_dir()), reverse=True):
                sub.rmdir()
            state.rmdir()
    rel = repo.adapter_rel(adapter)
    candidates = {
        name: p
        for name, p in find_files(d, repo.config.companion_files).items()
        if not (d / f"{name}{POINTER_SUFFIX}").exists()
    }
    if candidates:
        tracked = set(git_ops.head_paths(repo.root, rel))
        for name, p in candidates.items():
            if f"{rel}/{name}" not in tracked and repo.dvc_cache.has(repo.state.md5(p)[0]):
                txn.remove(p)


def _present_companions(repo: AdapterRepo, d: Path) -> list[str]:
    """Companion files (or their pointers) in the directory now."""
    names = set(find_files(d, repo.config.companion_files))
    names |= {
        p.name[: -len(POINTER_SUFFIX)]
        for p in (d.iterdir() if d.is_dir() else ())
        if p.name.endswith(POINTER_SUFFIX) and matches(p.name[: -len(POINTER_SUFFIX)], repo.config.companion_files)
    }
    return sorted(names)


def _put_object(txn: Transaction, path: Path, md5: str, *, link: bool = False) -> None:
    if path.is_file() and txn.repo.state.md5(path)[0] == md5:
        return
    txn.put(path, lambda p: txn.repo.dvc_cache.materialise(md5, p, link=link))


def _write_training_state(txn: Transaction, d: Path, ts: TrainingState | None, *, fsync: bool) -> None:
    target = d / TRAINING_STATE_DIR
    keep = {f.name for f in ts.files} if ts else set()
    if target.is_dir():
        for p in sorted(target.rglob("*")):
            if p.is_file() and p.relative_to(target).as_posix() not in keep:
                txn.remove(p)
    if ts is None:
        txn.remove(d / TRAINING_STATE_POINTER)
        if target.is_dir() and not any(target.rglob("*")):
            target.rmdir()
        return
    for f in ts.files:
        if not txn.repo.dvc_cache.has(f.md5):
            continue  # dropped by gc --drop-training-state (checkout warned): the pointer alone, as DVC
        # Hard links to the read-only cache objects: the state is 2-3x the adapter's size
        # and only read (by torch.load, when resuming), so no second copy.
        _put_object(txn, target / f.name, f.md5, link=True)
    pointer = dumps_pointer(ts.md5, ts.size, TRAINING_STATE_DIR, nfiles=len(ts.files))
    txn.write_if_changed(d / TRAINING_STATE_POINTER, pointer.encode(), fsync=fsync)


# -- reading ----------------------------------------------------------------------------


def companion_bytes(repo: AdapterRepo, c: StoredFile) -> bytes:
    """A stored companion file's bytes (from git, sha256-checked, or the DVC cache)."""
    if c.storage == "git":
        return repo.git_blob(c.git_blob, sha256=c.sha256)
    return repo.dvc_cache.object_path(c.md5).read_bytes()


def export_extras(
    repo: AdapterRepo, version: AdapterVersion, out: Path, *, training_state: bool, link: bool = False
) -> None:
    """Write ``version``'s companion files (and, with ``training_state``, its state files,
    beside the adapter: the layout of a Trainer checkpoint) into ``out``."""
    from adaptvc.storage.files import write_atomic

    for c in version.companions:
        if c.storage == "git":
            write_atomic(out / c.name, repo.git_blob(c.git_blob, sha256=c.sha256))
        else:
            repo.dvc_cache.materialise(c.md5, out / c.name, link=link)
    if training_state and version.training_state:
        for f in version.training_state.files:
            repo.dvc_cache.materialise(f.md5, out / f.name)


def unknown_files(repo: AdapterRepo, adapter: str, known: set[str]) -> list[str]:
    """Entries of the adapter's directory that adaptvc neither versions nor writes:
    listed by ``status`` so nothing is versioned or dropped silently."""
    d = repo.adapter_dir(adapter)
    out = []
    for p in sorted(d.iterdir()) if d.is_dir() else ():
        name = p.name
        base = name[: -len(POINTER_SUFFIX)] if name.endswith(POINTER_SUFFIX) else name
        if base in known or name.startswith(".") or matches(base, repo.config.companion_files):
            continue
        if base == TRAINING_STATE_DIR:
            continue
        out.append(name + ("/" if p.is_dir() else ""))
    return out


def changed_companions(repo: AdapterRepo, version: AdapterVersion) -> list[str]:
    """Names of companion files whose workspace copy differs from ``version``'s (added,
    changed or deleted)."""
    d = repo.adapter_dir(version.adapter)
    present = find_files(d, repo.config.companion_files)
    changed = sorted(set(present) - {c.name for c in version.companions})
    for c in version.companions:
        p = d / c.name
        if not p.is_file():
            changed.append(c.name)
        elif c.storage == "git":
            if hashlib.sha256(p.read_bytes()).hexdigest() != c.sha256:
                changed.append(c.name)
        elif repo.state.md5(p)[0] != c.md5:
            changed.append(c.name)
    return sorted(changed)
