"""The base-model link: name or path, revision, and a cheap fingerprint.

The fingerprint identifies a base model without reading its weights: sha256 over its
``config.json`` (minus keys that say where or by which version it was saved, not what it
is) and the names, dtypes and shapes in its safetensors headers (every shard). It is
computed when the base model is a local directory, or a hub id already in the local
Hugging Face cache; otherwise it is ``None`` and only the name and revision are
recorded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from adaptvc.manifest import BaseModelLink

# Not imported here: adaptvc.manifest (its dataclasses) and hashlib (OpenSSL) cost
# milliseconds that `adaptvc diff DIR_A DIR_B`, which only needs base_model_dict, skips.

# config.json keys that describe the saving, not the model.
_VOLATILE = frozenset({"_name_or_path", "transformers_version", "_commit_hash", "name_or_path"})


def fingerprint_directory(directory: str | os.PathLike[str]) -> str | None:
    """``"sha256:<hex>"`` of a local base model directory, or ``None`` if it holds neither
    a config.json nor safetensors files."""
    return measure_directory(directory)[0]


def measure_directory(directory: str | os.PathLike[str]) -> tuple[str | None, int | None]:
    """``(fingerprint, bytes of its weights)`` of a local base model directory: the
    bytes are the tensors' sizes in the same safetensors headers (``None`` without any)."""
    import hashlib

    from adaptvc.formats.safetensors_header import read_header

    d = Path(directory)
    h = hashlib.sha256()
    found = False
    cfg = d / "config.json"
    if cfg.is_file():
        try:
            data = json.loads(cfg.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k not in _VOLATILE}
            h.update(b"config\0" + json.dumps(data, sort_keys=True).encode() + b"\0")
            found = True
    files = sorted(p for p in d.glob("*.safetensors") if p.is_file())
    index = d / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}).values()))
            files = sorted({*files, *(d / s for s in shards if (d / s).is_file())})
        except (OSError, ValueError, AttributeError):
            pass
    tensors: list[tuple[str, str, list[int]]] = []
    size = 0
    for f in files:
        try:
            header = read_header(f)
        except Exception:  # noqa: BLE001 - an unreadable shard just does not count
            continue
        tensors.extend((t.name, t.dtype, list(t.shape)) for t in header.tensors.values())
        size += sum(t.nbytes for t in header.tensors.values())
    if tensors:
        found = True
        for name, dtype, shape in sorted(tensors):
            h.update(f"{name}\0{dtype}\0{shape}\n".encode())
    return (f"sha256:{h.hexdigest()}" if found else None), (size if tensors else None)


def _hub_snapshot(repo_id: str, revision: str | None) -> Path | None:
    """The local snapshot directory of a hub model, if its config is already cached."""
    # Look for the cache folder before importing huggingface_hub (a few hundred ms).
    hub = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface"), "hub"
    )
    if not (Path(hub) / ("models--" + repo_id.replace("/", "--"))).is_dir():
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        hit = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    except Exception:  # noqa: BLE001 - not a valid repo id, etc.
        return None
    return Path(hit).parent if isinstance(hit, str) else None


def base_model_link(config: dict[str, Any], *, override: str | None = None, root: Path | None = None) -> BaseModelLink:
    """The link for an adapter config (``base_model_name_or_path``, ``revision``).

    Args:
        config: the adapter's config.
        override: ``--base-model PATH_OR_ID``, replacing the config's value.
        root: directory relative paths are resolved against (the current directory).
    """
    from adaptvc.manifest import BaseModelLink

    return BaseModelLink(*_link_fields(config, override=override, root=root))


def base_model_dict(config: dict[str, Any]) -> dict[str, Any]:
    """``base_model_link(config).to_dict()``, without building the manifest's dataclass."""
    name, revision, fingerprint, _ = _link_fields(config)
    return {"name_or_path": name, "revision": revision, "fingerprint": fingerprint}


def _link_fields(
    config: dict[str, Any], *, override: str | None = None, root: Path | None = None
) -> tuple[str | None, str | None, str | None, int | None]:
    name = override or config.get("base_model_name_or_path")
    revision = config.get("revision")
    if not name:
        return None, revision, None, None
    name = str(name)
    candidate = Path(os.path.expanduser(name))
    if not candidate.is_absolute() and root is not None:
        candidate = root / candidate
    fingerprint, size = None, None
    if candidate.is_dir():
        fingerprint, size = measure_directory(candidate)
    elif "/" in name or name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        snap = _hub_snapshot(name, revision)
        if snap is not None:
            fingerprint, size = measure_directory(snap)
    return name, revision, fingerprint, size
