"""edge.agent end to end: a pty radar and a simulated BLE button → outbox → real Mosquitto."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
import tty
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiomqtt
import pytest

from carewatch.commands.edge import add_edge_parser
from contract.wire import WireBatch, WireStatus
from edge.agent import EdgeAgent, main
from edge.config import BLEConfig, BrokerConfig, DeviceConfig, EdgeConfig, OutboxConfig
from edge.publisher import Backoff
from simulators.ble_air import BLEAirSender
from simulators.bthome import Encryption, button_press
from tests.support.mosquitto import MosquittoBroker
from tests.support.paths import REPO
from tests.support.waiting import eventually

FALL = bytes.fromhex("53 59 83 01 00 01 01 32 54 43")
BUTTON = "B4:35:22:F5:3D:A4"
KEY = "90bffd73cb6b26ef58a7a8eba9232036"
DATA = "carewatch/v1/sunrise/gw-east/data"
STATUS = "carewatch/v1/sunrise/gw-east/status"


@pytest.fixture
def radar(tmp_path: Path) -> Iterator[tuple[int, str]]:
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        yield master, os.ttyname(slave)
    finally:
        os.close(slave)
        os.close(master)


def make_config(tmp_path: Path, broker: MosquittoBroker, port: str) -> EdgeConfig:
    return EdgeConfig(
        site="sunrise",
        gateway="gw-east",
        broker=BrokerConfig(host=broker.host, port=broker.port, keepalive=5),
        outbox=OutboxConfig(path=tmp_path / "outbox.db"),
        ble=BLEConfig(backend="simulated", socket=tmp_path / "ble-air.sock"),
        devices=[
            DeviceConfig(id="radar-b12", profile="seeed-mr60fda1", port=port),
            DeviceConfig(id="button-b12", profile="shelly-blu-button1", address=BUTTON, key=KEY),
        ],
    )


@contextlib.asynccontextmanager
async def messages(broker: MosquittoBroker) -> AsyncIterator[asyncio.Queue[aiomqtt.Message]]:
    queue: asyncio.Queue[aiomqtt.Message] = asyncio.Queue()
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.subscribe([(DATA, 1), (STATUS, 1)])

        async def pump() -> None:
            async for message in client.messages:
                queue.put_nowait(message)

        task = asyncio.create_task(pump())
        try:
            yield queue
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task


async def next_on(queue: asyncio.Queue[aiomqtt.Message], topic: str) -> bytes:
    async with asyncio.timeout(10):
        while True:
            message = await queue.get()
            if message.topic.matches(topic):
                assert isinstance(message.payload, bytes)
                return message.payload


async def test_agent_publishes_fall_and_call_button(
    tmp_path: Path, broker: MosquittoBroker, radar: tuple[int, str]
) -> None:
    master, port = radar
    agent = EdgeAgent(
        make_config(tmp_path, broker, port), backoff=Backoff(0.05, 0.2), counters_interval_s=0.1
    )
    stop = asyncio.Event()
    async with messages(broker) as queue:
        task = asyncio.create_task(agent.run(stop))
        birth = WireStatus.model_validate_json(await next_on(queue, STATUS))
        assert (birth.state, birth.bdseq) == ("online", 1)
        await eventually(lambda: agent.publisher.live and all(r.is_open for r in agent.readers))

        sensed = time.time()
        os.write(master, FALL)
        batch = WireBatch.model_validate_json(await next_on(queue, DATA))
        (fall,) = batch.items
        assert (fall.dev, fall.event, fall.value, fall.hist) == ("radar-b12", "fall", True, False)
        assert sensed - 0.001 <= fall.at <= time.time()  # the wire rounds to ms
        assert batch.seq == 1

        sealed = Encryption(bytes.fromhex(KEY), BUTTON, counter=7)
        with BLEAirSender(tmp_path / "ble-air.sock") as air:
            air.send("11:22:33:44:55:66", button_press(1, 80))  # someone else's button
            air.send(BUTTON, button_press(3, 80, encryption=sealed))
        batch = WireBatch.model_validate_json(await next_on(queue, DATA))
        assert batch.seq == 2
        names = {item.name: item for item in batch.items}
        assert names["call_button"].dev == "button-b12"
        assert names["call_button"].value == "press"
        assert names["battery"].value == 80

        os.write(master, b"\x53\x59\x83\x01\x00\x01\x01\x33\x54\x43")  # bad checksum
        await eventually(lambda: agent.counters().get("radar-b12.bad_checksum") == 1)
        counters = agent.counters()
        assert counters["ble.unknown_device"] == 1
        assert counters["items_sent"] == 1 + len(batch.items)

        stop.set()
        await asyncio.wait_for(task, 10)
        death = WireStatus.model_validate_json(await next_on(queue, STATUS))
        assert (death.state, death.bdseq) == ("offline", 1)


async def test_main_rejects_a_bad_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text("site: sunrise\ngateway: gw-east\n")
    assert await main(path) == 2
    assert "edge.yaml line 1, outbox: this field is required" in capsys.readouterr().err


def test_edge_subcommand_parser() -> None:
    parser = argparse.ArgumentParser(prog="carewatch")
    add_edge_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["edge", "--config", "/etc/carewatch/edge.yaml"])
    assert args.config == Path("/etc/carewatch/edge.yaml")
    assert callable(args.func)


def test_sigterm_stops_the_agent_process_cleanly(
    tmp_path: Path, broker: MosquittoBroker, radar: tuple[int, str]
) -> None:
    _, port = radar
    path = tmp_path / "edge.yaml"
    path.write_text(
        f"site: sunrise\ngateway: gw-east\n"
        f"broker: {{host: {broker.host}, port: {broker.port}}}\n"
        f"outbox: {{path: {tmp_path / 'outbox.db'}}}\n"
        f"devices:\n  - {{id: radar-b12, profile: seeed-mr60fda1, port: {port}}}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with subprocess.Popen(
        [sys.executable, "-m", "edge.agent", "--config", str(path)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert asyncio.run(retained_state(broker, "online")) == "online"
            process.send_signal(signal.SIGTERM)
            _, log = process.communicate(timeout=10)
            assert process.returncode == 0, log
        finally:
            if process.poll() is None:
                process.kill()
    assert asyncio.run(retained_state(broker, "offline")) == "offline"
    assert "site=sunrise gateway=gw-east" in log
    assert "device=radar-b12" in log


async def retained_state(broker: MosquittoBroker, wanted: str) -> str:
    """Poll the retained status until it is `wanted` (or 10 s pass)."""
    deadline = time.monotonic() + 10
    state = ""
    while time.monotonic() < deadline:
        async with aiomqtt.Client(broker.host, broker.port) as client:
            await client.subscribe(STATUS, qos=1)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    async for message in client.messages:
                        assert isinstance(message.payload, bytes)
                        state = WireStatus.model_validate_json(message.payload).state
                        break
        if state == wanted:
            return state
        await asyncio.sleep(0.1)
    return state


async def test_missing_bluez_leaves_serial_devices_and_the_publisher_running(
    tmp_path: Path,
    broker: MosquittoBroker,
    radar: tuple[int, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """backend: bleak on a machine without D-Bus, BlueZ or adapter hci99: the radar's fall still
    reaches Mosquitto, the problem is logged once with what to do, counted, and the BLE button
    is reported offline."""
    master, port = radar
    config = make_config(tmp_path, broker, port).model_copy(
        update={"ble": BLEConfig(backend="bleak", adapter="hci99", retry_s=1.0)}
    )
    agent = EdgeAgent(config, backoff=Backoff(0.05, 0.2), supervision_check_s=0.05)
    stop = asyncio.Event()
    caplog.set_level(logging.DEBUG, logger="edge.agent")
    async with messages(broker) as queue:
        task = asyncio.create_task(agent.run(stop))
        try:
            await asyncio.wait_for(agent.ready.wait(), 10)
            await eventually(lambda: agent.publisher.live and all(r.is_open for r in agent.readers))
            os.write(master, FALL)
            batch = WireBatch.model_validate_json(await next_on(queue, DATA))
            assert [(item.dev, item.event) for item in batch.items] == [("radar-b12", "fall")]

            await eventually(lambda: sum(agent.ble_unavailable.values()) >= 2, within=5)  # retried
            health = {device.dev: device.online for device in agent.supervisor.health()}
            assert health == {"radar-b12": True, "button-b12": False}
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)

    (reason,) = agent.ble_unavailable
    assert reason in {"no_dbus", "no_bluez", "no_adapter", "denied"}
    assert agent.counters()[f"ble.unavailable.{reason}"] >= 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors  # once, not on every retry
    assert "BLE unavailable" in errors[0]
    assert "bluetoothctl list" in errors[0] or "usermod" in errors[0]
    assert "button-b12" in errors[0] and "gateway=gw-east" in errors[0]
