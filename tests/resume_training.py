"""A tiny deterministic training run, in its own process, for tests/test_resume.py.

    python -m tests.resume_training straight OUT      # 4 epochs, final adapter to OUT
    python -m tests.resume_training crash MARKER      # versions per epoch with training state;
                                                      # at epoch 3 writes MARKER and waits to be killed
    python -m tests.resume_training resume CKPT OUT   # resumes from CKPT, finishes, adapter to OUT

Runs in the current directory (an adaptvc repository). CPU, one thread, fixed seeds,
deterministic algorithms: two runs that do the same steps give the same weights.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import torch

EPOCHS = 4
VOCAB = 128


def _model():
    from peft import LoraConfig, get_peft_model

    from tests.models import tiny_llama

    torch.manual_seed(0)
    return get_peft_model(tiny_llama(), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))


def _trainer(callbacks, output_dir: str):
    from transformers import Trainer, TrainingArguments

    gen = torch.Generator().manual_seed(0)
    rows = torch.randint(0, VOCAB, (24, 8), generator=gen)
    data = [{"input_ids": r, "labels": r.clone()} for r in rows]
    args = TrainingArguments(
        output_dir=output_dir,
        num_train_epochs=EPOCHS,
        per_device_train_batch_size=8,
        learning_rate=1e-2,
        logging_steps=1,
        save_strategy="epoch",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
        full_determinism=True,
        dataloader_num_workers=0,
    )
    return Trainer(model=_model(), args=args, train_dataset=data, callbacks=callbacks)


class _StopInEpoch3:
    """At the first step of epoch 3 (v2 is committed by then): write the marker and wait
    there to be killed, so the kill lands while epoch 3 is in progress."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __call__(self):
        from transformers import TrainerCallback

        marker = self.marker

        class Stop(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if state.epoch is not None and state.epoch > 2:
                    marker.write_text(str(state.global_step))
                    threading.Event().wait()  # until SIGKILL

        return Stop()


def _save_final(trainer, out: str) -> None:
    from adaptvc.extract import save_adapter

    save_adapter(trainer.model, out)


def main(argv: list[str]) -> None:
    from adaptvc.integrations.transformers import AdaptvcCallback

    torch.set_num_threads(1)
    mode = argv[0]
    if mode == "straight":
        trainer = _trainer([], "straight-out")
        trainer.train()
        _save_final(trainer, argv[1])
    elif mode == "crash":
        callback = AdaptvcCallback("task_a", training_state=True, strict=True)
        trainer = _trainer([callback, _StopInEpoch3(Path(argv[1]))()], "crash-out")
        trainer.train()
    elif mode == "resume":
        callback = AdaptvcCallback("task_a", training_state=True, strict=True)
        trainer = _trainer([callback], "resume-out")
        trainer.train(resume_from_checkpoint=argv[1])
        _save_final(trainer, argv[2])
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
