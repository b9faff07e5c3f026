"""Companion files: what beside the adapter makes a version usable on its own (tokenizer
files, the model card, generation settings, the chat template), and the files of a
Trainer checkpoint that let training resume (the training state).

Which names count is configurable (``companion_files`` in ``.adaptvc/config.toml``, read
by :class:`adaptvc.repo.RepoConfig`); where each goes is decided here: a text file up to
``companion_git_max_bytes`` goes to git beside the config (so ``git diff`` shows a new
token), anything larger or binary (``tokenizer.model``, a 9 MB ``tokenizer.json``) to DVC.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

# Names (fnmatch patterns) of companion files, matched in the adapter directory only
# (not in subdirectories).
DEFAULT_COMPANIONS: tuple[str, ...] = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "README.md",
    "generation_config.json",
    "chat_template.jinja",
    "chat_template.json",
)
# 1 MiB: small tokenizer configs, model cards and templates are diffable text in git; a
# full tokenizer.json (2-10 MB for current LLMs) would bloat every clone's history.
DEFAULT_GIT_MAX_BYTES = 1 << 20

# The files of a transformers Trainer checkpoint that resuming needs besides the adapter
# (Trainer._load_optimizer_and_scheduler, _load_rng_state, TrainerState.load_from_json).
TRAINING_STATE_PATTERNS: tuple[str, ...] = (
    "optimizer.pt",
    "scheduler.pt",
    "rng_state*.pth",
    "scaler.pt",
    "trainer_state.json",
    "training_args.bin",
)


def matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def find_files(directory: Path, patterns: tuple[str, ...]) -> dict[str, Path]:
    """``name → path`` of the regular files directly in ``directory`` whose names match."""
    try:
        entries = sorted(directory.iterdir())
    except FileNotFoundError:
        return {}
    return {p.name: p for p in entries if p.is_file() and matches(p.name, patterns)}


def goes_to_git(path: Path, max_bytes: int) -> bool:
    """Whether a companion file is stored in git: UTF-8 text without NUL bytes, at most
    ``max_bytes`` long. Everything else goes to DVC."""
    if path.stat().st_size > max_bytes:
        return False
    data = path.read_bytes()
    if b"\0" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
