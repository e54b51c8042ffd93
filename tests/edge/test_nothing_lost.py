"""Nothing lost: a broker outage, a `kill -9` of the agent, and a full disk budget, end to end.

Real parts throughout: MR60FDA1 simulators behind pseudo-terminals, the edge agent (in process,
or as `carewatch edge` in its own process), a real Mosquitto, and the hub with its store and
rules. Every check compares what the hub stored with what was written to the serial ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from edge.agent import EdgeAgent
from edge.config import EdgeConfig
from edge.outbox import MIN_MAX_BYTES
from edge.publisher import Backoff
from hub.app import Hub
from simulators.ble_air import BLEAirSender
from simulators.bthome import smoke
from simulators.mr60fda1 import MR60FDA1Simulator
from tests.conftest import HubFactory
from tests.support.mosquitto import MosquittoBroker
from tests.support.paths import REPO
from tests.support.waiting import eventually

RADARS = ("radar-101", "radar-102")
SMOKE_ADDRESS = "A4:C1:38:00:11:01"
FAST = Backoff(initial=0.05, maximum=0.3)
T = TypeVar("T")

# What each radar frame becomes at the hub: (kind, name, value).
MEANING: dict[str, tuple[str, str, object]] = {
    "present": ("reading", "presence", True),
    "absent": ("reading", "presence", False),
    "moving": ("reading", "motion", True),
    "stationary": ("reading", "motion", False),
    "fall": ("event", "fall", True),
}


@dataclass(frozen=True, slots=True)
class Row:
    device: str
    name: str
    value: object
    sensed_at: float
    historical: bool


class Feed:
    """Writes frames into the radars' ports and remembers what the hub should end up with."""

    def __init__(self, radars: dict[str, MR60FDA1Simulator], seed: int = 7) -> None:
        self.radars = radars
        self.sent: list[tuple[str, str, str, object]] = []  # device, kind, name, value
        self._random = random.Random(seed)

    def send(self, device: str, frame: str) -> None:
        """Write the frame, unless it would only repeat the radar's last value for that
        reading: the agent reports by exception, and these tests count items one for one."""
        if not self._changes(device, frame):
            return
        self.radars[device].send(frame)
        self.sent.append((device, *MEANING[frame]))

    def send_routine(self) -> str:
        """A random presence or motion change to a random radar; returns the device.

        Always a change: the agent reports by exception, so a repeated value may rightly not
        be sent again, and this test counts items one for one.
        """
        device = self._random.choice(RADARS)
        frames = [
            frame
            for frame in ("present", "absent", "moving", "stationary")
            if self._changes(device, frame)
        ]
        self.send(device, self._random.choice(frames))
        return device

    def _changes(self, device: str, frame: str) -> bool:
        kind, name, value = MEANING[frame]
        if kind == "event":
            return True
        last = [v for dev, _, n, v in self.sent if dev == device and n == name]
        return not last or last[-1] != value

    def expected(self, kind: str, device: str | None = None) -> list[tuple[str, object]]:
        return [
            (name, value)
            for dev, k, name, value in self.sent
            if k == kind and (device is None or dev == device)
        ]


@pytest.fixture
def radars() -> Iterator[dict[str, MR60FDA1Simulator]]:
    simulators = {device: MR60FDA1Simulator() for device in RADARS}
    try:
        yield simulators
    finally:
        for simulator in simulators.values():
            simulator.close()


def edge_config(
    broker: MosquittoBroker,
    tmp_path: Path,
    radars: dict[str, MR60FDA1Simulator],
    **outbox: object,
) -> dict[str, Any]:
    return {
        "site": "sunrise",
        "gateway": "gw-east",
        "broker": {"host": broker.host, "port": broker.port, "keepalive": 5},
        "outbox": {"path": str(tmp_path / "outbox.db"), **outbox},
        "ble": {"backend": "simulated", "socket": str(tmp_path / "air.sock")},
        "devices": [
            *({"id": d, "profile": "seeed-mr60fda1", "port": r.port} for d, r in radars.items()),
            {"id": "smoke-101", "profile": "bthome-smoke", "address": SMOKE_ADDRESS},
        ],
    }


@contextlib.asynccontextmanager
async def running_agent(config: dict[str, Any]) -> AsyncIterator[EdgeAgent]:
    agent = EdgeAgent(EdgeConfig.model_validate(config), backoff=FAST)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        await asyncio.wait_for(agent.ready.wait(), 10)
        await eventually(lambda: agent.publisher.live)
        yield agent
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def stored(hub: Hub, table: str) -> list[Row]:
    async with hub.store.db.execute(
        f"SELECT device, name, value, sensed_at, historical FROM {table} ORDER BY id"
    ) as cursor:
        rows = await cursor.fetchall()
    return [Row(r[0], r[1], json.loads(r[2]), float(r[3]), bool(r[4])) for r in rows]


async def poll_until(
    probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], within: float, what: str
) -> T:
    """Poll an async `probe` until `done(value)`; fail naming `what` and the last value."""
    value = await probe()
    try:
        async with asyncio.timeout(within):
            while not done(value):
                await asyncio.sleep(0.002)
                value = await probe()
    except TimeoutError:
        raise AssertionError(f"{what}: still {value} after {within} s") from None
    return value


async def hub_has(hub: Hub, readings: int, events: int, within: float = 15.0) -> None:
    async def counts() -> tuple[int, int]:
        return await hub.ingest.records.count_rows("readings"), await hub.ingest.records.count_rows(
            "events"
        )

    what = f"hub (readings, events), expected {(readings, events)}"
    try:
        await poll_until(counts, lambda c: c == (readings, events), within, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; ingest {hub.ingest.counters()}") from None


async def observed(agent: EdgeAgent, count: int) -> None:
    """Wait until the agent has decoded `count` observations (so each frame gets its own time)."""
    await eventually(lambda: agent.observations >= count, within=5)


async def alerts_of(hub: Hub, rule: str) -> list[dict[str, Any]]:
    every = await hub.alerts.records.page(("open", "acknowledged", "resolved"), 100)
    return [alert for alert in every if alert["rule"] == rule]


def assert_each_once_in_order(rows: list[Row], feed: Feed, kind: str) -> None:
    """Per device, the stored sequence is exactly the written one (nothing lost, nothing twice,
    nothing reordered), and it is in sensed-at order."""
    for device in RADARS:
        mine = [row for row in rows if row.device == device]
        assert [(row.name, row.value) for row in mine] == feed.expected(kind, device), device
        times = [row.sensed_at for row in mine]
        assert times == sorted(times), f"{device}: stored out of sensed order"


# --- a broker outage ---------------------------------------------------------------------------


async def test_broker_outage_backlog_arrives_once_historical_and_the_fall_alerts_late(
    hub_factory: HubFactory,
    broker: MosquittoBroker,
    tmp_path: Path,
    radars: dict[str, MR60FDA1Simulator],
) -> None:
    hub = await hub_factory()
    feed = Feed(radars)
    async with running_agent(edge_config(broker, tmp_path, radars)) as agent:
        for _ in range(20):
            feed.send_routine()
            await observed(agent, len(feed.sent))
        feed.send("radar-101", "present")  # the live state before the outage
        await observed(agent, len(feed.sent))
        live_count = len(feed.sent)
        await hub_has(hub, live_count, 0)

        await asyncio.to_thread(broker.stop)
        stopped_at = time.time()
        await eventually(lambda: not agent.publisher.connected)
        feed.send("radar-102", "fall")
        for _ in range(30):
            await asyncio.sleep(0.05)  # the stream's pace: the outage lasts a couple of seconds
            feed.send_routine()
        feed.send("radar-101", "absent")
        await observed(agent, len(feed.sent))
        outage_count = len(feed.sent) - live_count
        await asyncio.to_thread(broker.start)
        restarted_at = time.time()

        await eventually(lambda: agent.publisher.live)
        for frame in ("moving", "stationary", "moving", "stationary", "moving"):
            feed.send("radar-101", frame)
            await observed(agent, len(feed.sent))
        await hub_has(hub, len(feed.sent) - 1, 1)

    readings = await stored(hub, "readings")
    assert_each_once_in_order(readings, feed, "reading")
    # each frame was read on its own here, so each has its own time: no row is there twice
    assert len({(row.device, row.name, row.sensed_at) for row in readings}) == len(readings)
    flags = [row.historical for row in readings]
    outage_end = live_count + outage_count
    assert flags == [
        index >= live_count and index < outage_end
        for index, (_, kind, *_) in enumerate(feed.sent)
        if kind == "reading"
    ]
    # "absent", sensed during the outage and replayed, is the newest presence known (the frames
    # after it only say motion): the replay made the present true.
    assert await hub.ingest.records.device_state("radar-101", "presence") is False, (
        "replay not live"
    )

    (fall,) = await stored(hub, "events")
    assert (fall.device, fall.name, fall.historical) == ("radar-102", "fall", True)
    (alert,) = await alerts_of(hub, "fall")
    assert (alert["bed"], alert["count"]) == ("SR-E-102", 1)
    assert alert["late_s"] is not None
    assert alert["late_s"] >= restarted_at - fall.sensed_at > restarted_at - stopped_at - 0.5
    assert hub.ingest.gaps == 0


# --- kill -9 of the agent ----------------------------------------------------------------------


def outbox_last_seq(path: Path) -> int:
    """The last sequence number the agent committed (AUTOINCREMENT keeps it after deletes)."""
    if not path.exists():
        return 0
    with contextlib.closing(sqlite3.connect(path, timeout=5)) as db:
        row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'items'").fetchone()
    return int(row[0]) if row else 0


async def committed(path: Path, count: int) -> None:
    async def last() -> int:
        return await asyncio.to_thread(outbox_last_seq, path)

    await poll_until(last, lambda n: n >= count, 10, f"outbox committed seq (want {count})")


class AgentProcess:
    """`carewatch edge --config FILE` in its own process, its log in a file."""

    def __init__(self, config_path: Path, log_path: Path) -> None:
        self.config_path = config_path
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "carewatch.cli", "edge", "--config", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(5)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def ports_open(self, ports: list[str], times: int) -> None:
        """Wait until the agent has logged opening each port `times` times in all."""

        def done() -> bool:
            text = self.log()
            return all(text.count(f"opened serial port {port} ") >= times for port in ports)

        try:
            await eventually(done, within=15)
        except AssertionError:
            raise AssertionError(f"serial ports not opened; agent log:\n{self.log()}") from None


async def test_kill_9_mid_stream_every_item_arrives_once_in_order(
    hub_factory: HubFactory,
    broker: MosquittoBroker,
    tmp_path: Path,
    radars: dict[str, MR60FDA1Simulator],
) -> None:
    hub = await hub_factory()
    config_path = tmp_path / "edge.yaml"
    config_path.write_text(yaml.safe_dump(edge_config(broker, tmp_path, radars)))
    outbox_path = tmp_path / "outbox.db"
    ports = [simulator.port for simulator in radars.values()]
    agent = AgentProcess(config_path, tmp_path / "edge.log")
    feed = Feed(radars, seed=11)
    agent.start()
    try:
        await agent.ports_open(ports, times=1)
        for i in range(60):
            if i == 30:
                feed.send("radar-101", "fall")
            feed.send_routine()
            await asyncio.sleep(0.002)  # a brisk stream
        # Kill once the stream so far is committed (a byte read but not yet committed, a few
        # milliseconds' worth, is lost with the process, as it would be on any UART reader);
        # the publisher is typically mid-batch, so the restart resends what had no PUBACK.
        await committed(outbox_path, len(feed.sent))
        await asyncio.to_thread(agent.kill)
        unsent = await asyncio.to_thread(_pending, outbox_path)

        agent.start()
        await agent.ports_open(ports, times=2)
        for _ in range(40):
            feed.send_routine()
            await asyncio.sleep(0.002)
        await hub_has(hub, len(feed.sent) - 1, 1)
    finally:
        agent.stop()

    assert_each_once_in_order(await stored(hub, "readings"), feed, "reading")
    (fall,) = await stored(hub, "events")
    assert (fall.device, fall.name) == ("radar-101", "fall")
    (alert,) = await alerts_of(hub, "fall")
    assert (alert["bed"], alert["count"]) == ("SR-E-101", 1), "one alert, one trigger"
    assert hub.ingest.gaps == 0
    assert hub.ingest.duplicates <= unsent, "only unacknowledged items may be sent twice"


def _pending(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path, timeout=5)) as db:
        return int(db.execute("SELECT count(*) FROM items").fetchone()[0])


# --- the disk budget ---------------------------------------------------------------------------


async def test_full_budget_drops_oldest_readings_keeps_every_event_and_reports_the_gap(
    hub_factory: HubFactory,
    broker: MosquittoBroker,
    tmp_path: Path,
    radars: dict[str, MR60FDA1Simulator],
) -> None:
    hub = await hub_factory()
    feed = Feed(radars, seed=3)
    config = edge_config(broker, tmp_path, radars, max_bytes=MIN_MAX_BYTES)
    async with running_agent(config) as agent:
        for _ in range(10):
            feed.send_routine()
        await observed(agent, len(feed.sent))
        await hub_has(hub, len(feed.sent), 0)  # the hub knows the sequence before the gap
        outage_start = time.time()

        await asyncio.to_thread(broker.stop)
        await eventually(lambda: not agent.publisher.connected)
        peak = await _stream_over_budget(agent, feed, tmp_path / "air.sock")
        await asyncio.to_thread(broker.start)
        await poll_until(agent.outbox.pending, lambda n: n == 0, 15, "outbox pending items")
        dropped = await agent.outbox.dropped()  # final: nothing is appended any more

        events = len(feed.expected("event"))
        await hub_has(hub, _decoded(feed) - events - dropped.count, events)

    assert dropped.count > 0, "the outage wrote several times the budget"
    assert peak <= MIN_MAX_BYTES + 16 * 1024, f"outbox peaked at {peak} bytes"
    stored_events = await stored(hub, "events")
    assert [(e.device, e.name) for e in stored_events] == [("radar-102", "fall")] * 5
    readings = await stored(hub, "readings")
    smoke_values = [r.value for r in readings if r.name == "smoke"]
    assert smoke_values == [True, False, False], "smoke readings are never dropped"
    routine_backlog = [r for r in readings if r.historical and r.name in ("presence", "motion")]
    assert dropped.first_at is not None and dropped.last_at is not None
    assert outage_start <= dropped.first_at <= dropped.last_at
    assert all(r.sensed_at >= dropped.last_at for r in routine_backlog), "oldest go first"
    assert hub.ingest.gaps >= 1, "the hub saw the hole in the sequence"
    assert hub.ingest.duplicates == 0


async def _stream_over_budget(agent: EdgeAgent, feed: Feed, air: Path) -> int:
    """Several budgets' worth of readings, 5 falls and 3 smoke adverts; the outbox's peak size."""
    peak = 0
    with BLEAirSender(air) as sender:
        for chunk in range(40):
            for _ in range(100):  # 1 kB: the pty's buffer holds it while the agent catches up
                feed.send_routine()
            if chunk % 8 == 4:
                feed.send("radar-102", "fall")
            if chunk in (10, 20, 30):
                sender.send(SMOKE_ADDRESS, smoke(packet_id=chunk, detected=chunk == 10, battery=90))
                feed.sent.append(("smoke-101", "reading", "smoke", chunk == 10))
            await eventually(lambda: agent.observations >= _decoded(feed), within=5)
            peak = max(peak, await agent.outbox.used_bytes())
    return peak


def _decoded(feed: Feed) -> int:
    """Observations the agent sends for what was sent: a smoke advert also gives battery and
    rssi, but only the first time here, as their values never change (report by exception)."""
    return len(feed.sent) + (2 if any(dev == "smoke-101" for dev, *_ in feed.sent) else 0)
