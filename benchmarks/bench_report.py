"""Benchmark `adaptvc compare`, `best` and `report` on a long history, against what a
user would otherwise run to get the same data (`adaptvc log --json`, then a script).

Two repositories:

- 1,000 versions of one adapter (version 1 saved for real, 2..1000 synthesised as real
  commits with ``git fast-import`` by tests/history_helpers.py: ranks changing, forks,
  merges, three metrics). Their weights are not in the cache, so the report draws no
  diff there: this measures everything else (lineage layout, charts, table, storage).
- 9 versions of a 7B-shaped rank-16 LoRA (32 layers × q,k,v,o_proj, fp16, ~34 MB each),
  for the report's default diffs: each of the 8 newest against its parent.

Each command runs as a whole process (interpreter start-up and imports included), several
times; medians are reported. The 1,000-version report is also opened in headless
chromium (Debian's, via Playwright): time until its ``load`` event.

    .venv/bin/python benchmarks/bench_report.py                  # about a minute on 2 cores
    .venv/bin/python benchmarks/bench_report.py --repeat 3 --update-docs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
from bench_env import command_env  # noqa: E402 - after the path it is found on

WORK = REPO_ROOT / "benchmarks" / ".work" / "report"
ENV = command_env(pycache=WORK.parent / "pycache", pythonpath=REPO_ROOT)
ADAPTVC = [sys.executable, "-m", "adaptvc"]
MARK_START, MARK_END = "<!-- bench_report:start -->", "<!-- bench_report:end -->"


def run(*args: str, cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([*ADAPTVC, *args], cwd=cwd, env=ENV, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"adaptvc {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return elapsed, proc.stdout


def new_repo(path: Path) -> None:
    import adaptvc

    path.mkdir(parents=True)
    for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "init"]):
        subprocess.run(["git", *args], cwd=path, env=ENV, check=True)
    adaptvc.init(path)


def long_history(path: Path, n: int) -> None:
    import adaptvc
    from tests.history_helpers import synthesise_history
    from tests.versioning_helpers import write_adapter

    new_repo(path)
    write_adapter(path / "adapters" / "task_a", 0)
    adaptvc.save(None, adapter="task_a", message="first", metrics={"eval_loss": 2.0, "loss": 1.8}, repo=path)
    os.environ.update({k: v for k, v in ENV.items() if k.startswith("GIT_")})
    synthesise_history(path, n)


def big_adapters(path: Path, n: int) -> None:
    from bench_versioning import write_adapter

    import adaptvc

    new_repo(path)
    for i in range(1, n + 1):
        write_adapter(path / "adapters" / "task_a", i)
        (path / "adapters" / "task_a" / "adapter_config.json").write_text(
            json.dumps(
                {
                    "peft_type": "LORA",
                    "r": 16,
                    "lora_alpha": 32,
                    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
                    "base_model_name_or_path": "meta-llama/Llama-2-7b-hf",
                }
            )
        )
        adaptvc.save(None, adapter="task_a", message=f"epoch {i}", metrics={"eval_loss": 2.0 / i}, repo=path)


def browser_load_seconds(report: Path) -> float:
    from tests.browser import open_page

    with open_page(report) as page:
        assert page.console_errors == [], page.console_errors
        nav = page.evaluate("JSON.stringify(performance.getEntriesByType('navigation')[0])")
        entry = json.loads(nav)
        return (entry["loadEventEnd"] - entry["startTime"]) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per command (median reported)")
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--update-docs", action="store_true", help="rewrite this section of docs/benchmarks.md")
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    long, big = WORK / "long", WORK / "big"
    long_history(long, args.versions)
    big_adapters(big, 9)

    commands = {
        "log --json": ["log", "task_a", "--json"],
        "compare --json": ["compare", "task_a", "--json"],
        "compare (text)": ["compare", "task_a"],
        "best --metric eval_loss": ["best", "task_a", "--metric", "eval_loss"],
        "report": ["report", "-o", "report.html", "--json"],
    }
    times: dict[str, list[float]] = {k: [] for k in commands}
    inside: list[float] = []
    for _ in range(args.repeat):
        for name, argv in commands.items():
            elapsed, out = run(*argv, cwd=long)
            times[name].append(elapsed)
            if name == "report":
                inside.append(json.loads(out)["seconds"])
    report = long / "report.html"
    size = report.stat().st_size
    load = statistics.median(browser_load_seconds(report) for _ in range(3))
    diff_times, diff_inside = [], []
    for _ in range(args.repeat):
        elapsed, out = run("report", "-o", "report.html", "--json", cwd=big)
        doc = json.loads(out)
        assert len(doc["diffs"]) == 8, doc
        diff_times.append(elapsed)
        diff_inside.append(doc["seconds"])
    no_diff, _ = run("report", "-o", "nodiff.html", "--max-diffs", "0", cwd=big)

    base = statistics.median(times["log --json"])
    lines = [
        f"{args.versions:,} versions of one adapter (forks, merges, 4 ranks, 3 metrics). Whole processes, median "
        f"of {args.repeat} runs. Machine: {os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f} at the end (shared: compare "
        "the ratios).",
        "",
        "| command | s | vs `adaptvc log task_a --json` |",
        "|---|---:|---:|",
    ]
    for name, xs in times.items():
        lines.append(f"| `adaptvc {name}` | {statistics.median(xs):.3f} | {statistics.median(xs) / base:.2f}x |")
    lines += [
        "",
        f"- The report of {args.versions:,} versions: **{statistics.median(inside):.2f} s** to build and write "
        f"(inside the process; target < 5 s), {size / 1e6:.2f} MB of HTML; headless chromium reaches its `load` "
        f"event in {load:.2f} s.",
        f"- With diffs (9 versions of a 7B-shaped rank-16 LoRA, 34 MB each; the 8 newest against their parent): "
        f"{statistics.median(diff_times):.2f} s as a process ({statistics.median(diff_inside):.2f} s inside), "
        f"{no_diff:.2f} s with `--max-diffs 0`: the diffs are the cost, ~"
        f"{(statistics.median(diff_times) - no_diff) / 8:.2f} s each.",
        "",
        "Reproduce: `.venv/bin/python benchmarks/bench_report.py"
        + (f" --repeat {args.repeat}" if args.repeat != 5 else "")
        + "`",
    ]
    table = "\n".join(lines)
    print(table)
    if args.update_docs:
        update_docs(table)


def update_docs(table: str) -> None:
    path = REPO_ROOT / "docs" / "benchmarks.md"
    text = path.read_text()
    if MARK_START in text:
        text = re.sub(
            re.escape(MARK_START) + r".*?" + re.escape(MARK_END),
            lambda _: f"{MARK_START}\n{table}\n{MARK_END}",
            text,
            flags=re.S,
        )
    else:
        section = f"## Compare, best, report: 1,000 versions\n\n{MARK_START}\n{table}\n{MARK_END}\n"
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


if __name__ == "__main__":
    main()
