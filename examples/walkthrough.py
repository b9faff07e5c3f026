"""The life of an adapter, end to end, offline, in about a minute on 2 CPU cores.

    ./dev.sh example                 # or: python examples/walkthrough.py [--workdir DIR]

1. build a tiny base model from a config and save it to disk (nothing is downloaded);
2. `adaptvc init` in a fresh git repository;
3. fine-tune a LoRA for 3 epochs with the Trainer callback: three versions;
4. `adaptvc log`, `adaptvc diff task_a@v1 task_a@v3` (and a heatmap PNG);
5. `adaptvc checkout task_a@v1`, load it with PeftModel.from_pretrained: its outputs equal
   the model's right after epoch 1;
6. push to a directory remote, clone into a second directory, pull, same log there.

Every adaptvc step runs the real command line, the way you would type it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VOCAB = 64
SEQ_LEN = 16


def say(title: str) -> None:
    print(f"\n\033[1m== {title}\033[0m" if sys.stdout.isatty() else f"\n== {title}", flush=True)


def run(*args: str, cwd: Path, show: bool = True) -> str:
    """Run a command as a user would, echo it and its output, fail loudly on error."""
    shown = " ".join(("adaptvc",) + args[3:]) if args[:3] == (sys.executable, "-m", "adaptvc") else " ".join(args)
    print(f"$ {shown}", flush=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if show and proc.stdout.strip():
        print(textwrap.indent(proc.stdout.rstrip(), "  "), flush=True)
    if show and args[:3] == (sys.executable, "-m", "adaptvc") and proc.stderr.strip():
        # adaptvc's talk (what it did, hints) goes to stderr: show it too, marked.
        print(textwrap.indent(proc.stderr.rstrip(), "  "), flush=True)
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        raise SystemExit(f"command failed ({proc.returncode}): {shown}")
    return proc.stdout


def adaptvc(*args: str, cwd: Path, show: bool = True) -> str:
    return run(sys.executable, "-m", "adaptvc", *args, cwd=cwd, show=show)


def git(*args: str, cwd: Path) -> str:
    return run("git", *args, cwd=cwd, show=False)


def make_base_model(path: Path):
    """A tiny llama-shaped causal LM, built from a config and saved as safetensors."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=False,
    )
    LlamaForCausalLM(config).save_pretrained(path)


def make_dataset(n: int = 512):
    """A small synthetic task: continue an arithmetic sequence (t, t+k, t+2k, ... mod V)."""
    import torch

    gen = torch.Generator().manual_seed(0)
    start = torch.randint(0, VOCAB, (n, 1), generator=gen)
    step = torch.randint(1, 4, (n, 1), generator=gen)
    ids = (start + step * torch.arange(SEQ_LEN)) % VOCAB
    return [{"input_ids": row, "labels": row.clone()} for row in ids]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=ROOT / "example-run", help="where to work (wiped first)")
    opts = parser.parse_args()

    started = time.perf_counter()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    work = opts.workdir.resolve()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    project = work / "project"
    base_dir = work / "base-model"

    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, Trainer, TrainerCallback, TrainingArguments

    from adaptvc.integrations.transformers import AdaptvcCallback

    say("1. A tiny base model, built from a config (nothing downloaded)")
    make_base_model(base_dir)
    print(f"saved to {base_dir}")

    say("2. A git repository with adaptvc")
    project.mkdir()
    git("init", "-q", "-b", "main", cwd=project)
    for key, value in (("user.name", "Ada Example"), ("user.email", "ada@example.com")):
        git("config", key, value, cwd=project)
    (project / "README.md").write_text("# sequence continuation adapters\n")
    git("add", "README.md", cwd=project)
    git("commit", "-q", "-m", "initial commit", cwd=project)
    adaptvc("init", cwd=project)

    say("3. Fine-tune a LoRA for 3 epochs; the callback saves a version per epoch")
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    lora = LoraConfig(
        r=8,
        lora_alpha=16,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"],
        lora_dropout=0.0,
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(base, lora)
    probe = torch.tensor([[3, 5, 7, 9, 11, 13, 15, 17]])
    after_epoch: dict[int, torch.Tensor] = {}

    class RememberOutputs(TrainerCallback):
        """What the model predicts right after each epoch, to compare with checkouts later."""

        def on_epoch_end(self, args, state, control, model=None, **kwargs):
            with torch.no_grad():
                after_epoch[round(state.epoch)] = model(probe).logits.clone()

    args = TrainingArguments(
        output_dir=str(work / "outputs"),
        num_train_epochs=3,
        per_device_train_batch_size=16,
        learning_rate=2e-2,
        logging_strategy="epoch",
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    versioning = AdaptvcCallback("task_a", repo=project)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=make_dataset(),
        callbacks=[RememberOutputs(), versioning],
    )
    trainer.train()
    losses = [v.metrics["loss"] for v in versioning.versions]
    print("training loss at each saved version: " + " → ".join(f"{x:.3f}" for x in losses))

    say("4. Look back: the versions, and what changed between epoch 1 and epoch 3")
    adaptvc("log", "task_a", cwd=project)
    adaptvc("diff", "task_a@v1", "task_a@v3", "--top", "4", cwd=project)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("(matplotlib is not installed: skipping the heatmap; pip install 'adaptvc[plot]')")
    else:
        adaptvc("diff", "task_a@v1", "task_a@v3", "--plot", str(work / "diff-v1-v3.png"), cwd=project, show=False)
        print(f"heatmap written to {work / 'diff-v1-v3.png'}")

    say("5. Back to epoch 1: checkout, load with PEFT, compare outputs")
    adaptvc("checkout", "task_a@v1", cwd=project)
    fresh = AutoModelForCausalLM.from_pretrained(base_dir)
    loaded = PeftModel.from_pretrained(fresh, project / "adapters" / "task_a").eval()
    with torch.no_grad():
        logits = loaded(probe).logits
    diff = (logits - after_epoch[1]).abs().max().item()
    print(f"max |logits(v1 checkout) - logits(after epoch 1)| = {diff:.2e}")
    if not torch.allclose(logits, after_epoch[1], atol=1e-5, rtol=1e-5):
        raise SystemExit("the checked-out v1 does not reproduce epoch 1's outputs")
    changed = (logits - after_epoch[3]).abs().max().item()
    print(f"(and it differs from epoch 3's outputs by {changed:.2e}, as it should)")
    adaptvc("checkout", "task_a", cwd=project)

    say("6. Share: a directory DVC remote + a bare git remote, then a teammate's clone")
    storage = work / "dvc-storage"
    origin = work / "origin.git"
    git("init", "-q", "--bare", "-b", "main", str(origin), cwd=work)
    git("remote", "add", "origin", str(origin), cwd=project)
    adaptvc("remote", "add", "storage", str(storage), "--default", cwd=project)
    adaptvc("push", cwd=project)
    teammate = work / "teammate"
    adaptvc("clone", str(origin), str(teammate), cwd=work)
    print("(meanwhile, we promote v3 and share that)")
    adaptvc("alias", "task_a@v3", "production", cwd=project)
    adaptvc("push", cwd=project)
    adaptvc("pull", cwd=teammate)
    mine = adaptvc("log", "--json", cwd=project, show=False)
    adaptvc("log", "task_a", cwd=teammate)
    adaptvc("status", cwd=teammate)
    theirs_json = adaptvc("log", "--json", cwd=teammate, show=False)
    if mine != theirs_json:
        raise SystemExit("the teammate's log differs from ours")
    print("the teammate sees the same three versions, and status finds their weights clean")

    say("7. Compare the versions, pick the best, and write the report of this run")
    adaptvc("compare", "task_a", "--only-diff", cwd=project)
    best = adaptvc("best", "task_a", "--metric", "loss", cwd=project, show=False).strip()
    print(f"  {best}  (the lowest training loss; a script would say: adaptvc alias $(adaptvc best ...) NAME)")
    report = adaptvc("report", "-o", str(work / "report.html"), cwd=project, show=False).strip()
    print(f"report (lineage, metrics, versions, diffs, storage; open it in a browser): {report}")

    say(f"Done in {time.perf_counter() - started:.0f} s. Everything is in {work}")


if __name__ == "__main__":
    main()
