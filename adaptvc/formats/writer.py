"""Writing adapter files exactly as PEFT writes them, atomically (:mod:`adaptvc.storage.files`).

``adapter_model.safetensors`` (metadata ``{"format": "pt"}``, shared storage cloned
apart, tensors contiguous), the legacy ``adapter_model.bin`` (``torch.save``, only when
asked) and ``adapter_config.json`` (:func:`~adaptvc.formats.adapter_config.dumps_config`).
Used by :mod:`adaptvc.extract` (live models) and :mod:`adaptvc.formats.legacy_bin`
(converting a ``.bin``). torch and safetensors' torch bindings are imported only when
tensors are written.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adaptvc.formats.adapter_config import dumps_config
from adaptvc.storage.files import replacing, write_atomic

if TYPE_CHECKING:  # pragma: no cover
    import torch

SAFETENSORS_METADATA = {"format": "pt"}  # what PEFT and transformers write; loaders check it


def prepare_for_safetensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Return a copy safetensors can write: shared storage cloned apart, tensors contiguous.

    safetensors refuses tensors that alias one storage (tied adapters) and non-contiguous
    views. Like PEFT, keep the first name of each shared group as is and clone the rest,
    in the state dict's own order, so the file is the one PEFT writes.
    """
    out = dict(state)
    groups: dict[Any, list[str]] = collections.defaultdict(list)
    for key, tensor in out.items():
        groups[_storage_id(tensor)].append(key)
    for keys in groups.values():
        for key in keys[1:]:
            out[key] = out[key].clone()
    return {key: (t if t.is_contiguous() else t.contiguous()) for key, t in out.items()}


def _storage_id(tensor: torch.Tensor) -> tuple[Any, int, int]:
    # Same identity as peft.utils.other.id_tensor_storage (device, start, size); kept
    # here so converting a legacy .bin does not need peft.
    storage = tensor.untyped_storage()
    return tensor.device, storage.data_ptr(), storage.nbytes()


def write_state_dict(state: dict[str, torch.Tensor], path: Path, *, safe_serialization: bool = True) -> None:
    """Write adapter tensors as PEFT does: safetensors with ``{"format": "pt"}``, or torch.save."""
    if safe_serialization:
        from safetensors.torch import save_file  # imports torch: only when tensors are written

        prepared = prepare_for_safetensors(state)
        with replacing(path, same_name=True) as tmp:
            save_file(prepared, str(tmp), metadata=dict(SAFETENSORS_METADATA))
    else:
        import torch  # heavy: only for the legacy format, on request

        with replacing(path, same_name=True) as tmp:  # torch.save records the file's stem
            torch.save(state, tmp)


def write_config(config: dict[str, Any], path: Path) -> None:
    """Write ``adapter_config.json`` (PEFT's layout, set-valued fields sorted)."""
    write_atomic(path, dumps_config(config).encode("utf-8"))
