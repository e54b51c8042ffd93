"""Kill -9 the hub process while a bed-exit timer and an escalation step are pending.

The hub runs as `carewatch hub --config` in its own process with short real waits (a bed-exit
wait of 6 s, a second escalation step after 6 s). It is killed without warning after both are
pending, started again, and each must fire exactly once, at its time.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import aiomqtt
import httpx
import pytest
import yaml

from contract.wire import data_topic
from hub.access.auth import hash_password
from tests.conftest import NURSE, SMALL_SITE
from tests.support.mosquitto import MosquittoBroker, free_port

WAIT_S = 6.0
WAIT_MIN = WAIT_S / 60


def hub_yaml(broker: MosquittoBroker, tmp_path: Path, web_port: int) -> Path:
    site = {
        **SMALL_SITE,
        "devices": [
            *SMALL_SITE["devices"],
            {"id": "bed-102", "gateway": "gw-east", "profile": "seeed-mr60bha1", "bed": "SR-E-102"},
        ],
    }
    config: dict[str, Any] = {
        "broker": {"host": broker.host, "port": broker.port, "client_id": "hub-kill-test"},
        "database": str(tmp_path / "hub.db"),
        "web": {"host": "127.0.0.1", "port": web_port, "secret_key": "k" * 40},
        "users": [
            {
                "username": NURSE[0],
                "password_hash": hash_password(NURSE[1]),
                "role": "staff",
                "sites": ["*"],
            }
        ],
        "sites": [site],
        # The whole day is "night", so the bed-exit rule applies whenever the test runs.
        "watch": {
            "defaults": {
                "night": {"start": "00:00", "end": "23:59:59"},
                "bed_exit_return_min": WAIT_MIN,
            }
        },
        "roster": {
            "sites": {
                "sunrise": {
                    "shifts": [
                        {
                            "name": "all-day",
                            "start": "00:00",
                            "end": "00:00",
                            "charge_nurse": NURSE[0],
                            "assignments": [{"user": NURSE[0]}],
                        }
                    ]
                }
            }
        },
        "escalation": {
            "defaults": {
                "steps": [
                    {"after_min": 0, "notify": "on_duty_zone"},
                    {"after_min": WAIT_MIN, "notify": "charge_nurse"},
                ],
                "repeat_every_min": 600,
                "night": {
                    "steps": [
                        {"after_min": 0, "notify": "on_duty_zone"},
                        {"after_min": WAIT_MIN, "notify": "charge_nurse"},
                    ]
                },
            }
        },
    }
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class HubProcess:
    """`carewatch hub --config` in its own process, which the test can kill -9."""

    def __init__(self, config: Path, web_port: int) -> None:
        self._config = config
        self.log = config.with_name("hub.log")
        self._log_file: IO[bytes] | None = None
        self.url = f"http://127.0.0.1:{web_port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._log_file = self.log.open("ab")
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "carewatch.cli",
                "--log-level",
                "WARNING",
                "hub",
                "--config",
                str(self._config),
            ],
            stdout=subprocess.DEVNULL,
            stderr=self._log_file,
        )

        def up() -> bool:
            try:
                health = httpx.get(f"{self.url}/api/health", timeout=1).json()
            except httpx.HTTPError:
                return False
            return bool(health["broker_connected"])

        until(up, 30)

    def signal(self, signum: int) -> None:
        assert self._process is not None
        self._process.send_signal(signum)

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()  # SIGKILL: no clean shutdown, no last writes
            self._process.wait(10)
        if self._log_file is not None:
            self._log_file.close()


@pytest.fixture
def hub_process(broker: MosquittoBroker, tmp_path: Path) -> Iterator[HubProcess]:
    web_port = free_port()
    process = HubProcess(hub_yaml(broker, tmp_path, web_port), web_port)
    yield process
    process.kill()


async def publish(broker: MosquittoBroker, items: list[dict[str, Any]], seq: int) -> None:
    body = {"epoch": "0badcafe", "seq": seq, "bdseq": 1, "sent": time.time(), "items": items}
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.publish(data_topic("sunrise", "gw-east"), json.dumps(body), qos=1)


def alerts(client: httpx.Client, rule: str) -> list[dict[str, Any]]:
    listed = client.get("/api/alerts", params={"state": "all"}).json()["alerts"]
    return [alert for alert in listed if alert["rule"] == rule]


def until(check: Any, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s")


def test_pending_bed_exit_and_escalation_survive_kill_9(
    hub_process: HubProcess, broker: MosquittoBroker
) -> None:
    hub_process.start()
    with httpx.Client(base_url=hub_process.url, timeout=10) as client:
        client.post("/api/login", json={"username": NURSE[0], "password": NURSE[1]})
        now = time.time()
        asyncio.run(
            publish(
                broker,
                [
                    {"dev": "bed-102", "at": now, "reading": "occupancy", "value": False},
                    {"dev": "radar-101", "at": now, "event": "fall", "value": True},
                ],
                seq=1,
            )
        )
        (fall,) = until(lambda: alerts(client, "fall"))
        steps = client.get(f"/api/alerts/{fall['id']}/escalation").json()
        assert steps["escalation_step"] == 1
    hub_process.kill()
    killed_at = time.time()
    hub_process.start()
    with httpx.Client(base_url=hub_process.url, timeout=10) as client:
        client.post("/api/login", json={"username": NURSE[0], "password": NURSE[1]})
        (bed_exit,) = until(lambda: alerts(client, "bed_exit"))
        assert bed_exit["sensed_at"] == pytest.approx(now + WAIT_S, abs=0.01)
        assert bed_exit["opened_at"] >= killed_at
        assert bed_exit["opened_at"] - (now + WAIT_S) < 5, "fired late"

        def second_step() -> dict[str, Any] | None:
            summary = client.get(f"/api/alerts/{fall['id']}/escalation").json()
            return summary if summary["escalation_step"] == 2 else None

        summary = until(second_step)
        time.sleep(2)  # anything fired twice would show up by now
        assert len(alerts(client, "bed_exit")) == 1
        assert alerts(client, "bed_exit")[0]["count"] == 1
        again = client.get(f"/api/alerts/{fall['id']}/escalation").json()
        assert again == summary


def test_sigusr1_logs_where_every_task_of_the_hub_waits(hub_process: HubProcess) -> None:
    """For a hub that seems stuck: its ingest handler and reader are there, and where."""
    hub_process.start()

    def connected() -> bool | None:  # the MQTT reader runs once the broker session is up
        return httpx.get(f"{hub_process.url}/api/health").json()["broker_connected"] or None

    until(connected, 10)
    hub_process.signal(signal.SIGUSR1)

    def logged() -> str | None:
        text = hub_process.log.read_text(errors="replace")
        return text if "task hub-mqtt-handler waits at" in text else None

    text = until(logged, 10)
    assert "task hub-mqtt-reader waits at" in text
    assert "next_burst" in text  # the handler waits for messages, as it should when idle
