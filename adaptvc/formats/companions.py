"""Companion files: what beside the adapter makes a version usable on its own (tokenizer
files, the model card, generation settings, the chat template), and the files of a
Trainer checkpoint that let training resume (the training state).

Which names count is configurable (``companion_files`` in ``.adaptvc/config.toml``, read
by :class:`adaptvc.repo.RepoConfig`); where each goes is decided here: a text file up to
``companion_git_max_bytes`` goes to git beside the config (so ``git diff`` shows a new
token), anything larger or binary (``tokenizer.model``, a 9 MB ``tokenizer.json``) to DVC.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
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


# -- comparing two sides' companion files ------------------------------------------------

DIFF_TEXT_MAX_BYTES = 4 << 20  # larger files are reported as changed, without a text diff


@dataclass(frozen=True)
class CompanionChange:
    """One companion file that differs between two adapters: ``added``, ``removed`` or
    ``changed``; ``diff`` is a unified diff when both sides are UTF-8 text."""

    name: str
    change: str
    diff: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"name": self.name, "change": self.change, "diff": self.diff}


def compare_companions(
    a: Mapping[str, Callable[[], bytes]], b: Mapping[str, Callable[[], bytes]], *, label_a: str, label_b: str
) -> tuple[CompanionChange, ...]:
    """Which companion files differ between two sides (name → a function reading its bytes)."""
    out = []
    for name in sorted(a.keys() | b.keys()):
        da = a[name]() if name in a else None
        db = b[name]() if name in b else None
        if da is not None and db is not None and hashlib.sha256(da).digest() == hashlib.sha256(db).digest():
            continue
        change = "added" if da is None else "removed" if db is None else "changed"
        out.append(CompanionChange(name, change, _unified(name, da, db, label_a, label_b)))
    return tuple(out)


def _unified(name: str, da: bytes | None, db: bytes | None, label_a: str, label_b: str) -> str | None:
    texts: list[list[str]] = []
    for data in (da, db):
        if data is not None and (len(data) > DIFF_TEXT_MAX_BYTES or b"\0" in data):
            return None
        try:
            texts.append((data or b"").decode("utf-8").splitlines(keepends=True))
        except UnicodeDecodeError:
            return None
    lines = difflib.unified_diff(texts[0], texts[1], f"{label_a}/{name}", f"{label_b}/{name}")
    return "".join(_with_newlines(lines))


def _with_newlines(lines: Iterator[str]) -> Iterator[str]:
    for line in lines:
        yield line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
