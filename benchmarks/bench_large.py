"""Large adapters: adaptvc against md5sum, cp and DVC on a 1.66 GB file; many versions.

Part 1 (``large``). A Llama-70B-shaped LoRA, r=64 on every linear module (80 layers; q,k,v,o,
gate,up,down; hidden 8192, k/v 1024, MLP 28672; fp16, 1.66 GB) is written with safetensors
from numpy, twice (v2 = v1 plus ~1% noise), in a temporary directory. Whole processes,
interleaved, ``--repeat`` rounds, medians; peak RSS of each process from ``wait4``:

- ``md5sum W``, ``cp W COPY``, ``cat W1 W2 > /dev/null`` (the floors);
- ``adaptvc save --from DIR`` and ``adaptvc save`` in place (a fresh repository each run)
  against ``dvc add`` + ``git add`` + ``git commit``;
- ``adaptvc checkout task_a@v1`` (work tree at v2) against ``git checkout REV -- DIR`` +
  ``dvc checkout``;
- ``adaptvc diff task_a@v1 task_a@v2 --json`` against reading both files;
- ``adaptvc push --no-git`` / ``adaptvc pull --no-git`` against ``dvc push`` / ``dvc pull``,
  a directory remote emptied (push) or an emptied cache and work tree (pull) each run.

With ``--baseline DIR`` (a checkout of older adaptvc code, e.g. ``git archive bbd1944``)
every adaptvc command also runs with that code, in the same rounds: a before/after table.

Part 2 (``many``). 100 adapters x 10 versions, and 10,000 versions of one adapter, the
history written directly as manifest lines and commits (``git fast-import``), then the
real commands timed: ``log``, ``status``, ``show``, and a save at version 10,001 against
a save at version 1 of the same (small) adapter.

    .venv/bin/python benchmarks/bench_large.py --repeat 3
    .venv/bin/python benchmarks/bench_large.py --part large --baseline /tmp/adaptvc-bbd1944

Everything lives under ``--work`` (default ``/work/tmp-bench`` when it exists, else the
system temp dir) and is removed at the end. Page cache: warm (the files were just
written) unless ``--drop-caches`` (root: ``sync; echo 3 > /proc/sys/vm/drop_caches``
before every timed process).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from bench_env import command_env

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
DVC = str(Path(sys.executable).parent / "dvc")
W = "adapter_model.safetensors"
A = "adapters/task_a"
MARK_START, MARK_END = "<!-- bench_large:start -->", "<!-- bench_large:end -->"
BASE_ENV = command_env()

# module -> (in_features, out_features) of the 70B base layer
SHAPES = {
    "self_attn.q_proj": (8192, 8192),
    "self_attn.k_proj": (8192, 1024),
    "self_attn.v_proj": (8192, 1024),
    "self_attn.o_proj": (8192, 8192),
    "mlp.gate_proj": (8192, 28672),
    "mlp.up_proj": (8192, 28672),
    "mlp.down_proj": (28672, 8192),
}


LAUNCHER = """
import os, sys, time
out, cwd, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
t = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.chdir(cwd)
    os.execvp(cmd[0], cmd)
_, status, usage = os.wait4(pid, 0)
t = time.perf_counter() - t
open(out, "w").write(f"{t} {usage.ru_maxrss}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


class Runner:
    """Runs whole processes; records wall time and peak RSS per label."""

    def __init__(self, drop_caches: bool) -> None:
        self.drop_caches = drop_caches
        self.wall: dict[str, list[float]] = defaultdict(list)
        self.rss: dict[str, list[float]] = defaultdict(list)

    def run(self, cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
        """One process: ``(seconds, peak RSS MB)``; its output is discarded (stderr kept
        in a temporary file for the error message), so no pipe can fill and block it."""
        if self.drop_caches:
            subprocess.run(["sync"], check=True)
            Path("/proc/sys/vm/drop_caches").write_text("3\n")
        # Through a small launcher that forks the command: a child exec'ed straight from
        # this (large) process would report this process's peak RSS as its own, since the
        # kernel carries the high-water mark across exec.
        with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r") as res:
            proc = subprocess.run(
                [sys.executable, "-S", "-c", LAUNCHER, res.name, str(cwd), *cmd],
                env=env or BASE_ENV,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
            if proc.returncode != 0:
                err.seek(0)
                raise SystemExit(f"{' '.join(cmd)} (in {cwd}) failed:\n{err.read().decode()}")
            seconds, maxrss_kb = res.read().split()
        return float(seconds), int(maxrss_kb) / 1024

    def timed(self, label: str, steps: list[tuple[list[str], Path]], env: dict[str, str] | None = None) -> None:
        """Run ``steps`` one after the other as one contender: times add up, RSS is the max."""
        total, peak = 0.0, 0.0
        for cmd, cwd in steps:
            t, r = self.run(cmd, cwd, env)
            total += t
            peak = max(peak, r)
        self.wall[label].append(total)
        self.rss[label].append(peak)

    def med(self, label: str) -> float:
        return statistics.median(self.wall[label])

    def peak(self, label: str) -> float:
        return max(self.rss[label])


def quiet(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env or BASE_ENV, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} (in {cwd}) failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


# --- the adapter ---------------------------------------------------------------------------


def write_large_adapter(d1: Path, d2: Path, layers: int, r: int = 64) -> int:
    """v1 and v2 (v1 + ~1% noise) of the 70B-shaped adapter; the file size."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    t1: dict[str, np.ndarray] = {}
    t2: dict[str, np.ndarray] = {}
    for i in range(layers):
        for mod, (fan_in, fan_out) in SHAPES.items():
            pre = f"base_model.model.model.layers.{i}.{mod}"
            for name, shape in (("lora_A", (r, fan_in)), ("lora_B", (fan_out, r))):
                x = rng.standard_normal(shape, dtype=np.float32) * 0.01
                t1[f"{pre}.{name}.weight"] = x.astype(np.float16)
                x += rng.standard_normal(shape, dtype=np.float32) * 1e-4
                t2[f"{pre}.{name}.weight"] = x.astype(np.float16)
    config = {
        "base_model_name_or_path": "meta-llama/Llama-3.1-70B",
        "bias": "none",
        "lora_alpha": 2 * r,
        "lora_dropout": 0.05,
        "peft_type": "LORA",
        "r": r,
        "target_modules": sorted(m.split(".")[1] for m in SHAPES),
        "task_type": "CAUSAL_LM",
    }
    for d, t in ((d1, t1), (d2, t2)):
        d.mkdir(parents=True, exist_ok=True)
        save_file(t, str(d / W), metadata={"format": "pt"})
        (d / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
        t.clear()
    return (d1 / W).stat().st_size


def git_init(path: Path) -> None:
    path.mkdir(parents=True)
    quiet(["git", "init", "-q", "-b", "main"], path)
    (path / "README.md").write_text("bench\n")
    quiet(["git", "add", "README.md"], path)
    quiet(["git", "commit", "-q", "-m", "init"], path)


PYCACHE = Path(tempfile.gettempdir()) / f"bench-large-pycache-{os.getpid()}"


def adaptvc_cmd(code: Path) -> tuple[list[str], dict[str, str]]:
    """The command and environment that run adaptvc from ``code`` (bytecode cached, as
    for an installed package, outside the source tree)."""
    env = dict(BASE_ENV, PYTHONPATH=str(code), PYTHONPYCACHEPREFIX=str(PYCACHE / code.name))
    return [sys.executable, "-m", "adaptvc"], env


def rm(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def drop_workspace_object(repo: Path) -> None:
    """Remove the work tree's weights and their cache object (the one its pointer names)."""
    md5 = re.search(r"md5: ([0-9a-f]{32})", (repo / A / f"{W}.dvc").read_text()).group(1)  # type: ignore[union-attr]
    obj = repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    obj.chmod(0o644)
    obj.unlink()
    rm(repo / A / W)


# --- part 1: one large adapter -------------------------------------------------------------


def bench_large(work: Path, runner: Runner, codes: dict[str, Path], repeat: int, layers: int) -> dict:
    src1, src2 = work / "out" / "v1", work / "out" / "v2"
    size = write_large_adapter(src1, src2, layers)
    tpl_dvc = work / "tpl-dvc"
    git_init(tpl_dvc)
    quiet([DVC, "init", "-q"], tpl_dvc)
    quiet(["git", "commit", "-q", "-m", "dvc init"], tpl_dvc)
    tpls = {}
    for name, code in codes.items():
        cmd, env = adaptvc_cmd(code)
        tpls[name] = work / f"tpl-{name}"
        git_init(tpls[name])
        quiet([*cmd, "init"], tpls[name], env)

    # checkout / diff / push / pull repositories: v1 and v2 saved, work tree at v2
    held = {}
    for name, code in codes.items():
        cmd, env = adaptvc_cmd(code)
        held[name] = work / f"held-{name}"
        shutil.copytree(tpls[name], held[name], symlinks=True)
        quiet([*cmd, "save", "--adapter", "task_a", "--from", str(src1), "-m", "v1"], held[name], env)
        quiet([*cmd, "save", "--adapter", "task_a", "--from", str(src2), "-m", "v2"], held[name], env)
        quiet([*cmd, "remote", "add", "store", str(work / f"remote-{name}"), "--default"], held[name], env)
    dheld = work / "held-dvc"
    shutil.copytree(tpl_dvc, dheld, symlinks=True)
    (dheld / A).mkdir(parents=True)
    for src in (src1, src2):
        shutil.copy(src / "adapter_config.json", dheld / A)
        shutil.copy(src / W, dheld / A / W)
        quiet([DVC, "add", "-q", f"{A}/{W}"], dheld)
        quiet(["git", "add", A], dheld)
        quiet(["git", "commit", "-q", "-m", src.name], dheld)
    v1_rev = quiet(["git", "rev-parse", "HEAD~1"], dheld).strip()
    quiet([DVC, "remote", "add", "-d", "store", str(work / "remote-dvc")], dheld)
    time.sleep(2.1)  # past the stat caches' "racy" window, as in real use

    for rnd in range(repeat):
        print(f"round {rnd + 1}/{repeat}", file=sys.stderr)
        runner.timed("md5sum", [(["md5sum", str(src1 / W)], work)])
        runner.timed("cp", [(["cp", str(src1 / W), str(work / "copy")], work)])
        runner.timed(
            "cp + sync", [(["cp", str(src1 / W), str(work / "copy2")], work), (["sync", str(work / "copy2")], work)]
        )
        rm(work / "copy")
        rm(work / "copy2")
        runner.timed("read both (cat)", [(["sh", "-c", f"cat '{src1 / W}' '{src2 / W}' > /dev/null"], work)])
        # dvc add + git commit, fresh repository
        d = work / "save-dvc"
        shutil.copytree(tpl_dvc, d, symlinks=True)
        shutil.copytree(src1, d / A)
        runner.timed(
            "dvc add + git commit",
            [
                ([DVC, "add", "-q", f"{A}/{W}"], d),
                (["git", "add", f"{A}/{W}.dvc", f"{A}/.gitignore", f"{A}/adapter_config.json"], d),
                (["git", "commit", "-q", "-m", "v1"], d),
            ],
        )
        rm(d)
        for name, code in codes.items():
            cmd, env = adaptvc_cmd(code)
            a = work / f"save-{name}"
            shutil.copytree(tpls[name], a, symlinks=True)
            runner.timed(
                f"{name}: save --from",
                [([*cmd, "save", "--adapter", "task_a", "--from", str(src1), "-m", "v1"], a)],
                env,
            )
            rm(a)
            shutil.copytree(tpls[name], a, symlinks=True)
            shutil.copytree(src1, a / A)
            runner.timed(f"{name}: save in place", [([*cmd, "save", "--adapter", "task_a", "-m", "v1"], a)], env)
            rm(a)
            h = held[name]
            runner.timed(f"{name}: checkout", [([*cmd, "checkout", "task_a@v1"], h)], env)
            quiet([*cmd, "checkout", "task_a@v2"], h, env)
            runner.timed(f"{name}: diff", [([*cmd, "diff", "task_a@v1", "task_a@v2", "--json"], h)], env)
            rm(work / f"remote-{name}")
            runner.timed(f"{name}: push", [([*cmd, "push", "task_a@v2", "--no-git", "-q"], h)], env)
            drop_workspace_object(h)  # pull fetches v2 into the cache and writes it out
            runner.timed(f"{name}: pull", [([*cmd, "pull", "--no-git", "-q"], h)], env)
        # DVC: checkout, push, pull
        runner.timed(
            "git checkout + dvc checkout",
            [(["git", "checkout", v1_rev, "--", A], dheld), ([DVC, "checkout", "-q"], dheld)],
        )
        quiet(["git", "checkout", "HEAD", "--", A], dheld)
        quiet([DVC, "checkout", "-q"], dheld)
        rm(work / "remote-dvc")
        runner.timed("dvc push", [([DVC, "push", "-q"], dheld)])
        drop_workspace_object(dheld)
        runner.timed("dvc pull", [([DVC, "pull", "-q"], dheld)])
    return {"size": size}


# --- part 2: many versions -----------------------------------------------------------------


def small_adapter(d: Path, seed: int) -> Path:
    from tests.versioning_helpers import write_adapter

    return write_adapter(d, seed)


def synthesise(repo: Path, adapters: list[str], total: int, per_commit: int) -> None:
    """Versions 2..``total`` of each adapter appended to its manifest (copies of v1's record
    with other ids), ``per_commit`` versions per adapter in each commit, each commit with
    its versions' trailers, and a ``NAME@vN`` tag per version, written with git fast-import."""
    from dataclasses import replace

    from adaptvc.manifest import ParentLink, dumps_record, read_manifest
    from adaptvc.storage.git_ops import TRAILER, trailer_value

    lines: dict[str, list[str]] = {}
    prev: dict[str, object] = {}
    for name in adapters:
        manifest = repo / "adapters" / name / "versions.jsonl"
        (first,) = read_manifest(manifest)
        lines[name] = [manifest.read_text().rstrip("\n")]
        prev[name] = first
    stream: list[bytes] = []
    mark = 0
    first_commit = True
    for start in range(2, total + 1, per_commit):
        stop = min(start + per_commit, total + 1)
        trailers, files, tags = [], [], []
        for name in adapters:
            for i in range(start, stop):
                p = prev[name]
                v = replace(
                    p,  # type: ignore[type-var]
                    version=i,
                    id=hashlib.md5(f"{name}@{i}".encode()).hexdigest(),
                    message=f"epoch {i}",
                    created_at=f"2099-01-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}.{i:06d}+00:00",
                    parents=(ParentLink(name, p.version, p.id),),  # type: ignore[attr-defined]
                    metrics={"eval_loss": round(2.0 / i, 4)},
                )
                lines[name].append(dumps_record(v))
                trailers.append(f"{TRAILER}: {trailer_value(v.adapter, v.version, v.id, v.created_at)}")
                tags.append(v.ref)
                prev[name] = v
            data = ("\n".join(lines[name]) + "\n").encode()
            files.append(
                b"M 100644 inline adapters/%s/versions.jsonl\ndata %d\n%s\n" % (name.encode(), len(data), data)
            )
        mark += 1
        msg = (f"versions {start}..{stop - 1}\n\n" + "\n".join(trailers) + "\n").encode()
        stream.append(
            b"commit refs/heads/main\nmark :%d\ncommitter B <b@e> %d +0000\ndata %d\n%s"
            % (mark, 1_700_000_000 + start, len(msg), msg)
        )
        if first_commit:
            stream.append(b"from refs/heads/main^0\n")
            first_commit = False
        stream.extend(files)
        for t in tags:
            stream.append(b"reset refs/tags/%s\nfrom :%d\n\n" % (t.encode(), mark))
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, env=BASE_ENV, input=b"".join(stream), check=True)
    subprocess.run(["git", "checkout", "-q", "-f", "main"], cwd=repo, env=BASE_ENV, check=True)
    subprocess.run(["git", "pack-refs", "--all"], cwd=repo, env=BASE_ENV, check=True)


def bench_many(work: Path, runner: Runner, code: Path, repeat: int, versions: int) -> dict:
    import adaptvc

    cmd, env = adaptvc_cmd(code)
    srcs = [small_adapter(work / "small" / f"s{k}", seed=k) for k in range(2)]
    out: dict = {}

    wide = work / "wide"
    git_init(wide)
    adaptvc.init(wide)
    names = [f"adapter_{k:03d}" for k in range(100)]
    for name in names:
        adaptvc.save(srcs[0], adapter=name, message="v1", repo=wide)
    synthesise(wide, names, 10, 1)
    many = work / "deep"
    git_init(many)
    adaptvc.init(many)
    adaptvc.save(srcs[0], adapter="task_a", message="v1", repo=many)
    synthesise(many, ["task_a"], versions, 200)
    fresh = work / "fresh"
    git_init(fresh)
    adaptvc.init(fresh)
    adaptvc.save(srcs[0], adapter="task_a", message="v1", repo=fresh)
    time.sleep(2.1)
    for rnd in range(repeat):
        print(f"many-versions round {rnd + 1}/{repeat}", file=sys.stderr)
        for label, repo in (("100x10", wide), (f"1x{versions}", many)):
            ad = "adapter_050" if repo is wide else "task_a"
            mid = 5 if repo is wide else versions // 2
            runner.timed(f"{label}: log {ad}", [([*cmd, "log", ad], repo)], env)
            if repo is wide:
                runner.timed(f"{label}: log", [([*cmd, "log"], repo)], env)
            runner.timed(f"{label}: status", [([*cmd, "status"], repo)], env)
            runner.timed(f"{label}: show {ad}", [([*cmd, "show", ad], repo)], env)
            runner.timed(f"{label}: show {ad}@v{mid}", [([*cmd, "show", f"{ad}@v{mid}"], repo)], env)
        # a save on top of 10,000 versions against a save on top of 1 (alternating sources,
        # so that every save records a new version)
        src = srcs[(rnd + 1) % 2]
        runner.timed(
            f"save at version {versions}+",
            [([*cmd, "save", "--adapter", "task_a", "--from", str(src), "-m", "x"], many)],
            env,
        )
        runner.timed(
            "save at version 1+", [([*cmd, "save", "--adapter", "task_a", "--from", str(src), "-m", "x"], fresh)], env
        )
    return out


# --- report --------------------------------------------------------------------------------


def large_table(r: Runner, size: int, before: bool, repeat: int) -> list[str]:
    floor = max(r.med("md5sum"), r.med("cp"))
    dvc_save = r.med("dvc add + git commit")
    lines = [
        "| contender | median s | peak RSS MB |" + (" before (bbd1944) s | before RSS MB |" if before else ""),
        "|---|---:|---:|" + ("---:|---:|" if before else ""),
    ]
    order = ["md5sum", "cp", "cp + sync", "read both (cat)"]
    ours = ["save --from", "save in place", "checkout", "diff", "push", "pull"]
    theirs = ["dvc add + git commit", "git checkout + dvc checkout", "dvc push", "dvc pull"]
    for label in order + [f"adaptvc: {o}" for o in ours] + theirs:
        if label not in r.wall:
            continue
        row = f"| {label} | {r.med(label):.2f} | {r.peak(label):.0f} |"
        if before:
            b = label.replace("adaptvc:", "before:")
            row += f" {r.med(b):.2f} | {r.peak(b):.0f} |" if b in r.wall else " | |"
        lines.append(row)
    targets = [
        ("save --from / max(md5sum, cp)", r.med("adaptvc: save --from") / floor, 1.5),
        ("save in place / max(md5sum, cp)", r.med("adaptvc: save in place") / floor, 1.5),
        ("checkout / max(md5sum, cp)", r.med("adaptvc: checkout") / floor, 1.5),
        ("save --from / (dvc add + git commit)", r.med("adaptvc: save --from") / dvc_save, 0.6),
        ("save in place / (dvc add + git commit)", r.med("adaptvc: save in place") / dvc_save, 0.6),
        ("diff / read both files", r.med("adaptvc: diff") / r.med("read both (cat)"), 2.0),
        ("push / dvc push", r.med("adaptvc: push") / r.med("dvc push"), None),
        ("pull / dvc pull", r.med("adaptvc: pull") / r.med("dvc pull"), None),
    ]
    lines += ["", "| ratio (same run) | measured | target | |", "|---|---:|---:|---|"]
    for name, value, target in targets:
        verdict = "" if target is None else ("met" if value <= target else "**missed**")
        lines.append(f"| {name} | {value:.2f}x | {'' if target is None else f'≤ {target}x'} | {verdict} |")
    for label, limit in (("save --from", 150), ("save in place", 150), ("checkout", 150), ("diff", 400)):
        peak = r.peak(f"adaptvc: {label}")
        lines.append(
            f"| peak RSS, {label} | {peak:.0f} MB | < {limit} MB | {'met' if peak < limit else '**missed**'} |"
        )
    return lines


def many_table(r: Runner, versions: int) -> list[str]:
    lines = ["| command | median s | target |", "|---|---:|---|"]
    for label in r.wall:
        if label.startswith(("100x10", "1x")):
            v = r.med(label)
            lines.append(
                f"| `adaptvc {label.split(': ', 1)[1]}` ({label.split(':')[0]}) | {v:.3f} | {'met' if v < 0.3 else '**missed**'} (< 0.3 s) |"
            )
    deep, one = r.med(f"save at version {versions}+"), r.med("save at version 1+")
    lines.append(
        f"| `adaptvc save --from` at version {versions:,} / at version 1 | {deep:.3f} / {one:.3f} = {deep / one:.2f}x | "
        f"{'met' if deep / one <= 1.2 else '**missed**'} (≤ 1.2x) |"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds (medians reported)")
    parser.add_argument("--part", choices=["large", "many", "both"], default="both")
    parser.add_argument("--layers", type=int, default=80, help="layers of the large adapter (80: 1.66 GB)")
    parser.add_argument("--versions", type=int, default=10_000, help="versions of one adapter (part many)")
    parser.add_argument("--baseline", type=Path, help="a checkout of older adaptvc code to compare with")
    parser.add_argument("--work", type=Path, help="where the temporary files go (removed at the end)")
    parser.add_argument("--drop-caches", action="store_true", help="drop the page cache before each process (root)")
    parser.add_argument("--update-docs", action="store_true", help="rewrite this section of docs/benchmarks.md")
    args = parser.parse_args()

    base = args.work or (Path("/work/tmp-bench") if Path("/work/tmp-bench").is_dir() else None)
    work = Path(tempfile.mkdtemp(prefix="bench-large-", dir=base))
    runner = Runner(args.drop_caches)
    codes = {"adaptvc": REPO_ROOT}
    if args.baseline:
        codes["before"] = args.baseline.resolve()
    out: list[str] = []
    try:
        if args.part in ("large", "both"):
            info = bench_large(work / "large", runner, codes, args.repeat, args.layers)
            out += [
                f"Adapter: 70B-shaped LoRA, r=64 on q,k,v,o,gate,up,down, {args.layers} layers, fp16, "
                f"{info['size'] / 1e9:.2f} GB. Whole processes, median of {args.repeat} interleaved rounds, "
                f"{'page cache dropped before each process' if args.drop_caches else 'warm page cache'}; "
                f"peak RSS from wait4. Machine: {os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, "
                f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f} at the end.",
                "",
                *large_table(runner, info["size"], "before" in codes, args.repeat),
            ]
            shutil.rmtree(work / "large", ignore_errors=True)
        if args.part in ("many", "both"):
            bench_many(work / "many", runner, REPO_ROOT, args.repeat, args.versions)
            out += ["", *many_table(runner, args.versions)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(PYCACHE, ignore_errors=True)
    cmdline = " ".join(["benchmarks/bench_large.py", *sys.argv[1:]]).replace(" --update-docs", "")
    out += ["", f"Reproduce: `.venv/bin/python {cmdline}`"]
    table = "\n".join(out)
    print(table)
    print(json.dumps({k: [round(x, 3) for x in v] for k, v in runner.wall.items()}), file=sys.stderr)
    if args.update_docs:
        update_docs(table)


def update_docs(table: str) -> None:
    path = REPO_ROOT / "docs" / "benchmarks.md"
    text = path.read_text()
    block = f"{MARK_START}\n{table}\n{MARK_END}"
    if MARK_START in text:
        text = re.sub(re.escape(MARK_START) + r".*?" + re.escape(MARK_END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + f"\n\n## Large adapters and many versions\n\n{block}\n"
    path.write_text(text)


if __name__ == "__main__":
    main()
