"""Moving DVC objects (adapter weights) between the local DVC cache and a DVC remote.

The layout on both sides is DVC 3's own (``files/md5/ab/cdef…``), so plain ``dvc push``,
``dvc pull`` and ``dvc status -c`` agree with what adaptvc moved. adaptvc does the copying
itself, on the remote's fsspec filesystem as DVC builds it (so every DVC remote kind and
option works), because it needs three guarantees DVC's transfer does not give on every
remote:

- every downloaded object is MD5-checked before it enters the cache (a corrupt or
  truncated object on the remote is reported, never used);
- nothing that is not complete ever sits under an object's final name, on either side:
  data goes to ``.<random>.tmp`` next to it and is renamed when complete and verified
  (object stores such as S3 publish an upload atomically, so they are written directly);
- a re-run skips what is already there, so an interrupted push/pull resumes per object.

Progress goes to an optional callback (the CLI draws a bar on a terminal); nothing here
prints.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adaptvc.errors import (
    AdaptvcError,
    CorruptObjectError,
    MissingDependencyError,
    ObjectMissingError,
    RemoteAccessError,
    RemoteError,
    RemoteNotFoundError,
    TransferError,
)
from adaptvc.progress import ProgressCallback, TransferEvent, default_progress, progress_to  # noqa: F401 (re-exported)
from adaptvc.storage.dvc_cache import REPAIR_HINT, DvcCache, file_md5
from adaptvc.storage.dvc_config import read_merged
from adaptvc.storage.remotes import get_remote

logger = logging.getLogger(__name__)

# Object stores publish an uploaded object only once it is complete.
_ATOMIC_PUT_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "azure", "az", "abfs", "oss"})
DEFAULT_JOBS = 4


# The DVC remote used when a caller names none (e.g. `adaptvc pull --remote R` makes the
# on-demand fetches deep inside checkout use R); None means DVC's default remote.
_DEFAULT_REMOTE: contextvars.ContextVar[str | None] = contextvars.ContextVar("adaptvc_remote", default=None)


@contextlib.contextmanager
def use_remote(name: str | None) -> Iterator[None]:
    """Transfers in this block that name no remote use ``name`` (None: DVC's default)."""
    token = _DEFAULT_REMOTE.set(name)
    try:
        yield
    finally:
        _DEFAULT_REMOTE.reset(token)


@dataclass(frozen=True)
class TransferResult:
    """What a push or fetch did. ``skipped`` were already at the destination; ``failed``
    holds, per object, the error that stopped it (an :class:`ObjectMissingError` when
    the object is on neither side, a :class:`CorruptObjectError`, a :class:`TransferError`
    wrapping anything else)."""

    direction: str  # "push" | "fetch"
    remote: str
    transferred: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    failed: dict[str, AdaptvcError] = field(default_factory=dict)  # md5 -> why
    bytes: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "direction": self.direction,
            "remote": self.remote,
            "transferred": list(self.transferred),
            "skipped": list(self.skipped),
            "failed": {m: e.message for m, e in self.failed.items()},
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
        }


# --- the remote's configuration ------------------------------------------------------------


def _dvc_config(root: Path) -> dict[str, Any]:
    """The configuration DVC's ``get_cloud_fs`` builds a remote's filesystem from, in the
    shape of ``dvc.config.Config`` (``{"core": {...}, "remote": {name: {...}}}``).

    Derived from adaptvc's one reader (:func:`adaptvc.storage.dvc_config.read_merged`:
    the four levels merged as DVC merges them, relative paths resolved against their
    file's directory as DVC resolves them) rather than by loading the files a second time
    with ``dvc.config.Config``. ``get_cloud_fs`` then validates and coerces the remote's
    options with DVC's own schema, so a bad option is reported as DVC would report it.
    """
    merged = read_merged(root)
    core = dict(merged.core)
    if str(core.get("checksum_jobs", "")).isdigit():
        core["checksum_jobs"] = int(core["checksum_jobs"])
    remotes = {
        name: {k: (os.path.expanduser(v) if isinstance(v, str) and v.startswith("~") else v) for k, v in values.items()}
        for name, values in merged.remotes.items()
    }
    return {"core": core, "remote": remotes}


# --- the remote --------------------------------------------------------------------------


class RemoteStore:
    """A DVC remote's object area, as DVC itself would open it (all config levels merged)."""

    def __init__(self, root: Path, name: str | None = None) -> None:
        from dvc.config import RemoteNotFoundError as _DvcRemoteNotFound
        from dvc.fs import get_cloud_fs

        self.root = root
        name = name if name is not None else _DEFAULT_REMOTE.get()
        self.name = get_remote(root, name).name  # our error messages for unknown / no default
        self.config = _dvc_config(root)
        try:
            cls, fs_config, fs_path = get_cloud_fs(self.config, name=self.name)
        except _DvcRemoteNotFound as exc:  # pragma: no cover - get_remote checked already
            raise RemoteNotFoundError(str(exc), hint="adaptvc remote list") from None
        except ImportError as exc:
            raise _missing_plugin(exc) from None
        except Exception as exc:
            raise RemoteAccessError(
                f"remote {self.name!r} is misconfigured: {exc}", remote=self.name, hint="adaptvc remote list --json"
            ) from None
        try:
            self.fs = cls(**fs_config)
        except ImportError as exc:
            raise _missing_plugin(exc) from None
        self.protocol = cls.protocol if isinstance(cls.protocol, str) else cls.protocol[0]
        self.base = self.fs.join(fs_path, "files", "md5")

    def path(self, md5: str) -> str:
        return self.fs.join(self.base, md5[:2], md5[2:])

    def existing(self, md5s: Iterable[str]) -> set[str]:
        """The subset of ``md5s`` present on the remote (one batched call)."""
        md5s = list(md5s)
        if not md5s:
            return set()
        try:
            flags = self.fs.exists([self.path(m) for m in md5s])
        except Exception as exc:
            raise _remote_error(self.name, "list objects on", exc) from None
        return {m for m, ok in zip(md5s, flags, strict=True) if ok}

    def modified_times(self, md5s: Iterable[str]) -> dict[str, float | None]:
        """``md5 -> modification time`` (POSIX seconds) of objects on the remote, from the
        filesystem's ``info``: ``mtime`` on a directory (a float) or over SSH (a datetime),
        ``LastModified`` on S3 and other object stores. ``None`` when the remote does not
        say (the caller then treats the object as young); absent objects are left out."""
        out: dict[str, float | None] = {}
        for md5 in md5s:
            try:
                info = self.fs.info(self.path(md5))
            except FileNotFoundError:
                continue
            except Exception as exc:
                raise _remote_error(self.name, "read object times on", exc) from None
            out[md5] = _modified_at(info)
        return out

    def remove(self, md5s: Iterable[str]) -> dict[str, AdaptvcError]:
        """Delete objects from the remote (``adaptvc gc``); what could not be deleted, and
        why. An object already gone counts as deleted."""
        failed: dict[str, AdaptvcError] = {}
        for md5 in md5s:
            try:
                self.fs.rm_file(self.path(md5))
            except FileNotFoundError:
                continue
            except Exception as exc:  # noqa: BLE001 - collected per object, reported by the caller
                failed[md5] = _as_error(md5, exc)
        return failed

    def upload(self, local: Path, md5: str, size: int, callback: Any) -> None:
        final = self.path(md5)
        self.fs.makedirs(self.fs.parent(final), exist_ok=True)
        if self.protocol in _ATOMIC_PUT_PROTOCOLS:
            self.fs.put_file(str(local), final, callback=callback, size=size)
            return
        tmp = self.fs.join(self.fs.parent(final), f".{_token()}.tmp")
        try:
            self.fs.put_file(str(local), tmp, callback=callback, size=size)
            uploaded = self.fs.size(tmp)
            if uploaded != size:
                raise TransferError(f"upload of {md5} is {uploaded} bytes, expected {size}", md5=md5, remote=self.name)
            self.fs.mv(tmp, final)
        except BaseException:
            _quietly(self.fs.rm_file, tmp)
            raise

    def download(self, md5: str, dest: Path, callback: Any) -> None:
        self.fs.get_file(self.path(md5), str(dest), callback=callback)

    def fetch_into(self, cache: DvcCache, md5: str, progress: ProgressCallback | None) -> int:
        """Download one object into ``cache``; its size. It goes to a temporary name next
        to its final place, is hashed, made read-only (as DVC does) and only then renamed.

        Raises:
            CorruptObjectError: the copy on the remote does not hash to ``md5``.
        """
        final = cache.object_path(md5)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".{_token()}.tmp"
        if progress:
            progress(TransferEvent("start", md5, 0))
        try:
            self.download(md5, tmp, _callback(md5, progress))
            actual, _ = file_md5(tmp)
            if actual != md5:
                raise CorruptObjectError(
                    f"the copy on DVC remote {self.name!r} is damaged (its MD5 is {actual})",
                    what=f"object {md5} on DVC remote {self.name!r}",
                    path=self.path(md5),
                    hint=f"push it again from a machine that has it: dvc push -r {self.name}",
                )
            os.chmod(tmp, 0o444)  # DVC keeps cache objects read-only
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        return final.stat().st_size


def _modified_at(info: dict[str, Any]) -> float | None:
    """The modification time in an fsspec ``info`` dict, as POSIX seconds."""
    for key in ("mtime", "LastModified", "last_modified", "modified", "updated", "created"):
        value = info.get(key)
        if isinstance(value, (int, float)):
            return float(value)
        if value is not None and hasattr(value, "timestamp"):
            return float(value.timestamp())
        if isinstance(value, str):
            from datetime import datetime

            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return None


def _missing_plugin(exc: ImportError) -> AdaptvcError:
    text = str(exc).lower()
    for plugin, extra in (("s3", "s3"), ("ssh", "ssh")):
        if plugin in text:
            return MissingDependencyError(f"dvc-{plugin}", extra=extra, purpose=f"{plugin.upper()} remotes")
    return MissingDependencyError("the DVC plugin for this remote", purpose=str(exc))


def _remote_error(name: str, what: str, exc: BaseException) -> RemoteError:
    return RemoteAccessError(
        f"cannot {what} DVC remote {name!r}: {type(exc).__name__}: {exc}",
        remote=name,
        hint=f"check the remote with `adaptvc remote list --json` and `dvc status -c -r {name}`",
    )


def _token() -> str:
    """A random name part for a temporary file (``os.urandom``: ``secrets`` costs ~1 ms to import)."""
    return os.urandom(16).hex()


def _quietly(func: Callable[..., object], *args: object) -> None:
    try:
        func(*args)
    except Exception:  # noqa: BLE001 - best-effort clean-up of a temp file
        pass


@functools.cache
def _callback_class() -> type:
    """An fsspec callback class that forwards byte counts to a ProgressCallback. Made on
    first use: importing fsspec costs ~70 ms, which ``checkout`` and ``diff`` (they import
    this module through :mod:`adaptvc.storage.fetch`) must not pay when nothing moves."""
    from fsspec.callbacks import Callback

    class _Callback(Callback):
        def __init__(self, md5: str, progress: ProgressCallback | None) -> None:
            super().__init__()
            self._md5 = md5
            self._progress = progress

        def relative_update(self, inc: int = 1) -> None:
            self.value += inc
            if self._progress is not None and inc:
                self._progress(TransferEvent("bytes", self._md5, inc))

        def absolute_update(self, value: int) -> None:
            self.relative_update(value - self.value)

    return _Callback


def _callback(md5: str, progress: ProgressCallback | None) -> Any:
    return _callback_class()(md5, progress)


def _as_error(md5: str, exc: Exception) -> AdaptvcError:
    """``exc`` as the error a :class:`TransferResult` holds (adaptvc's own kept as is)."""
    if isinstance(exc, AdaptvcError):
        return exc
    wrapped = TransferError(f"{type(exc).__name__}: {exc}", md5=md5)
    wrapped.__cause__ = exc
    return wrapped


def _run_parallel(
    items: list[str], work: Callable[[str], int], jobs: int, progress: ProgressCallback | None
) -> tuple[dict[str, int], dict[str, AdaptvcError]]:
    """Run ``work(md5) -> bytes moved`` over ``items`` on ``jobs`` threads.

    Returns ``(moved: md5 -> size, failed: md5 -> error)``; reports each success to
    ``progress`` as a ``"done"`` event.
    """
    moved: dict[str, int] = {}
    failed: dict[str, AdaptvcError] = {}
    lock = threading.Lock()

    def one(md5: str) -> None:
        try:
            size = work(md5)
            if progress:
                progress(TransferEvent("done", md5, size))
            with lock:
                moved[md5] = size
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - collected and reported per object
            logger.debug("transfer of %s failed", md5, exc_info=True)
            with lock:
                failed[md5] = _as_error(md5, exc)

    if jobs <= 1 or len(items) <= 1:
        for md5 in items:
            one(md5)
    else:
        # Here rather than at the top: ~1.5 ms that checkout and diff (which import this
        # module through storage.fetch) pay only when objects actually move.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(jobs, len(items))) as pool:
            list(pool.map(one, items))
    return moved, failed


# --- the two directions ------------------------------------------------------------------


def push_objects(
    root: str | os.PathLike[str],
    md5s: Iterable[str],
    *,
    remote: str | None = None,
    jobs: int = DEFAULT_JOBS,
    progress: ProgressCallback | None = None,
    replace: Iterable[str] = (),
) -> TransferResult:
    """Upload these objects from the local cache to a DVC remote (default: the default one).

    Objects already on the remote are skipped, except those in ``replace`` (copies on the
    remote found damaged: uploaded again over them). Each local object is MD5-checked before
    it is uploaded, so a damaged cache never spreads to the team.

    Returns:
        A :class:`TransferResult`; ``failed`` names objects that could not be uploaded
        (missing or damaged locally, or a transfer error). Nothing is raised for those:
        the caller decides (``adaptvc push`` refuses to push git then).

    Raises:
        RemoteNotFoundError: no such remote / no default remote.
        RemoteError: the remote cannot be reached at all.
    """
    root = Path(root)
    progress = progress if progress is not None else default_progress()
    start = time.perf_counter()
    wanted = sorted(set(md5s))
    store = RemoteStore(root, remote)
    there = store.existing(wanted) - set(replace)
    todo = [m for m in wanted if m not in there]
    cache = DvcCache.for_repo(root)

    def work(md5: str) -> int:
        local = cache.object_path(md5)
        if not local.is_file():
            raise ObjectMissingError(f"not in the local DVC cache ({local})", md5s=(md5,))
        if file_md5(local)[0] != md5:
            raise CorruptObjectError(
                f"the local DVC cache holds a damaged copy ({local})",
                what=f"DVC cache object {md5}",
                path=str(local),
                hint=REPAIR_HINT,
            )
        size = local.stat().st_size
        if progress:
            progress(TransferEvent("start", md5, size))
        store.upload(local, md5, size, _callback(md5, progress))
        return size

    moved, failed = _run_parallel(todo, work, jobs, progress)
    return TransferResult(
        "push",
        store.name,
        tuple(sorted(moved)),
        tuple(sorted(there)),
        failed,
        sum(moved.values()),
        time.perf_counter() - start,
    )


def fetch_objects(
    root: str | os.PathLike[str],
    md5s: Iterable[str],
    *,
    remote: str | None = None,
    jobs: int = DEFAULT_JOBS,
    progress: ProgressCallback | None = None,
    replace: Iterable[str] = (),
) -> TransferResult:
    """Download these objects from a DVC remote into the local cache, MD5-checked.

    Objects already in the cache are skipped, except those in ``replace`` (local copies
    found damaged: a good copy is renamed over them only once it is complete and checked). A download goes to a temporary name next
    to its final place, is hashed, made read-only (as DVC does) and only then renamed:
    an interrupted or corrupt download never looks like a cached object.

    Returns:
        A :class:`TransferResult`; ``failed`` names objects missing on the remote or that
        failed their hash check.

    Raises:
        RemoteNotFoundError: no such remote / no default remote.
        RemoteError: the remote cannot be reached at all.
    """
    root = Path(root)
    progress = progress if progress is not None else default_progress()
    start = time.perf_counter()
    wanted = sorted(set(md5s))
    cache = DvcCache.for_repo(root)
    present = {m for m in wanted if cache.has(m)} - set(replace)
    todo = [m for m in wanted if m not in present]
    if not todo:
        return TransferResult("fetch", remote or "", (), tuple(present), {}, 0, time.perf_counter() - start)
    store = RemoteStore(root, remote)
    on_remote = store.existing(todo)

    def work(md5: str) -> int:
        if md5 not in on_remote:
            raise ObjectMissingError(f"not on DVC remote {store.name!r}", md5s=(md5,))
        return store.fetch_into(cache, md5, progress)

    moved, failed = _run_parallel(todo, work, jobs, progress)
    return TransferResult(
        "fetch",
        store.name,
        tuple(sorted(moved)),
        tuple(sorted(present)),
        failed,
        sum(moved.values()),
        time.perf_counter() - start,
    )


def remote_has(root: str | os.PathLike[str], md5s: Iterable[str], *, remote: str | None = None) -> set[str]:
    """The subset of ``md5s`` the remote holds."""
    return RemoteStore(Path(root), remote).existing(md5s)


# --- checking what a remote holds (adaptvc verify) ---------------------------------------

OK, MISSING, CORRUPT = "ok", "missing", "corrupt"


@dataclass(frozen=True)
class RemoteCheck:
    """What :func:`check_remote_objects` found: per md5, ``(state, detail)`` with state
    ``"ok"``, ``"missing"`` or ``"corrupt"`` (wrong size; with ``deep``, wrong MD5)."""

    remote: str
    states: dict[str, tuple[str, str]] = field(default_factory=dict)
    bytes: int = 0  # downloaded to hash (deep)


def check_remote_objects(
    root: str | os.PathLike[str],
    sizes: Mapping[str, int | None],
    *,
    remote: str | None = None,
    deep: bool = False,
    jobs: int = DEFAULT_JOBS,
    progress: ProgressCallback | None = None,
) -> RemoteCheck:
    """Check that the remote holds each object of ``sizes`` (md5 → expected size, None:
    unknown) with the right size, and with ``deep`` that its bytes hash to its md5 (each
    is downloaded to a temporary file beside the cache's objects, hashed and deleted).

    Raises:
        RemoteNotFoundError: no such remote / no default remote.
        RemoteError: the remote cannot be reached at all.
    """
    root = Path(root)
    progress = progress if progress is not None else default_progress()
    store = RemoteStore(root, remote)
    there = store.existing(sizes)
    states: dict[str, tuple[str, str]] = {
        m: (MISSING, f"not on DVC remote {store.name!r}") for m in sizes if m not in there
    }
    tmp_dir = DvcCache.for_repo(root).path / "files" / "md5"

    def work(md5: str) -> int:
        size = store.fs.size(store.path(md5))
        if sizes[md5] is not None and size != sizes[md5]:
            states[md5] = (CORRUPT, f"{size} bytes on DVC remote {store.name!r}, expected {sizes[md5]}")
            return 0
        if not deep:
            states[md5] = (OK, "")
            return 0
        tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = tmp_dir / f".{_token()}.tmp"
        if progress:
            progress(TransferEvent("start", md5, size or 0))
        try:
            store.download(md5, tmp, _callback(md5, progress))
            actual, got = file_md5(tmp)
        finally:
            tmp.unlink(missing_ok=True)
        states[md5] = (
            (OK, "") if actual == md5 else (CORRUPT, f"the copy on DVC remote {store.name!r} hashes to {actual}")
        )
        return got

    moved, failed = _run_parallel(sorted(there), work, jobs, progress if deep else None)
    if failed:
        md5, exc = next(iter(failed.items()))
        raise _remote_error(store.name, f"check object {md5} on", exc)
    return RemoteCheck(store.name, states, sum(moved.values()))
