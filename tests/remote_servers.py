"""Real servers for the sharing tests: a DVC directory remote, S3 (moto) and SSH (OpenSSH).

Each server runs on 127.0.0.1 on a free port, is started by the first test that needs it
and stopped when the pytest process (one per xdist worker) ends. Every test gets its own
remote *location* (a fresh directory, bucket prefix or SSH path), so tests never see each
other's objects even though they share a server.

Nothing here skips: if ``sshd`` is missing the fixture fails and says how to install it
(``./dev.sh setup`` does it on Debian), because CI must run the SSH tests.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

LOOPBACK = "127.0.0.1"
SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")
S3_BUCKET = "adaptvc-test"
# moto accepts any credentials; these are what the tests put in .dvc/config.local.
S3_CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing"}


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def _wait_for_port(
    port: int, *, proc: subprocess.Popen | None = None, timeout: float = 20.0, banner: bytes | None = None
) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=1) as conn:
                if banner is None or conn.recv(64).startswith(banner):
                    return
        except OSError as exc:
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"nothing answered on {LOOPBACK}:{port} after {timeout}s ({last})")


@dataclass(frozen=True)
class RemoteSpec:
    """Where one test's DVC remote lives and what ``.dvc/config.local`` needs to reach it."""

    kind: str  # "dir" | "s3" | "ssh"
    url: str
    team_config: dict[str, str] = field(default_factory=dict)  # committed (.dvc/config)
    local_config: dict[str, str] = field(default_factory=dict)  # personal (.dvc/config.local)
    root: Path | None = None  # for "dir" and "ssh": the directory on this machine

    def object_path(self, md5: str) -> Path:
        """Where DVC 3 stores an object on a file-based remote (``files/md5/ab/cdef…``)."""
        assert self.root is not None, "only file-based remotes have a local path"
        return self.root / "files" / "md5" / md5[:2] / md5[2:]


# --- S3 (moto server mode) --------------------------------------------------------------


class S3Server:
    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.endpoint = f"http://{LOOPBACK}:{self.port}"
        self._server = ThreadedMotoServer(ip_address=LOOPBACK, port=self.port, verbose=False)

    def start(self) -> S3Server:
        self._server.start()
        _wait_for_port(self.port)
        self.client().create_bucket(Bucket=S3_BUCKET)
        return self

    def stop(self) -> None:
        self._server.stop()

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def new_remote(self) -> RemoteSpec:
        prefix = f"r-{uuid.uuid4().hex[:12]}"
        return RemoteSpec(
            kind="s3",
            url=f"s3://{S3_BUCKET}/{prefix}",
            team_config={"endpointurl": self.endpoint},
            local_config=dict(S3_CREDENTIALS),
        )

    def keys(self, spec: RemoteSpec) -> list[str]:
        prefix = spec.url.split("/", 3)[3] + "/"
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=S3_BUCKET, Prefix=prefix)
        return [obj["Key"][len(prefix) :] for page in pages for obj in page.get("Contents", [])]


# --- SSH (Debian's OpenSSH server, not a daemon: a child of the test process) -----------


def find_sshd() -> str:
    for candidate in SSHD_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("sshd")
    if found:
        return found
    pytest.fail(
        "sshd not found: the SSH remote tests need a real OpenSSH server. "
        "Install it with `apt-get install -y openssh-server` (or run `./dev.sh setup`).",
        pytrace=False,
    )


class SshServer:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.user = _current_user()
        self.host_key = workdir / "ssh_host_ed25519_key"
        self.client_key = workdir / "id_ed25519"
        self.authorized_keys = workdir / "authorized_keys"
        self.config = workdir / "sshd_config"
        self.log = workdir / "sshd.log"
        self.data_root = workdir / "remotes"
        self._proc: subprocess.Popen | None = None
        self._log_file = None

    def start(self) -> SshServer:
        find_sshd()  # fails the test early, with the install hint, when there is no sshd
        self.data_root.mkdir(parents=True, exist_ok=True)
        for key in (self.host_key, self.client_key):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "adaptvc-test", "-f", str(key)],
                check=True,
                capture_output=True,
            )
        shutil.copy(f"{self.client_key}.pub", self.authorized_keys)
        self.authorized_keys.chmod(0o600)
        # sshd refuses to start without its privilege-separation directory.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True) if os.geteuid() == 0 else None
        self.config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    f"ListenAddress {LOOPBACK}",
                    f"HostKey {self.host_key}",
                    f"PidFile {self.workdir / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.authorized_keys}",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    # CI runs as root; key-only root login on loopback with a throw-away key.
                    "PermitRootLogin prohibit-password",
                    "StrictModes no",
                    "UsePAM no",
                    "Subsystem sftp internal-sftp",
                    "LogLevel ERROR",
                    "",
                ]
            )
        )
        self._log_file = open(self.log, "wb")  # noqa: SIM115 - lives as long as the server
        self._proc = subprocess.Popen(
            [find_sshd(), "-D", "-e", "-f", str(self.config), "-p", str(self.port)],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            _wait_for_port(self.port, proc=self._proc, banner=b"SSH-")
        except RuntimeError as exc:
            self.stop()
            pytest.fail(f"sshd did not start: {exc}\n{self.log.read_text(errors='replace')}", pytrace=False)
        return self

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._log_file is not None:
            self._log_file.close()

    def new_remote(self) -> RemoteSpec:
        root = self.data_root / f"r-{uuid.uuid4().hex[:12]}"
        return RemoteSpec(
            kind="ssh",
            url=f"ssh://{self.user}@{LOOPBACK}:{self.port}{root}",
            local_config={"keyfile": str(self.client_key)},
            root=root,
        )


def _current_user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


# --- fixtures (re-exported by tests/conftest.py) -----------------------------------------


@pytest.fixture(scope="session")
def s3_server():
    """A moto S3 server on 127.0.0.1 with the bucket ``adaptvc-test`` (one per xdist worker)."""
    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ssh_server(tmp_path_factory: pytest.TempPathFactory):
    """An OpenSSH server on 127.0.0.1 accepting a throw-away key (one per xdist worker)."""
    server = SshServer(tmp_path_factory.mktemp("sshd")).start()
    yield server
    server.stop()


# The directory remote needs nothing beyond adaptvc's core dependencies: tests using this
# fixture also run there where adaptvc is installed without extras (torchless).
@pytest.fixture(params=[pytest.param("dir", marks=pytest.mark.torchless), "s3", "ssh"])
def dvc_remote(request: pytest.FixtureRequest, tmp_path: Path) -> RemoteSpec:
    """A fresh, empty DVC remote of each kind (the test runs once per kind)."""
    if request.param == "dir":
        root = tmp_path / "dvc-remote"
        return RemoteSpec(kind="dir", url=str(root), root=root)
    if request.param == "s3":
        return request.getfixturevalue("s3_server").new_remote()
    return request.getfixturevalue("ssh_server").new_remote()
