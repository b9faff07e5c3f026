"""Which tensors of an adapter are LoRA factors, and what update each module applies.

PEFT saves a LoRA module as two tensors (the adapter name removed from the key):

=========================  =============================  ==============================
layer                      stored                         update in the base layout
=========================  =============================  ==============================
``nn.Linear``              ``lora_A.weight`` (r, in),     ``B·A`` (out, in)
                           ``lora_B.weight`` (out, r)
``Conv1D`` (GPT-2;         same shapes as Linear          ``(B·A)ᵀ`` (in, out): the base
``fan_in_fan_out=true``)                                  weight is stored transposed
``nn.Embedding``           ``lora_embedding_A`` (r, V),   ``(B·A)ᵀ`` (V, dim)
                           ``lora_embedding_B`` (dim, r)
``nn.Conv{1,2,3}d``        ``lora_A.weight`` (r, in, k…), ``B·A`` over the flattened
                           ``lora_B.weight`` (out, r, 1…) kernel (out, in·k…)
=========================  =============================  ==============================

each times the module's scale ``s = alpha/r`` (``alpha/√r`` with ``use_rslora``), where
``r`` and ``alpha`` come from ``rank_pattern``/``alpha_pattern`` when a pattern matches the
module, matched exactly as PEFT does (``peft.utils.other.get_pattern_key``: the first key
``k`` in the pattern's order with ``re.match(rf"(.*\\.)?({k})$", module)``).

Every update is expressed as ``s·L·R`` in the base weight's layout (``L = Aᵀ``,
``R = Bᵀ`` for the transposed ones), so two adapters are always compared in the same
coordinates, whatever layout each stored.

Everything else (``modules_to_save`` copies, biases, ``lora_B.bias``, DoRA's
``lora_magnitude_vector``, trainable-token deltas, and every tensor of a non-LoRA PEFT
type) is compared elementwise.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from adaptvc.adapter_diff.lowrank import LowRankUpdate
from adaptvc.errors import InvalidAdapterError
from adaptvc.formats.adapter_config import get_pattern_key
from adaptvc.formats.safetensors_header import TensorInfo

# Saved keys start with the PeftModel's prefix; patterns match the module path without it.
MODEL_PREFIX = "base_model.model."

# "<module>.lora_A.weight" (optionally "<module>.lora_A.<adapter>.weight", as some tools save)
_LINEAR_FACTOR = re.compile(r"^(?P<module>.+)\.(?P<kind>lora_A|lora_B)(?:\.[^.]+)?\.weight$")
_EMBEDDING_FACTOR = re.compile(r"^(?P<module>.+)\.(?P<kind>lora_embedding_A|lora_embedding_B)(?:\.[^.]+)?$")


def display_name(key: str) -> str:
    """A saved key or module path without PEFT's ``base_model.model.`` prefix."""
    return key[len(MODEL_PREFIX) :] if key.startswith(MODEL_PREFIX) else key


class LoraModule:
    """One LoRA-adapted module of an adapter: where its factors are and how to scale them.

    (A plain class: a dataclass costs ~1 ms to create on every ``adaptvc diff``.)
    """

    __slots__ = ("name", "kind", "a", "b", "rank", "alpha", "scale", "shape")

    def __init__(
        self,
        *,
        name: str,
        kind: str,
        a: TensorInfo,
        b: TensorInfo,
        rank: int,
        alpha: float,
        scale: float,
        shape: tuple[int, ...],
    ) -> None:
        self.name = name  # module path without "base_model.model."
        self.kind = kind  # "linear", "conv1d" (fan_in_fan_out), "embedding" or "conv"
        self.a = a  # lora_A / lora_embedding_A
        self.b = b  # lora_B / lora_embedding_B
        self.rank = rank
        self.alpha = alpha
        self.scale = scale
        self.shape = shape  # shape of ΔW in the base weight's layout

    def __repr__(self) -> str:
        return f"LoraModule({self.name!r}, {self.kind}, r={self.rank}, scale={self.scale!r}, shape={self.shape})"

    @property
    def tensors(self) -> tuple[TensorInfo, TensorInfo]:
        return (self.a, self.b)

    def update(self, a: np.ndarray, b: np.ndarray) -> LowRankUpdate:
        """Build ``s·L·R`` from the decoded factors (float64 arrays shaped as stored)."""
        r = self.rank
        a2 = a.reshape(r, -1)
        b2 = b.reshape(b.shape[0], r)
        if self.kind in ("linear", "conv"):
            return LowRankUpdate(b2, a2, self.scale)
        return LowRankUpdate(a2.T, b2.T, self.scale)  # conv1d, embedding: ΔW = (B·A)ᵀ = Aᵀ·Bᵀ


class AdapterLayout:
    """An adapter's tensors split into LoRA modules and elementwise tensors."""

    __slots__ = ("modules", "others")

    def __init__(self, *, modules: dict[str, LoraModule], others: dict[str, TensorInfo]) -> None:
        self.modules = modules
        self.others = others  # display name → tensor


def module_scale(config: dict[str, Any], module: str) -> tuple[int, float, float]:
    """``(r, alpha, scale)`` of a module under the config's patterns and rsLoRA."""
    rank_pattern = config.get("rank_pattern") or {}
    alpha_pattern = config.get("alpha_pattern") or {}
    r_key = get_pattern_key(rank_pattern.keys(), module)
    alpha_key = get_pattern_key(alpha_pattern.keys(), module)
    r = int(rank_pattern[r_key]) if r_key is not None else int(config.get("r") or 8)
    alpha = float(alpha_pattern[alpha_key]) if alpha_key is not None else float(config.get("lora_alpha") or 8)
    if r <= 0:
        raise InvalidAdapterError(f"adapter_config.json: rank {r} for module {module!r} is not positive")
    scale = alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r
    return r, alpha, scale


def split_adapter(tensors: dict[str, TensorInfo], config: dict[str, Any], *, source: str = "adapter") -> AdapterLayout:
    """Group a weights file's tensors into LoRA modules and the rest.

    Only ``peft_type`` LORA has factors; for any other type every tensor is elementwise.

    Factor pairs whose shapes do not fit a known layout are compared elementwise.

    Raises:
        InvalidAdapterError: factors whose rank disagrees with the ``r`` the config gives
            the module (PEFT could not load such an adapter either).
    """
    is_lora = str(config.get("peft_type", "")).upper() == "LORA"
    fan_in_fan_out = bool(config.get("fan_in_fan_out", False))
    factors: dict[str, dict[str, TensorInfo]] = {}
    others: dict[str, TensorInfo] = {}
    for key, info in tensors.items():
        m = (_LINEAR_FACTOR.match(key) or _EMBEDDING_FACTOR.match(key)) if is_lora else None
        if m is None:
            others[display_name(key)] = info
            continue
        factors.setdefault(m.group("module"), {})[m.group("kind")] = info

    modules: dict[str, LoraModule] = {}
    for module_key, parts in factors.items():
        name = display_name(module_key)
        embedding = "lora_embedding_A" in parts or "lora_embedding_B" in parts
        a = parts.get("lora_embedding_A" if embedding else "lora_A")
        b = parts.get("lora_embedding_B" if embedding else "lora_B")
        if a is None or b is None or len(parts) != 2:
            # A lone factor is no update; compare what is there elementwise.
            for info in parts.values():
                others[display_name(info.name)] = info
            continue
        r, alpha, scale = module_scale(config, name)
        stored_r = a.shape[0] if a.shape else -1
        if not _factors_fit(a, b):  # not a layout we know (a newer PEFT variant?): compare what is stored
            others[display_name(a.name)] = a
            others[display_name(b.name)] = b
            continue
        if stored_r != r:
            raise InvalidAdapterError(
                f"{source}: module {name!r} has rank {stored_r} in the weights but the config gives it r={r}"
                " (check r / rank_pattern in adapter_config.json)"
            )
        kind, shape = _kind_and_shape(a, b, embedding=embedding, fan_in_fan_out=fan_in_fan_out)
        modules[name] = LoraModule(name=name, kind=kind, a=a, b=b, rank=r, alpha=alpha, scale=scale, shape=shape)
    return AdapterLayout(modules=modules, others=others)


def _factors_fit(a: TensorInfo, b: TensorInfo) -> bool:
    """Whether ``A`` (r × …) and ``B`` (… × r × 1…) have a layout this module knows."""
    stored_r = a.shape[0] if a.shape else -1
    return (
        len(a.shape) >= 2
        and len(b.shape) >= 2
        and b.shape[1] == stored_r
        and all(d == 1 for d in b.shape[2:])
        and len(b.shape) == len(a.shape)
    )


def _kind_and_shape(
    a: TensorInfo, b: TensorInfo, *, embedding: bool, fan_in_fan_out: bool
) -> tuple[str, tuple[int, ...]]:
    """The module's kind and the shape of its update ΔW, from its factors' shapes."""
    if embedding:
        return "embedding", (a.shape[1], b.shape[0])
    if len(a.shape) > 2:
        return "conv", (b.shape[0], *a.shape[1:])
    if fan_in_fan_out:
        return "conv1d", (a.shape[1], b.shape[0])
    return "linear", (b.shape[0], a.shape[1])
