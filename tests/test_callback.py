"""AdaptvcCallback with a real transformers Trainer on a tiny model."""

from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import run_cli
from tests.models import tiny_llama

VOCAB = 128


def _dataset(n: int = 32):
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, VOCAB, (n, 8), generator=gen)
    return [{"input_ids": row, "labels": row.clone()} for row in ids]


def _trainer(model, tmp_path, callbacks, *, epochs=2, eval_dataset=None, **kwargs):
    from transformers import Trainer, TrainingArguments

    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        num_train_epochs=epochs,
        per_device_train_batch_size=8,
        learning_rate=1e-2,
        logging_steps=2,
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
        eval_strategy="epoch" if eval_dataset is not None else "no",
        **kwargs,
    )
    return Trainer(model=model, args=args, train_dataset=_dataset(), eval_dataset=eval_dataset, callbacks=callbacks)


@pytest.fixture
def adaptvc_repo(git_repo):
    run_cli("init", cwd=git_repo.working_dir, check=True)
    return git_repo


def _peft_model():
    from peft import LoraConfig, get_peft_model

    return get_peft_model(tiny_llama(), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))


def test_two_epochs_make_two_versions_with_metrics(adaptvc_repo, tmp_path):
    from adaptvc.integrations.transformers import AdaptvcCallback

    root = adaptvc_repo.working_dir
    weights_at_epoch_end = {}

    from transformers import TrainerCallback

    class Remember(TrainerCallback):
        def on_epoch_end(self, args, state, control, model=None, **kwargs):
            from adaptvc import get_adapter_state_dict

            weights_at_epoch_end[round(state.epoch)] = {k: v.clone() for k, v in get_adapter_state_dict(model).items()}

    cb = AdaptvcCallback("task_a", repo=root)
    _trainer(_peft_model(), tmp_path, [Remember(), cb], eval_dataset=_dataset(8)).train()

    assert len(cb.versions) == 2
    log = json.loads(run_cli("log", "task_a", "--json", cwd=root, check=True).stdout)
    assert [v["version"] for v in log] == [2, 1]
    v2, v1 = log
    assert v1["message"] == "epoch 1 (step 4)"
    assert v2["message"] == "epoch 2 (step 8)"
    assert v1["metrics"]["epoch"] == 1.0 and v2["metrics"]["global_step"] == 8.0
    # the epoch's evaluation runs after on_epoch_end: its metrics must still be recorded
    assert "eval_loss" in v1["metrics"] and "loss" in v1["metrics"]
    assert v1["metrics"]["eval_loss"] != v2["metrics"]["eval_loss"]
    assert not any(k.endswith(("_runtime", "_per_second")) or k == "total_flos" for k in v2["metrics"])
    assert v2["parents"] == ["task_a@v1"]

    # the weights of each version are those of its epoch's end
    from safetensors.torch import load_file

    from adaptvc import resolve

    for n in (1, 2):
        saved = load_file(resolve(f"task_a@v{n}", repo=root) / "adapter_model.safetensors")
        assert saved.keys() == weights_at_epoch_end[n].keys()
        for key, tensor in saved.items():
            assert torch.equal(tensor, weights_at_epoch_end[n][key]), key


def test_transformers_add_adapter_model_and_every_save(adaptvc_repo, tmp_path):
    from peft import LoraConfig

    from adaptvc.integrations.transformers import AdaptvcCallback

    model = tiny_llama()
    model.add_adapter(LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"]), adapter_name="task_b")
    root = adaptvc_repo.working_dir
    cb = AdaptvcCallback("task_b", repo=root, every="save")
    _trainer(model, tmp_path, [cb], epochs=1, save_strategy="steps", save_steps=2).train()
    assert len(cb.versions) == 2  # 4 steps, a checkpoint every 2
    log = json.loads(run_cli("log", "task_b", "--json", cwd=root, check=True).stdout)
    assert [v["message"] for v in reversed(log)] == [
        "checkpoint at step 2 (epoch 0.5)",
        "checkpoint at step 4 (epoch 1)",
    ]


def test_failure_is_logged_not_fatal_unless_strict(tmp_path, caplog):
    from adaptvc.integrations.transformers import AdaptvcCallback

    not_a_repo = tmp_path / "nowhere"
    not_a_repo.mkdir()
    cb = AdaptvcCallback("task_a", repo=not_a_repo)
    with caplog.at_level("ERROR"):
        _trainer(_peft_model(), tmp_path, [cb], epochs=1).train()  # does not raise
    assert cb.versions == []
    assert "could not save a version of task_a" in caplog.text

    strict = AdaptvcCallback("task_a", repo=not_a_repo, strict=True)
    from adaptvc.errors import AdaptvcError

    with pytest.raises(AdaptvcError):
        _trainer(_peft_model(), tmp_path, [strict], epochs=1).train()


def test_only_the_main_process_saves(adaptvc_repo, tmp_path):
    from transformers import TrainerCallback

    from adaptvc.integrations.transformers import AdaptvcCallback

    class NotMain(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            state.is_world_process_zero = False

    cb = AdaptvcCallback("task_a", repo=adaptvc_repo.working_dir)
    _trainer(_peft_model(), tmp_path, [NotMain(), cb], epochs=1).train()
    assert cb.versions == []


def test_invalid_adapter_name_fails_before_training():
    from adaptvc.errors import InvalidRefError
    from adaptvc.integrations.transformers import AdaptvcCallback

    with pytest.raises(InvalidRefError):
        AdaptvcCallback("bad name/..")
    with pytest.raises(ValueError):
        AdaptvcCallback("task_a", every="step")


def test_training_state_per_checkpoint_and_a_clear_error_without_one(adaptvc_repo, tmp_path):
    import adaptvc
    from adaptvc.integrations.transformers import AdaptvcCallback

    root = adaptvc_repo.working_dir
    every_epoch = AdaptvcCallback("task_a", repo=root, training_state=True)
    with pytest.raises(ValueError, match="save_strategy='epoch'"):
        _trainer(_peft_model(), tmp_path, [every_epoch], epochs=1, save_strategy="no").train()

    callback = AdaptvcCallback("task_a", repo=root, every="save", training_state=True, strict=True)
    _trainer(_peft_model(), tmp_path, [callback], epochs=1, save_strategy="steps", save_steps=2).train()
    versions = adaptvc.log("task_a", repo=root)
    assert [v.ref for v in versions] == ["task_a@v2", "task_a@v1"]
    for v, step in zip(versions, (4, 2), strict=True):
        exported = adaptvc.export(v.ref, tmp_path / v.ref, repo=root, training_state=True)
        assert json.loads((exported / "trainer_state.json").read_text())["global_step"] == step
        assert {"optimizer.pt", "scheduler.pt", "training_args.bin"} <= {p.name for p in exported.iterdir()}
