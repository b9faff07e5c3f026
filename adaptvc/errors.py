"""The one error hierarchy of adaptvc.

Every error adaptvc raises on purpose derives from :class:`AdaptvcError`, carries a
one-line ``message`` and, when there is an obvious next step, a ``hint`` (usually the
command to run). Subclasses also derive from the matching built-in exception, so
``except LookupError`` works for callers who do not know adaptvc's classes.

The CLI renders these in exactly one place (``adaptvc.cli.main``); library code never
prints them.
"""

from __future__ import annotations


class AdaptvcError(Exception):
    """Base class: ``message`` says what went wrong, ``hint`` what to do about it."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:  # keep str(err) to the message; the hint is rendered apart
        return self.message


class NotARepositoryError(AdaptvcError, FileNotFoundError):
    """The path is not inside a git repository, or adaptvc is not initialised there."""


class InvalidAdapterError(AdaptvcError, ValueError):
    """Adapter files that cannot be read: truncated, malformed, or not an adapter at all."""

    def __init__(self, message: str, *, path: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.path = path


class UnsafeFileError(InvalidAdapterError):
    """A legacy pickle (``adapter_model.bin``) that would run code when loaded."""


class AdapterNotFoundError(AdaptvcError, LookupError):
    """No adapter of that name in the repository (or no adapter in a model)."""

    def __init__(self, message: str, *, name: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.name = name


class VersionNotFoundError(AdaptvcError, LookupError):
    """The adapter exists but the ref names no version of it."""

    def __init__(
        self, message: str, *, name: str | None = None, version: str | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.name = name
        self.version = version


class InvalidRefError(AdaptvcError, ValueError):
    """A ref or adapter name that does not parse."""


class AmbiguousRefError(AdaptvcError, LookupError):
    """A ref that names several versions with different content (e.g. the same ``vN``
    minted on two merged branches); ``.candidates`` lists the refs that are unique."""

    def __init__(self, message: str, *, candidates: list[str] | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.candidates = list(candidates or [])


class AmbiguousAdapterError(AdaptvcError, ValueError):
    """Several adapters could be meant (e.g. several active adapters and no name given)."""


class BaseModelMismatchError(AdaptvcError, ValueError):
    """Two adapters (or an adapter and a model) were trained on different base models."""


class DirtyWorkspaceError(AdaptvcError, RuntimeError):
    """An operation would overwrite unsaved changes."""


class GitError(AdaptvcError, RuntimeError):
    """A git command failed; the message carries git's own words (``LC_ALL=C``)."""

    def __init__(
        self,
        message: str,
        *,
        command: str = "",
        returncode: int | None = None,
        stderr: str = "",
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.command = command
        self.returncode = returncode
        self.stderr = stderr


class LockTimeoutError(AdaptvcError, TimeoutError):
    """Another adaptvc process held the repository lock for too long."""


class RemoteError(AdaptvcError, ConnectionError):
    """A DVC or git remote could not be reached, or a transfer failed."""


class RemoteNotFoundError(RemoteError, LookupError):
    """No DVC remote of that name, or none is the default."""


class CredentialInTeamConfigError(AdaptvcError, ValueError):
    """A secret was about to be written to the committed ``.dvc/config``."""


class ObjectMissingError(RemoteError, LookupError):
    """Weights (DVC objects) that are neither in the local cache nor on the remote."""

    def __init__(self, message: str, *, md5s: tuple[str, ...] = (), hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.md5s = tuple(md5s)


class CorruptObjectError(AdaptvcError, ValueError):
    """Stored bytes that no longer hash to their id: a DVC cache object, or a config blob
    that does not match its manifest record. ``what`` names it, ``path`` says where."""

    def __init__(self, message: str, *, what: str, path: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.what = what
        self.path = path


class DestinationNotEmptyError(AdaptvcError, FileExistsError):
    """A directory to write into (``export``, ``clone``) already holds files that would be
    overwritten; ``path`` is that directory."""

    def __init__(self, message: str, *, path: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.path = path


class NotADirectoryPathError(AdaptvcError, NotADirectoryError):
    """A path that must be a directory (to write an adapter into) is a file."""

    def __init__(self, message: str, *, path: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.path = path


class MissingDependencyError(AdaptvcError, ImportError):
    """An optional dependency (torch, peft, matplotlib, dvc-s3...) is not installed."""

    def __init__(self, package: str, *, extra: str | None = None, purpose: str | None = None) -> None:
        what = f" (needed for {purpose})" if purpose else ""
        hint = f"pip install 'adaptvc[{extra}]'" if extra else f"pip install {package}"
        super().__init__(f"{package} is not installed{what}", hint=hint)
        self.package = package


# --- team sharing: DVC remotes, transfers, clone, git hooks ---------------------------------


class DvcConfigError(AdaptvcError, ValueError):
    """A DVC config file (``.dvc/config``, ``config.local``, the global one) that cannot
    be parsed; ``path`` names it."""

    def __init__(self, message: str, *, path: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.path = path


class InvalidRemoteNameError(AdaptvcError, ValueError):
    """A DVC remote name adaptvc refuses (letters, digits, ``_-.`` only)."""

    def __init__(self, message: str, *, name: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.name = name


class RemoteExistsError(AdaptvcError, FileExistsError):
    """``remote add`` of a name that is already a remote (without ``force``)."""

    def __init__(self, message: str, *, name: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.name = name


class InvalidRemoteOptionError(AdaptvcError, ValueError):
    """An option DVC does not know for this kind of remote (``scheme``: ``s3``, ``ssh``,
    ``""`` for a local directory)."""

    def __init__(self, message: str, *, key: str, scheme: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.key = key
        self.scheme = scheme


class PersonalRemoteError(AdaptvcError, ValueError):
    """A team (committed) setting naming a remote that only a personal DVC config
    defines (``level``: ``local``, ``global``, ``system``): teammates would not have it."""

    def __init__(self, message: str, *, name: str, level: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.name = name
        self.level = level


class TransferError(RemoteError):
    """One object's upload or download failed (``md5``; ``remote``: the DVC remote).
    Failures that are not adaptvc's own errors (a network or filesystem exception) are
    wrapped in it, the original as ``__cause__``."""

    def __init__(self, message: str, *, md5: str, remote: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.md5 = md5
        self.remote = remote


class RemoteAccessError(RemoteError):
    """A DVC remote that cannot be opened or reached (misconfigured, network, permissions);
    ``remote`` names it."""

    def __init__(self, message: str, *, remote: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.remote = remote


class DetachedHeadError(RemoteError):
    """``push``/``pull`` with HEAD detached: there is no branch to push or pull."""

    def __init__(self, message: str, *, command: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.command = command


class GitRemoteError(RemoteError):
    """``git push``, ``git pull`` or ``git clone`` failed (``stderr``: git's own words, in
    English: git runs under ``LC_ALL=C``). ``rejected``: git refused because the other
    side has commits this clone lacks (push: behind; pull: the branches diverged)."""

    def __init__(
        self,
        message: str,
        *,
        command: str,
        remote: str,
        stderr: str = "",
        rejected: bool = False,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.command = command
        self.remote = remote
        self.stderr = stderr
        self.rejected = rejected


class HookInstallError(AdaptvcError, RuntimeError):
    """adaptvc's git hooks cannot be installed at ``path`` (e.g. the user's hook and a
    ``NAME.pre-adaptvc`` both exist, or the interpreter path cannot go in a script)."""

    def __init__(self, message: str, *, path: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.path = path


class UnknownHookError(AdaptvcError, LookupError):
    """``adaptvc hooks run NAME`` with a NAME adaptvc has no hook for."""

    def __init__(self, message: str, *, name: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.name = name


# --- the operating system's refusals, as the CLI reports them -----------------------------


class FileSystemError(AdaptvcError, OSError):
    """The operating system refused a file operation for a reason the user can act on
    (a full disk, a permission, a read-only mount). ``errno`` and ``path`` are the
    original ``OSError``'s."""

    def __init__(self, message: str, *, errno: int, path: str | None = None, hint: str | None = None) -> None:
        AdaptvcError.__init__(self, message, hint=hint)
        self.errno = errno
        self.path = path


class DiskFullError(FileSystemError):
    """No space left on the device (or the quota is used up)."""


class PermissionDeniedError(FileSystemError):
    """A file or directory adaptvc must write or read is not permitted to it."""


def from_os_error(exc: OSError) -> FileSystemError | None:
    """The typed error for an ``OSError`` a user can act on, or None for the rest."""
    import errno as codes

    path = exc.filename if isinstance(exc.filename, str) else None
    where = f": {path}" if path else ""
    if exc.errno in (codes.ENOSPC, codes.EDQUOT):
        return DiskFullError(
            f"no space left on device{where}",
            errno=exc.errno,
            path=path,
            hint="free space on the disk that holds the repository and its DVC cache (`df -h .` shows it), then run the command again",
        )
    if exc.errno in (codes.EACCES, codes.EPERM):
        return PermissionDeniedError(
            f"permission denied{where}",
            errno=exc.errno,
            path=path,
            hint="check the owner and mode of that path (`ls -ld`), or run as the user who owns the repository",
        )
    if exc.errno == codes.EROFS:
        return FileSystemError(
            f"read-only file system{where}",
            errno=exc.errno,
            path=path,
            hint="run the command where the repository's disk is mounted read-write",
        )
    return None


# --- storage life: gc, du, retention ---------------------------------------------------------


class VersionPrunedError(ObjectMissingError):
    """The weights of a version were pruned by ``adaptvc gc`` (removed from the DVC remote
    and the caches): ``ref``, and ``pruned_at``, ``by`` and ``policy`` from the manifest's
    prune record. Its config, metrics and lineage stay readable (``adaptvc show``)."""

    def __init__(
        self,
        message: str,
        *,
        ref: str,
        pruned_at: str,
        by: str,
        policy: str,
        md5s: tuple[str, ...] = (),
        hint: str | None = None,
    ) -> None:
        super().__init__(message, md5s=md5s, hint=hint)
        self.ref = ref
        self.pruned_at = pruned_at
        self.by = by
        self.policy = policy


class InvalidRetentionError(AdaptvcError, ValueError):
    """A retention setting that does not parse: a duration such as ``"14x"``, a negative
    ``keep_last``, an unknown key in ``[gc]`` of ``.adaptvc/config.toml``. ``setting``
    names it (``--older-than``, ``gc.keep_last``), ``value`` is what was given."""

    def __init__(self, message: str, *, setting: str, value: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.setting = setting
        self.value = value


class NoRetentionPolicyError(AdaptvcError, ValueError):
    """``adaptvc gc`` with neither ``--keep-last`` nor ``--older-than`` and no ``[gc]``
    policy in ``.adaptvc/config.toml``: it does not guess what the team wants gone."""


# --- integrity: adaptvc verify ---------------------------------------------------------------


class VerificationFailedError(AdaptvcError, RuntimeError):
    """``adaptvc verify`` found objects (or workspace weights) that stay missing or
    damaged after any repair; ``broken`` counts them. Raised by the CLI after the report,
    so that the command exits 1; :func:`adaptvc.verify` itself returns the report."""

    def __init__(self, message: str, *, broken: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.broken = broken


# --- compare, best, report --------------------------------------------------------------


class MetricNotFoundError(AdaptvcError, LookupError):
    """``adaptvc best``: no version of ``adapter`` records ``metric`` as a number;
    ``known`` lists the metrics that are recorded."""

    def __init__(
        self, message: str, *, metric: str, adapter: str, known: tuple[str, ...] = (), hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.metric = metric
        self.adapter = adapter
        self.known = known


class UnknownColumnError(AdaptvcError, LookupError):
    """``adaptvc compare --sort NAME`` with a NAME that is no column of the table."""

    def __init__(self, message: str, *, column: str, columns: tuple[str, ...] = (), hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.column = column
        self.columns = columns


# --- companion files and training state ---------------------------------------------


class TrainingStateMissingError(AdaptvcError, LookupError):
    """A version asked for its training state (``export --training-state``) has none."""

    def __init__(self, message: str, *, ref: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.ref = ref


# --- strict validation of adapter files ------------------------------------------------------


class MalformedSafetensorsError(InvalidAdapterError):
    """A safetensors file the official loader would refuse (header length, JSON, dtypes,
    shapes, offsets that overlap, leave gaps or run past the data); ``tensor`` names the
    entry at fault when there is one."""

    def __init__(self, message: str, *, path: str, tensor: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, path=path, hint=hint)
        self.tensor = tensor


class NotARegularFileError(InvalidAdapterError):
    """An adapter file that is a symbolic link, a FIFO, a device, a socket or a directory:
    adaptvc reads none of them (``kind``), nor follows a link (``target``: where it points)."""

    def __init__(
        self, message: str, *, path: str, kind: str, target: str | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, path=path, hint=hint)
        self.kind = kind
        self.target = target


class UnsafePickleError(UnsafeFileError):
    """A legacy pickle that imports something other than tensors and containers: loading
    it would run code. ``imports`` lists what it tried to import (``module.name``)."""

    def __init__(self, message: str, *, path: str, imports: tuple[str, ...], hint: str | None = None) -> None:
        super().__init__(message, path=path, hint=hint)
        self.imports = tuple(imports)


class EmptyTensorError(InvalidAdapterError):
    """Tensors with zero elements (``tensors``): what saving an un-gathered DeepSpeed
    ZeRO-3 or FSDP model writes (each rank holds only a shard)."""

    def __init__(self, message: str, *, path: str, tensors: tuple[str, ...], hint: str | None = None) -> None:
        super().__init__(message, path=path, hint=hint)
        self.tensors = tuple(tensors)


class ConfigWeightsMismatchError(InvalidAdapterError):
    """``adapter_config.json`` and the weights disagree so that PEFT could not load them: a
    rank other than ``r``/``rank_pattern``, half of an A/B pair, a DoRA magnitude missing,
    or a module ``target_modules`` does not match. ``module`` names it."""

    def __init__(self, message: str, *, path: str, module: str, hint: str | None = None) -> None:
        super().__init__(message, path=path, hint=hint)
        self.module = module


class GitOperationInProgressError(AdaptvcError, RuntimeError):
    """A git merge, cherry-pick or revert stopped half-way (``operation``): a version
    committed now would land in the middle of it."""

    def __init__(self, message: str, *, operation: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.operation = operation


# --- adapter algebra: merge and compress ------------------------------------------------


class NotMergeableError(AdaptvcError, ValueError):
    """An input of ``merge``/``compress`` that adapter algebra cannot combine exactly
    (``label``: the ref or directory; ``reason``: ``"peft_type"`` for non-LoRA types,
    ``"dora"``, or ``"tensors"`` for tensors that are not LoRA factors, such as
    ``modules_to_save`` copies or LoRA biases)."""

    def __init__(self, message: str, *, label: str, reason: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.label = label
        self.reason = reason


class IncompatibleAdaptersError(AdaptvcError, ValueError):
    """Two inputs adapt ``module`` with updates of different shapes (``shapes``: label →
    shape): they were not trained on the same architecture."""

    def __init__(
        self, message: str, *, module: str, shapes: dict[str, tuple[int, ...]], hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.module = module
        self.shapes = shapes


class InvalidAlgebraArgumentError(AdaptvcError, ValueError):
    """A bad argument to ``merge``/``compress`` (``argument``: which one, e.g.
    ``"weights"``, ``"rank"``, ``"energy"``, ``"method"``)."""

    def __init__(self, message: str, *, argument: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.argument = argument
