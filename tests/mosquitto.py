"""A real Mosquitto broker for tests, on a free loopback port.

    from tests.mosquitto import mosquitto

    with mosquitto() as broker:          # raises if /usr/sbin/mosquitto is missing: never skips
        host, port = broker              # or broker.host, broker.port
        ...
        broker.stop()                    # an outage: the port refuses connections
        broker.start()                   # back on the same port (retained messages are gone:
                                         # persistence is off unless asked for)

Security settings (all optional, keyword-only):

    with mosquitto(
        tls=TlsFiles(cafile=ca, certfile=cert, keyfile=key),  # the listener speaks TLS only
        password_file=passwd,            # also turns allow_anonymous off
        acl_file=acl,
        persistence=True,                # kept in the broker's working directory
        extra_config="max_packet_size 266240\n",
    ) as broker: ...

or a complete configuration of your own (it must listen on `port`):

    port = free_port()
    with mosquitto(port=port, config=f"listener {port} 127.0.0.1\n...") as broker: ...

As a pytest fixture (conftest.py):

    @pytest.fixture
    def broker() -> Iterator[MosquittoBroker]:
        with mosquitto() as running:
            yield running
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MOSQUITTO = os.environ.get("CAREWATCH_MOSQUITTO", "/usr/sbin/mosquitto")
START_TIMEOUT_S = 10.0


class MosquittoError(RuntimeError):
    pass


def _find_mosquitto() -> str:
    if Path(MOSQUITTO).is_file() and os.access(MOSQUITTO, os.X_OK):
        return MOSQUITTO
    found = shutil.which("mosquitto")
    if found is None:
        raise MosquittoError(
            f"mosquitto not found at {MOSQUITTO} or on PATH; install it "
            "(apt-get install mosquitto) — these tests need a real broker"
        )
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files for a TLS listener: the CA clients trust, the broker's certificate and key."""

    cafile: Path
    certfile: Path
    keyfile: Path


class MosquittoBroker:
    """A mosquitto process with a generated config; `stop()`/`start()` keep the same port."""

    def __init__(
        self,
        workdir: Path,
        host: str = "127.0.0.1",
        port: int | None = None,
        *,
        tls: TlsFiles | None = None,
        password_file: Path | None = None,
        acl_file: Path | None = None,
        persistence: bool = False,
        extra_config: str = "",
        config: str | None = None,
    ) -> None:
        self.executable = _find_mosquitto()
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.workdir = workdir
        self.config_path = workdir / "mosquitto.conf"
        self.log_path = workdir / "mosquitto.log"
        self.tls = tls
        self.password_file = password_file
        self.acl_file = acl_file
        self.persistence = persistence
        self.extra_config = extra_config
        self._process: subprocess.Popen[bytes] | None = None
        if config is not None:
            self.config_path.write_text(config)
        else:
            self._write_config()

    def __iter__(self) -> Iterator[str | int]:
        return iter((self.host, self.port))

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _write_config(self) -> None:
        lines = [f"listener {self.port} {self.host}"]
        if self.tls is not None:
            lines += [
                f"cafile {self.tls.cafile}",
                f"certfile {self.tls.certfile}",
                f"keyfile {self.tls.keyfile}",
            ]
        lines.append(f"allow_anonymous {'false' if self.password_file else 'true'}")
        if self.password_file is not None:
            lines.append(f"password_file {self.password_file}")
        if self.acl_file is not None:
            lines.append(f"acl_file {self.acl_file}")
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.workdir}/"]
        else:
            lines.append("persistence false")
        if os.geteuid() == 0 and (self.tls or self.password_file or self.acl_file):
            # Started as root, mosquitto drops to the "mosquitto" user, who could not read
            # these files in a private temporary directory.
            lines.append("user root")
        lines += [
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "max_queued_messages 100000",
        ]
        self.config_path.write_text("\n".join(lines) + "\n" + self.extra_config)

    def start(self) -> None:
        if self.running:
            raise MosquittoError("mosquitto is already running")
        log = self.log_path.open("ab")
        try:
            self._process = subprocess.Popen(
                [self.executable, "-c", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise MosquittoError(f"mosquitto exited at start:\n{self.log()}")
            with contextlib.suppress(OSError):
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return
            time.sleep(0.02)
        self.stop()
        raise MosquittoError(f"mosquitto did not listen on {self.port}:\n{self.log()}")

    def stop(self) -> None:
        """Terminate the broker (SIGTERM, then SIGKILL); every client connection drops."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


@contextlib.contextmanager
def mosquitto(
    host: str = "127.0.0.1",
    *,
    port: int | None = None,
    tls: TlsFiles | None = None,
    password_file: Path | None = None,
    acl_file: Path | None = None,
    persistence: bool = False,
    extra_config: str = "",
    config: str | None = None,
) -> Iterator[MosquittoBroker]:
    """Start a fresh mosquitto (on a free port unless given); stop it afterwards.

    Raises if it cannot. The keyword arguments are MosquittoBroker's.
    """
    with tempfile.TemporaryDirectory(prefix="carewatch-mosquitto-") as workdir:
        broker = MosquittoBroker(
            Path(workdir),
            host,
            port,
            tls=tls,
            password_file=password_file,
            acl_file=acl_file,
            persistence=persistence,
            extra_config=extra_config,
            config=config,
        )
        broker.start()
        try:
            yield broker
        finally:
            broker.stop()
