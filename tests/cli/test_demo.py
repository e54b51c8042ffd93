"""`carewatch demo` as a user runs it: the roster, a staff console reached, the Garden suite's
call that reaches nobody at first, the banner printed last with the logs in a file, a clean
Ctrl-C that raises no alarm for the demo's own gateways, and `--host` with its warning."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx

from tests.support.paths import REPO
from tests.support.webpush_receiver import Delivered, PushReceiver, PushServiceThread

DEMO = (sys.executable, "-m", "carewatch.cli", "demo")
SITE = "sunrise"
GARDEN_BED = "SR-G-301"
# The banner's last line: the demo prints nothing after it until it stops.
BANNER_END = re.compile(r"^  (Ctrl-C to stop\.|Stopping by itself after .*)\n$")


def pump(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


class Demo:
    """A `carewatch demo` process, its standard output line by line, its stderr in a file."""

    def __init__(self, data: Path, *args: str) -> None:
        self.data = data
        self.stderr_path = data.parent / f"{data.name}-stderr.txt"
        self._stderr = self.stderr_path.open("w")
        self.process = subprocess.Popen(
            [*DEMO, "--port", "0", "--data-dir", str(data), *args],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        assert self.process.stdout is not None
        self._reader = threading.Thread(
            target=pump, args=(self.process.stdout, self.lines), daemon=True
        )
        self._reader.start()
        self.printed = ""

    def banner(self, deadline: float) -> str:
        """Everything printed up to the banner's last line."""
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                continue
            self.printed += line
            if BANNER_END.match(line):
                return self.printed
        raise AssertionError(f"the demo did not print its banner:\n{self.printed}")

    def stop(self, signum: signal.Signals = signal.SIGINT) -> str:
        """Stop it as a user does; what it printed after the banner."""
        before = len(self.printed)
        self.process.send_signal(signum)
        self.process.wait(timeout=60)
        self._reader.join(timeout=10)
        while not self.lines.empty():
            self.printed += self.lines.get()
        return self.printed[before:]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._stderr.close()


@contextmanager
def demo(data: Path, *args: str) -> Iterator[Demo]:
    running = Demo(data, *args)
    try:
        yield running
    finally:
        running.close()


@contextmanager
def login(url: str, banner: str, user: str) -> Iterator[httpx.Client]:
    password = re.search(r"Password \(every demo user\): (\S+)", banner)
    assert password is not None, banner
    with httpx.Client(base_url=url, timeout=10) as client:
        answer = client.post("/api/login", json={"username": user, "password": password.group(1)})
        assert answer.status_code == 200, answer.text
        yield client


class Console:
    """A staff console left open: the live alert stream, read in a thread as a browser does."""

    def __init__(self, client: httpx.Client) -> None:
        self.opened = threading.Event()
        self.alerts: queue.Queue[dict[str, Any]] = queue.Queue()
        self._client = client
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with (
            httpx.Client(
                base_url=self._client.base_url, cookies=self._client.cookies, timeout=None
            ) as stream_client,
            stream_client.stream("GET", "/api/stream") as stream,
        ):
            event = None
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                    if event == "hello":
                        self.opened.set()
                elif line.startswith("data: ") and event == "alert":
                    self.alerts.put(json.loads(line.removeprefix("data: ")))


def wait_for_alerts(client: httpx.Client, deadline: float, done: Any) -> list[dict[str, Any]]:
    """The active alerts, read until `done(alerts)` or the deadline."""
    alerts: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        alerts = client.get("/api/alerts").json()["alerts"]
        if done(alerts):
            break
        time.sleep(0.5)
    return alerts


def wait_for_push(service: PushReceiver, alert_id: int, deadline: float) -> Delivered:
    """The first push the local push service accepted for `alert_id`."""
    while time.monotonic() < deadline:
        for delivered in list(service.delivered):
            if delivered.message["alert_id"] == alert_id:
                return delivered
        time.sleep(0.2)
    raise AssertionError(f"no push for alert {alert_id}; refused: {service.refused}")


def one(alerts: list[dict[str, Any]], rule: str, bed: str | None = None) -> dict[str, Any]:
    found = [a for a in alerts if a["rule"] == rule and (bed is None or a["bed"] == bed)]
    assert len(found) == 1, (rule, bed, [(a["rule"], a["bed"]) for a in alerts])
    return found[0]


def everything_raised(alerts: list[dict[str, Any]]) -> bool:
    beds = {(a["rule"], a["bed"]) for a in alerts}
    garden = [a for a in alerts if a["bed"] == GARDEN_BED]
    return (
        {("fall", "SR-E-104"), ("call_button", GARDEN_BED), ("call_button", "FB-OKAFOR")} <= beds
        and "smoke" in {a["rule"] for a in alerts}
        and all(a["nobody_reached_at"] is not None for a in garden)
    )


def test_demo_shows_the_whole_loop_prints_its_banner_last_and_stops_without_an_alarm(
    tmp_path: Path,
) -> None:
    data = tmp_path / "demo"
    started = time.monotonic()
    with (
        PushServiceThread() as push_service,
        demo(data, "--allow-push-host", "127.0.0.1") as running,
    ):
        banner = running.banner(started + 60)
        url_found = re.search(r"Staff console: (http://\S+?)/?\n", banner)
        assert url_found is not None
        url = url_found.group(1)
        assert "WARNING" not in banner  # loopback: nothing exposed
        assert url.startswith("http://127.0.0.1:")
        assert f"Logs:          {data / 'demo.log'}" in banner
        assert "Care service phone: +44 20 7946 0321" in banner
        assert GARDEN_BED in banner and "NOBODY REACHED" in banner

        with login(url, banner, "nurse") as nurse:
            # The roster: the charge nurse and a carer per wing on duty now; nobody in the Garden.
            on_duty = nurse.get("/api/roster/on-duty", params={"site": SITE}).json()
            shift = on_duty["shifts"][0]
            assert on_duty["shifts"] in (["day"], ["night"])
            assert on_duty["charge_nurses"] == ["nurse"]
            assert on_duty["staff"] == ["nurse", f"{shift}-east", f"{shift}-west"]
            east = nurse.get("/api/roster/on-duty", params={"site": SITE, "zone": "east"}).json()
            assert east["staff"] == ["nurse", f"{shift}-east"]
            garden = nurse.get("/api/roster/on-duty", params={"site": SITE, "zone": "garden"})
            assert garden.json()["staff"] == []
            # The roster view (the charge nurse may read it) shows the gap before any alarm.
            view = nurse.get("/api/roster", params={"site": SITE}).json()["sites"][0]
            assert view["uncovered_now"] == ["garden"]

            # The east wing's carer on duty has the app on her phone, subscribed to push.
            carer = f"{shift}-east"
            with login(url, banner, carer) as phone:
                _, _, subscription = push_service.new_subscription()
                csrf = {"X-CSRF-Token": phone.get("/api/me").json()["csrf_token"]}
                stored = phone.post("/api/push/subscriptions", json=subscription, headers=csrf)
                assert stored.status_code == 201, stored.text

            # The night starts when a console opens: the nurse's, left open as on a tablet.
            console = Console(nurse)
            assert console.opened.wait(30)
            alerts = wait_for_alerts(nurse, time.monotonic() + 90, everything_raised)
            assert everything_raised(alerts), [(a["rule"], a["bed"]) for a in alerts]

            uncovered = one(alerts, "zone_uncovered")
            assert (uncovered["subject"], uncovered["priority"]) == (
                "zone:sunrise/garden",
                "trouble",
            )
            # The fall reached the charge nurse on her console: nobody-reached is not shown.
            fall = one(alerts, "fall", "SR-E-104")
            assert fall["nobody_reached_at"] is None
            # It reached the carer's phone too, with the staff's buttons on the notification.
            pushed = wait_for_push(push_service, fall["id"], time.monotonic() + 30)
            assert [a["action"] for a in pushed.message["actions"]] == ["acknowledge", "decline"]
            fall_record = nurse.get(f"/api/alerts/{fall['id']}/escalation").json()
            assert {"user": carer, "channel": "push"} in [
                {"user": r["user"], "channel": r["channel"]} for r in fall_record["reached"]
            ]
            assert {"user": "nurse", "channel": "console"} in [
                {"user": r["user"], "channel": r["channel"]} for r in fall_record["reached"]
            ]
            assert fall_record["nobody_reached"] == []

            # The Garden suite's call reached nobody at its first step, then the fallback
            # reached the charge nurse; the record says why in words.
            call = one(alerts, "call_button", GARDEN_BED)
            record = nurse.get(f"/api/alerts/{call['id']}/escalation").json()
            assert record["nobody_reached_at"] == call["nobody_reached_at"]
            first = record["nobody_reached"][0]
            assert (first["step"], first["phase"]) == (1, "escalate")
            assert "Garden suite" in first["reason"], first
            assert "nurse" in [r["user"] for r in record["reached"]]
            history = nurse.get(f"/api/alerts/{call['id']}").json()["history"]
            assert "nobody_reached" in [entry["action"] for entry in history]
            # The console saw the alert change as it happened.
            seen: list[dict[str, Any]] = []
            while not console.alerts.empty():
                seen.append(console.alerts.get())
            assert any(a["id"] == call["id"] and a["nobody_reached_at"] for a in seen)

        stop_signal_at = time.time()
        after_banner = running.stop(signal.SIGINT)
        assert running.process.returncode == 0

    # Nothing but the banner while it ran; the logs are in the data folder.
    assert after_banner == "\ncarewatch demo stopped.\n"  # the banner ends with a blank line
    assert running.printed.strip().startswith("carewatch demo is running:")
    assert running.stderr_path.read_text() == ""
    log = (data / "demo.log").read_text()
    assert "hub started" in log
    assert "scenario: the night begins (nurse opened a console)" in log
    assert "alert opened: call_button" in log
    assert "WARNING edge.publisher: hub is offline" not in log

    # Ctrl-C stopped the hub before its gateways: no gateway or device alarm was raised.
    with sqlite3.connect(data / "hub.db") as db:
        offline = db.execute(
            "SELECT rule, subject, opened_at FROM alerts "
            "WHERE rule IN ('gateway_offline', 'device_offline')"
        ).fetchall()
        statuses = db.execute("SELECT gateway, state FROM gateway_status").fetchall()
        last = db.execute("SELECT max(opened_at) FROM alerts").fetchone()[0]
    assert offline == []
    assert sorted(statuses) == [
        ("gw-east", "online"),
        ("gw-home-chen", "online"),
        ("gw-home-okafor", "online"),
        ("gw-west", "online"),
    ]
    assert last < stop_signal_at


def test_demo_host_warns_what_it_exposes_and_stops_on_sigterm(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    started = time.monotonic()
    with demo(data, "--host", "0.0.0.0") as running:
        banner = running.banner(started + 60)
        warning = banner.index("WARNING: --host 0.0.0.0 opens the demo to every network")
        assert warning < banner.index("Staff console:")
        for words in ("demo password", "every resident", "no TLS", "network you trust"):
            assert words in banner, words
        urls = re.findall(r"(?:Staff console|Also at): +(http://\S+?)/?\n", banner)
        assert any(u.startswith("http://127.0.0.1:") for u in urls), banner
        for url in urls:  # every address it prints answers
            assert httpx.get(f"{url}/api/health", timeout=10).status_code == 200
        after_banner = running.stop(signal.SIGTERM)
        assert running.process.returncode == 0
    assert after_banner == "\ncarewatch demo stopped.\n"  # the banner ends with a blank line
    assert running.stderr_path.read_text() == ""


def test_demo_refuses_an_address_not_of_this_machine_and_a_port_in_use_in_words(
    tmp_path: Path,
) -> None:
    def demo_on(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*DEMO, *args, "--data-dir", str(tmp_path)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )

    elsewhere = demo_on("--host", "192.0.2.7", "--port", "0")  # TEST-NET-1: not this machine
    assert elsewhere.returncode == 2
    assert "cannot listen on '192.0.2.7'" in elsewhere.stderr
    assert "0.0.0.0 for all of them" in elsewhere.stderr
    assert elsewhere.stdout == ""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = demo_on("--port", str(port))
    assert busy.returncode == 2
    assert f"port {port} is in use; try --port 8081" in busy.stderr
    assert busy.stdout == ""
