"""Changing the DVC remotes: ``remote add``, ``modify``, ``remove`` and ``default``.

A remote's URL and non-secret options are *team* configuration: they go to
``.dvc/config``, which is committed (that file alone, whatever else is staged).
Credentials are *personal*: they go to ``.dvc/config.local``, which DVC git-ignores and
adaptvc never commits. Asking to put a credential in the team file is refused.

Each change is one :func:`adaptvc.transaction.transaction`: the file is read and
rendered with :mod:`adaptvc.storage.dvc_config`, written through the transaction
(``.dvc/config.local`` too), and ``.dvc/config`` committed with
``skip_if_unchanged``; a failure anywhere puts both files and HEAD back. Reading the
remotes is :mod:`adaptvc.storage.remotes`.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from urllib.parse import urlparse

from adaptvc.errors import (
    CredentialInTeamConfigError,
    InvalidRemoteNameError,
    InvalidRemoteOptionError,
    PersonalRemoteError,
    RemoteExistsError,
    RemoteNotFoundError,
)
from adaptvc.repo import AdapterRepo
from adaptvc.storage.dvc_config import (
    LOCAL,
    PATH_KEYS,
    TEAM,
    Conf,
    config_files,
    core_section,
    is_local_path,
    load,
    remote_sections,
    render,
)
from adaptvc.storage.files import write_atomic
from adaptvc.storage.remotes import CREDENTIAL_KEYS, RemoteInfo, get_remote, list_remotes
from adaptvc.transaction import Transaction, transaction

REMOTE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
TEAM_FILE = ".dvc/config"  # repo-relative: what the transaction commits


# --- helpers ---------------------------------------------------------------------------------


def check_name(name: str) -> str:
    """The remote name as DVC stores it (lower case).

    Raises:
        InvalidRemoteNameError: not letters, digits, ``_-.`` starting with a letter or digit.
    """
    if not REMOTE_NAME_RE.match(name):
        raise InvalidRemoteNameError(
            f"invalid remote name {name!r}: use letters, digits, '_', '-' and '.', starting with a letter or digit",
            name=name,
            hint="adaptvc remote add storage /path/to/dir",
        )
    return name.lower()


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


def _scheme(url: str) -> str:
    return "" if is_local_path(url) else urlparse(url).scheme.lower()


def _validate_option(url: str, key: str, value: str) -> None:
    """Refuse options DVC does not know for this kind of remote (DVC would fail later)."""
    from dvc.config_schema import REMOTE_SCHEMAS  # voluptuous schemas; no dvc.repo

    scheme = urlparse(url).scheme if not is_local_path(url) else ""
    schema = REMOTE_SCHEMAS.get(scheme)
    if schema is None:
        return
    known = {str(getattr(k, "schema", k)) for k in schema}
    if key not in known:
        raise InvalidRemoteOptionError(
            f"{key!r} is not an option of {scheme or 'local'} remotes; known: {', '.join(sorted(known))}",
            key=key,
            scheme=scheme,
            hint="see https://dvc.org/doc/command-reference/remote/modify",
        )


def _set_core_remote(conf: Conf, name: str) -> None:
    core = core_section(conf)
    if core is None:
        conf["core"] = {}
        core = "core"
    conf[core]["remote"] = name


def _drop_core_remote(conf: Conf, name: str | None = None) -> bool:
    """Remove ``core.remote`` (only when it names ``name``, if given); whether it did."""
    core = core_section(conf)
    if core is None or "remote" not in conf[core]:
        return False
    if name is not None and conf[core].get("remote", "").lower() != name:
        return False
    del conf[core]["remote"]
    if not conf[core]:
        del conf[core]
    return True


def _with_option(conf: Conf, name: str, key: str, value: str | None) -> bytes:
    """``conf`` with option ``key`` of remote ``name`` set (``None``: unset), rendered."""
    section = remote_sections(conf).get(name, f'remote "{name}"')
    if value is None:
        if section in conf and key in conf[section]:
            del conf[section][key]
            if not conf[section]:
                del conf[section]
    else:
        if section not in conf:
            conf[section] = {}
        conf[section][key] = value
    return render(conf)


def _files(repo: AdapterRepo) -> dict[str, Path]:
    return config_files(repo.root, levels=(TEAM, LOCAL))


def _commit(txn: Transaction, message: str) -> None:
    txn.commit([TEAM_FILE], message + "\n", skip_if_unchanged=True)


# --- add -------------------------------------------------------------------------------------


def add_remote(
    repo: AdapterRepo, name: str, url: str, *, default: bool = False, local: bool = False, force: bool = False
) -> RemoteInfo:
    """Add a DVC remote; team remotes are committed (``.dvc/config`` alone).

    Args:
        repo: the opened repository.
        name: the remote's name (letters, digits, ``_-.``).
        url: ``/path/to/dir``, ``s3://bucket/prefix``, ``ssh://user@host[:port]/path``, ...
            A password inside the URL is refused for team remotes.
        default: make it DVC's default remote (``core.remote``).
        local: a personal remote in ``.dvc/config.local`` (not committed).
        force: replace an existing remote of that name.

    Returns:
        The remote as DVC now sees it.

    Raises:
        CredentialInTeamConfigError: the URL embeds a password and ``local`` is False.
        RemoteExistsError: the name exists (without ``force``).
        InvalidRemoteNameError: the name is invalid.
    """
    name = check_name(name)
    if not local and not is_local_path(url) and urlparse(url).password:
        raise CredentialInTeamConfigError(
            "the URL contains a password: it would be committed to git in .dvc/config",
            hint=f"adaptvc remote add {name} URL-WITHOUT-PASSWORD, then "
            f"adaptvc remote modify {name} password VALUE --local",
        )
    if is_local_path(url):
        url = _store_path(url, repo.root, Path.cwd())
    with transaction(repo, "remote change", f"remote add {name}") as txn:
        _add(txn, name, url, level=LOCAL if local else TEAM, default=default, force=force)
    return get_remote(repo.root, name)


def _add(txn: Transaction, name: str, url: str, *, level: str, default: bool, force: bool) -> None:
    files = _files(txn.repo)
    conf = load(files[level])
    sections = remote_sections(conf)
    if name in sections and not force:
        raise RemoteExistsError(
            f"remote {name!r} already exists", name=name, hint=f"adaptvc remote modify {name} url {url}  (or --force)"
        )
    section = sections.get(name, f'remote "{name}"')
    if name in sections and level == TEAM and _scheme(conf[section].get("url", "")) != _scheme(url):
        # Credentials for S3 mean nothing to an SSH server (and DVC rejects the mix): when a
        # team remote is replaced by one of another kind, the personal settings go with it.
        personal = load(files[LOCAL])
        mine = remote_sections(personal).get(name)
        if mine is not None:
            del personal[mine]
            txn.write_bytes(files[LOCAL], render(personal))
    conf[section] = {"url": url}  # --force replaces the remote, options and all
    if default:
        _set_core_remote(conf, name)
    txn.write_bytes(files[level], render(conf))
    if level == TEAM:
        _commit(txn, f"adaptvc: add DVC remote {name}" + (" (default)" if default else ""))


# --- modify ----------------------------------------------------------------------------------


def modify_remote(repo: AdapterRepo, name: str, key: str, value: str | None, *, local: bool = False) -> RemoteInfo:
    """Set (or with ``value=None`` unset) one option of a remote.

    Credentials (see :data:`~adaptvc.storage.remotes.CREDENTIAL_KEYS`) must go to
    ``.dvc/config.local``: pass ``local=True``. Other options go to the team config and
    are committed unless ``local`` is set. (Your global DVC config, for every clone:
    :func:`modify_global_remote`.)

    Raises:
        CredentialInTeamConfigError: a credential without ``local=True``.
        RemoteNotFoundError: no remote of that name.
        InvalidRemoteOptionError: an option DVC does not know for this kind of remote.
    """
    name = check_name(name)
    key = key.strip().lower()
    info = get_remote(repo.root, name)
    if key in CREDENTIAL_KEYS and not local:
        _refuse_credential(name, key)
    if key == "url" and value is not None and not local and urlparse(value).password:
        _refuse_credential(name, "password")
    if value is not None:
        _validate_option(info.url, key, value)
    if value is not None and (key in PATH_KEYS or (key == "url" and is_local_path(value))):
        value = _store_path(value, repo.root, Path.cwd())
    level = LOCAL if local else TEAM
    verb = "unset" if value is None else "set"
    with transaction(repo, "remote change", f"remote modify {name} {key}") as txn:
        path = _files(repo)[level]
        txn.write_bytes(path, _with_option(load(path), name, key, value))
        if level == TEAM:
            _commit(txn, f"adaptvc: {verb} {key} of DVC remote {name}")
    return get_remote(repo.root, name)


def modify_global_remote(name: str, key: str, value: str | None) -> None:
    """Set (``value=None``: unset) one option of remote ``name`` in DVC's global (per-user)
    config, where it applies to the remote of that name in every repository: the place
    for credentials that a fresh ``adaptvc clone`` should find. Needs no repository."""
    name = check_name(name)
    key = key.strip().lower()
    if value is not None and key in PATH_KEYS:
        value = os.path.abspath(os.path.expanduser(value))
    path = config_files(None, levels=("global",))["global"]
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, _with_option(load(path), name, key, value))


# --- remove ----------------------------------------------------------------------------------


def remove_remote(repo: AdapterRepo, name: str) -> None:
    """Remove a remote from the team and personal config (and as the default).

    Raises:
        RemoteNotFoundError: no remote of that name in this repository's config.
    """
    name = check_name(name)
    with transaction(repo, "remote change", f"remote remove {name}") as txn:
        found = _remove(txn, name)
    if not found:
        known = ", ".join(r.name for r in list_remotes(repo.root)) or "none"
        raise RemoteNotFoundError(
            f"no DVC remote named {name!r} in this repository (remotes: {known})", hint="adaptvc remote list"
        )


def _remove(txn: Transaction, name: str) -> bool:
    """Drop remote ``name`` (and ``core.remote`` naming it) from the team file, committed,
    then from the personal one; whether the remote was found."""
    files = _files(txn.repo)
    found = False
    for level in (TEAM, LOCAL):
        conf = load(files[level])
        section = remote_sections(conf).get(name)
        if section is not None:
            del conf[section]
            found = True
        changed = _drop_core_remote(conf, name) or section is not None
        if level == LOCAL and not found:
            break
        if changed:
            txn.write_bytes(files[level], render(conf))
            if level == TEAM:
                _commit(txn, f"adaptvc: remove DVC remote {name}")
    return found


# --- default ---------------------------------------------------------------------------------


def set_default_remote(repo: AdapterRepo, name: str | None, *, local: bool = False) -> RemoteInfo | None:
    """Make an existing remote DVC's default (``core.remote``), as ``dvc remote default``;
    ``name=None`` clears the default. The team default is committed (``.dvc/config``
    alone, like :func:`add_remote`); ``local=True`` writes ``.dvc/config.local`` instead,
    which takes precedence for this clone only.

    Returns:
        The remote as DVC now sees it (``.default`` is False when a personal default in
        ``.dvc/config.local`` still takes precedence), or None after unsetting.

    Raises:
        RemoteNotFoundError: no remote of that name (the message lists the remotes).
        PersonalRemoteError: a team default naming a remote that only your own config
            defines (teammates would not have it); use ``local=True``.
    """
    level = LOCAL if local else TEAM
    if name is not None:
        name = check_name(name)
        info = get_remote(repo.root, name)
        if level == TEAM and info.level != TEAM:
            raise PersonalRemoteError(
                f"remote {name!r} is defined in your {info.level} DVC config, not the team's .dvc/config: "
                "a committed default naming it would break push and pull for teammates",
                name=name,
                level=info.level,
                hint=f"adaptvc remote default {name} --local   (a personal default, not committed)",
            )
    with transaction(repo, "remote change", f"remote default {name or '--unset'}") as txn:
        path = _files(repo)[level]
        conf = load(path)
        core = core_section(conf)
        current = conf[core].get("remote", "").lower() if core is not None else ""
        if name is None and current:
            _drop_core_remote(conf)
        elif name is not None and current != name:
            _set_core_remote(conf, name)
        else:
            return None if name is None else get_remote(repo.root, name)  # already so: nothing to commit
        txn.write_bytes(path, render(conf))
        if level == TEAM:
            _commit(txn, f"adaptvc: make DVC remote {name} the default" if name else "adaptvc: no default DVC remote")
    return None if name is None else get_remote(repo.root, name)
