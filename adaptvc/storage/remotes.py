"""DVC remotes as DVC sees them: where a team's adapter weights live (a directory, S3,
SSH, ...). Reading only; the commands that add, change or remove a remote are
:mod:`adaptvc.sharing.remotes`.

A remote's URL and non-secret options are *team* configuration, in ``.dvc/config``
(committed); credentials are *personal*, in ``.dvc/config.local`` (git-ignored) or the
user's global DVC config. The files are DVC's own, read through
:mod:`adaptvc.storage.dvc_config`, so ``dvc remote list``, ``dvc push`` and friends see
exactly the same remotes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adaptvc.errors import RemoteNotFoundError
from adaptvc.storage.dvc_config import PATH_KEYS, TEAM, read_merged

# Options that hold a secret, or point at a file that does: they are personal.
CREDENTIAL_KEYS = frozenset(
    {
        "access_key_id",
        "secret_access_key",
        "session_token",
        "sse_customer_key",  # s3
        "password",
        "passphrase",
        "keyfile",
        "key_file",
        "key_path",
        "cert_path",  # ssh, http
        "token",
        "custom_auth_header",
        "bearer_token_command",  # http, webdav
        "credentialpath",  # s3/gs credential files
        "account_key",
        "sas_token",
        "connection_string",
        "client_secret",  # azure
        "oss_key_id",
        "oss_key_secret",  # oss
        "gdrive_client_secret",
        "gdrive_user_credentials_file",
        "gdrive_service_account_json_file_path",
        "kerb_ticket",
    }
)


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
        return {
            "name": self.name,
            "url": self.url,
            "default": self.default,
            "level": self.level,
            "options": dict(self.options),
        }


def list_remotes(root: Path) -> list[RemoteInfo]:
    """Every DVC remote of the repository at ``root``, team and personal ones, in DVC's order.

    Raises:
        DvcConfigError: a config file does not parse.
    """
    merged = read_merged(root)
    out = []
    for name, values in merged.remotes.items():
        if "url" not in values:
            continue  # only credentials for a remote defined nowhere: DVC ignores it too
        options = {
            k: ("***" if k in CREDENTIAL_KEYS and k not in PATH_KEYS else v) for k, v in values.items() if k != "url"
        }
        out.append(
            RemoteInfo(
                name=name,
                url=values["url"],
                default=name == merged.default,
                level=merged.url_level[name],
                options=options,
            )
        )
    return out


def get_remote(root: Path, name: str | None = None) -> RemoteInfo:
    """One remote by name, or the default one when ``name`` is None.

    Raises:
        RemoteNotFoundError: no such remote, or no default remote configured.
    """
    remotes = list_remotes(root)
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
