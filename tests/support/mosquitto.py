"""A real Mosquitto broker for tests, on a free loopback port.

    from tests.support.mosquitto import mosquitto

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

or a complete configuration of your own, made for the port the helper picks:

    with mosquitto(config=lambda port: f"listener {port} 127.0.0.1\n...") as broker: ...

or, when the port must be known beforehand, for a given port (it must listen on `port`):

    port = free_port()
    with mosquitto(port=port, config=f"listener {port} 127.0.0.1\n...") as broker: ...

The free port is found by binding port 0 and closing the socket, so another process may take it
before mosquitto binds it. When the helper picked the port (no `port=` given), a first start
that fails with "Address already in use" is retried on another free port; a port the caller
gave, or the port of a broker that has already run (`stop()`/`start()`), is never moved.
Start-up is judged from mosquitto's own log: it is up once it logs "running", and a clash
shows as its exit with "Address already in use" (a listener that answers on the port may be
somebody else's). A configuration of your own should therefore keep mosquitto's default
logging to stderr (log_dest stderr, log_type information); one that does not is only checked
by connecting to the port.

As a pytest fixture (conftest.py):

    @pytest.fixture
    def broker() -> Iterator[MosquittoBroker]:
        with mosquitto() as running:
            yield running
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

MOSQUITTO = os.environ.get("CAREWATCH_MOSQUITTO", "/usr/sbin/mosquitto")
START_TIMEOUT_S = 10.0
START_ATTEMPTS = 5  # ports tried when the picked one turns out to be taken
RUNNING = re.compile(r"mosquitto version \S+ running$", re.MULTILINE)
PORT_TAKEN = "Address already in use"

ConfigFor = Callable[[int], str]


class MosquittoError(RuntimeError):
    pass


class MosquittoPortInUse(MosquittoError):
    """Mosquitto exited because something else holds its port."""


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


def _logs_start_up(config: str) -> bool:
    """Whether this config has mosquitto log its information messages to stderr (the default)."""
    destinations: set[str] = set()
    types: set[str] = set()
    for line in config.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "log_dest":
            destinations.add(words[1])
        elif len(words) >= 2 and words[0] == "log_type":
            types.add(words[1])
    to_stderr = not destinations or "stderr" in destinations
    information = not types or bool(types & {"information", "all"})
    return to_stderr and information


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
        config: str | ConfigFor | None = None,
    ) -> None:
        self.executable = _find_mosquitto()
        self.host = host
        self.port = port if port is not None else free_port(host)
        # Only a port the helper picked may move, and only until the broker has run on it.
        self._may_move_port = port is None and not isinstance(config, str)
        self.workdir = workdir
        self.config_path = workdir / "mosquitto.conf"
        self.log_path = workdir / "mosquitto.log"
        self.tls = tls
        self.password_file = password_file
        self.acl_file = acl_file
        self.persistence = persistence
        self.extra_config = extra_config
        self._config = config
        self._process: subprocess.Popen[bytes] | None = None
        self._write_config()

    def __iter__(self) -> Iterator[str | int]:
        return iter((self.host, self.port))

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _write_config(self) -> None:
        if isinstance(self._config, str):
            self.config_path.write_text(self._config)
        elif self._config is not None:
            self.config_path.write_text(self._config(self.port))
        else:
            self.config_path.write_text(self._generated_config())

    def _generated_config(self) -> str:
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
        return "\n".join(lines) + "\n" + self.extra_config

    def start(self) -> None:
        """Start the broker and wait until it listens; raises MosquittoError if it cannot."""
        if self.running:
            raise MosquittoError("mosquitto is already running")
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                self._start_once()
                break
            except MosquittoPortInUse:
                if not self._may_move_port or attempt == START_ATTEMPTS:
                    raise
                self.port = free_port(self.host)
                self._write_config()
        self._may_move_port = False

    def _start_once(self) -> None:
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        try:
            self._process = subprocess.Popen(
                [self.executable, "-c", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()
        self._wait_until_listening(log_start)

    def _wait_until_listening(self, log_start: int) -> None:
        process = self._process
        assert process is not None
        logs_start_up = _logs_start_up(self.config_path.read_text())
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            exited = process.poll() is not None
            started = self._log_since(log_start)
            if RUNNING.search(started):
                return
            if exited:
                self._process = None
                if PORT_TAKEN in started:
                    raise MosquittoPortInUse(f"port {self.port} is taken:\n{started}")
                raise MosquittoError(f"mosquitto exited at start:\n{started}")
            if not logs_start_up and self._answers():
                return
            time.sleep(0.02)
        self.stop()
        raise MosquittoError(f"mosquitto did not listen on {self.port}:\n{self.log()}")

    def _answers(self) -> bool:
        try:
            socket.create_connection((self.host, self.port), timeout=0.2).close()
        except OSError:
            return False
        return True

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
        return self._log_since(0)

    def _log_since(self, offset: int) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")
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
    config: str | ConfigFor | None = None,
) -> Iterator[MosquittoBroker]:
    """Start a fresh mosquitto (on a free port unless given); stop it afterwards.

    Raises if it cannot. The keyword arguments are MosquittoBroker's; `config` is a complete
    configuration for `port`, or a function that makes one for whichever port the helper picks.
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
