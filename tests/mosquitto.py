"""A real Mosquitto broker for tests, on a free loopback port.

    from tests.mosquitto import mosquitto

    with mosquitto() as broker:          # raises if /usr/sbin/mosquitto is missing: never skips
        host, port = broker              # or broker.host, broker.port
        ...
        broker.stop()                    # an outage: the port refuses connections
        broker.start()                   # back on the same port (retained messages are gone:
                                         # persistence is off)

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


class MosquittoBroker:
    """A mosquitto process with a generated config; `stop()`/`start()` keep the same port."""

    def __init__(self, workdir: Path, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.executable = _find_mosquitto()
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.workdir = workdir
        self.config_path = workdir / "mosquitto.conf"
        self.log_path = workdir / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._write_config()

    def __iter__(self) -> Iterator[str | int]:
        return iter((self.host, self.port))

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _write_config(self) -> None:
        self.config_path.write_text(
            f"listener {self.port} {self.host}\n"
            "allow_anonymous true\n"
            "persistence false\n"
            "log_dest stderr\n"
            "log_type error\n"
            "log_type warning\n"
            "log_type notice\n"
            "log_type information\n"
            "max_queued_messages 100000\n"
        )

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
def mosquitto(host: str = "127.0.0.1") -> Iterator[MosquittoBroker]:
    """Start a fresh mosquitto on a free port; stop it afterwards. Raises if it cannot."""
    with tempfile.TemporaryDirectory(prefix="carewatch-mosquitto-") as workdir:
        broker = MosquittoBroker(Path(workdir), host)
        broker.start()
        try:
            yield broker
        finally:
            broker.stop()
