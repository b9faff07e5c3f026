"""Streaming: a diff's peak memory stays near one module, not the size of the files."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.conftest import REPO_ROOT
from tests.test_diff_math import PREFIX, write_adapter

MB = 1 << 20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_peak_rss_grows_by_far_less_than_the_files(tmp_path):
    # Two 48 MB fp32 adapters: 64 modules of 4096×16 factors and a 16 MB modules_to_save copy.
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        t = {}
        for i in range(64):
            m = f"{PREFIX}model.layers.{i}.self_attn.q_proj"
            t[f"{m}.lora_A.weight"] = rng.standard_normal((16, 4096), dtype=np.float32)
            t[f"{m}.lora_B.weight"] = rng.standard_normal((4096, 16), dtype=np.float32)
        t[f"{PREFIX}lm_head.weight"] = rng.standard_normal((1024, 4096), dtype=np.float32)
        write_adapter(tmp_path / name, t, {"r": 16})
        del t
    size = (tmp_path / "a" / "adapter_model.safetensors").stat().st_size
    assert size > 45 * MB
    code = textwrap.dedent(f"""
        import re, sys
        import numpy, adaptvc
        from adaptvc.adapter_diff import engine, sources
        def hwm():
            return int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) * 1024
        a, b = sources.resolve_source({str(tmp_path / "a")!r}), sources.resolve_source({str(tmp_path / "b")!r})
        before = hwm()
        result = engine.diff_sources(a, b)
        assert result.summary.modules_compared == 64 and len(result.tensors) == 1
        print(hwm() - before)
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    growth = int(proc.stdout.strip())
    # One module's factors are 1 MB of float64 per side, an elementwise chunk three 4 MB
    # buffers (plus mapped chunks and allocator slack): far below the 2 × 48 MB a
    # non-streaming read would hold.
    assert growth < 40 * MB, f"peak RSS grew by {growth / MB:.0f} MB for two {size / MB:.0f} MB files"


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_worker_threads_change_nothing_and_errors_reach_the_caller(tmp_path, monkeypatch, workers):
    # Modules are compared by worker threads and consumed in file order: the result is
    # the same whatever their number, and a worker's exception is the caller's.
    import adaptvc
    from adaptvc.adapter_diff import engine
    from adaptvc.errors import InvalidAdapterError

    rng = np.random.default_rng(5)
    for name in ("a", "b"):
        t = {}
        for i in range(12):
            m = f"{PREFIX}model.layers.{i}.self_attn.q_proj"
            t[f"{m}.lora_A.weight"] = rng.standard_normal((4, 64), dtype=np.float32)
            t[f"{m}.lora_B.weight"] = rng.standard_normal((32, 4), dtype=np.float32)
        write_adapter(tmp_path / name, t, {"r": 4})
    monkeypatch.setattr(engine, "_workers", lambda: 1)
    serial = adaptvc.diff(tmp_path / "a", tmp_path / "b").to_dict()
    monkeypatch.setattr(engine, "_workers", lambda: workers)
    assert adaptvc.diff(tmp_path / "a", tmp_path / "b").to_dict() == serial

    def failing(reader, m, buffers, side):
        if m.name.endswith("layers.7.self_attn.q_proj"):
            raise InvalidAdapterError("boom")
        return real(reader, m, buffers, side)

    real = engine._read_update
    monkeypatch.setattr(engine, "_read_update", failing)
    with pytest.raises(InvalidAdapterError, match="boom"):
        adaptvc.diff(tmp_path / "a", tmp_path / "b")
