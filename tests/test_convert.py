"""Legacy adapter_model.bin: written only when asked, read safely, converted to safetensors."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors import safe_open

import adaptvc
from adaptvc.errors import AdaptvcError, InvalidAdapterError, UnsafeFileError
from adaptvc.formats.legacy_bin import load_bin_state_dict
from tests.conftest import run_cli
from tests.models import perturb_adapter, tiny_llama
from tests.test_extract import CONFIG, WEIGHTS, logits

BIN = "adapter_model.bin"


@pytest.fixture(scope="module")
def model():
    m = get_peft_model(tiny_llama(), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    perturb_adapter(m)
    return m.eval()


@pytest.fixture
def bin_dir(model, tmp_path) -> Path:
    return adaptvc.save_adapter(model, tmp_path / "legacy", safe_serialization=False)


class RunsCode:
    """A pickle payload: unpickling it calls os.system, i.e. runs a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def evil_dir(tmp_path) -> tuple[Path, Path]:
    directory, marker = tmp_path / "evil", tmp_path / "PAYLOAD_RAN"
    directory.mkdir()
    (directory / CONFIG).write_text(json.dumps({"peft_type": "LORA", "r": 4}))
    torch.save({"base_model.model.x.lora_A.weight": torch.zeros(2, 2), "x": RunsCode(marker)}, directory / BIN)
    return directory, marker


# --- writing and reading .bin ---------------------------------------------------------


def test_bin_is_written_only_when_asked_and_equals_peft(model, bin_dir, tmp_path):
    assert sorted(p.name for p in bin_dir.iterdir()) == [CONFIG, BIN]
    model.save_pretrained(str(tmp_path / "peft"), safe_serialization=False)
    mine, theirs = load_bin_state_dict(bin_dir / BIN), load_bin_state_dict(tmp_path / "peft" / BIN)
    assert sorted(mine) == sorted(theirs)
    for key in theirs:
        assert mine[key].dtype == theirs[key].dtype and torch.equal(mine[key], theirs[key]), key
    assert (bin_dir / BIN).read_bytes() == (tmp_path / "peft" / BIN).read_bytes()
    assert (bin_dir / CONFIG).read_text() == (adaptvc.save_adapter(model, tmp_path / "st") / CONFIG).read_text()


def test_peft_loads_the_bin_to_the_same_logits(model, bin_dir):
    fresh = PeftModel.from_pretrained(tiny_llama(), str(bin_dir)).eval()
    torch.testing.assert_close(logits(fresh), logits(model), rtol=0, atol=0)


def test_saving_in_one_format_removes_the_other_formats_stale_weights(model, bin_dir):
    # PEFT prefers safetensors: a stale one next to a new .bin would be loaded instead.
    adaptvc.save_adapter(model, bin_dir)
    assert sorted(p.name for p in bin_dir.iterdir()) == [CONFIG, WEIGHTS]
    adaptvc.save_adapter(model, bin_dir, safe_serialization=False)
    assert sorted(p.name for p in bin_dir.iterdir()) == [CONFIG, BIN]


def test_a_pickle_that_runs_code_is_refused_and_does_not_run(evil_dir):
    directory, marker = evil_dir
    with pytest.raises(UnsafeFileError) as err:
        load_bin_state_dict(directory / BIN)
    assert str(directory / BIN) in err.value.message and "run code" in err.value.message
    assert "posix.system" in err.value.message  # names the culprit
    assert not marker.exists(), "the payload ran"
    # The payload is real: an unrestricted load would have run it.
    torch.load(directory / BIN, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("command", ["inspect", "convert"])
def test_cli_refuses_the_pickle_in_one_line(evil_dir, command):
    directory, marker = evil_dir
    proc = run_cli(command, str(directory))
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith(f"Error: {directory / BIN}: refused")
    assert "Traceback" not in proc.stderr
    assert not marker.exists()
    assert (directory / BIN).exists()  # convert left it alone


@pytest.mark.parametrize(
    "content, problem",
    [(b"", "truncated or not a torch file"), (b"not a pickle at all", "truncated or not a torch file")],
    ids=["empty", "garbage"],
)
def test_unreadable_bin_is_an_invalid_adapter(tmp_path, content, problem):
    (tmp_path / BIN).write_bytes(content)
    with pytest.raises(InvalidAdapterError, match=problem):
        load_bin_state_dict(tmp_path / BIN)


def test_bin_that_is_not_a_state_dict_is_refused(tmp_path):
    torch.save([torch.zeros(1)], tmp_path / BIN)
    with pytest.raises(InvalidAdapterError, match="expected a mapping"):
        load_bin_state_dict(tmp_path / BIN)


# --- convert ----------------------------------------------------------------------------


def test_convert_gives_the_file_save_adapter_writes(model, bin_dir, tmp_path):
    target = adaptvc.convert(bin_dir)
    assert target == bin_dir / WEIGHTS
    assert sorted(p.name for p in bin_dir.iterdir()) == [CONFIG, WEIGHTS]  # the .bin is gone
    direct = adaptvc.save_adapter(model, tmp_path / "direct")
    assert target.read_bytes() == (direct / WEIGHTS).read_bytes()
    with safe_open(str(target), "pt") as fh:
        assert fh.metadata() == {"format": "pt"}
    fresh = PeftModel.from_pretrained(tiny_llama(), str(bin_dir)).eval()
    torch.testing.assert_close(logits(fresh), logits(model), rtol=0, atol=0)


def test_convert_keep_bin(bin_dir):
    adaptvc.convert(bin_dir, keep_bin=True)
    assert sorted(p.name for p in bin_dir.iterdir()) == sorted([CONFIG, WEIGHTS, BIN])


def test_convert_de_aliases_shared_and_non_contiguous_tensors(tmp_path):
    shared = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    state = {
        "a.weight": shared,
        "b.weight": shared,
        "c.weight": shared.t(),
        "d.weight": torch.ones(2, dtype=torch.bfloat16),
    }
    torch.save(state, tmp_path / BIN)
    (tmp_path / CONFIG).write_text(json.dumps({"peft_type": "LORA"}))
    with safe_open(str(adaptvc.convert(tmp_path)), "pt") as fh:
        assert sorted(fh.keys()) == sorted(state)
        for key, value in state.items():
            got = fh.get_tensor(key)
            assert got.dtype == value.dtype and torch.equal(got, value), key


def test_convert_refuses_when_safetensors_exists(model, bin_dir):
    shutil.copy(adaptvc.save_adapter(model, bin_dir.parent / "st") / WEIGHTS, bin_dir / WEIGHTS)
    with pytest.raises(AdaptvcError, match="already has adapter_model.safetensors") as err:
        adaptvc.convert(bin_dir)
    assert "remove" in err.value.hint
    assert (bin_dir / BIN).exists()


@pytest.mark.parametrize(
    "missing, problem", [(BIN, "no adapter_model.bin to convert"), (CONFIG, "adapter_config.json: no such file")]
)
def test_convert_needs_an_adapter_directory_with_a_bin(bin_dir, missing, problem):
    (bin_dir / missing).unlink()
    with pytest.raises(InvalidAdapterError, match=problem):
        adaptvc.convert(bin_dir)


def test_cli_convert_json(bin_dir):
    proc = run_cli("convert", str(bin_dir), "--json", check=True)
    out = json.loads(proc.stdout)
    assert out == {
        "directory": str(bin_dir),
        "weights_file": str(bin_dir / WEIGHTS),
        "bin_removed": True,
        "tensor_count": 8,
        "parameter_count": out["parameter_count"],
    }
    # per layer, r=4: q_proj 32→32 is A 4×32 + B 32×4; v_proj 32→16 (2 kv heads) is A 4×32 + B 16×4
    assert out["parameter_count"] == 2 * ((4 * 32 + 32 * 4) + (4 * 32 + 16 * 4))


def test_cli_convert_text(bin_dir):
    proc = run_cli("convert", str(bin_dir), "--keep-bin", check=True)
    assert proc.stdout.startswith(str(bin_dir / WEIGHTS))
    assert "kept" in proc.stderr
    assert (bin_dir / BIN).exists()
