"""Property: adaptvc never accepts a safetensors file the official loader refuses.

Valid files (a few tensors of several dtypes and shapes, with or without metadata) are
mutated the ways files go wrong: the header length, the offsets, the dtypes, the shapes,
the JSON's structure (keys dropped, added, retyped, duplicated, NaN), truncation, trailing
bytes, flipped bytes. For each, if :func:`adaptvc.formats.safetensors_header.read_header`
accepts the file, ``safetensors.safe_open`` (torch, as PEFT loads) must accept it and load
every tensor, and the values adaptvc's own reader decodes must equal the official ones.

Profiles: CI runs a fixed, derandomized budget (:data:`CI_EXAMPLES`, well under a minute);
``ADAPTVC_FUZZ_EXAMPLES=20000`` runs a longer campaign, ``ADAPTVC_FUZZ_SEED=N`` another
sample of it. The number of cases run, and how they split, is printed.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from safetensors import safe_open

from adaptvc.errors import InvalidAdapterError
from adaptvc.formats.safetensors_header import DTYPE_BITS, read_header
from adaptvc.formats.safetensors_reader import SUPPORTED_DTYPES, SafetensorsReader

CI_EXAMPLES = 400
EXAMPLES = int(os.environ.get("ADAPTVC_FUZZ_EXAMPLES", CI_EXAMPLES))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize="ADAPTVC_FUZZ_SEED" not in os.environ,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# dtype → (bytes per element, numpy dtype to fill it with random bytes)
DTYPES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "U8": 1, "I8": 1, "BOOL": 1, "U16": 2}
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**65), 2**65) | st.floats(allow_nan=False) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=5,
)


@st.composite
def valid_files(draw) -> tuple[dict, bytes]:
    """A header (as a dict, in file order) and the data section of a valid file."""
    count = draw(st.integers(0, 4))
    header: dict = {}
    if draw(st.booleans()):
        header["__metadata__"] = draw(st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3))
    data = b""
    for i in range(count):
        dtype = draw(st.sampled_from(sorted(DTYPES)))
        shape = draw(st.lists(st.integers(0, 4), max_size=3))
        n = int(np.prod(shape, dtype=np.int64)) * DTYPES[dtype]
        raw = draw(st.binary(min_size=n, max_size=n))
        if dtype == "BOOL":
            raw = bytes(b & 1 for b in raw)  # torch refuses bool bytes other than 0 and 1
        header[f"t{i}"] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + n]}
        data += raw
    return header, data


def encode(header: dict | bytes, data: bytes, length: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length % 2**64) + raw + data


def _tensor_names(header: dict) -> list[str]:
    return [k for k in header if k != "__metadata__"]


@st.composite
def mutated_files(draw) -> bytes:
    header, data = draw(valid_files())
    names = _tensor_names(header)
    kind = draw(
        st.sampled_from(
            ["none", "length", "offsets", "dtype", "shape", "structure", "metadata", "truncate", "append", "flip"]
        )
    )
    length = None
    if kind == "length":
        length = len(json.dumps(header).encode()) + draw(st.integers(-64, 64) | st.integers(0, 2**64 - 1))
    elif kind in ("offsets", "dtype", "shape", "structure") and names:
        entry = header[draw(st.sampled_from(names))]
        if kind == "offsets":
            i = draw(st.integers(0, 1))
            entry["data_offsets"][i] = draw(
                st.integers(-2, len(data) + 8) | st.sampled_from([2**63, 2**64, 1.5, "0", None])
            )
            if draw(st.booleans()) and len(names) > 1:  # swap with another tensor's offsets
                other = header[draw(st.sampled_from(names))]
                entry["data_offsets"], other["data_offsets"] = other["data_offsets"], entry["data_offsets"]
        elif kind == "dtype":
            entry["dtype"] = draw(st.sampled_from(sorted(DTYPE_BITS) + ["f32", "F128", "", 3]))
        elif kind == "shape":
            shape = entry["shape"]
            op = draw(st.sampled_from(["set", "add", "drop", "type"]))
            if op == "set" and shape:
                shape[draw(st.integers(0, len(shape) - 1))] = draw(st.integers(0, 9) | st.just(2**64 + 1))
            elif op == "add":
                shape.insert(draw(st.integers(0, len(shape))), draw(st.integers(0, 3)))
            elif op == "drop" and shape:
                shape.pop(draw(st.integers(0, len(shape) - 1)))
            else:
                entry["shape"] = draw(st.sampled_from([[2.0], ["2"], [True], [-1], 4, None, [[1]]]))
        else:
            op = draw(st.sampled_from(["drop-key", "extra-key", "retype", "as-list"]))
            if op == "drop-key":
                del entry[draw(st.sampled_from(sorted(entry)))]
            elif op == "extra-key":
                entry[draw(st.text(max_size=6))] = draw(JSON_VALUES)
            elif op == "retype":
                entry[draw(st.sampled_from(sorted(entry)))] = draw(JSON_VALUES)
            else:
                header[names[0]] = [entry["dtype"], entry["shape"], entry["data_offsets"]]
    elif kind == "metadata":
        header["__metadata__"] = draw(JSON_VALUES)
    raw = json.dumps(header).encode()
    if kind == "structure" and draw(st.booleans()):  # text-level: duplicates, NaN, top-level type
        raw = draw(
            st.sampled_from(
                [
                    raw[:-1] + b"," + raw[1:] if len(raw) > 2 else raw,
                    raw.replace(b"0]", b"NaN]", 1),
                    b"[" + raw + b"]",
                    raw + b" ",
                    b" " + raw,
                    raw[:-1],
                ]
            )
        )
    out = encode(raw, data, length)
    if kind == "truncate" and out:
        out = out[: draw(st.integers(0, len(out) - 1))]
    elif kind == "append":
        out += draw(st.binary(min_size=1, max_size=16))
    elif kind == "flip" and out:
        i = draw(st.integers(0, len(out) - 1))
        out = out[:i] + bytes([out[i] ^ draw(st.integers(1, 255))]) + out[i + 1 :]
    return out


def official_load(path: Path) -> dict | None:
    """The tensors as the official loader gives them to PEFT (torch), or None if it refuses."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return {key: f.get_tensor(key) for key in f.keys()}
    except Exception:  # noqa: BLE001 - any refusal counts: SafetensorError, TypeError, RuntimeError...
        return None


RUN = {"cases": 0, "accepted": 0, "refused_by_both": 0, "refused_by_adaptvc_only": 0}


@FUZZ
@given(content=mutated_files())
@seed(int(os.environ.get("ADAPTVC_FUZZ_SEED", "0")))
def check_one_file(scratch: Path, content: bytes) -> None:
    import torch

    scratch.write_bytes(content)
    RUN["cases"] += 1
    official = official_load(scratch)
    try:
        header = read_header(scratch)
    except InvalidAdapterError:
        RUN["refused_by_both" if official is None else "refused_by_adaptvc_only"] += 1
        return
    assert official is not None, f"adaptvc accepted a file safetensors refuses: {content[:200]!r}"
    RUN["accepted"] += 1
    assert sorted(header.tensors) == sorted(official)
    with SafetensorsReader(scratch, header) as reader:
        for name, info in header.tensors.items():
            tensor = official[name]
            packed = info.dtype == "F4"  # torch packs F4 two to an element along the last dimension
            expected_shape = [*info.shape[:-1], info.shape[-1] // 2] if packed else list(info.shape)
            assert list(tensor.shape) == expected_shape, name
            if info.dtype in SUPPORTED_DTYPES:
                expected = tensor.to(torch.float64).numpy()
                assert np.array_equal(reader.read(name), expected, equal_nan=True), name


def test_adaptvc_never_accepts_what_safetensors_refuses(tmp_path, capsys):
    for key in RUN:
        RUN[key] = 0
    check_one_file(tmp_path / "adapter_model.safetensors")
    with capsys.disabled():
        print(f"\nsafetensors fuzz: {RUN}")
    assert RUN["cases"] >= EXAMPLES  # hypothesis ran the whole budget (plus any shrinking)
    assert RUN["accepted"] > 0 and RUN["refused_by_both"] > 0  # both sides of the property were exercised
