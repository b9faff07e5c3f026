"""DVC remotes: where a team's adapter weights live (a directory, S3, SSH, ...).

A remote's URL and non-secret options are *team* configuration: they go to
``.dvc/config``, which adaptvc commits (that file alone, whatever else is staged).
Credentials are *personal*: they go to ``.dvc/config.local``, which DVC git-ignores and
adaptvc never commits. Asking to put a credential in the team file is refused.

The files are DVC's own, so ``dvc remote list``, ``dvc push`` and friends see exactly the
same remotes. Reading uses configobj (what DVC uses) rather than ``dvc.repo`` so that
``adaptvc remote list`` starts fast.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlparse

from adaptvc.errors import AdaptvcError, CredentialInTeamConfigError, RemoteNotFoundError

# Options that hold a secret, or point at a file that does: they are personal.
CREDENTIAL_KEYS = frozenset(
    {
        "access_key_id", "secret_access_key", "session_token", "sse_customer_key",  # s3
        "password", "passphrase", "keyfile", "key_file", "key_path", "cert_path",  # ssh, http
        "token", "custom_auth_header", "bearer_token_command",  # http, webdav
        "credentialpath",  # s3/gs credential files
        "account_key", "sas_token", "connection_string", "client_secret",  # azure
        "oss_key_id", "oss_key_secret",  # oss
        "gdrive_client_secret", "gdrive_user_credentials_file",
        "gdrive_service_account_json_file_path",
        "kerb_ticket",
    }
)
# Options whose value is a path: given relative to the current directory, stored relative
# to the config file's directory, which is how DVC reads them back.
PATH_KEYS = frozenset({"keyfile", "credentialpath", "cert_path", "key_path",
                       "gdrive_user_credentials_file", "gdrive_service_account_json_file_path"})

REMOTE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SECTION_RE = re.compile(r'^\s*remote\s*"(.*)"\s*$')

TEAM = "repo"    # .dvc/config, committed
LOCAL = "local"  # .dvc/config.local, personal
LEVELS = ("system", "global", TEAM, LOCAL)  # lowest to highest precedence, as in DVC


@dataclass(frozen=True)
class RemoteInfo:
    """One DVC remote as DVC sees it (all config levels merged).

    ``options`` holds every setting except ``url``; secrets are shown as ``"***"``.
    ``level`` is the file that defines the URL (``repo`` = the committed .dvc/config).
    """

    name: str
    url: str
    default: bool = False
    level: str = TEAM
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "default": self.default,
                "level": self.level, "options": dict(self.options)}


# --- locating the config files ------------------------------------------------------------


def find_root(repo: str | os.PathLike[str] = ".") -> Path:
    """The top of the adaptvc repository that holds ``repo``.

    Raises:
        NotARepositoryError: not in a git repository, or adaptvc is not initialised there
            (the same message and hint as every other command: ``AdapterRepo.open``).
    """
    from adaptvc.repo import AdapterRepo  # light: no dvc, no torch

    return AdapterRepo.open(repo).root


def config_files(root: Path | None) -> dict[str, Path]:
    """The four DVC config files, by level (system and global are DVC's own locations)."""
    files: dict[str, Path] = {}
    try:
        from dvc.dirs import global_config_dir, system_config_dir  # small module, no dvc.repo

        files["system"] = Path(system_config_dir()) / "config"
        files["global"] = Path(global_config_dir()) / "config"
    except ImportError:  # pragma: no cover - dvc is a dependency
        pass
    if root is not None:
        files[TEAM] = root / ".dvc" / "config"
        files[LOCAL] = root / ".dvc" / "config.local"
    return files


def _load(path: Path):
    from configobj import ConfigObj, ConfigObjError

    try:
        return ConfigObj(str(path), encoding="utf-8", file_error=False)
    except ConfigObjError as exc:
        raise AdaptvcError(f"cannot parse {path}: {exc}", hint=f"fix or remove {path}") from None


def _write_atomic(conf, path: Path) -> None:
    # Another process (dvc, git) may read the file at any moment: never let it see half of it.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fobj:
            conf.write(fobj)
            fobj.flush()
            os.fsync(fobj.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _remote_sections(conf) -> dict[str, str]:
    """Lower-cased remote name → the section's spelling in the file."""
    out = {}
    for section in conf.sections:
        match = _SECTION_RE.match(section)
        if match:
            out[match.group(1).lower()] = section
    return out


def _core(conf) -> dict[str, str]:
    for section in conf.sections:
        if section.strip().lower() == "core":
            return conf[section]
    return {}


def _read_levels(root: Path) -> dict[str, Any]:
    return {level: _load(path) for level, path in config_files(root).items()}


def _resolve_paths(values: dict[str, Any], conf_dir: Path) -> dict[str, Any]:
    # DVC reads relative paths relative to the config file's directory; show them as DVC does.
    out = dict(values)
    for key, value in values.items():
        if isinstance(value, str) and (key in PATH_KEYS or (key == "url" and _is_local_path(value))):
            expanded = os.path.expanduser(value)
            if not os.path.isabs(expanded):
                out[key] = os.path.normpath(conf_dir / expanded)
    return out


def _merged(levels: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, str], str | None]:
    remotes: dict[str, dict[str, Any]] = {}
    url_level: dict[str, str] = {}
    default = None
    for level in LEVELS:
        conf = levels.get(level)
        if conf is None:
            continue
        conf_dir = Path(conf.filename).parent if conf.filename else Path.cwd()
        for name, section in _remote_sections(conf).items():
            values = _resolve_paths({k.lower(): v for k, v in conf[section].items()}, conf_dir)
            remotes.setdefault(name, {}).update(values)
            if "url" in values:
                url_level[name] = level
        core = {k.lower(): v for k, v in _core(conf).items()}
        if "remote" in core:
            default = core["remote"].lower() or None
    return remotes, url_level, default


# --- reading ---------------------------------------------------------------------------------


def list_remotes(repo: str | os.PathLike[str] = ".") -> list[RemoteInfo]:
    """Every DVC remote of the repository, team and personal ones, in DVC's order."""
    root = find_root(repo)
    remotes, url_level, default = _merged(_read_levels(root))
    out = []
    for name, values in remotes.items():
        if "url" not in values:
            continue  # only credentials for a remote defined nowhere: DVC ignores it too
        options = {k: ("***" if k in CREDENTIAL_KEYS and k not in PATH_KEYS else v)
                   for k, v in values.items() if k != "url"}
        out.append(RemoteInfo(name=name, url=values["url"], default=name == default,
                              level=url_level[name], options=options))
    return out


def default_remote_name(repo: str | os.PathLike[str] = ".") -> str | None:
    """The name in ``core.remote`` (DVC's default remote), if any."""
    return _merged(_read_levels(find_root(repo)))[2]


def get_remote(name: str | None = None, *, repo: str | os.PathLike[str] = ".") -> RemoteInfo:
    """One remote by name, or the default one when ``name`` is None.

    Raises:
        RemoteNotFoundError: no such remote, or no default remote configured.
    """
    remotes = list_remotes(repo)
    if name is None:
        for info in remotes:
            if info.default:
                return info
        if len(remotes) == 1:  # one remote and no default: no ambiguity about what is meant
            return remotes[0]
        if not remotes:
            raise RemoteNotFoundError("no DVC remote is configured", hint="adaptvc remote add NAME URL --default")
        raise RemoteNotFoundError(
            f"several DVC remotes ({', '.join(r.name for r in remotes)}) and none is the default",
            hint="adaptvc remote default NAME (once, committed for the team), or pass --remote NAME",
        )
    for info in remotes:
        if info.name == name.lower():
            return info
    known = ", ".join(r.name for r in remotes) or "none"
    raise RemoteNotFoundError(f"no DVC remote named {name!r} (remotes: {known})", hint="adaptvc remote list")


# --- writing ---------------------------------------------------------------------------------


def _check_name(name: str) -> str:
    if not REMOTE_NAME_RE.match(name):
        raise AdaptvcError(
            f"invalid remote name {name!r}: use letters, digits, '_', '-' and '.', starting with a letter or digit",
            hint="adaptvc remote add storage /path/to/dir",
        )
    return name.lower()


def _is_local_path(url: str) -> bool:
    return not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", url) and not url.startswith("remote://")


def _store_path(value: str, root: Path, cwd: Path) -> str:
    """A path as DVC stores it: absolute stays absolute, relative becomes relative to .dvc/."""
    expanded = os.path.expanduser(value)
    if os.path.isabs(expanded) or value.startswith("~"):
        return value
    return os.path.relpath(os.path.abspath(cwd / expanded), root / ".dvc")


def _refuse_credential(name: str, key: str) -> None:
    raise CredentialInTeamConfigError(
        f"{key!r} is a credential: it would be committed to git in .dvc/config for everyone to read",
        hint=f"adaptvc remote modify {name} {key} VALUE --local   (.dvc/config.local, never committed; "
             f"or --global: your DVC config, for every clone)",
    )


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """adaptvc's repository lock: a concurrent save or remote change waits its turn."""
    from adaptvc.repo import find_git_root, lock_path
    from adaptvc.storage.lock import repo_lock

    _, git_dir = find_git_root(root)
    with repo_lock(lock_path(git_dir)):  # repo_lock creates the directory
        yield


def _team_commit(root: Path, message: str, *, previous: bytes | None) -> str | None:
    """Commit ``.dvc/config`` alone on top of HEAD (a temporary index, so whatever else the
    user staged stays staged and out of this commit). Returns the commit, or None when
    the file did not change. If the commit fails, the file gets ``previous`` back (None:
    it did not exist), so a failed command leaves the repository as it was."""
    from adaptvc.repo import STATE_DIR, find_git_root
    from adaptvc.storage import git_ops

    _, git_dir = find_git_root(root)
    paths = [".dvc/config"]
    try:
        commit = git_ops.commit_paths(root, paths, message + "\n", tmp_dir=git_dir / STATE_DIR,
                                      skip_if_unchanged=True)
    except BaseException:
        path = root / ".dvc" / "config"
        if previous is None:
            path.unlink(missing_ok=True)
        else:
            _write_bytes_atomic(path, previous)
        raise
    if commit:
        git_ops.refresh_index(root, paths)
    return commit


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    class _Raw:
        def write(self, fobj) -> None:
            fobj.write(data)

    _write_atomic(_Raw(), path)


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def add_remote(
    name: str,
    url: str,
    *,
    repo: str | os.PathLike[str] = ".",
    default: bool = False,
    local: bool = False,
    force: bool = False,
) -> RemoteInfo:
    """Add a DVC remote; team remotes are committed (``.dvc/config`` alone).

    Args:
        name: the remote's name (letters, digits, ``_-.``).
        url: ``/path/to/dir``, ``s3://bucket/prefix``, ``ssh://user@host[:port]/path``, ...
            A password inside the URL is refused for team remotes.
        repo: a path inside the repository.
        default: make it DVC's default remote (``core.remote``).
        local: a personal remote in ``.dvc/config.local`` (not committed).
        force: replace an existing remote of that name.

    Returns:
        The remote as DVC now sees it.

    Raises:
        CredentialInTeamConfigError: the URL embeds a password and ``local`` is False.
        AdaptvcError: the name exists (without ``force``) or is invalid.

    Example:
        >>> add_remote("storage", "s3://team-bucket/adapters", default=True)  # doctest: +SKIP
    """
    root = find_root(repo)
    name = _check_name(name)
    level = LOCAL if local else TEAM
    if not local and _is_local_path(url) is False and urlparse(url).password:
        raise CredentialInTeamConfigError(
            "the URL contains a password: it would be committed to git in .dvc/config",
            hint=f"adaptvc remote add {name} URL-WITHOUT-PASSWORD, then "
                 f"adaptvc remote modify {name} password VALUE --local",
        )
    if _is_local_path(url):
        url = _store_path(url, root, Path.cwd())
    with _locked(root):
        _add_locked(root, name, url, level=level, default=default, force=force)
    return get_remote(name, repo=root)


def _add_locked(root: Path, name: str, url: str, *, level: str, default: bool, force: bool) -> None:
    files = config_files(root)
    previous = _read_bytes(files[level])
    conf = _load(files[level])
    sections = _remote_sections(conf)
    if name in sections and not force:
        raise AdaptvcError(f"remote {name!r} already exists", hint=f"adaptvc remote modify {name} url {url}  (or --force)")
    section = sections.get(name, f'remote "{name}"')
    if name in sections and level == TEAM:
        _drop_personal_settings_of_other_kind(files[LOCAL], name, old_url=conf[section].get("url", ""), new_url=url)
    conf[section] = {"url": url}  # --force replaces the remote, options and all
    if default:
        core = next((s for s in conf.sections if s.strip().lower() == "core"), None)
        if core is None:
            conf["core"] = {}
            core = "core"
        conf[core]["remote"] = name
    _write_atomic(conf, files[level])
    if level == TEAM:
        _team_commit(root, f"adaptvc: add DVC remote {name}" + (" (default)" if default else ""), previous=previous)


def modify_remote(
    name: str,
    key: str,
    value: str | None,
    *,
    repo: str | os.PathLike[str] = ".",
    local: bool = False,
    global_: bool = False,
) -> RemoteInfo | None:
    """Set (or with ``value=None`` unset) one option of a remote.

    ``global_=True`` writes to DVC's global (per-user) config instead, where options
    apply to the remote of that name in every repository: the place for credentials that
    a fresh ``adaptvc clone`` should find. It needs no repository and returns None.

    Credentials (see :data:`CREDENTIAL_KEYS`) must go to ``.dvc/config.local``: pass
    ``local=True``. Other options go to the team config and are committed unless
    ``local`` is set.

    Raises:
        CredentialInTeamConfigError: a credential without ``local=True``.
        RemoteNotFoundError: no remote of that name.
        AdaptvcError: an option DVC does not know for this kind of remote.

    Example:
        >>> modify_remote("storage", "endpointurl", "http://127.0.0.1:9000")  # doctest: +SKIP
        >>> modify_remote("storage", "secret_access_key", "…", local=True)  # doctest: +SKIP
    """
    name = _check_name(name)
    key = key.strip().lower()
    if global_:
        if value is not None and key in PATH_KEYS:
            value = os.path.abspath(os.path.expanduser(value))
        path = config_files(None)["global"]
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
        _modify_file(path, name, key, value)
        return None
    root = find_root(repo)
    info = get_remote(name, repo=root)
    if key in CREDENTIAL_KEYS and not local:
        _refuse_credential(name, key)
    if key == "url" and value is not None and not local and urlparse(value).password:
        _refuse_credential(name, "password")
    if value is not None:
        _validate_option(info.url, key, value)
    if value is not None and (key in PATH_KEYS or (key == "url" and _is_local_path(value))):
        value = _store_path(value, root, Path.cwd())
    with _locked(root):
        _modify_locked(root, name, key, value, level=LOCAL if local else TEAM)
    return get_remote(name, repo=root)


def _modify_locked(root: Path, name: str, key: str, value: str | None, *, level: str) -> None:
    path = config_files(root)[level]
    previous = _read_bytes(path)
    _modify_file(path, name, key, value)
    if level == TEAM:
        verb = "unset" if value is None else "set"
        _team_commit(root, f"adaptvc: {verb} {key} of DVC remote {name}", previous=previous)


def _modify_file(path: Path, name: str, key: str, value: str | None) -> None:
    conf = _load(path)
    section = _remote_sections(conf).get(name, f'remote "{name}"')
    if value is None:
        if section in conf and key in conf[section]:
            del conf[section][key]
            if not conf[section]:
                del conf[section]
    else:
        if section not in conf:
            conf[section] = {}
        conf[section][key] = value
    _write_atomic(conf, path)


def remove_remote(name: str, *, repo: str | os.PathLike[str] = ".") -> None:
    """Remove a remote from the team and personal config (and as the default).

    Raises:
        RemoteNotFoundError: no remote of that name in this repository's config.
    """
    root = find_root(repo)
    name = _check_name(name)
    with _locked(root):
        _remove_locked(root, name)


def _remove_locked(root: Path, name: str) -> None:
    files = config_files(root)
    found = False
    previous = _read_bytes(files[TEAM])
    # The team file first, committed, then the personal one: a failed commit leaves both.
    for level in (TEAM, LOCAL):
        conf = _load(files[level])
        changed = False
        section = _remote_sections(conf).get(name)
        if section is not None:
            del conf[section]
            found = changed = True
        core = next((s for s in conf.sections if s.strip().lower() == "core"), None)
        if core is not None and conf[core].get("remote", "").lower() == name:
            del conf[core]["remote"]
            if not conf[core]:
                del conf[core]
            changed = True
        if level == LOCAL and not found:
            break
        if changed:
            _write_atomic(conf, files[level])
            if level == TEAM:
                _team_commit(root, f"adaptvc: remove DVC remote {name}", previous=previous)
    if not found:
        known = ", ".join(r.name for r in list_remotes(root)) or "none"
        raise RemoteNotFoundError(f"no DVC remote named {name!r} in this repository (remotes: {known})",
                                  hint="adaptvc remote list")


def set_default_remote(name: str | None, *, repo: str | os.PathLike[str] = ".", local: bool = False) -> RemoteInfo | None:
    """Make an existing remote DVC's default (``core.remote``), as ``dvc remote default``;
    ``name=None`` clears the default. The team default is committed (``.dvc/config``
    alone, like :func:`add_remote`); ``local=True`` writes ``.dvc/config.local`` instead,
    which takes precedence for this clone only.

    Args:
        name: an existing remote, or None to unset.
        repo: a path inside the repository.
        local: a personal default (not committed).

    Returns:
        The remote as DVC now sees it (``.default`` is False when a personal default in
        ``.dvc/config.local`` still takes precedence), or None after unsetting.

    Raises:
        RemoteNotFoundError: no remote of that name (the message lists the remotes).
        AdaptvcError: a team default naming a remote that only your own config defines
            (teammates would not have it); use ``local=True``.

    Example:
        >>> set_default_remote("storage")  # doctest: +SKIP
        >>> set_default_remote(None)  # no default any more  # doctest: +SKIP
    """
    root = find_root(repo)
    level = LOCAL if local else TEAM
    if name is not None:
        name = _check_name(name)
        info = get_remote(name, repo=root)
        if level == TEAM and info.level != TEAM:
            raise AdaptvcError(
                f"remote {name!r} is defined in your {info.level} DVC config, not the team's .dvc/config: "
                "a committed default naming it would break push and pull for teammates",
                hint=f"adaptvc remote default {name} --local   (a personal default, not committed)",
            )
    with _locked(root):
        path = config_files(root)[level]
        previous = _read_bytes(path)
        conf = _load(path)
        core = next((s for s in conf.sections if s.strip().lower() == "core"), None)
        current = conf[core].get("remote", "").lower() if core is not None else ""
        if name is None and current:
            del conf[core]["remote"]
            if not conf[core]:
                del conf[core]
        elif name is not None and current != name:
            if core is None:
                conf["core"] = {}
                core = "core"
            conf[core]["remote"] = name
        else:
            return None if name is None else get_remote(name, repo=root)  # already so: nothing to commit
        _write_atomic(conf, path)
        if level == TEAM:
            message = f"adaptvc: make DVC remote {name} the default" if name else "adaptvc: no default DVC remote"
            _team_commit(root, message, previous=previous)
    return None if name is None else get_remote(name, repo=root)


def _scheme(url: str) -> str:
    return "" if _is_local_path(url) else urlparse(url).scheme.lower()


def _drop_personal_settings_of_other_kind(local_file: Path, name: str, *, old_url: str, new_url: str) -> None:
    # Credentials for S3 mean nothing to an SSH server (and DVC rejects the mix): when a
    # team remote is replaced by one of another kind, the personal settings go with it.
    if _scheme(old_url) == _scheme(new_url):
        return
    conf = _load(local_file)
    section = _remote_sections(conf).get(name)
    if section is not None:
        del conf[section]
        _write_atomic(conf, local_file)


def _validate_option(url: str, key: str, value: str) -> None:
    """Refuse options DVC does not know for this kind of remote (DVC would fail later)."""
    from dvc.config_schema import REMOTE_SCHEMAS  # voluptuous schemas; no dvc.repo

    scheme = urlparse(url).scheme if not _is_local_path(url) else ""
    schema = REMOTE_SCHEMAS.get(scheme)
    if schema is None:
        return
    known = {str(getattr(k, "schema", k)) for k in schema}
    if key not in known:
        raise AdaptvcError(
            f"{key!r} is not an option of {scheme or 'local'} remotes; known: {', '.join(sorted(known))}",
            hint="see https://dvc.org/doc/command-reference/remote/modify",
        )
