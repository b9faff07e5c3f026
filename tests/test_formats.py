"""Bad adapter files: one ``Error:`` line naming the file and the problem, exit 1, no traceback.

The adapters here are written with ``safetensors.numpy`` (no torch needed to make them)
and then damaged the ways files get damaged: cut short, overwritten, hand-edited.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from adaptvc.errors import InvalidAdapterError
from adaptvc.formats.adapter_config import dumps_config, read_config
from adaptvc.formats.safetensors_header import read_header
from tests.conftest import run_cli

WEIGHTS, CONFIG, BIN = "adapter_model.safetensors", "adapter_config.json", "adapter_model.bin"


def make_adapter(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    tensors = {
        "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": rng.standard_normal(
            (4, 32), dtype=np.float32
        ),
        "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": rng.standard_normal(
            (32, 4), dtype=np.float32
        ),
    }
    save_file(tensors, str(directory / WEIGHTS), metadata={"format": "pt"})
    (directory / CONFIG).write_text(
        dumps_config({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": {"q_proj"}})
    )
    return directory


def cut(name: str, keep: int) -> Callable[[Path], None]:
    def damage(d: Path) -> None:
        data = (d / name).read_bytes()
        (d / name).write_bytes(data[:keep])

    return damage


def write(name: str, content: bytes | str) -> Callable[[Path], None]:
    def damage(d: Path) -> None:
        (d / name).write_bytes(content if isinstance(content, bytes) else content.encode())

    return damage


def remove(name: str) -> Callable[[Path], None]:
    return lambda d: (d / name).unlink()


def header(raw: bytes) -> bytes:
    return struct.pack("<Q", len(raw)) + raw


# case → (damage, file the message names, words of the problem)
BAD_FILES = {
    "truncated-data": (cut(WEIGHTS, -100), WEIGHTS, "outside the data section (924 bytes); truncated file?"),
    "truncated-header": (cut(WEIGHTS, 40), WEIGHTS, "truncated safetensors file: header says"),
    "shorter-than-length-prefix": (cut(WEIGHTS, 5), WEIGHTS, "truncated safetensors file (5 bytes, no header length)"),
    "empty-weights": (write(WEIGHTS, b""), WEIGHTS, "truncated safetensors file (0 bytes"),
    "absurd-header-length": (write(WEIGHTS, b"\xff" * 64), WEIGHTS, "is absurd"),
    "header-not-json": (write(WEIGHTS, header(b"{not json") + b"\0" * 8), WEIGHTS, "header is not valid JSON"),
    "wrong-byte-count": (
        write(
            WEIGHTS,
            header(json.dumps({"t": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}).encode()) + b"\0" * 8,
        ),
        WEIGHTS,
        "8 bytes for F32[4], expected 16",
    ),
    "unknown-dtype": (
        write(
            WEIGHTS,
            header(json.dumps({"t": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}).encode()) + b"\0" * 16,
        ),
        WEIGHTS,
        "unknown dtype 'F128'",
    ),
    "config-invalid-json": (write(CONFIG, '{"peft_type": "LORA",'), CONFIG, "invalid JSON at line 1"),
    "config-not-an-object": (write(CONFIG, "[1, 2]"), CONFIG, "expected a JSON object, got list"),
    "config-without-peft-type": (write(CONFIG, '{"r": 4}'), CONFIG, "missing 'peft_type'"),
    "config-not-utf8": (write(CONFIG, b"\xff\xfe{}"), CONFIG, "not UTF-8"),
    "config-missing": (remove(CONFIG), CONFIG, "no such file"),
    "weights-missing": (remove(WEIGHTS), "", f"no {WEIGHTS} (or legacy {BIN})"),
    "bin-truncated": (
        lambda d: (remove(WEIGHTS)(d), write(BIN, b"PK\x03\x04 cut here")(d)),
        BIN,
        "truncated or not a torch file",
    ),
}


@pytest.fixture
def damaged(tmp_path, request) -> tuple[Path, Path, str]:
    directory = make_adapter(tmp_path / "adapter")
    damage, name, problem = BAD_FILES[request.param]
    damage(directory)
    return directory, directory / name if name else directory, problem


def test_the_undamaged_adapter_inspects_fine(tmp_path):
    proc = run_cli("inspect", str(make_adapter(tmp_path / "ok")), "--json", check=True)
    assert json.loads(proc.stdout)["tensor_count"] == 2


@pytest.mark.parametrize("damaged", sorted(BAD_FILES), indirect=True)
def test_bad_file_gives_one_error_line_naming_file_and_problem(damaged):
    directory, named, problem = damaged
    proc = run_cli("inspect", str(directory))
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert lines[0].startswith(f"Error: {named}"), lines[0]
    assert problem in lines[0], lines[0]
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("Hint: ")), proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("damaged", ["truncated-data", "absurd-header-length", "header-not-json"], indirect=True)
def test_the_reader_raises_invalid_adapter_with_the_path(damaged):
    directory, named, problem = damaged
    with pytest.raises(InvalidAdapterError) as err:
        read_header(named)
    assert isinstance(err.value, ValueError)
    assert err.value.path == str(named) and problem in err.value.message


def test_absurd_header_length_is_refused_before_reading(tmp_path):
    # 2**63 bytes of "header": we must not try to allocate it.
    (tmp_path / WEIGHTS).write_bytes(struct.pack("<Q", 2**63) + b"{}")
    with pytest.raises(InvalidAdapterError, match="absurd"):
        read_header(tmp_path / WEIGHTS)


def test_inspect_a_missing_directory(tmp_path):
    proc = run_cli("inspect", str(tmp_path / "nope"))
    assert proc.returncode == 1 and proc.stderr.startswith(f"Error: {tmp_path / 'nope'}: no such directory")


def test_dumps_config_sorts_set_valued_fields_but_not_token_indices():
    config = {
        "peft_type": "LORA",
        "target_modules": {"v_proj", "q_proj", "k_proj"},
        "trainable_token_indices": [9, 2, 5],
    }
    text = dumps_config(config)
    assert json.loads(text)["target_modules"] == ["k_proj", "q_proj", "v_proj"]
    # The order of token indices is the row order of the saved delta tensor: keep it.
    assert json.loads(text)["trainable_token_indices"] == [9, 2, 5]
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True)  # PEFT's layout, no trailing newline


def test_read_config_roundtrip(tmp_path):
    make_adapter(tmp_path)
    assert read_config(tmp_path / CONFIG)["target_modules"] == ["q_proj"]
