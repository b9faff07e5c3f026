"""Tiny real models for tests, built from configs (no hub downloads).

``tiny_llama()`` and ``tiny_gpt2()`` give small transformers models with a fixed seed;
``lora(model, **kw)`` wraps one with a peft LoRA and perturbs the adapter weights
(peft initialises ``lora_B`` to zero, which would make every comparison trivially pass).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where a model is built: the torchless tests import this module too
    import torch


def tiny_llama(seed: int = 0, vocab_size: int = 128, hidden_size: int = 32, layers: int = 2):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config).eval()


def tiny_gpt2(seed: int = 0, vocab_size: int = 128, n_embd: int = 32, layers: int = 2):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=vocab_size, n_embd=n_embd, n_layer=layers, n_head=4, n_positions=64)
    return GPT2LMHeadModel(config).eval()


def perturb_adapter(model, seed: int = 1, scale: float = 0.1) -> None:
    """Give every trainable (adapter) parameter non-trivial values, deterministically."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(torch.randn(param.shape, generator=gen, dtype=torch.float32).to(param.dtype) * scale)


def sample_input(vocab_size: int = 128, seed: int = 0) -> torch.Tensor:
    import torch

    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab_size, (2, 8), generator=gen)
