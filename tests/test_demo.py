"""`carewatch demo` as a user runs it: alerts within a minute, a working login, a clean Ctrl-C."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import httpx

REPO = Path(__file__).resolve().parent.parent


def read_banner(
    process: subprocess.Popen[str], lines: queue.Queue[str], deadline: float
) -> tuple[str, str]:
    """The console URL and the demo password, from the demo's own output."""
    seen = ""
    while time.monotonic() < deadline and process.poll() is None:
        try:
            seen += lines.get(timeout=1)
        except queue.Empty:
            continue
        login = re.search(r"Password \(every demo user\): (\S+)", seen)
        url = re.search(r"Staff console: (http://\S+?)/?\n", seen)
        if login and url:
            return url.group(1), login.group(1)
    raise AssertionError(f"the demo did not print its URL and login:\n{seen}")


def pump(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


def test_demo_raises_fall_call_and_smoke_within_a_minute_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "carewatch.cli",
            "--log-level",
            "WARNING",
            "demo",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    reader = threading.Thread(target=pump, args=(process.stdout, lines), daemon=True)
    reader.start()
    try:
        url, password = read_banner(process, lines, started + 30)
        with httpx.Client(base_url=url, timeout=10) as client:
            login = client.post("/api/login", json={"username": "nurse", "password": password})
            assert login.status_code == 200
            rules: set[str] = set()
            while time.monotonic() < started + 60 and rules != {"fall", "call_button", "smoke"}:
                alerts = client.get("/api/alerts").json()["alerts"]
                rules = {alert["rule"] for alert in alerts}
                time.sleep(0.5)
        assert rules == {"fall", "call_button", "smoke"}
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        reader.join(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    output = "".join(lines.get() for _ in range(lines.qsize()))
    assert "carewatch demo stopped." in output
