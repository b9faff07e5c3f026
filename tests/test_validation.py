"""The one validation of an adapter directory: what the official ``safetensors`` loader
or PEFT's loader would refuse, ``save``, ``inspect``, ``diff`` and ``convert`` refuse, with
one ``Error:`` line naming the problem and a hint, and nothing written to the repository.

The oracles are the installed libraries: ``safetensors.safe_open`` for the header cases,
PEFT's own ``save_pretrained`` for adapters that must keep passing.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from adaptvc.errors import (
    ConfigWeightsMismatchError,
    EmptyTensorError,
    MalformedSafetensorsError,
    NotARegularFileError,
    UnsafePickleError,
)
from adaptvc.formats.adapter_dir import open_adapter_dir
from adaptvc.formats.safetensors_header import read_header
from tests.conftest import run_cli
from tests.versioning_helpers import (  # noqa: F401 - fixtures
    _initialised_template,
    avc_repo,
    lora_tensors,
    repo_snapshot,
    write_adapter,
)

WEIGHTS, CONFIG, BIN = "adapter_model.safetensors", "adapter_config.json", "adapter_model.bin"
Q0 = "base_model.model.model.layers.0.self_attn.q_proj"


def raw_file(header: dict | bytes, data: bytes) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def entry(begin: int, end: int, shape: list, dtype: str = "F32") -> dict:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


# Files the official loader refuses and adaptvc's header parser accepted before this change.
SAFETENSORS_REFUSES = {
    "overlapping-offsets": raw_file({"a": entry(0, 8, [2]), "b": entry(0, 8, [2])}, b"\0" * 8),
    "gap-between-tensors": raw_file({"a": entry(0, 8, [2]), "b": entry(12, 20, [2])}, b"\0" * 20),
    "trailing-bytes": raw_file({"a": entry(0, 8, [2])}, b"\0" * 12),
    "float-dimension": raw_file({"a": entry(0, 8, [2.0])}, b"\0" * 8),
    "string-dimension": raw_file({"a": entry(0, 8, ["2"])}, b"\0" * 8),
    "bool-dimension": raw_file({"a": entry(0, 8, [True, 2])}, b"\0" * 8),
    "metadata-a-list": raw_file({"__metadata__": [], "a": entry(0, 8, [2])}, b"\0" * 8),
    "metadata-empty-string": raw_file({"__metadata__": "", "a": entry(0, 8, [2])}, b"\0" * 8),
    "nan-in-header": raw_file(b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":NaN}}', b"\0" * 4),
    "lone-surrogate-name": raw_file(b'{"\\ud800":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', b"\0" * 4),
    "half-byte-f4": raw_file({"a": entry(0, 1, [1], "F4")}, b"\0"),
    "duplicate-metadata": raw_file(b'{"__metadata__":{"a":"b"},"__metadata__":{"a":"b"}}', b""),
}


@pytest.mark.torchless
@pytest.mark.parametrize("case", sorted(SAFETENSORS_REFUSES))
def test_a_file_the_official_loader_refuses_is_refused(tmp_path, case):
    path = tmp_path / WEIGHTS
    path.write_bytes(SAFETENSORS_REFUSES[case])
    with pytest.raises(SafetensorError):  # the oracle
        with safe_open(str(path), "numpy") as f:
            for key in f.keys():
                f.get_tensor(key)
    with pytest.raises(MalformedSafetensorsError) as err:
        read_header(path)
    assert err.value.path == str(path)


@pytest.mark.torchless
def test_overlapping_offsets_name_both_tensors(tmp_path):
    path = tmp_path / WEIGHTS
    path.write_bytes(SAFETENSORS_REFUSES["overlapping-offsets"])
    with pytest.raises(MalformedSafetensorsError, match=r"tensor 'b': data offsets \[0, 8\] overlap tensor 'a'"):
        read_header(path)


@pytest.mark.torchless
def test_a_file_safetensors_writes_with_metadata_and_many_dtypes_is_accepted(tmp_path):
    tensors = {
        "a": np.arange(6, dtype=np.float16).reshape(2, 3),
        "b": np.ones(3, dtype=np.int64),
        "c": np.zeros((), dtype=np.float32),
        "d": np.array([True, False]),
    }
    save_file(tensors, str(tmp_path / WEIGHTS), metadata={"format": "pt", "k": "v"})
    header = read_header(tmp_path / WEIGHTS)
    assert {k: t.shape for k, t in header.tensors.items()} == {k: v.shape for k, v in tensors.items()}
    assert header.metadata == {"format": "pt", "k": "v"}


# --- the whole command: save refuses, the repository is unchanged ----------------------------


def refused(proc, *words: str) -> str:
    """The command failed as a user should see it; returns the Error line."""
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert lines and lines[0].startswith("Error: "), proc.stderr
    assert len(lines) == 2 and lines[1].startswith("Hint: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in proc.stderr, (word, proc.stderr)
    return lines[0]


def save_refused(repo: Path, source: Path, *words: str) -> str:
    before = repo_snapshot(repo)
    proc = run_cli("save", "--adapter", "task_a", "--from", str(source), "-m", "m", cwd=repo)
    line = refused(proc, *words)
    assert repo_snapshot(repo) == before
    return line


@pytest.mark.torchless
def test_save_refuses_overlapping_offsets_and_writes_nothing(avc_repo, tmp_path):
    src = write_adapter(tmp_path / "out")
    (src / WEIGHTS).write_bytes(
        raw_file({f"{Q0}.lora_A.weight": entry(0, 64, [4, 4]), f"{Q0}.lora_B.weight": entry(0, 64, [4, 4])}, b"\0" * 64)
    )
    save_refused(avc_repo, src, "overlap")


@pytest.mark.torchless
def test_save_refuses_zero_element_tensors_naming_zero3_and_fsdp(avc_repo, tmp_path):
    # What saving an un-gathered DeepSpeed ZeRO-3 / FSDP model writes: shards of size 0.
    tensors = {k: np.zeros((0,), dtype=np.float32) for k in lora_tensors()}
    src = write_adapter(tmp_path / "out", tensors=tensors)
    line = save_refused(avc_repo, src, "ZeRO-3", "FSDP", "gather")
    assert "8 of 8 tensors have no elements" in line
    with pytest.raises(EmptyTensorError) as err:
        open_adapter_dir(src)
    assert len(err.value.tensors) == 8


@pytest.mark.torchless
def test_save_refuses_a_config_whose_r_does_not_match_the_tensors(avc_repo, tmp_path):
    src = write_adapter(tmp_path / "out", config={"r": 8}, tensors=lora_tensors(r=4))
    line = save_refused(avc_repo, src, "rank 4", "r=8")
    assert "model.layers.0.self_attn.q_proj" in line


@pytest.mark.torchless
def test_rank_pattern_is_matched_as_peft_does(tmp_path):
    tensors = lora_tensors(r=4)
    for key in [k for k in tensors if ".layers.1.self_attn.v_proj." in k]:
        tensors[key] = np.ones((2, 16) if "lora_A" in key else (16, 2), dtype=np.float32)
    ok = write_adapter(tmp_path / "ok", config={"rank_pattern": {"layers.1.self_attn.v_proj": 2}}, tensors=tensors)
    open_adapter_dir(ok)
    # A pattern that matches no suffix of the module path does not apply: r=4 is expected.
    bad = write_adapter(tmp_path / "bad", config={"rank_pattern": {"yers.1.self_attn.v_proj": 2}}, tensors=tensors)
    with pytest.raises(ConfigWeightsMismatchError, match=r"has rank 2 .* gives it r=4") as err:
        open_adapter_dir(bad)
    assert err.value.module == "model.layers.1.self_attn.v_proj"


@pytest.mark.torchless
@pytest.mark.parametrize(
    "change, words",
    [
        ({"drop": "lora_B"}, "has lora_A but no lora_B"),
        ({"config": {"use_dora": True}}, "no lora_magnitude_vector although use_dora"),
        ({"config": {"target_modules": ["k_proj", "v_proj"]}}, "target_modules ['k_proj', 'v_proj'] does not select"),
        ({"config": {"target_modules": r".*\.v_proj"}}, "does not select"),
        ({"config": {"target_modules": ["self_attn.q"]}}, "does not select"),  # a suffix is whole components
    ],
    ids=["half-a-pair", "dora-without-magnitudes", "module-not-targeted", "regex-not-matching", "partial-name"],
)
def test_save_refuses_tensors_peft_could_not_place(avc_repo, tmp_path, change, words):
    tensors = lora_tensors()
    if "drop" in change:
        del tensors[f"{Q0}.{change['drop']}.weight"]
    src = write_adapter(tmp_path / "out", config=change.get("config"), tensors=tensors)
    save_refused(avc_repo, src, words)


@pytest.mark.torchless
@pytest.mark.parametrize(
    "targets", [["q_proj", "v_proj"], r".*\.(q|v)_proj", "all-linear", ["self_attn.q_proj", "v_proj"]]
)
def test_target_modules_that_select_every_module_pass(tmp_path, targets):
    open_adapter_dir(write_adapter(tmp_path / "ok", config={"target_modules": targets}))


# --- files that are not what they seem -------------------------------------------------------


@pytest.mark.torchless
def test_a_weights_symlink_to_etc_passwd_is_refused_as_a_symlink(avc_repo, tmp_path):
    src = write_adapter(tmp_path / "out")
    (src / WEIGHTS).unlink()
    (src / WEIGHTS).symlink_to("/etc/passwd")
    line = save_refused(avc_repo, src, "is a symbolic link to /etc/passwd")
    assert "absurd" not in line
    proc = run_cli("inspect", str(src))
    refused(proc, "symbolic link to /etc/passwd")


@pytest.mark.torchless
def test_a_config_symlink_is_refused_without_reading_it(tmp_path):
    src = write_adapter(tmp_path / "out")
    real = tmp_path / "elsewhere.json"
    real.write_text((src / CONFIG).read_text())
    (src / CONFIG).unlink()
    (src / CONFIG).symlink_to(real)
    with pytest.raises(NotARegularFileError) as err:
        open_adapter_dir(src)
    assert err.value.kind == "symlink" and err.value.target == str(real)


@pytest.mark.torchless
@pytest.mark.parametrize("name", [WEIGHTS, CONFIG])
def test_a_fifo_is_refused_without_blocking(avc_repo, tmp_path, name):
    # Opening a FIFO for reading blocks until a writer comes: the command must not hang
    # (run_cli's timeout would fail this test), and must say what the file is.
    src = write_adapter(tmp_path / "out")
    (src / name).unlink()
    os.mkfifo(src / name)
    save_refused(avc_repo, src, "is a FIFO")


class RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.torchless
def test_a_plain_pickle_that_would_run_code_names_what_it_imports(tmp_path):
    # Written with pickle.dump, not torch.save: torch's restricted loader called it
    # "truncated or not a torch file". The scan needs no torch and runs nothing.
    src = write_adapter(tmp_path / "out")
    (src / WEIGHTS).unlink()
    marker = tmp_path / "PAYLOAD_RAN"
    (src / BIN).write_bytes(pickle.dumps({f"{Q0}.lora_A.weight": RunsCode(marker)}))
    from adaptvc.formats.legacy_bin import pickle_imports

    with open(src / BIN, "rb") as fh:
        assert pickle_imports(fh) == ["posix.system"]
    assert not marker.exists()


@pytest.mark.parametrize("command", ["save", "inspect", "convert"])
def test_every_command_refuses_the_plain_pickle_naming_its_import(avc_repo, tmp_path, command):
    src = write_adapter(tmp_path / "out")
    (src / WEIGHTS).unlink()
    marker = tmp_path / "PAYLOAD_RAN"
    (src / BIN).write_bytes(pickle.dumps({f"{Q0}.lora_A.weight": RunsCode(marker)}))
    before = repo_snapshot(avc_repo)
    args = ["save", "--adapter", "task_a", "--from", str(src), "-m", "m"] if command == "save" else [command, str(src)]
    line = refused(run_cli(*args, cwd=avc_repo), "would run code", "imports posix.system")
    assert "truncated" not in line
    assert not marker.exists() and (src / BIN).exists()
    assert repo_snapshot(avc_repo) == before
    with pytest.raises(UnsafePickleError) as err:
        open_adapter_dir(src)
    assert err.value.imports == ("posix.system",)


# --- what PEFT itself writes keeps passing (the validation is not stricter than PEFT) --------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"r": 4, "target_modules": ["q_proj", "v_proj"]},
        {"r": 4, "target_modules": ["q_proj", "v_proj"], "use_dora": True},
        {"r": 4, "target_modules": r".*\.(q|k)_proj", "rank_pattern": {"layers.1.self_attn.q_proj": 2}},
        {"r": 2, "target_modules": ["embed_tokens", "o_proj"], "alpha_pattern": {"o_proj": 4}},
        {"r": 4, "target_modules": "all-linear"},
    ],
    ids=["plain", "dora", "regex-and-rank-pattern", "embedding", "all-linear"],
)
def test_adapters_peft_saves_pass_and_peft_loads_them(tmp_path, kwargs):
    from peft import LoraConfig, PeftModel, get_peft_model

    from tests.models import perturb_adapter, tiny_llama

    model = get_peft_model(tiny_llama(), LoraConfig(**kwargs))
    perturb_adapter(model)
    model.save_pretrained(str(tmp_path / "a"), save_embedding_layers=False)
    checked = open_adapter_dir(tmp_path / "a", adapter_only=True)
    assert checked.header is not None and checked.header.tensors
    PeftModel.from_pretrained(tiny_llama(), str(tmp_path / "a"))  # and PEFT loads it
