"""The API for saving a version (loads the adapter readers and, for a live model, the
PEFT writer: only the commands that save need them)."""

from __future__ import annotations

import os
from typing import Any

from adaptvc.manifest import AdapterVersion
from adaptvc.repo import AdapterRepo
from adaptvc.versioning.save import parse_metric as _parse_metric
from adaptvc.versioning.save import save_model, save_version


def save(
    model_or_directory: Any = None,
    *,
    adapter: str,
    message: str,
    repo: str | os.PathLike[str] = ".",
    metrics: dict[str, Any] | None = None,
    parent: str | None = None,
    base_model: str | None = None,
    training_state: str | os.PathLike[str] | None = None,
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
        training_state: a Trainer checkpoint directory whose state (optimizer, scheduler,
            RNG, trainer state) is stored with the version, in DVC (resume with
            ``export(..., training_state=True)``).

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
            r,
            adapter,
            message,
            source=model_or_directory,
            metrics=metrics,
            parent=parent,
            base_model=base_model,
            training_state=training_state,
        )
    return save_model(
        r,
        model_or_directory,
        adapter=adapter,
        message=message,
        metrics=metrics,
        parent=parent,
        base_model=base_model,
        training_state=training_state,
    )


def parse_metric(text: str) -> tuple[str, Any]:
    """``"eval_loss=1.92"`` → ``("eval_loss", 1.92)`` (``--metric``); non-numbers stay strings.

    See :func:`adaptvc.versioning.save.parse_metric`.
    """
    return _parse_metric(text)
