"""The old-version round trip with real transformers + peft models."""

from __future__ import annotations

import peft
import pytest
import torch

import adaptvc  # noqa: E402
from tests.models import perturb_adapter, sample_input, tiny_llama  # noqa: E402
from tests.versioning_helpers import _initialised_template, avc_repo, git  # noqa: E402,F401 - fixtures

A = "adapters/task_a"


def _peft_model(seed: int):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(tiny_llama(), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    perturb_adapter(model, seed=seed)
    return model


def _logits(model):
    with torch.no_grad():
        return model(sample_input()).logits


def test_old_version_round_trip_gives_the_same_logits(avc_repo):
    from peft import PeftModel

    model = _peft_model(1)
    logits_v1 = _logits(model)
    model.save_pretrained(A)  # a training script writes the adapter directory
    v1 = adaptvc.save(adapter="task_a", message="epoch 1")
    perturb_adapter(model, seed=2)  # "train more"
    logits_v2 = _logits(model)
    assert not torch.allclose(logits_v1, logits_v2)
    model.save_pretrained(A)
    v2 = adaptvc.save(adapter="task_a", message="epoch 2")
    assert (v1.version, v2.version) == (1, 2)

    adaptvc.checkout("task_a@v1")
    loaded = PeftModel.from_pretrained(tiny_llama(), str(avc_repo / A)).eval()
    assert torch.equal(_logits(loaded), logits_v1)
    # resolve gives any version without touching the workspace
    loaded2 = PeftModel.from_pretrained(tiny_llama(), str(adaptvc.resolve("task_a@v2"))).eval()
    assert torch.equal(_logits(loaded2), logits_v2)


def test_save_a_live_model(avc_repo):
    from peft import PeftModel

    model = _peft_model(3)
    v = adaptvc.save(model, adapter="task_a", message="live", metrics={"eval_loss": torch.tensor(1.5)})
    assert v.ref == "task_a@v1" and v.metrics == {"eval_loss": 1.5}
    assert v.peft.type == "LORA" and v.peft.r == 4 and v.peft.target_modules == ("q_proj", "v_proj")
    again = adaptvc.save(model, adapter="task_a", message="same weights")
    assert again.new is False and again.ref == "task_a@v1"
    loaded = PeftModel.from_pretrained(tiny_llama(), str(avc_repo / A)).eval()
    assert torch.equal(_logits(loaded), _logits(model))


def test_a_full_model_state_dict_is_refused(avc_repo):
    from safetensors.torch import save_file

    model = _peft_model(4)
    model.save_pretrained(A)
    full = {k: v.contiguous() for k, v in model.base_model.model.state_dict().items()}
    save_file(full, str(avc_repo / A / "adapter_model.safetensors"))
    from adaptvc.errors import InvalidAdapterError

    with pytest.raises(InvalidAdapterError, match="base-model weights"):
        adaptvc.save(adapter="task_a", message="whole model")
    assert git(avc_repo, "tag", "-l") == ""


def _configs():
    from peft import IA3Config, LoHaConfig, LoKrConfig, LoraConfig, PromptTuningConfig

    return {
        "dora": LoraConfig(r=4, target_modules=["q_proj", "v_proj"], use_dora=True),
        "modules_to_save+bias": LoraConfig(
            r=4, target_modules=["q_proj"], modules_to_save=["lm_head"], bias="lora_only"
        ),
        "bias_all": LoraConfig(r=4, target_modules=["q_proj"], bias="all"),
        "embedding": LoraConfig(r=4, target_modules=["embed_tokens", "q_proj"]),
        "trainable_tokens": LoraConfig(r=4, target_modules=["q_proj"], trainable_token_indices=[1, 2]),
        "ia3": IA3Config(target_modules=["k_proj", "down_proj"], feedforward_modules=["down_proj"]),
        "loha": LoHaConfig(r=4, target_modules=["q_proj", "v_proj"]),
        "lokr": LoKrConfig(r=4, target_modules=["q_proj", "v_proj"]),
        "prompt_tuning": PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4),
    }


@pytest.mark.parametrize("kind", list(_configs()))
def test_what_peft_saves_is_accepted(avc_repo, kind):
    """No false alarm of the base-weights check on what peft's own save_pretrained writes."""
    from peft import get_peft_model

    model = get_peft_model(tiny_llama(), _configs()[kind])
    if kind == "embedding":  # save_pretrained copies the base embedding matrix by default
        model.save_pretrained(A)
        from adaptvc.errors import InvalidAdapterError

        with pytest.raises(InvalidAdapterError) as exc:
            adaptvc.save(adapter="task_a", message=kind)
        assert "embed_tokens.base_layer.weight" in exc.value.message
        assert "save_embedding_layers=False" in exc.value.hint
        model.save_pretrained(A, save_embedding_layers=False)
    else:
        model.save_pretrained(A)
    v = adaptvc.save(adapter="task_a", message=kind)
    assert v.version == 1 and v.peft.type == model.peft_config["default"].peft_type.value
