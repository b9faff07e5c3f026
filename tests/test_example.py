"""The README's main job, `./dev.sh example`, runs end to end (CI runs it here)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.browser import open_page
from tests.conftest import REPO_ROOT


@pytest.mark.slow
def test_walkthrough_runs_offline_and_proves_its_claims(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "walkthrough.py"), "--workdir", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    elapsed = time.perf_counter() - started
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    for step in range(1, 8):
        assert f"== {step}. " in out
    # three versions from the callback, in the log of both clones
    assert out.count("task_a@v3") >= 2 and "task_a@v1" in out
    # the checked-out v1 reproduces epoch 1's outputs exactly (the script exits 1 otherwise)
    assert "max |logits(v1 checkout) - logits(after epoch 1)| = " in out
    assert "the teammate sees the same three versions" in out
    assert (tmp_path / "run" / "diff-v1-v3.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "run" / "teammate" / "adapters" / "task_a" / "adapter_model.safetensors").is_file()
    # it ends with the report of its run, which a browser renders: three versions, the
    # training metrics, and the diff of each version against its parent
    report = tmp_path / "run" / "report.html"
    assert any(line.endswith(f": {report}") for line in out.splitlines())
    with open_page(report) as page:
        assert page.console_errors == [] and page.requests == [report.resolve().as_uri()]
        refs = page.locator("svg.lineage g.node").evaluate_all("els => els.map(e => e.dataset.ref)")
        assert sorted(refs) == ["task_a@v1", "task_a@v2", "task_a@v3"]
        assert page.locator("svg.chart[data-metric=loss] polyline.series").count() == 1
        assert page.locator("figure.diff").count() == 2
    print(f"walkthrough took {elapsed:.1f} s")
