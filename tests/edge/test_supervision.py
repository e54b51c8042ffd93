"""Device supervision: windows, links, battery/RSSI, and the retained device report on Mosquitto.

The clock is injected (`FakeClock`), so a 60 s supervision window passes in no time; the radar
is a real pseudo-terminal behind a /dev/serial/by-id style symlink, the button a simulated BLE
advert, the broker a real Mosquitto.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiomqtt

from contract.wire import (
    Observation,
    WireBatch,
    WireDeviceHealth,
    WireDevicesReport,
    data_topic,
    devices_topic,
)
from edge.agent import EdgeAgent
from edge.config import BLEConfig, BrokerConfig, DeviceConfig, EdgeConfig, OutboxConfig
from edge.publisher import Backoff
from edge.supervision import Supervisor
from simulators.ble_air import BLEAirSender
from simulators.bthome import Encryption, button_press
from simulators.mr60fda1 import MR60FDA1Simulator
from tests.support.clock import FakeClock
from tests.support.mosquitto import MosquittoBroker
from tests.support.waiting import eventually

BUTTON = "B4:35:22:F5:3D:A4"
KEY = "90bffd73cb6b26ef58a7a8eba9232036"
DEVICES = devices_topic("sunrise", "gw-east")
DATA = data_topic("sunrise", "gw-east")
RADAR_WINDOW = 60  # seeed-mr60fda1 supervision_s


def test_supervisor_online_needs_link_and_a_recent_hearing() -> None:
    clock = FakeClock(1_000_000.0)
    changes: list[dict[str, bool]] = []
    supervisor = Supervisor({"radar": 60, "button": 90_000}, clock=clock)
    supervisor.on_change = lambda: changes.append(online(supervisor))

    assert online(supervisor) == {"radar": False, "button": False}  # nothing open yet
    supervisor.link("radar", True)
    supervisor.link("button", True)
    assert changes == [{"radar": True, "button": False}, {"radar": True, "button": True}]

    clock.advance(59)
    supervisor.heard("radar")
    clock.advance(60)
    assert not supervisor.check()  # 60 s since heard: still within the window
    clock.advance(1)
    assert supervisor.check()
    assert online(supervisor) == {"radar": False, "button": True}
    supervisor.heard("radar")
    assert online(supervisor)["radar"]

    supervisor.heard("button", rssi=-71)
    supervisor.observe(
        [
            Observation("button", clock(), "reading", "battery", 87),
            Observation("button", clock(), "reading", "battery", 140),  # nonsense: ignored
            Observation("radar", clock(), "reading", "presence", True),
        ]
    )
    supervisor.link("radar", False)  # unplugged: offline at once, whatever the window says
    assert changes[-1] == {"radar": False, "button": True}
    assert supervisor.health() == [
        WireDeviceHealth(dev="radar", online=False, last_seen=clock()),
        WireDeviceHealth(dev="button", online=True, last_seen=clock(), battery=87, rssi=-71),
    ]


def online(supervisor: Supervisor) -> dict[str, bool]:
    return {device.dev: device.online for device in supervisor.health()}


def agent_config(tmp_path: Path, broker: MosquittoBroker, radar_path: Path) -> EdgeConfig:
    return EdgeConfig(
        site="sunrise",
        gateway="gw-east",
        broker=BrokerConfig(host=broker.host, port=broker.port, keepalive=5),
        outbox=OutboxConfig(path=tmp_path / "outbox.db"),
        ble=BLEConfig(backend="simulated", socket=tmp_path / "ble-air.sock"),
        devices=[
            DeviceConfig(id="radar-b12", profile="seeed-mr60fda1", port=str(radar_path)),
            DeviceConfig(id="button-b12", profile="shelly-blu-button1", address=BUTTON, key=KEY),
        ],
    )


@contextlib.asynccontextmanager
async def running(agent: EdgeAgent) -> AsyncIterator[EdgeAgent]:
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        await asyncio.wait_for(agent.ready.wait(), 10)
        yield agent
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


class Reports:
    """Every device report and data batch the broker delivers to a subscriber."""

    def __init__(self) -> None:
        self.reports: list[WireDevicesReport] = []
        self.batches: list[WireBatch] = []

    def last(self) -> dict[str, WireDeviceHealth]:
        return {device.dev: device for device in self.reports[-1].devices} if self.reports else {}

    def flags(self, device: str) -> list[bool]:
        """The device's online flag in each report, repeats collapsed."""
        seen: list[bool] = []
        for report in self.reports:
            flag = next(d.online for d in report.devices if d.dev == device)
            if not seen or seen[-1] != flag:
                seen.append(flag)
        return seen

    def shows(self, **online: bool) -> Callable[[], bool]:
        def check() -> bool:
            last = self.last()
            return all(dev in last and last[dev].online == want for dev, want in online.items())

        return check


@contextlib.asynccontextmanager
async def watching(broker: MosquittoBroker) -> AsyncIterator[Reports]:
    seen = Reports()
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.subscribe([(DEVICES, 1), (DATA, 1)])

        async def pump() -> None:
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                if message.topic.matches(DEVICES):
                    seen.reports.append(WireDevicesReport.model_validate_json(message.payload))
                else:
                    seen.batches.append(WireBatch.model_validate_json(message.payload))

        task = asyncio.create_task(pump())
        try:
            yield seen
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task


async def retained_report(broker: MosquittoBroker) -> WireDevicesReport:
    """What a subscriber arriving now gets: the retained report."""
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.subscribe(DEVICES, qos=1)
        async with asyncio.timeout(5):
            async for message in client.messages:
                assert message.retain and isinstance(message.payload, bytes)
                return WireDevicesReport.model_validate_json(message.payload)
    raise AssertionError("no retained device report")


def make_agent(config: EdgeConfig, clock: FakeClock) -> EdgeAgent:
    return EdgeAgent(
        config,
        clock=clock,
        backoff=Backoff(0.05, 0.2),
        serial_retry_s=0.05,
        supervision_check_s=0.02,
    )


async def test_report_is_retained_and_follows_silence_and_hearing(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    clock = FakeClock()
    link = tmp_path / "usb-Seeed_MR60FDA1-if00-port0"
    with MR60FDA1Simulator(link=link) as radar:
        agent = make_agent(agent_config(tmp_path, broker, link), clock)
        async with watching(broker) as seen, running(agent):
            await eventually(seen.shows(**{"radar-b12": True, "button-b12": True}))
            radar.send("present")
            sealed = Encryption(bytes.fromhex(KEY), BUTTON, counter=3)
            with BLEAirSender(tmp_path / "ble-air.sock") as air:
                air.send(BUTTON, button_press(1, 64, encryption=sealed), rssi=-77)
            await eventually(lambda: agent.supervisor.health()[1].battery == 64)
            heard_at = clock()

            clock.advance(RADAR_WINDOW + 1)  # the radar falls silent past its window
            await eventually(seen.shows(**{"radar-b12": False, "button-b12": True}))
            radar.send("present")  # heard again
            await eventually(seen.shows(**{"radar-b12": True}))
            assert seen.flags("radar-b12") == [True, False, True]
            assert seen.flags("button-b12") == [True]  # a 25 h window: silence is normal

        report = await retained_report(broker)  # the agent has stopped: it is still there
    devices = {device.dev: device for device in report.devices}
    assert devices["button-b12"] == WireDeviceHealth(
        dev="button-b12", online=True, last_seen=round(heard_at, 3), battery=64, rssi=-77
    )
    assert devices["radar-b12"].online
    assert devices["radar-b12"].last_seen == round(clock(), 3)
    assert report.at == round(clock(), 3)


async def test_unplugged_radar_is_offline_at_once_and_back_after_replug(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    by_id = tmp_path / "serial" / "by-id"
    by_id.mkdir(parents=True)
    link = by_id / "usb-Seeed_MR60FDA1-if00-port0"
    clock = FakeClock()
    radar = MR60FDA1Simulator(link=link)
    agent = make_agent(agent_config(tmp_path, broker, link), clock)
    async with watching(broker) as seen, running(agent):
        await eventually(seen.shows(**{"radar-b12": True}))
        (reader,) = agent.readers
        first_port = radar.port

        radar.close()  # unplugged: the pty hangs up and udev's symlink goes away
        await eventually(seen.shows(**{"radar-b12": False}))  # no window to wait for
        assert reader.errors["port_error"] == 1

        ttyusb0 = os.openpty()  # its old tty name is taken meanwhile (ttyUSB0 -> ttyUSB1)
        radar = MR60FDA1Simulator(link=link)  # plugged back in: a new tty, the same by-id name
        try:
            assert radar.port != first_port
            await eventually(seen.shows(**{"radar-b12": True}))
            radar.send("fall")
            await eventually(lambda: any(b.items[0].event == "fall" for b in seen.batches))
        finally:
            radar.close()
            for fd in ttyusb0:
                os.close(fd)
    assert seen.flags("radar-b12") == [True, False, True]


async def test_rebirth_republishes_the_current_report(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    clock = FakeClock()
    link = tmp_path / "radar"
    with MR60FDA1Simulator(link=link):
        agent = make_agent(agent_config(tmp_path, broker, link), clock)
        async with watching(broker) as seen, running(agent):
            await eventually(seen.shows(**{"radar-b12": True}))
            before = len(seen.reports)
            clock.advance(10)
            async with aiomqtt.Client(broker.host, broker.port) as hub:
                await hub.publish("carewatch/v1/sunrise/gw-east/cmd", b'{"cmd":"rebirth"}', qos=1)
            await eventually(lambda: len(seen.reports) > before)
            assert seen.reports[-1].at == round(clock(), 3)  # built when sent, not queued
