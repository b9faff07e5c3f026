"""The public Python API. The CLI calls only these functions.

Every function takes its subject first and the rest keyword-only, opens the repository
(the one place that does), calls the operation and returns values (frozen dataclasses,
paths); it never prints. Heavy libraries (torch, peft, ``dvc.repo``, numpy for the diff)
are imported inside the functions that need them, so that ``import adaptvc`` and the
commands that need none of them stay fast.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from adaptvc.errors import AdaptvcError
from adaptvc.formats.adapter_dir import AdapterInfo, inspect_adapter
from adaptvc.manifest import AdapterVersion
from adaptvc.repo import CONFIG_FILE, AdapterRepo

# The operations every versioning command needs are imported above. Those of the other
# concerns are imported inside their functions, because of what they bring along and
# every versioning command would then pay for (measured whole-process on `adaptvc
# status`: +15 ms, 17%, with all of them at the top): sharing (transfers: fsspec/DVC
# filesystems), hooks (install: importlib.resources, sysconfig; actions: sharing),
# extract and legacy_bin (the PEFT writer; torch when they run), and adapter_diff (numpy).
from adaptvc.versioning.checkout import checkout_version, export_version, resolve_directory
from adaptvc.versioning.history import log_versions, set_alias, show_version
from adaptvc.versioning.history import status as adapter_statuses
from adaptvc.versioning.init_repo import InitResult, init_repo
from adaptvc.versioning.save import parse_metric as _parse_metric
from adaptvc.versioning.save import save_model, save_version
from adaptvc.versioning.workspace import AdapterStatus

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from adaptvc.adapter_diff.result import DiffResult
    from adaptvc.hooks import HookStatus
    from adaptvc.hooks.actions import HookOutcome
    from adaptvc.sharing.clone import CloneResult
    from adaptvc.sharing.pull import PullResult
    from adaptvc.sharing.push import PushResult
    from adaptvc.storage.remotes import RemoteInfo

_log = logging.getLogger("adaptvc")

# The public API; ``adaptvc.<name>`` resolves these lazily (see adaptvc/__init__.py).
# Keep one section per concern below and add each new function's name here.
__all__ = [
    # adapter files
    "inspect",
    "convert",
    # live models
    "get_adapter_state_dict",
    "save_adapter",
    # team sharing: DVC remotes, push/pull/clone, git hooks
    "remote_add",
    "remote_list",
    "remote_modify",
    "remote_remove",
    "remote_default",
    "push",
    "pull",
    "clone",
    "hooks_install",
    "hooks_uninstall",
    "hooks_status",
    # diff
    "diff",
    # versioning: git + DVC + the manifest
    "init",
    "save",
    "resolve",
    "log",
    "show",
    "status",
    "checkout",
    "export",
    "alias",
]


# --- reading adapter files (no torch) -------------------------------------------------


def inspect(directory: str | os.PathLike[str]) -> AdapterInfo:
    """Summarise an adapter directory (PEFT type, rank, targets, sizes) without torch.

    See :func:`adaptvc.formats.adapter_dir.inspect_adapter`.
    """
    return inspect_adapter(directory)


def convert(directory: str | os.PathLike[str], *, keep_bin: bool = False) -> Path:
    """Turn a legacy ``adapter_model.bin`` into ``adapter_model.safetensors`` (needs torch).

    See :func:`adaptvc.formats.legacy_bin.convert`.
    """
    from adaptvc.formats import legacy_bin  # torch, when it runs

    return legacy_bin.convert(directory, keep_bin=keep_bin)


# --- live models (torch) ----------------------------------------------------------------


def get_adapter_state_dict(
    model: Any, adapter_name: str | None = None, *, save_embedding_layers: bool | Literal["auto"] = False
) -> dict[str, torch.Tensor]:
    """Only the adapter's tensors of a live model, keyed exactly as PEFT saves them.

    See :func:`adaptvc.extract.get_adapter_state_dict`.
    """
    from adaptvc import extract  # torch and peft, when it runs

    return extract.get_adapter_state_dict(model, adapter_name=adapter_name, save_embedding_layers=save_embedding_layers)


def save_adapter(
    model: Any,
    save_directory: str | os.PathLike[str],
    *,
    adapter_name: str | None = None,
    safe_serialization: bool = True,
    save_embedding_layers: bool | Literal["auto"] = False,
) -> Path:
    """Write one adapter of a live model in PEFT format into ``save_directory``.

    See :func:`adaptvc.extract.save_adapter`.
    """
    from adaptvc import extract  # torch and peft, when it runs

    return extract.save_adapter(
        model,
        save_directory,
        adapter_name=adapter_name,
        safe_serialization=safe_serialization,
        save_embedding_layers=save_embedding_layers,
    )


# --- team sharing: DVC remotes, push / pull / clone, git hooks --------------------------


def remote_add(
    name: str,
    url: str,
    *,
    repo: str | os.PathLike[str] = ".",
    default: bool = False,
    local: bool = False,
    force: bool = False,
) -> RemoteInfo:
    """Add a DVC remote (team config, committed; ``local=True`` for a personal one).

    See :func:`adaptvc.sharing.remotes.add_remote`.
    """
    from adaptvc.sharing.remotes import add_remote

    return add_remote(AdapterRepo.open(repo), name, url, default=default, local=local, force=force)


def remote_list(*, repo: str | os.PathLike[str] = ".") -> list[RemoteInfo]:
    """The DVC remotes, all config levels merged, secrets masked.

    See :func:`adaptvc.storage.remotes.list_remotes`.
    """
    from adaptvc.storage.remotes import list_remotes

    return list_remotes(AdapterRepo.open(repo).root)


def remote_modify(
    name: str,
    key: str,
    value: str | None,
    *,
    repo: str | os.PathLike[str] = ".",
    local: bool = False,
    global_: bool = False,
) -> RemoteInfo | None:
    """Set (``value=None``: unset) one option of a remote; credentials need ``local=True``
    (this clone) or ``global_=True`` (your DVC global config, every clone).

    See :func:`adaptvc.sharing.remotes.modify_remote` (``global_``:
    :func:`~adaptvc.sharing.remotes.modify_global_remote`, which needs no repository and
    returns None).
    """
    from adaptvc.sharing.remotes import modify_global_remote, modify_remote

    if global_:
        modify_global_remote(name, key, value)
        return None
    return modify_remote(AdapterRepo.open(repo), name, key, value, local=local)


def remote_remove(name: str, *, repo: str | os.PathLike[str] = ".") -> None:
    """Remove a DVC remote from the team and personal config.

    See :func:`adaptvc.sharing.remotes.remove_remote`.
    """
    from adaptvc.sharing.remotes import remove_remote

    remove_remote(AdapterRepo.open(repo), name)


def remote_default(name: str | None, *, repo: str | os.PathLike[str] = ".", local: bool = False) -> RemoteInfo | None:
    """Make an existing DVC remote the default (committed: ``.dvc/config`` alone);
    ``None`` clears it; ``local=True`` sets a personal default in ``.dvc/config.local``.

    Example:
        >>> adaptvc.remote_default("storage")  # doctest: +SKIP

    See :func:`adaptvc.sharing.remotes.set_default_remote`.
    """
    from adaptvc.sharing.remotes import set_default_remote

    return set_default_remote(AdapterRepo.open(repo), name, local=local)


# --- diff (numpy, no torch, no base model) ----------------------------------------------


def diff(
    a: str | os.PathLike[str],
    b: str | os.PathLike[str] | None = None,
    *,
    repo: str | os.PathLike[str] = ".",
    force: bool = False,
) -> DiffResult:
    """Compare two adapters layer by layer, without the base model.

    Compares the effective LoRA updates ``ΔW = s·B·A`` (never the raw factors, which are
    only defined up to ``B·M, M⁻¹·A``) from r×r products in float64, streaming the
    memory-mapped weights module by module; other tensors (``modules_to_save``, biases,
    DoRA magnitudes, non-LoRA PEFT types) elementwise. See docs/diff.md.

    Args:
        a: a ref (``task_a@v2``) or a directory in PEFT format.
        b: the same; default: the workspace (unsaved) state of ``a``'s adapter.
        repo: the repository refs are resolved in.
        force: compare even when the base models differ.

    Returns:
        A :class:`~adaptvc.adapter_diff.result.DiffResult`: ``config`` changes, per-module
        ``modules`` (norms, distance, relative change, cosine), elementwise ``tensors``,
        ``summary`` (totals, added/removed/reshaped, base-model check); ``.top(n)``,
        ``.to_dict()`` (the ``--json`` document) and ``.plot(path)``.

    Raises:
        BaseModelMismatchError: recorded base models differ and ``force`` is False.
        InvalidAdapterError: unreadable or inconsistent adapter files.
        InvalidRefError, AdapterNotFoundError, VersionNotFoundError: a bad ref.

    Example:
        >>> r = adaptvc.diff("task_a@v2", "task_a@v3")          # doctest: +SKIP
        >>> [(m.module, round(m.relative, 3)) for m in r.top(3)]  # doctest: +SKIP
    """
    from adaptvc.adapter_diff import diff_adapters  # numpy: only when a diff runs

    return diff_adapters(a, b, repo=repo, force=force)


# --- versioning: git + DVC + the manifest (no torch unless a live model is saved) -------


def init(path: str | os.PathLike[str] = ".") -> InitResult:
    """Set up adaptvc in an existing git repository: DVC (if absent), ``.adaptvc/config.toml``,
    merge rules in ``.gitattributes`` (committed) and the merge driver (per clone).

    Idempotent: a second run changes nothing (``result.changes == ()``).

    Raises:
        NotARepositoryError: ``path`` is not in a git repository (hint ``git init``).

    Example:
        >>> adaptvc.init(".").changes                                # doctest: +SKIP
        ('initialised DVC (.dvc/)', 'wrote .adaptvc/config.toml', ...)
    """
    from adaptvc.hooks import ensure_installed as ensure_hooks_installed

    result = init_repo(path)
    # Per clone too: git hooks that keep weights in step with git (adaptvc/hooks/).
    return replace(result, changes=result.changes + tuple(ensure_hooks_installed(result.root)))


def save(
    model_or_directory: Any = None,
    *,
    adapter: str,
    message: str,
    repo: str | os.PathLike[str] = ".",
    metrics: dict[str, Any] | None = None,
    parent: str | None = None,
    base_model: str | None = None,
) -> AdapterVersion:
    """Save a version of ``adapter``: weights to DVC, config + pointer + manifest to git,
    one commit touching only the adapter's files, an annotated tag ``NAME@vN``.

    Args:
        model_or_directory: ``None`` (the adapter's own directory ``adapters/NAME``), a
            directory in PEFT format (a training output; a folder with ``<name>/``
            subfolders picks ``adapter``'s), or a live PEFT/transformers model (saved
            through :func:`save_adapter` first; needs torch).
        adapter: the adapter's name in the repository.
        message: what this version is.
        repo: a path inside the repository.
        metrics: e.g. ``{"eval_loss": 1.92}``.
        parent: a ref to record as parent instead of the version the workspace is at.
        base_model: overrides the config's ``base_model_name_or_path`` in the base-model link.

    Returns:
        The :class:`~adaptvc.manifest.AdapterVersion`; ``.new`` is False when the content
        was identical to the version the workspace is at (nothing was created).

    Raises:
        InvalidAdapterError: missing/bad files, weights holding base-model tensors.
        NotARepositoryError: not a git repository or adaptvc not initialised.
        LockTimeoutError: another adaptvc process held the lock too long.

    Example:
        >>> adaptvc.save("outputs/checkpoint-500", adapter="task_a", message="epoch 3",
        ...              metrics={"eval_loss": 1.92}).ref                # doctest: +SKIP
        'task_a@v3'
    """
    r = AdapterRepo.open(repo)
    if model_or_directory is None or isinstance(model_or_directory, (str, os.PathLike)):
        return save_version(
            r, adapter, message, source=model_or_directory, metrics=metrics, parent=parent, base_model=base_model
        )
    return save_model(
        r, model_or_directory, adapter=adapter, message=message, metrics=metrics, parent=parent, base_model=base_model
    )


def resolve(ref: str, *, repo: str | os.PathLike[str] = ".") -> Path:
    """A directory holding ``ref``'s files that ``PeftModel.from_pretrained`` loads, for any
    version, without touching the workspace (built once per clone under ``.git/adaptvc/``).

    Raises:
        InvalidRefError, AdapterNotFoundError, VersionNotFoundError, AmbiguousRefError.
        ObjectMissingError: the weights are not in the local cache (hint ``adaptvc pull``).

    Example:
        >>> PeftModel.from_pretrained(base, adaptvc.resolve("task_a@v2"))   # doctest: +SKIP
    """
    return resolve_directory(AdapterRepo.open(repo), ref)


def log(adapter: str | None = None, *, repo: str | os.PathLike[str] = ".") -> list[AdapterVersion]:
    """Versions newest first (all adapters, grouped by adapter, when ``adapter`` is None).

    Example:
        >>> [v.ref for v in adaptvc.log("task_a")]                       # doctest: +SKIP
        ['task_a@v3', 'task_a@v2', 'task_a@v1']
    """
    return log_versions(AdapterRepo.open(repo), adapter)


def show(ref: str, *, repo: str | os.PathLike[str] = ".") -> AdapterVersion:
    """One version in full (``commit`` filled in). Raises as :func:`resolve`."""
    return show_version(AdapterRepo.open(repo), ref)


def status(*, repo: str | os.PathLike[str] = ".") -> list[AdapterStatus]:
    """Per adapter: the version its directory is at and ``state`` (``clean``, ``modified``,
    ``weights missing``, ``never saved``)."""
    return adapter_statuses(AdapterRepo.open(repo))


def checkout(ref: str, *, repo: str | os.PathLike[str] = ".", force: bool = False) -> AdapterVersion:
    """Put ``ref``'s files into the adapter's directory (config from git, weights from the
    DVC cache, hash-checked) without moving HEAD; the next save records it as parent.

    Raises:
        DirtyWorkspaceError: unsaved changes in the directory and not ``force``.
        ObjectMissingError: weights not in the local cache (hint ``adaptvc pull``).
    """
    return checkout_version(AdapterRepo.open(repo), ref, force=force)


def export(
    ref: str, directory: str | os.PathLike[str], *, repo: str | os.PathLike[str] = ".", force: bool = False
) -> Path:
    """Write ``ref``'s ``adapter_config.json`` and ``adapter_model.safetensors`` into ``directory``."""
    return export_version(AdapterRepo.open(repo), ref, directory, force=force)


def alias(ref: str, name: str, *, repo: str | os.PathLike[str] = ".") -> AdapterVersion:
    """Point ``ADAPTER@name`` (e.g. ``task_a@production``) at ``ref``'s version; the move is
    recorded as a git commit of ``adapters/ADAPTER/aliases.jsonl``."""
    return set_alias(AdapterRepo.open(repo), ref, name)


def push(
    refs: list[str] | tuple[str, ...] = (),
    *,
    repo: str | os.PathLike[str] = ".",
    remote: str | None = None,
    git_remote: str | None = "origin",
    jobs: int | None = None,
) -> PushResult:
    """Upload the weights to the DVC remote, then push branch + version tags to git.

    A failed upload raises and pushes nothing to git. See :func:`adaptvc.sharing.push.push`.

    Example:
        >>> adaptvc.push()                      # every version of this commit, then origin  # doctest: +SKIP
    """
    from adaptvc.sharing.push import push as push_versions

    return push_versions(AdapterRepo.open(repo), tuple(refs), remote=remote, git_remote=git_remote, jobs=jobs)


def pull(
    *, repo: str | os.PathLike[str] = ".", remote: str | None = None, git_remote: str | None = "origin"
) -> PullResult:
    """Fast-forward from git, then fetch the weights the workspace needs.

    Problems with single versions are warnings on the ``adaptvc`` logger.
    See :func:`adaptvc.sharing.pull.pull`.
    """
    from adaptvc.sharing.pull import pull as pull_from

    return pull_from(AdapterRepo.open(repo), remote=remote, git_remote=git_remote)


def clone(
    url: str, directory: str | os.PathLike[str] | None = None, *, remote: str | None = None, hooks: bool = True
) -> CloneResult:
    """git clone + per-clone set-up + the weights of the newest version of every adapter.

    The per-clone set-up is what git does not carry over a clone: ``adaptvc init``'s part
    in ``.git/config`` (the merge driver; it commits nothing in an initialised clone)
    and, with ``hooks``, the git hooks. Weights that could not be fetched, and a set-up
    step that failed, are warnings on the ``adaptvc`` logger, not errors: the clone is
    usable and ``adaptvc pull`` retries. See :mod:`adaptvc.sharing.clone`.

    Raises:
        DestinationNotEmptyError: ``directory`` exists and is not an empty directory.
        GitRemoteError: git clone failed.
    """
    from adaptvc.hooks import install as install_hooks
    from adaptvc.sharing.clone import CloneResult, clone_git, fetch_newest, unborn_note

    path = clone_git(url, directory)
    if (path / CONFIG_FILE).is_file():  # idempotent: commits nothing in an initialised clone
        try:
            init_repo(path)
        except AdaptvcError as exc:
            _log.warning("per-clone set-up (adaptvc init) failed: %s", exc.message)
    if hooks:
        try:
            install_hooks(path)
        except AdaptvcError as exc:
            _log.warning("git hooks not installed: %s", exc.message)
    note = unborn_note(path, url)
    if note is not None:
        _log.warning("%s", note)
        return CloneResult(path)
    try:
        r = AdapterRepo.open(path)
    except AdaptvcError as exc:
        _log.warning("not an adaptvc repository: %s", exc.message)
        return CloneResult(path)
    return CloneResult(path, fetch_newest(r, remote=remote))


def hooks_install(*, repo: str | os.PathLike[str] = ".") -> list[HookStatus]:
    """Install adaptvc's git hooks, keeping and chaining existing ones. See :mod:`adaptvc.hooks`."""
    from adaptvc.hooks import install as install_hooks

    return install_hooks(AdapterRepo.open(repo, require_init=False).root)


def hooks_uninstall(*, repo: str | os.PathLike[str] = ".") -> list[HookStatus]:
    """Remove adaptvc's git hooks and restore the hooks they replaced."""
    from adaptvc.hooks import uninstall as uninstall_hooks

    return uninstall_hooks(AdapterRepo.open(repo, require_init=False).root)


def hooks_status(*, repo: str | os.PathLike[str] = ".") -> list[HookStatus]:
    """The state of each of adaptvc's git hooks."""
    from adaptvc.hooks import status as hooks_state

    return hooks_state(AdapterRepo.open(repo, require_init=False).root)


# --- for the CLI: what its commands need beyond the functions above ---------------------
# (Not in __all__: the command line's plumbing, not public API.)


def parse_metric(text: str) -> tuple[str, Any]:
    """``"eval_loss=1.92"`` → ``("eval_loss", 1.92)`` (``--metric``); non-numbers stay strings.

    See :func:`adaptvc.versioning.save.parse_metric`.
    """
    return _parse_metric(text)


def hooks_run(
    name: str, args: list[str] | tuple[str, ...], *, repo: str | os.PathLike[str] = ".", stdin: str = ""
) -> HookOutcome:
    """Run one git hook (``adaptvc hooks run NAME ARGS...``, called by the hook scripts
    with git's arguments and, for pre-push and post-rewrite, git's stdin).

    See :func:`adaptvc.hooks.actions.run`.
    """
    from adaptvc.hooks.actions import run as run_hook

    # Opened whether or not adaptvc is initialised: pre-commit guards any repository.
    return run_hook(name, list(args), AdapterRepo.open(repo, require_init=False), stdin=stdin)
