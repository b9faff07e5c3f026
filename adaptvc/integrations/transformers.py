"""A transformers ``TrainerCallback`` that versions the adapter as training goes.

    from adaptvc.integrations.transformers import AdaptvcCallback

    trainer = Trainer(model=peft_model, args=args, train_dataset=ds,
                      callbacks=[AdaptvcCallback("task_a", repo=".")])
    trainer.train()          # one adaptvc version per epoch, with its metrics

When does a version get its weights and its metrics? The Trainer calls ``on_epoch_end``
*before* it logs the epoch's loss, runs the epoch's evaluation and writes its
checkpoint. So at ``on_epoch_end`` the callback snapshots the adapter's weights (a few
MB, into a temporary directory) and waits: the version is committed at the next
``on_epoch_begin`` or at ``on_train_end``, with every metric logged in between. The
weights are those of the epoch's end even when ``load_best_model_at_end`` swaps the
model before ``on_train_end``. With ``every="save"``, a version is made at each
``on_save`` (after the Trainer's checkpoint), with the metrics logged so far.

With ``training_state=True`` each version also stores the state of the Trainer
checkpoint written at that step (optimizer, scheduler, RNG, ``trainer_state.json``; in
DVC), so a crashed run resumes from any version::

    adaptvc export task_a@v6 resume/ --training-state
    trainer.train(resume_from_checkpoint="resume")

The checkpoint must exist when the version is committed: with ``every="epoch"`` that
means ``save_strategy="epoch"`` (checked when training begins).
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from adaptvc.extract import save_adapter
from adaptvc.refs import parse_ref
from adaptvc.repo import AdapterRepo
from adaptvc.versioning.save import save_version

logger = logging.getLogger(__name__)

# Logged values that describe the run's speed, not the adapter: kept out of the manifest.
_NOT_METRICS = ("total_flos",)
_NOT_METRIC_SUFFIXES = ("_runtime", "_per_second")

DEFAULT_TEMPLATES = {"epoch": "epoch {epoch:g} (step {step})", "save": "checkpoint at step {step} (epoch {epoch:g})"}


@dataclass
class _Pending:
    directory: Path
    epoch: float
    step: int
    checkpoint: Path | None = None  # the Trainer's checkpoint of that step, once written


class AdaptvcCallback(TrainerCallback):
    """Save a version of the model's active adapter at each epoch end or checkpoint.

    Args:
        adapter: the adaptvc adapter name (``task_a``); versions go to ``adapters/<adapter>/``.
        repo: the adaptvc repository (a path inside it).
        every: ``"epoch"`` (a version per epoch end) or ``"save"`` (per Trainer checkpoint).
        message_template: ``str.format`` template with ``{epoch}``, ``{step}`` and any
            logged metric, e.g. ``"epoch {epoch:g}: loss {loss:.3f}"``.
        adapter_name: which of the model's adapters to save (default: the active one).
        strict: re-raise a failed save (stops training). By default a failure is logged
            and training goes on.
        training_state: also store the Trainer checkpoint's state (optimizer, scheduler,
            RNG, trainer state) with each version, for resuming (``adaptvc export REF DIR
            --training-state``). Needs a checkpoint at each version: ``every="save"``, or
            ``save_strategy="epoch"`` with ``every="epoch"``.

    Only the main process saves (``state.is_world_process_zero``). Each saved version
    records the latest logged metrics (loss, eval metrics, learning rate, ...) plus
    ``epoch`` and ``global_step`` (throughput figures such as ``train_runtime`` are
    left out). ``self.versions`` lists what was saved.
    """

    def __init__(
        self,
        adapter: str,
        *,
        repo: str | Path = ".",
        every: str = "epoch",
        message_template: str | None = None,
        adapter_name: str | None = None,
        strict: bool = False,
        training_state: bool = False,
    ) -> None:
        if every not in DEFAULT_TEMPLATES:
            raise ValueError(f"every must be 'epoch' or 'save', not {every!r}")
        parse_ref(adapter)  # validates the name early, before hours of training
        self.adapter = adapter
        self.repo = Path(repo)
        self.every = every
        self.message_template = message_template or DEFAULT_TEMPLATES[every]
        self.adapter_name = adapter_name
        self.strict = strict
        self.training_state = training_state
        self.metrics: dict[str, float] = {}
        self.versions: list[Any] = []
        self._pending: _Pending | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    # -- events ---------------------------------------------------------------------

    def on_train_begin(self, args, state, control, **kwargs):
        self.metrics = {}
        strategy = str(getattr(args.save_strategy, "value", args.save_strategy))
        if self.training_state and self.every == "epoch" and strategy != "epoch":
            raise ValueError(
                "AdaptvcCallback(training_state=True, every='epoch') needs a Trainer checkpoint at each epoch: "
                f"set TrainingArguments(save_strategy='epoch') (it is {strategy!r}), or use every='save'"
            )

    def on_log(self, args, state, control, logs=None, **kwargs):
        for key, value in (logs or {}).items():
            if key in _NOT_METRICS or key.endswith(_NOT_METRIC_SUFFIXES):
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                self.metrics[key] = float(value)

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        if self.every == "epoch" and state.is_world_process_zero:
            self._guard(self._snapshot, model, state)

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._guard(self._flush, state)

    def on_save(self, args, state, control, model=None, **kwargs):
        if self.every == "save" and state.is_world_process_zero:
            self._guard(self._snapshot, model, state)
        if self._pending is not None and self._pending.step == state.global_step:
            self._pending.checkpoint = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if self.every == "save":
            self._guard(self._flush, state)

    def on_train_end(self, args, state, control, **kwargs):
        try:
            self._guard(self._flush, state)
        finally:
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None

    # -- work -----------------------------------------------------------------------

    def _guard(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception:
            self._pending = None
            if self.strict:
                raise
            logger.exception("adaptvc: could not save a version of %s; training goes on", self.adapter)

    def _snapshot(self, model, state) -> None:
        if model is None:
            raise ValueError("the Trainer passed no model to the callback")
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="adaptvc-callback-")
        target = Path(self._tmp.name) / f"step-{state.global_step}"
        if target.exists():
            shutil.rmtree(target)
        save_adapter(_unwrap(model), target, adapter_name=self.adapter_name)
        self._pending = _Pending(target, float(state.epoch or 0.0), int(state.global_step))

    def _flush(self, state) -> None:
        pending, self._pending = self._pending, None
        if pending is None or not state.is_world_process_zero:
            return
        metrics = dict(self.metrics, epoch=pending.epoch, global_step=float(pending.step))
        fields = {**{k.replace("/", "_"): v for k, v in metrics.items()}, "epoch": pending.epoch, "step": pending.step}
        message = self.message_template.format(**fields)
        if self.training_state and pending.checkpoint is None:
            raise ValueError(f"no Trainer checkpoint was written at step {pending.step}: no training state to store")
        # The snapshot taken at the epoch's end, not the live model (which the Trainer may
        # have moved on, or swapped for the best checkpoint, by now).
        version = save_version(
            AdapterRepo.open(self.repo),
            self.adapter,
            message,
            source=pending.directory,
            metrics=metrics,
            training_state=pending.checkpoint if self.training_state else None,
        )
        self.versions.append(version)
        shutil.rmtree(pending.directory, ignore_errors=True)
        logger.info("adaptvc: saved %s", getattr(version, "ref", version))


def _unwrap(model):
    """The model under DDP/compile wrappers (``.module`` / ``._orig_mod``)."""
    for attr in ("module", "_orig_mod"):
        while hasattr(model, attr) and not hasattr(model, "peft_config"):
            model = getattr(model, attr)
    return model
