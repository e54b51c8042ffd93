"""Fleet simulator: N beds' worth of virtual gateways speaking the real wire format.

Layout (one site, default `fleet`): beds are grouped into gateways of `beds_per_gateway` (20);
each gateway's beds form one zone (a wing, `w-0000`), each bed is in a single room. Per bed:

- `bedradar-00001`: seeed-mr60bha1 (occupancy, presence, motion, heart and breathing rate), bed;
- `button-00001`: shelly-blu-button1 (call button), bound to the bed;
- `fallradar-00001`: seeed-mr60fda1 (fall, presence), bound to the room;
- `smoke-00001`: bthome-smoke, bound to the room.

Rates, per bed, are what a real gateway sends after report by exception (edge/repeats.py: a
repeated value at most every min(60 s, half the supervision window) = 30 s for the radars),
not what the radars say on the serial line (an MR60BHA1 gives rates every 3 s):

- `heart_rate`, `respiration_rate`: every 15 s each (a rate that moves by a beat passes the
  filter; a settled resident's rate moves about this often);
- `occupancy`, `presence` (bed radar), `presence` (fall radar): every 30 s each (unchanged
  values at the filter's repeat pace, so the hub's 60 s silence check stays quiet);
- `motion`: true, then false 5 s later, every 120 s (a resident turning over).

That is 0.25 items/s per bed (2,500 items/s for 10,000 beds), batched once a second per gateway.
The call buttons and smoke detectors (supervision 25 h) send only with an event.

Events come at `events_per_hour` for the whole fleet (Poisson): a fall (45 %: `fall` true,
cleared 15 s later), a call (50 %: `call_button` press with battery and RSSI), a smoke alarm
(5 %: `smoke` true with battery and RSSI, false 30 s later). `Fleet.inject` forces one.

Each gateway has its own outbox epoch and sequence numbers, a retained birth with `bdseq`
(the run's start second, so it never goes backwards), and a retained devices report at start
and every 5 minutes. The whole fleet shares one MQTT connection: its will is the first
gateway's death; on a clean stop every gateway publishes its death explicitly. If the simulator
is killed, the hub's gateway-silence check notices the others.
"""

from __future__ import annotations

import asyncio
import csv
import io
import random
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import aiomqtt
import yaml

from contract.wire import (
    MAX_ITEMS_PER_BATCH,
    Observation,
    Value,
    WireDeviceHealth,
    data_topic,
    devices_topic,
    encode_batch,
    encode_devices_report,
    encode_status,
    status_topic,
)

BEDS_PER_GATEWAY: Final = 20
AGENT: Final = "carewatch-fleet-sim/0.1.0"
VITALS_S: Final = 15
REPEAT_S: Final = 30
TURN_S: Final = 120
DEVICES_REPORT_S: Final = 300
FALL_CLEARS_S: Final = 15
SMOKE_CLEARS_S: Final = 30
MAX_IN_FLIGHT: Final = 100
EventKind = Literal["fall", "call", "smoke"]
EVENT_WEIGHTS: Final[dict[EventKind, float]] = {"fall": 0.45, "call": 0.50, "smoke": 0.05}
Item = dict[str, object]


class FleetError(Exception):
    """Something a person must fix before the fleet can run (the message says what)."""


# The layout: sites, gateways, beds and their devices.


@dataclass(frozen=True, slots=True)
class Bed:
    number: int

    @property
    def code(self) -> str:
        return f"FL-{self.number:05d}"

    @property
    def room(self) -> str:
        return f"r-{self.number:05d}"

    @property
    def resident(self) -> str:
        return f"FR-{self.number:05d}"

    def device(self, kind: str) -> str:
        return f"{kind}-{self.number:05d}"


# kind: (profile, bound to the bed rather than the room, a BLE device with battery and RSSI)
DEVICE_KINDS: Final[dict[str, tuple[str, bool, bool]]] = {
    "bedradar": ("seeed-mr60bha1", True, False),
    "button": ("shelly-blu-button1", True, True),
    "fallradar": ("seeed-mr60fda1", False, False),
    "smoke": ("bthome-smoke", False, True),
}


@dataclass(frozen=True, slots=True)
class GatewayPlan:
    index: int
    beds: tuple[Bed, ...]

    @property
    def id(self) -> str:
        return f"gw-{self.index:04d}"

    @property
    def zone(self) -> str:
        return f"w-{self.index:04d}"


@dataclass(frozen=True, slots=True)
class FleetPlan:
    site: str
    gateways: tuple[GatewayPlan, ...]

    @property
    def beds(self) -> list[Bed]:
        return [bed for gateway in self.gateways for bed in gateway.beds]


def plan_fleet(
    beds: int, beds_per_gateway: int = BEDS_PER_GATEWAY, site: str = "fleet"
) -> FleetPlan:
    if beds < 1 or not 1 <= beds_per_gateway <= MAX_ITEMS_PER_BATCH // len(DEVICE_KINDS):
        raise FleetError(
            f"need at least 1 bed and 1–{MAX_ITEMS_PER_BATCH // len(DEVICE_KINDS)} beds a gateway"
        )
    numbers = range(1, beds + 1)
    groups = [numbers[i : i + beds_per_gateway] for i in range(0, beds, beds_per_gateway)]
    gateways = tuple(
        GatewayPlan(index, tuple(Bed(n) for n in group)) for index, group in enumerate(groups)
    )
    return FleetPlan(site, gateways)


# The registry the hub needs to accept the fleet.


def _device_rows(plan: FleetPlan) -> list[dict[str, str]]:
    rows = []
    for gateway in plan.gateways:
        for bed in gateway.beds:
            for kind, (profile, on_bed, _) in DEVICE_KINDS.items():
                place = {"bed": bed.code} if on_bed else {"room": bed.room}
                rows.append(
                    {"id": bed.device(kind), "gateway": gateway.id, "profile": profile, **place}
                )
    return rows


def site_spec(plan: FleetPlan) -> dict[str, Any]:
    """The fleet's site as the hub configuration's `sites:` entry."""
    zones = [
        {
            "id": gateway.zone,
            "name": f"Wing {gateway.index}",
            "rooms": [
                {
                    "id": bed.room,
                    "name": f"Room {bed.number}",
                    "beds": [
                        {
                            "code": bed.code,
                            "resident": {"code": bed.resident, "name": f"Resident {bed.number}"},
                        }
                    ],
                }
                for bed in gateway.beds
            ],
        }
        for gateway in plan.gateways
    ]
    return {
        "id": plan.site,
        "name": f"Simulated fleet ({len(plan.beds)} beds)",
        "gateways": [gateway.id for gateway in plan.gateways],
        "zones": zones,
        "devices": _device_rows(plan),
    }


def _csv(header: list[str], rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def registry_csvs(plan: FleetPlan) -> dict[str, str]:
    """CSV documents for `carewatch registry import beds|residents|devices`, in that order."""
    beds = [
        {
            "site": plan.site,
            "site_name": f"Simulated fleet ({len(plan.beds)} beds)",
            "zone": gateway.zone,
            "zone_name": f"Wing {gateway.index}",
            "room": bed.room,
            "room_name": f"Room {bed.number}",
            "bed": bed.code,
        }
        for gateway in plan.gateways
        for bed in gateway.beds
    ]
    residents = [
        {"code": bed.resident, "name": f"Resident {bed.number}", "bed": bed.code}
        for bed in plan.beds
    ]
    devices = [{**row, "site": plan.site} for row in _device_rows(plan)]
    return {
        "beds": _csv(list(beds[0]), beds),
        "residents": _csv(["code", "name", "bed"], residents),
        "devices": _csv(["id", "site", "gateway", "profile", "bed", "room"], devices),
    }


def write_registry(plan: FleetPlan, directory: Path) -> list[Path]:
    """Write `sites.yaml` (a hub `sites:` block) and the import CSVs; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = [directory / "sites.yaml"]
    written[0].write_text(yaml.safe_dump({"sites": [site_spec(plan)]}, sort_keys=False))
    for what, text in registry_csvs(plan).items():
        path = directory / f"{what}.csv"
        path.write_text(text)
        written.append(path)
    return written


# One virtual gateway: what it senses, its outbox numbering, its status messages.


@dataclass
class Outbox:
    """A gateway outbox's numbering: an epoch and the next sequence number, as the edge keeps."""

    epoch: str = field(default_factory=lambda: secrets.token_hex(8))
    next_seq: int = 1

    def batch(self, items: list[Item], bdseq: int, sent: float) -> bytes:
        payload = encode_batch(self.epoch, self.next_seq, bdseq, sent, items)
        self.next_seq += len(items)
        return payload


def _item(
    device: str, at: float, kind: Literal["reading", "event"], name: str, value: Value
) -> Item:
    return Observation(device, at, kind, name, value).to_wire()


class VirtualGateway:
    def __init__(self, plan: GatewayPlan, site: str, bdseq: int, rng: random.Random) -> None:
        self.plan = plan
        self.site = site
        self.bdseq = bdseq
        self.outbox = Outbox()
        self._rng = rng
        self._queue: list[Item] = []
        self._started = time.time()

    def routine(self, tick: int, at: float) -> None:
        """Queue the readings due at second `tick` of the run (see the module's rate table)."""
        for bed in self.plan.beds:
            self._queue += self._bed_readings(bed, tick + bed.number, at)

    def _bed_readings(self, bed: Bed, phase: int, at: float) -> list[Item]:
        radar = bed.device("bedradar")
        due: list[Item] = []
        if phase % VITALS_S == 0:
            due.append(_item(radar, at, "reading", "heart_rate", self._rng.randint(58, 78)))
        if phase % VITALS_S == 7:
            due.append(_item(radar, at, "reading", "respiration_rate", self._rng.randint(12, 18)))
        if phase % REPEAT_S == 3:
            due.append(_item(radar, at, "reading", "occupancy", True))
        if phase % REPEAT_S == 18:
            due.append(_item(radar, at, "reading", "presence", True))
        if phase % REPEAT_S == 10:
            due.append(_item(bed.device("fallradar"), at, "reading", "presence", True))
        if phase % TURN_S in (40, 45):
            due.append(_item(radar, at, "reading", "motion", phase % TURN_S == 40))
        return due

    def add(self, items: list[Item]) -> None:
        self._queue += items

    def take_batch(self, sent: float) -> tuple[bytes, int] | None:
        """The next batch of up to 500 queued items and its size; None if nothing is queued."""
        if not self._queue:
            return None
        items, self._queue = self._queue[:MAX_ITEMS_PER_BATCH], self._queue[MAX_ITEMS_PER_BATCH:]
        return self.outbox.batch(items, self.bdseq, sent), len(items)

    def status(self, state: Literal["online", "offline"], at: float | None) -> bytes:
        return encode_status(state, self.bdseq, at, AGENT)

    def devices_report(self, at: float) -> bytes:
        health = []
        for bed in self.plan.beds:
            for kind, (_, _, ble) in DEVICE_KINDS.items():
                health.append(self._health(bed, kind, ble, at))
        return encode_devices_report(at, health)

    def _health(self, bed: Bed, kind: str, ble: bool, at: float) -> WireDeviceHealth:
        """Radars are heard all the time; BLE devices were last heard when the run began."""
        if not ble:
            return WireDeviceHealth(dev=bed.device(kind), online=True, last_seen=at)
        return WireDeviceHealth(
            dev=bed.device(kind),
            online=True,
            last_seen=self._started,
            battery=_battery(bed),
            rssi=_rssi(bed),
        )


def _signal(device: str, bed: Bed, at: float) -> list[Item]:
    """The battery and RSSI a BLE device's advert carries."""
    return [
        _item(device, at, "reading", "battery", _battery(bed)),
        _item(device, at, "reading", "rssi", _rssi(bed)),
    ]


def _battery(bed: Bed) -> int:
    return 60 + bed.number % 40


def _rssi(bed: Bed) -> int:
    return -55 - bed.number % 30


def event_items(kind: EventKind, bed: Bed, at: float) -> tuple[list[Item], list[Item]]:
    """The items of an event now, and those that follow it (a fall or smoke clearing)."""
    if kind == "fall":
        radar = bed.device("fallradar")
        return [_item(radar, at, "event", "fall", True)], [_item(radar, at, "event", "fall", False)]
    if kind == "call":
        button = bed.device("button")
        return [_item(button, at, "event", "call_button", "press"), *_signal(button, bed, at)], []
    smoke = bed.device("smoke")
    alarm = [_item(smoke, at, "reading", "smoke", True), *_signal(smoke, bed, at)]
    return alarm, [_item(smoke, at, "reading", "smoke", False)]


# Publishing and the run.


class InFlight:
    """QoS 1 publishing that waits only while `limit` messages are unacknowledged."""

    def __init__(self, client: aiomqtt.Client, limit: int = MAX_IN_FLIGHT) -> None:
        self._client = client
        self._slots = asyncio.Semaphore(limit)
        self._pending: set[asyncio.Task[None]] = set()
        self.failed: BaseException | None = None

    async def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        if self.failed is not None:
            raise self.failed
        await self._slots.acquire()
        task = asyncio.create_task(self._client.publish(topic, payload, qos=1, retain=retain))
        self._pending.add(task)
        task.add_done_callback(self._done)

    async def drain(self, within: float) -> None:
        if self._pending:
            await asyncio.wait(self._pending, timeout=within)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            self.failed = task.exception()


@dataclass
class FleetStats:
    beds: int
    gateways: int
    started: float = field(default_factory=time.monotonic)
    batches: int = 0
    items: int = 0
    events: Counter[str] = field(default_factory=Counter)
    connected: bool = False

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        events = ", ".join(f"{k} {n}" for k, n in sorted(self.events.items())) or "none"
        return (
            f"{elapsed:6.1f} s  batches {self.batches}  items {self.items}"
            f" ({self.items / elapsed:.0f}/s)  events {sum(self.events.values())} ({events})"
            f"  connected {'yes' if self.connected else 'no'}"
        )


@dataclass(frozen=True)
class FleetOptions:
    host: str = "127.0.0.1"
    port: int = 1883
    events_per_hour: float = 60.0
    seed: int | None = None
    clock: Callable[[], float] = time.time
    username: str | None = None  # a broker with passwords: one user that may write the site
    password: str | None = None


class Fleet:
    def __init__(self, plan: FleetPlan, options: FleetOptions) -> None:
        self.plan = plan
        self.options = options
        self._rng = random.Random(options.seed)
        bdseq = int(time.time())
        self.gateways = [VirtualGateway(g, plan.site, bdseq, self._rng) for g in plan.gateways]
        self._by_bed = {bed.number: gw for gw in self.gateways for bed in gw.plan.beds}
        self._later: defaultdict[int, list[tuple[VirtualGateway, list[Item]]]] = defaultdict(list)
        self._tick = 0
        self._next_event = self._event_gap()
        self.stats = FleetStats(len(plan.beds), len(plan.gateways))

    def inject(self, kind: EventKind, bed_number: int) -> None:
        """Queue an event at `bed_number` for the next batch (a fall, a call or a smoke alarm)."""
        gateway = self._by_bed[bed_number]
        bed = Bed(bed_number)
        now, after = event_items(kind, bed, self.options.clock())
        gateway.add(now)
        if after:
            delay = FALL_CLEARS_S if kind == "fall" else SMOKE_CLEARS_S
            self._later[self._tick + delay].append((gateway, after))
        self.stats.events[kind] += 1

    def _event_gap(self) -> float:
        rate = self.options.events_per_hour / 3600
        return self._rng.expovariate(rate) if rate > 0 else float("inf")

    def _random_events(self, elapsed: float) -> None:
        kinds, weights = list(EVENT_WEIGHTS), list(EVENT_WEIGHTS.values())
        while self._next_event <= elapsed:
            kind = self._rng.choices(kinds, weights)[0]
            self.inject(kind, self._rng.randint(1, len(self.plan.beds)))
            self._next_event += self._event_gap()

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set; raise FleetError if the broker cannot be reached or is lost."""
        try:
            async with self._client() as client:
                self.stats.connected = True
                out = InFlight(client)
                await self._birth(out)
                await self._loop(out, stop)
                await self._death(out)
        except aiomqtt.MqttError as exc:
            raise FleetError(self._broker_problem(exc)) from None
        finally:
            self.stats.connected = False

    def _client(self) -> aiomqtt.Client:
        first = self.gateways[0]
        will = aiomqtt.Will(
            status_topic(self.plan.site, first.plan.id), first.status("offline", None), 1, True
        )
        client = aiomqtt.Client(
            self.options.host,
            self.options.port,
            identifier=f"carewatch-fleet-{secrets.token_hex(3)}",
            username=self.options.username,
            password=self.options.password,
            will=will,
            max_inflight_messages=MAX_IN_FLIGHT,
            timeout=10,
        )
        client.pending_calls_threshold = MAX_IN_FLIGHT + 10  # in flight on purpose
        return client

    def _broker_problem(self, exc: aiomqtt.MqttError) -> str:
        where = f"{self.options.host}:{self.options.port}"
        if self.stats.batches:
            return f"lost the connection to the MQTT broker at {where}: {exc}"
        return (
            f"cannot reach the MQTT broker at {where}: {exc}. Is Mosquitto running there? "
            f"Check with `mosquitto_sub -h {self.options.host} -p {self.options.port} -t '#' -C 1`,"
            " or pass --host and --port."
        )

    async def _birth(self, out: InFlight) -> None:
        now = self.options.clock()
        for gateway in self.gateways:
            topic = status_topic(self.plan.site, gateway.plan.id)
            await out.publish(topic, gateway.status("online", now), retain=True)
            await self._report(out, gateway, now)

    async def _report(self, out: InFlight, gateway: VirtualGateway, now: float) -> None:
        topic = devices_topic(self.plan.site, gateway.plan.id)
        await out.publish(topic, gateway.devices_report(now), retain=True)

    async def _death(self, out: InFlight) -> None:
        now = self.options.clock()
        for gateway in self.gateways:
            topic = status_topic(self.plan.site, gateway.plan.id)
            await out.publish(topic, gateway.status("offline", now), retain=True)
        await out.drain(10.0)

    async def _loop(self, out: InFlight, stop: asyncio.Event) -> None:
        started = time.monotonic()
        while not stop.is_set():
            await self._second(out, time.monotonic() - started)
            self._tick += 1
            wake = started + self._tick - time.monotonic()
            if wake > 0:
                try:
                    await asyncio.wait_for(stop.wait(), wake)
                except TimeoutError:
                    pass

    async def _second(self, out: InFlight, elapsed: float) -> None:
        """One second of the fleet: routine readings, events, follow-ups, reports, batches."""
        now = self.options.clock()
        self._random_events(elapsed)
        for gateway, items in self._later.pop(self._tick, []):
            gateway.add([{**item, "at": round(now, 3)} for item in items])
        for gateway in self.gateways:
            gateway.routine(self._tick, now)
            if self._tick and (self._tick + gateway.plan.index) % DEVICES_REPORT_S == 0:
                await self._report(out, gateway, now)
            await self._flush(out, gateway, now)

    async def _flush(self, out: InFlight, gateway: VirtualGateway, now: float) -> None:
        while (batch := gateway.take_batch(now)) is not None:
            payload, count = batch
            await out.publish(data_topic(self.plan.site, gateway.plan.id), payload)
            self.stats.batches += 1
            self.stats.items += count
