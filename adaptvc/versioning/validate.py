"""Finding the adapter files a ``save`` versions, before anything is written.

:func:`pick_source`: a directory in PEFT format, or one of PEFT's ``<adapter_name>/``
subfolders (what ``save_pretrained`` writes for non-default adapters). Checking the files
is the one validation every command uses,
:func:`adaptvc.formats.adapter_dir.open_adapter_dir`.
"""

from __future__ import annotations

import os
from pathlib import Path

from adaptvc.errors import InvalidAdapterError
from adaptvc.formats import CONFIG_NAME


def has_adapter_files(directory: Path) -> bool:
    # lexists: a config that is a symlink or a FIFO is picked, and refused for what it is.
    return os.path.lexists(directory / CONFIG_NAME)


def pick_source(directory: Path, adapter: str) -> Path:
    """The folder holding the adapter to save.

    ``directory`` itself when it holds ``adapter_config.json``; otherwise its
    ``<adapter>/`` subfolder, or its only adapter subfolder.

    Raises:
        InvalidAdapterError: no adapter there, or several and ``adapter`` names none.
    """
    if not directory.is_dir():
        raise InvalidAdapterError(
            f"{directory}: no such directory",
            path=str(directory),
            hint="train first, or point --from at the training output",
        )
    if has_adapter_files(directory):
        return directory
    subs = sorted(d for d in directory.iterdir() if d.is_dir() and has_adapter_files(d))
    for d in subs:
        if d.name == adapter:
            return d
    if len(subs) == 1:
        return subs[0]
    if subs:
        raise InvalidAdapterError(
            f"{directory} holds several adapters ({', '.join(d.name for d in subs)}) and none is named {adapter!r}",
            path=str(directory),
            hint=f"adaptvc save --adapter {subs[0].name} --from {directory} -m MESSAGE",
        )
    raise InvalidAdapterError(
        f"{directory}: no {CONFIG_NAME} here (nor in a subfolder); not a PEFT adapter directory",
        path=str(directory),
        hint="save the adapter with save_pretrained or adaptvc.save_adapter first",
    )
