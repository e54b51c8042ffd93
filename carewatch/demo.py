"""`carewatch demo`: a simulated care home and two family beds, watched end to end.

Everything real but the sensors: an embedded MQTT broker (amqtt) on loopback, the hub with
SQLite, one edge agent per gateway reading byte-exact radar frames from pseudo-terminals and
BTHome adverts from a simulated BLE air, and a scripted night in which a fall, call-button
presses and a smoke alarm happen within the first minute.

The home has a roster (day and night staff per wing, a charge nurse on every shift, a
supervisor, an installer), so escalation reaches people through their consoles and, once they
subscribe on a phone, Web Push. One room, the Garden suite, is on nobody's roster: its call
button is pressed early on purpose, so the "nobody reached" path is shown. See docs/demo.md.

What it prints ends with the start banner (URLs, users, the password); the hub's, the gateways'
and the simulators' logs go to `demo.log` in the data folder unless `--verbose`. Stopping it
stops the hub first, so that its own gateways going away raise no alarm.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import ipaddress
import logging
import random
import secrets
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from carewatch.demo_broker import EmbeddedBroker
from carewatch.logging_setup import ContextFormatter
from edge.agent import EdgeAgent
from edge.config import EdgeConfig
from hub.access.auth import hash_password
from hub.app import Hub
from hub.config import HubConfig, PushSettings
from simulators.ble_air import BLEAirSender
from simulators.bthome import button_press, smoke
from simulators.mr60fda1 import MR60FDA1Simulator

log = logging.getLogger("carewatch.demo")

SITE = "sunrise"
SITE_NAME = "Sunrise Care Home"
# The care service's desk / on-call line (a UK number reserved for drama: it rings nowhere).
CARE_SERVICE_PHONE = "+44 20 7946 0321"
RADAR_HEARTBEAT_S = 10.0
LOG_FILE: Final = "demo.log"
# The room no one on the roster covers: its call button is pressed early, on purpose.
UNCOVERED_ZONE: Final = "garden"
UNCOVERED_BED: Final = "SR-G-301"
# How long the banner waits for every gateway to be connected to a listening hub.
GATEWAYS_UP_S: Final = 20.0
# The scripted night starts when someone opens a console, or after this long without one.
NIGHT_WAITS_S: Final = 90.0
LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
RESIDENTS = [
    "Mary Jones",
    "Li Wei",
    "Ahmed Khan",
    "Rosa Garcia",
    "John Smith",
    "Hana Sato",
    "Olga Petrova",
    "Peter Brown",
    "Grace Okafor",
    "Tom Evans",
    "Zhang Min",
    "Ida Berg",
]
RESPITE_RESIDENT = "Edith Clarke"


@dataclass
class DemoBed:
    code: str
    zone: str
    room: str
    room_name: str
    resident: str
    elder_code: str
    gateway: str
    radar_id: str
    button_id: str
    button_address: str
    radar: MR60FDA1Simulator | None = None
    button_packet: int = 0


@dataclass
class DemoSmoke:
    device_id: str
    address: str
    gateway: str
    room: str
    packet: int = 0


@dataclass
class DemoHome:
    """The simulated world: beds, smoke detectors, and which gateway hears what."""

    beds: list[DemoBed] = field(default_factory=list)
    smokes: list[DemoSmoke] = field(default_factory=list)

    def bed(self, code: str) -> DemoBed:
        return next(b for b in self.beds if b.code == code)


def _mac(n: int) -> str:
    return f"A4:C1:38:00:{n // 256:02X}:{n % 256:02X}"


def build_home() -> DemoHome:
    home = DemoHome()
    n = 0
    for zone, gateway, first_room in (("east", "gw-east", 101), ("west", "gw-west", 201)):
        for i in range(6):
            room = first_room + i
            resident = RESIDENTS[n]
            n += 1
            home.beds.append(
                DemoBed(
                    code=f"SR-{zone[0].upper()}-{room}",
                    zone=zone,
                    room=f"r{room}",
                    room_name=str(room),
                    resident=resident,
                    elder_code=f"E-{n:04d}",
                    gateway=gateway,
                    radar_id=f"radar-{room}",
                    button_id=f"button-{room}",
                    button_address=_mac(n),
                )
            )
    for family, name in (("chen", "Chen Hui"), ("okafor", "Samuel Okafor")):
        n += 1
        home.beds.append(
            DemoBed(
                code=f"FB-{family.upper()}",
                zone="family",
                room=f"home-{family}",
                room_name=f"{name.split()[1]} home",
                resident=name,
                elder_code=f"E-{n:04d}",
                gateway=f"gw-home-{family}",
                radar_id=f"radar-{family}",
                button_id=f"button-{family}",
                button_address=_mac(n),
            )
        )
    # A respite room opened tonight in the Garden suite: nobody on the roster covers it.
    n += 1
    home.beds.append(
        DemoBed(
            code=UNCOVERED_BED,
            zone=UNCOVERED_ZONE,
            room="r301",
            room_name="301",
            resident=RESPITE_RESIDENT,
            elder_code=f"E-{n:04d}",
            gateway="gw-west",
            radar_id="radar-301",
            button_id="button-301",
            button_address=_mac(n),
        )
    )
    home.smokes = [
        DemoSmoke("smoke-east", _mac(100), "gw-east", "east-lounge"),
        DemoSmoke("smoke-west", _mac(101), "gw-west", "west-lounge"),
        DemoSmoke("smoke-chen", _mac(102), "gw-home-chen", "home-chen"),
    ]
    return home


def family_username(bed: DemoBed) -> str:
    """The demo account of the family caring for a home-care bed."""
    return f"family-{bed.gateway.removeprefix('gw-home-')}"


def _resident(bed: DemoBed) -> dict[str, Any]:
    resident: dict[str, Any] = {"code": bed.elder_code, "name": bed.resident}
    if bed.zone == "family":
        surname = bed.resident.split()[-1]
        resident["contacts"] = [
            {
                "name": f"Ada {surname}",
                "relation": "family",
                "phone": "+44 7700 900123",
                "user": family_username(bed),
            }
        ]
    return resident


@dataclass(frozen=True)
class DemoStaff:
    """One person of the demo's staff: a hub user, and where the roster puts them."""

    username: str
    name: str
    role: str
    does: str  # what the banner and docs say they do
    zones: tuple[str, ...] = ()  # their access; none: the whole site


# The charge nurse is on every shift and covers every zone but the Garden suite, so whoever runs
# the demo as `nurse` is on duty at any hour. The day and night carers cover one wing each.
STAFF: Final[tuple[DemoStaff, ...]] = (
    DemoStaff("nurse", "Joy Adeyemi", "staff", "charge nurse, every shift, all but the Garden"),
    DemoStaff(
        "day-east", "Sam Patel", "staff", "day carer (07:00-19:00 UTC), East wing", ("east",)
    ),
    DemoStaff("day-west", "Lucy Brennan", "staff", "day carer, West wing", ("west",)),
    DemoStaff(
        "night-east", "Tomasz Nowak", "staff", "night carer (19:00-07:00 UTC), East wing", ("east",)
    ),
    DemoStaff("night-west", "Aisha Rahman", "staff", "night carer, West wing", ("west",)),
    DemoStaff("manager", "Helen Carter", "supervisor", "supervisor, the care home's manager"),
    DemoStaff("installer", "Kai Jensen", "installer", "installer: the /installer page"),
)
CHARGE_NURSE: Final = "nurse"
COVERED_ZONES: Final = ("east", "west", "family")  # every zone but UNCOVERED_ZONE


def demo_users(home: DemoHome, password: str) -> list[dict[str, Any]]:
    """The staff (charge nurse, day and night carers), the supervisor, the installer and one
    family account per family bed, all with `password`."""
    digest = hash_password(password)
    users: list[dict[str, Any]] = []
    for person in STAFF:
        scope = (
            {"zones": [f"{SITE}/{zone}" for zone in person.zones]}
            if person.zones
            else {"sites": [SITE]}
        )
        users.append(
            {"username": person.username, "display_name": person.name, "role": person.role} | scope
        )
    users += [
        {
            "username": family_username(bed),
            "display_name": f"{bed.resident.split()[-1]} family",
            "role": "family",
            "residents": [bed.elder_code],
        }
        for bed in home.beds
        if bed.zone == "family"
    ]
    return [{**user, "password_hash": digest} for user in users]


def demo_roster() -> dict[str, Any]:
    """Day 07:00-19:00 and night 19:00-07:00 (the site's time, UTC in the demo): a carer per
    wing, and the charge nurse, who also covers every zone but the Garden suite."""

    def shift(name: str, start: str, end: str) -> dict[str, Any]:
        carers = [p for p in STAFF if p.username.startswith(f"{name}-")]
        return {
            "name": name,
            "start": start,
            "end": end,
            "charge_nurse": CHARGE_NURSE,
            "assignments": [{"user": CHARGE_NURSE, "zones": list(COVERED_ZONES)}]
            + [{"user": p.username, "zones": list(p.zones)} for p in carers],
        }

    return {
        "sites": {
            SITE: {"shifts": [shift("day", "07:00", "19:00"), shift("night", "19:00", "07:00")]}
        }
    }


def family_first(home: DemoHome) -> dict[str, Any]:
    """Family beds: the family and the on-duty staff are told at once."""
    first = {"steps": [{"after_min": 0, "notify": ["on_duty_zone", "family_contacts"]}]}
    return {"residents": {bed.elder_code: first for bed in home.beds if bed.zone == "family"}}


def registry_for(home: DemoHome) -> dict[str, Any]:
    zones: dict[str, dict[str, Any]] = {
        "east": {
            "id": "east",
            "name": "East wing",
            "rooms": [{"id": "east-lounge", "name": "East lounge"}],
        },
        "west": {
            "id": "west",
            "name": "West wing (dementia care)",
            "rooms": [{"id": "west-lounge", "name": "West lounge"}],
        },
        "family": {"id": "family", "name": "Family beds", "kind": "family", "rooms": []},
        UNCOVERED_ZONE: {"id": UNCOVERED_ZONE, "name": "Garden suite (respite)", "rooms": []},
    }
    devices: list[dict[str, Any]] = []
    for bed in home.beds:
        zones[bed.zone]["rooms"].append(
            {
                "id": bed.room,
                "name": bed.room_name,
                "beds": [{"code": bed.code, "resident": _resident(bed)}],
            }
        )
        devices.append(
            {
                "id": bed.radar_id,
                "gateway": bed.gateway,
                "profile": "seeed-mr60fda1",
                "bed": bed.code,
            }
        )
        devices.append(
            {
                "id": bed.button_id,
                "gateway": bed.gateway,
                "profile": "shelly-blu-button1",
                "bed": bed.code,
            }
        )
    for detector in home.smokes:
        devices.append(
            {
                "id": detector.device_id,
                "gateway": detector.gateway,
                "profile": "bthome-smoke",
                "room": detector.room,
            }
        )
    gateways = sorted({b.gateway for b in home.beds})
    return {
        "id": SITE,
        "name": SITE_NAME,
        "phone": CARE_SERVICE_PHONE,
        "zones": list(zones.values()),
        "gateways": gateways,
        "devices": devices,
    }


def edge_configs(home: DemoHome, broker: EmbeddedBroker, workdir: Path) -> list[EdgeConfig]:
    configs = []
    for gateway in sorted({b.gateway for b in home.beds}):
        devices: list[dict[str, Any]] = []
        for bed in (b for b in home.beds if b.gateway == gateway):
            assert bed.radar is not None
            devices.append(
                {"id": bed.radar_id, "profile": "seeed-mr60fda1", "port": bed.radar.port}
            )
            devices.append(
                {
                    "id": bed.button_id,
                    "profile": "shelly-blu-button1",
                    "address": bed.button_address,
                }
            )
        for detector in (s for s in home.smokes if s.gateway == gateway):
            devices.append(
                {"id": detector.device_id, "profile": "bthome-smoke", "address": detector.address}
            )
        configs.append(
            EdgeConfig.model_validate(
                {
                    "site": SITE,
                    "gateway": gateway,
                    "broker": {"host": broker.host, "port": broker.port},
                    "outbox": {"path": str(workdir / f"outbox-{gateway}.db")},
                    "ble": {"backend": "simulated", "socket": str(workdir / f"air-{gateway}.sock")},
                    "devices": devices,
                }
            )
        )
    return configs


# Waits until the scripted night should begin; says why it begins.
NightBegins = Callable[[], Awaitable[str]]


class Scenario:
    """A scripted night, then occasional events so the console stays alive."""

    def __init__(self, home: DemoHome, workdir: Path, rng: random.Random) -> None:
        self._home = home
        self._workdir = workdir
        self._rng = rng
        self._air: dict[str, BLEAirSender] = {}

    def _sender(self, gateway: str) -> BLEAirSender:
        if gateway not in self._air:
            self._air[gateway] = BLEAirSender(self._workdir / f"air-{gateway}.sock")
        return self._air[gateway]

    def radar(self, code: str, frame: str) -> None:
        bed = self._home.bed(code)
        assert bed.radar is not None
        bed.radar.send(frame)
        log.info("scenario: %s radar → %s (%s)", code, frame, bed.resident)

    def call_button(self, code: str) -> None:
        bed = self._home.bed(code)
        bed.button_packet = (bed.button_packet + 1) % 256
        self._sender(bed.gateway).send(bed.button_address, button_press(bed.button_packet, 87))
        log.info("scenario: %s call button pressed (%s)", code, bed.resident)

    def smoke(self, device_id: str, detected: bool) -> None:
        detector = next(s for s in self._home.smokes if s.device_id == device_id)
        detector.packet = (detector.packet + 1) % 256
        advert = smoke(detector.packet, detected, 93)
        self._sender(detector.gateway).send(detector.address, advert)
        log.info("scenario: %s smoke %s", device_id, "ALARM" if detected else "clear")

    def _everyone_present(self) -> None:
        for bed in self._home.beds:
            self.radar(bed.code, "present")

    async def run(self, stop: asyncio.Event, night_begins: NightBegins) -> None:
        """Residents settle at once; the scripted night starts when `night_begins` returns
        (someone opened a console), so its first alarms find a person to reach."""
        script: list[tuple[float, Any]] = [
            (3, lambda: self.radar("SR-E-104", "moving")),
            (7, lambda: self.radar("SR-E-104", "fall")),
            (10, lambda: self.radar("FB-CHEN", "moving")),
            (13, lambda: self.call_button(UNCOVERED_BED)),  # reaches nobody at first, on purpose
            (17, lambda: self.call_button("FB-OKAFOR")),
            (25, lambda: self.smoke("smoke-west", True)),
            (28, lambda: self.smoke("smoke-west", True)),
            (39, lambda: self.call_button("SR-W-203")),
            (49, lambda: self.smoke("smoke-west", False)),
        ]
        heartbeats = asyncio.create_task(self._heartbeats(stop))
        try:
            if await _sleep_until(stop, time.monotonic() + 1):
                return
            self._everyone_present()
            why = await night_begins()
            if stop.is_set():
                return
            log.info("scenario: the night begins (%s)", why)
            started = time.monotonic()
            for at, action in script:
                if await _sleep_until(stop, started + at):
                    return
                action()
            while not await _sleep_until(stop, time.monotonic() + self._rng.uniform(45, 120)):
                self._random_event()
        finally:
            await heartbeats

    async def _heartbeats(self, stop: asyncio.Event) -> None:
        """The radars' own heartbeat frames, which keep them online between events."""
        while not await _sleep_until(stop, time.monotonic() + RADAR_HEARTBEAT_S):
            for bed in self._home.beds:
                if bed.radar is not None:
                    bed.radar.send("heartbeat")

    def _random_event(self) -> None:
        # The Garden suite's one scripted call is the demo's "nobody reached" alarm; no more.
        bed = self._rng.choice([b for b in self._home.beds if b.zone != UNCOVERED_ZONE])
        choice = self._rng.random()
        if choice < 0.15:
            self.radar(bed.code, "fall")
        elif choice < 0.35:
            self.call_button(bed.code)
        else:
            self.radar(bed.code, self._rng.choice(["moving", "stationary"]))

    def close(self) -> None:
        for sender in self._air.values():
            sender.close()


async def _sleep_until(stop: asyncio.Event, deadline: float) -> bool:
    """Wait until `deadline` (monotonic); True if stopped first."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max(0.0, deadline - time.monotonic()))
    return stop.is_set()


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


async def start_embedded_broker() -> EmbeddedBroker:
    """An embedded MQTT broker on a free loopback port (the demo and `carewatch sim scenario`)."""
    broker = EmbeddedBroker("127.0.0.1", _free_port("127.0.0.1"))
    await broker.start()
    return broker


def local_hub_config(
    broker: EmbeddedBroker,
    workdir: Path,
    sites: list[dict[str, Any]],
    *,
    web_port: int = 0,
    web_host: str = "127.0.0.1",
    users: list[dict[str, Any]] | None = None,
    watch: dict[str, Any] | None = None,
    roster: dict[str, Any] | None = None,
    escalation: dict[str, Any] | None = None,
    push_hosts: tuple[str, ...] = (),
) -> HubConfig:
    """A hub for a simulated world: its database in `workdir`, these sites; its web server on
    `web_host` (loopback unless told otherwise), its broker on loopback."""
    return HubConfig.model_validate(
        {
            "broker": {"host": broker.host, "port": broker.port, "client_id": "carewatch-hub-demo"},
            "database": str(workdir / "hub.db"),
            "web": {"host": web_host, "port": web_port, "secret_key": secrets.token_hex(32)},
            "users": users or [],
            "sites": sites,
            "watch": watch or {},
            "roster": roster or {},
            "escalation": escalation or {},
            # A lab's own push service (`--allow-push-host`), beside the browsers' own.
            "push": {"allowed_hosts": [*PushSettings().allowed_hosts, *push_hosts]},
            "outbound": {"allowed_hosts": list(push_hosts)},
        }
    )


@dataclass(frozen=True)
class DemoOptions:
    web_host: str
    web_port: int
    duration: float | None
    workdir: Path
    verbose: bool
    push_hosts: tuple[str, ...] = ()


async def run_demo(options: DemoOptions, stop: asyncio.Event) -> int:
    _check_listen(options.web_host, options.web_port)  # before anything starts (raises OSError)
    home = build_home()
    broker = await start_embedded_broker()
    for bed in home.beds:
        bed.radar = MR60FDA1Simulator()
    password = secrets.token_urlsafe(9)
    config = local_hub_config(
        broker,
        options.workdir,
        [registry_for(home)],
        web_port=options.web_port,
        web_host=options.web_host,
        users=demo_users(home, password),
        roster=demo_roster(),
        escalation=family_first(home),
        push_hosts=options.push_hosts,
    )
    try:
        hub = await Hub.start(config)
    except BaseException:  # a port in use, an address not of this machine: leave nothing behind
        _close_radars(home)
        await broker.stop()
        raise
    if not options.verbose:
        _route_uvicorn_logs()  # uvicorn set up its own stderr handlers as the hub started
    gateways_stop = asyncio.Event()  # the gateways stop after the hub (see `_stop_demo`)
    agents = [EdgeAgent(config) for config in edge_configs(home, broker, options.workdir)]
    agent_tasks = [asyncio.create_task(agent.run(gateways_stop)) for agent in agents]
    scenario = Scenario(home, options.workdir, random.Random(12))
    scenario_task: asyncio.Task[None] | None = None
    try:
        late = await _gateways_up(agents, stop)
        if late:
            log.warning("gateways not connected to the hub yet: %s", ", ".join(late))

        async def night_begins() -> str:
            return await _first_console(hub, stop, NIGHT_WAITS_S)

        scenario_task = asyncio.create_task(scenario.run(stop, night_begins))
        _announce(options, hub, password, home)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), options.duration)
    finally:
        stop.set()
        await _stop_demo(hub, scenario_task, gateways_stop, agent_tasks)
        scenario.close()
        _close_radars(home)
        await broker.stop()
    print("carewatch demo stopped.", flush=True)
    return 0


def _check_listen(host: str, port: int) -> None:
    """Whether the web server can listen there, asked before anything starts: a hub that
    fails to bind its port leaves its database open, and the process would not end."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


def _close_radars(home: DemoHome) -> None:
    for bed in home.beds:
        if bed.radar is not None:
            bed.radar.close()


async def _gateways_up(agents: list[EdgeAgent], stop: asyncio.Event) -> list[str]:
    """Wait until every gateway is connected and has heard the hub online (or GATEWAYS_UP_S
    passed, or the demo is stopped); the gateways that are not, by name."""
    deadline = time.monotonic() + GATEWAYS_UP_S
    while True:
        late = [
            agent.config.gateway
            for agent in agents
            if not agent.ready.is_set() or not agent.publisher.live
        ]
        if not late or stop.is_set() or time.monotonic() > deadline:
            return late
        await asyncio.sleep(0.1)


async def _first_console(hub: Hub, stop: asyncio.Event, wait_s: float) -> str:
    """Until a signed-in user has a live console open (or `wait_s` passed, or the demo stops)."""
    deadline = time.monotonic() + wait_s
    while not stop.is_set():
        watching = sorted(hub.bus.connected_users())
        if watching:
            return f"{', '.join(watching)} opened a console"
        if time.monotonic() > deadline:
            return f"no console opened within {wait_s:g} s"
        await asyncio.sleep(0.2)
    return "stopped"


async def _stop_demo(
    hub: Hub,
    scenario_task: asyncio.Task[None] | None,
    gateways_stop: asyncio.Event,
    agent_tasks: list[asyncio.Task[None]],
) -> None:
    """A planned stop of the whole demo, in the order that raises no alarm: the scenario, then
    the hub, then the gateways.

    Gateways that stop while the hub still listens publish their offline status and their
    devices go quiet: the hub rightly raises `gateway_offline` (and would for a gateway that
    stops alone). Stopping the hub first means nobody is watching when they go. The gateways
    then hear the hub's own offline status; they log that at INFO here, as a planned stop.
    """
    log.info(
        "demo stopping: the scenario, then the hub (so that the gateways going away raise no "
        "alarm), then the gateways and the broker"
    )
    if scenario_task is not None:
        await asyncio.gather(scenario_task, return_exceptions=True)
    PLANNED_STOP.active = True
    await hub.stop()
    gateways_stop.set()
    await asyncio.gather(*agent_tasks, return_exceptions=True)


class _PlannedStop(logging.Filter):
    """Once the demo is stopping, a gateway hearing that the hub went offline is expected: the
    demo stopped it first. Logged at INFO, saying so, instead of as a warning."""

    active = False

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if self.active and message.startswith("hub is offline"):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg = message.replace(
                "hub is offline", "hub is offline (planned: the demo stops the hub first)", 1
            )
        return True


PLANNED_STOP: Final = _PlannedStop()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False


def _lan_address() -> str | None:
    """This machine's address on its local network (the one its default route uses)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1; a UDP connect sends nothing
            address = str(probe.getsockname()[0])
        except OSError:
            return None
    return None if ipaddress.ip_address(address).is_unspecified else address


def base_urls(host: str, port: int) -> list[str]:
    """Where a browser opens the demo: one URL per address it is reachable at."""
    if host in ("0.0.0.0", ""):
        lan = _lan_address()
        hosts = [h for h in ("127.0.0.1", lan) if h is not None]
    else:
        hosts = [host]
    return [f"http://{h}:{port}" for h in hosts]


def host_warning(host: str, port: int) -> str | None:
    """What `--host` exposes, when it is not a loopback address; None when it is."""
    if _is_loopback(host):
        return None
    where = "every network this machine is on" if host in ("0.0.0.0", "") else f"{host}"
    return (
        f"  WARNING: --host {host} opens the demo to {where}, port {port}:\n"
        "    - anyone who can reach it and has the demo password below sees every resident's\n"
        "      name, bed, alerts and history, and can acknowledge and resolve alerts;\n"
        "    - plain HTTP, no TLS: the password and session cookies cross the network in the\n"
        "      clear, readable by anyone on it (so phones will not offer push or app install);\n"
        "    - the residents are simulated, but what you type (names, phone numbers) is not.\n"
        "    Use it on a network you trust, and stop the demo (Ctrl-C) when you are done.\n"
    )


def _announce(options: DemoOptions, hub: Hub, password: str, home: DemoHome) -> None:
    """The start banner: the last thing the demo prints while it runs."""
    gateways = len({b.gateway for b in home.beds})
    family = [b for b in home.beds if b.zone == "family"]
    urls = base_urls(options.web_host, hub.web_port)
    url = urls[-1] if len(urls) > 1 else urls[0]  # the LAN address, when there is one
    others = "".join(f"  Also at:       {other}/\n" for other in urls if other != url)
    assert hub.escalation is not None
    roster, now = hub.escalation.roster, hub.escalation.clock.now()  # the hub's own answer
    shifts = "/".join(shift.name for shift in roster.shifts_at(SITE, now)) or "no"
    on_duty = ", ".join(roster.everyone_on_duty(SITE, now))
    people = "".join(f"    {p.username:<13} {p.name}, {p.does}\n" for p in STAFF)
    families = ", ".join(family_username(bed) for bed in family)
    log_line = (
        "  Logs:          shown above (--verbose)\n"
        if options.verbose
        else f"  Logs:          {options.workdir / LOG_FILE}\n"
    )
    uncovered = home.bed(UNCOVERED_BED)
    print(
        f"\ncarewatch demo is running: {len(home.beds)} beds "
        f"({len(home.beds) - len(family)} in {SITE_NAME}, {len(family)} family beds), "
        f"{gateways} gateways.\n"
        + (host_warning(options.web_host, hub.web_port) or "")
        + f"  Staff console: {url}/\n"
        f"  Supervisor:    {url}/supervisor\n"
        f"  Roster:        {url}/roster\n"
        f"  Family app:    {url}/family\n"
        f"  Installer:     {url}/installer\n"
        + others
        + f"  Log in as nurse (console), manager (supervisor) or "
        f"{family_username(family[-1])} (family app)\n"
        f"  Password (every demo user): {password}\n"
        f"  Users (same password); on duty now ({shifts} shift): {on_duty}\n"
        + people
        + f"    {families}: the families of the two family beds\n"
        f"  Care service phone: {CARE_SERVICE_PHONE}\n"
        "  The night starts when you open the console (or in "
        f"{NIGHT_WAITS_S:g} s): within its first minute\n"
        "  a fall (bed SR-E-104), a call button in the Garden suite "
        f"({UNCOVERED_BED}, {uncovered.resident}),\n"
        "  a call button (family bed FB-OKAFOR) and a smoke alarm (West lounge).\n"
        "  The Garden suite is on nobody's roster (a trouble alert says so at once): its call\n"
        "  reaches nobody at first, so you see NOBODY REACHED and the fallback to the charge\n"
        "  nurse, the manager and every console. An alarm reaches a person only on an open\n"
        "  console or a phone subscribed to push; with none, every alarm is NOBODY REACHED.\n"
        + log_line
        + f"  Data:          {options.workdir}\n"
        + (
            f"  Stopping by itself after {options.duration:g} s.\n"
            if options.duration
            else "  Ctrl-C to stop.\n"
        ),
        flush=True,
    )


def _route_uvicorn_logs() -> None:
    """uvicorn gives its loggers their own stderr handlers; send them to the demo's log."""
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True


def _log_to_file(path: Path) -> None:
    """Every log line (hub, gateways, simulators, broker, warnings) to `path`, none on screen."""
    root = logging.getLogger()
    handler = logging.FileHandler(path, encoding="utf-8")
    formatter = next((h.formatter for h in root.handlers if h.formatter is not None), None)
    handler.setFormatter(formatter or ContextFormatter(LOG_FORMAT))
    root.handlers[:] = [handler]
    logging.captureWarnings(True)


def add_demo_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run a simulated care home end to end",
        description="Run an embedded broker, the hub, edge agents and simulated devices.",
    )
    parser.add_argument("--port", type=int, default=8080, help="console port (default 8080)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address the console listens on (default 127.0.0.1, this machine only); "
        "0.0.0.0 lets a tablet or phone on your network open it (prints what that exposes)",
    )
    parser.add_argument(
        "--duration", type=float, default=None, help="stop by itself after this many seconds"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where to keep the demo's databases and log (default: a new temp folder)",
    )
    parser.add_argument(
        "--allow-push-host",
        action="append",
        default=[],
        metavar="HOST",
        help="also send Web Push to a push service at HOST (a lab's own, e.g. 127.0.0.1 for "
        "a local one); the browsers' own push services are always allowed",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help=f"show the logs here instead of writing them to {LOG_FILE} in the data folder",
    )
    parser.set_defaults(func=run_demo_command)


def run_demo_command(args: argparse.Namespace) -> int:
    if args.duration is not None and args.duration <= 0:
        print("carewatch demo: --duration must be a positive number of seconds", file=sys.stderr)
        return 2
    workdir = args.data_dir or Path(tempfile.mkdtemp(prefix="carewatch-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if not args.verbose:
        _log_to_file(workdir / LOG_FILE)
    logging.getLogger("edge.publisher").addFilter(PLANNED_STOP)
    options = DemoOptions(
        args.host, args.port, args.duration, workdir, args.verbose, tuple(args.allow_push_host)
    )

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            return await run_demo(options, stop)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                print(
                    f"carewatch demo: port {args.port} is in use; try --port 8081", file=sys.stderr
                )
                return 2
            if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
                print(
                    f"carewatch demo: cannot listen on {args.host!r}: {exc.strerror or exc}; "
                    "give an IPv4 address of this machine, or 0.0.0.0 for all of them",
                    file=sys.stderr,
                )
                return 2
            raise

    return asyncio.run(main())
