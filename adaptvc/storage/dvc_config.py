"""The one reader (and renderer) of DVC's config files.

DVC keeps its settings in four configobj INI files, lowest precedence first: the
system and global ones (DVC's own locations), the team's ``.dvc/config`` (committed)
and the personal ``.dvc/config.local`` (git-ignored). Everything in adaptvc that reads
them goes through this module: the cache directory (:mod:`adaptvc.storage.dvc_cache`),
the remotes (:mod:`adaptvc.storage.remotes`), the filesystem a transfer opens
(:mod:`adaptvc.storage.transfer`) and the commands that change a remote
(:mod:`adaptvc.sharing.remotes`, which render a changed file here and write it through
the transaction).

configobj is what DVC itself uses, so a file reads and writes back exactly as DVC would
have it. It is imported when a file is first read (~3 ms: ``inspect`` and a diff of two
directories never read a DVC config); ``dvc.repo`` never is, and ``dvc.dirs`` (a small module) only for
the system and global locations, so ``adaptvc remote list`` starts fast.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adaptvc.errors import DvcConfigError

TEAM = "repo"  # .dvc/config, committed
LOCAL = "local"  # .dvc/config.local, personal
LEVELS = ("system", "global", TEAM, LOCAL)  # lowest to highest precedence, as in DVC

# Options whose value is a path: DVC reads a relative one relative to the directory of
# the config file that holds it.
PATH_KEYS = frozenset(
    {
        "keyfile",
        "credentialpath",
        "cert_path",
        "key_path",
        "gdrive_user_credentials_file",
        "gdrive_service_account_json_file_path",
    }
)

_SECTION_RE = re.compile(r'^\s*remote\s*"(.*)"\s*$')
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

Conf = Any  # a configobj.ConfigObj (configobj ships no type information)


# --- the files -------------------------------------------------------------------------------


def config_files(root: Path | None, *, levels: Iterable[str] = LEVELS) -> dict[str, Path]:
    """The DVC config files of ``levels``, by level (no repository levels when ``root`` is None)."""
    wanted = set(levels)
    files: dict[str, Path] = {}
    if wanted & {"system", "global"}:
        try:
            from dvc.dirs import global_config_dir, system_config_dir  # small module, no dvc.repo

            files["system"] = Path(system_config_dir()) / "config"
            files["global"] = Path(global_config_dir()) / "config"
        except ImportError:  # pragma: no cover - dvc is a dependency
            pass
    if root is not None:
        files[TEAM] = root / ".dvc" / "config"
        files[LOCAL] = root / ".dvc" / "config.local"
    return {level: files[level] for level in LEVELS if level in files and level in wanted}


def load(path: Path) -> Conf:
    """The parsed file (empty when it does not exist), to read or to change and render.

    Raises:
        DvcConfigError: the file is not valid configobj INI.
    """
    from configobj import ConfigObj, ConfigObjError

    try:
        return ConfigObj(str(path), encoding="utf-8", file_error=False)
    except ConfigObjError as exc:
        raise DvcConfigError(f"cannot parse {path}: {exc}", path=str(path), hint=f"fix or remove {path}") from None


def render(conf: Conf) -> bytes:
    """The bytes of ``conf`` as DVC writes its files."""
    out = io.BytesIO()
    conf.write(out)
    return out.getvalue()


def remote_sections(conf: Conf) -> dict[str, str]:
    """Lower-cased remote name → the section's spelling in the file."""
    out = {}
    for section in conf.sections:
        match = _SECTION_RE.match(section)
        if match:
            out[match.group(1).lower()] = section
    return out


def core_section(conf: Conf) -> str | None:
    """The spelling of the ``[core]`` section in the file, if it has one."""
    return next((s for s in conf.sections if s.strip().lower() == "core"), None)


# --- reading, merged as DVC merges ----------------------------------------------------------


def is_local_path(url: str) -> bool:
    """Whether a remote URL is a directory path (not ``scheme://`` nor ``remote://``)."""
    return not _SCHEME_RE.match(url) and not url.startswith("remote://")


def _resolve_paths(values: dict[str, Any], conf_dir: Path) -> dict[str, Any]:
    # DVC reads relative paths relative to the config file's directory; show them as DVC does.
    out = dict(values)
    for key, value in values.items():
        if isinstance(value, str) and (key in PATH_KEYS or (key == "url" and is_local_path(value))):
            expanded = os.path.expanduser(value)
            if not os.path.isabs(expanded):
                out[key] = os.path.normpath(conf_dir / expanded)
    return out


@dataclass(frozen=True)
class MergedConfig:
    """The remotes and the default remote as DVC sees them, all levels merged.

    ``remotes``: lower-cased name → options (keys lower-cased, paths resolved);
    ``url_level``: the level whose file defines each remote's URL; ``default``: the
    name in the highest ``core.remote``; ``core``: the merged ``[core]`` section."""

    remotes: dict[str, dict[str, Any]] = field(default_factory=dict)
    url_level: dict[str, str] = field(default_factory=dict)
    default: str | None = None
    core: dict[str, Any] = field(default_factory=dict)


def read_merged(root: Path) -> MergedConfig:
    """Every level of the repository at ``root``, merged (see :class:`MergedConfig`)."""
    merged = MergedConfig()
    for level, path in config_files(root).items():
        conf = load(path)
        for name, section in remote_sections(conf).items():
            values = _resolve_paths({k.lower(): v for k, v in conf[section].items()}, path.parent)
            merged.remotes.setdefault(name, {}).update(values)
            if "url" in values:
                merged.url_level[name] = level
        core = core_section(conf)
        merged.core.update({k.lower(): v for k, v in conf[core].items()} if core is not None else {})
    default = merged.core.get("remote")
    return MergedConfig(
        merged.remotes, merged.url_level, default.lower() if isinstance(default, str) and default else None, merged.core
    )


def read_dvc_config(dvc_dir: Path) -> dict[str, dict[str, str]]:
    """Sections of ``.dvc/config`` then ``.dvc/config.local`` merged (local wins), section
    names and keys lower-cased as DVC reads them; what :class:`~adaptvc.storage.dvc_cache.DvcCache`
    needs (``[cache] dir``).

    Raises:
        DvcConfigError: a file is not valid configobj INI.
    """
    sections: dict[str, dict[str, str]] = {}
    for name in ("config", "config.local"):
        conf = load(dvc_dir / name)
        for section in conf.sections:
            values = {k.lower(): v for k, v in conf[section].items() if isinstance(v, str)}
            sections.setdefault(section.strip().lower(), {}).update(values)
    return sections
