"""`carewatch demo`: a simulated care home and two family beds, watched end to end.

Everything real but the sensors: an embedded MQTT broker (amqtt) on loopback, the hub with
SQLite, one edge agent per gateway reading byte-exact radar frames from pseudo-terminals and
BTHome adverts from a simulated BLE air, and a scripted night in which a fall, a call-button
press and a smoke alarm happen within the first minute.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import secrets
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carewatch.demo_broker import EmbeddedBroker
from edge.agent import EdgeAgent
from edge.config import EdgeConfig
from hub.auth import hash_password
from hub.config import HubConfig
from hub.service import Hub
from simulators.ble_air import BLEAirSender
from simulators.bthome import button_press, smoke
from simulators.mr60fda1 import MR60FDA1Simulator

log = logging.getLogger("carewatch.demo")

SITE = "sunrise"
RADAR_HEARTBEAT_S = 10.0
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


def demo_users(home: DemoHome, password: str) -> list[dict[str, Any]]:
    """The night nurse, the home's manager and one family account per family bed."""
    digest = hash_password(password)
    users: list[dict[str, Any]] = [
        {"username": "nurse", "display_name": "Night nurse", "role": "staff", "sites": [SITE]},
        {"username": "manager", "display_name": "Care home manager", "role": "supervisor"}
        | {"sites": [SITE]},
    ]
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
        "name": "Sunrise Care Home",
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

    async def run(self, stop: asyncio.Event) -> None:
        script: list[tuple[float, Any]] = [
            (1, lambda: [self.radar(b.code, "present") for b in self._home.beds]),
            (4, lambda: self.radar("SR-E-104", "moving")),
            (8, lambda: self.radar("SR-E-104", "fall")),
            (12, lambda: self.radar("FB-CHEN", "moving")),
            (18, lambda: self.call_button("FB-OKAFOR")),
            (26, lambda: self.smoke("smoke-west", True)),
            (29, lambda: self.smoke("smoke-west", True)),
            (40, lambda: self.call_button("SR-W-203")),
            (50, lambda: self.smoke("smoke-west", False)),
        ]
        heartbeats = asyncio.create_task(self._heartbeats(stop))
        started = time.monotonic()
        try:
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
        bed = self._rng.choice(self._home.beds)
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
    import socket

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
    users: list[dict[str, Any]] | None = None,
    watch: dict[str, Any] | None = None,
    escalation: dict[str, Any] | None = None,
) -> HubConfig:
    """A hub on loopback for a simulated world: its database in `workdir`, these sites."""
    return HubConfig.model_validate(
        {
            "broker": {"host": broker.host, "port": broker.port, "client_id": "carewatch-hub-demo"},
            "database": str(workdir / "hub.db"),
            "web": {"host": "127.0.0.1", "port": web_port, "secret_key": secrets.token_hex(32)},
            "users": users or [],
            "sites": sites,
            "watch": watch or {},
            "escalation": escalation or {},
        }
    )


async def run_demo(
    web_port: int, duration: float | None, workdir: Path, stop: asyncio.Event
) -> int:
    home = build_home()
    broker = await start_embedded_broker()
    for bed in home.beds:
        bed.radar = MR60FDA1Simulator()
    password = secrets.token_urlsafe(9)
    users = demo_users(home, password)
    hub = await Hub.start(
        local_hub_config(
            broker,
            workdir,
            [registry_for(home)],
            web_port=web_port,
            users=users,
            escalation=family_first(home),
        )
    )
    agents = [EdgeAgent(config) for config in edge_configs(home, broker, workdir)]
    agent_tasks = [asyncio.create_task(agent.run(stop)) for agent in agents]
    scenario = Scenario(home, workdir, random.Random(12))
    scenario_task = asyncio.create_task(scenario.run(stop))
    _announce(hub.url, password, home, workdir, duration)
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), duration)
    finally:
        stop.set()
        await asyncio.gather(scenario_task, *agent_tasks, return_exceptions=True)
        scenario.close()
        await hub.stop()
        for bed in home.beds:
            if bed.radar is not None:
                bed.radar.close()
        await broker.stop()
    print("carewatch demo stopped.", flush=True)
    return 0


def _announce(
    url: str, password: str, home: DemoHome, workdir: Path, duration: float | None
) -> None:
    gateways = len({b.gateway for b in home.beds})
    print(
        f"\ncarewatch demo is running: {len(home.beds)} beds "
        f"(12 in Sunrise Care Home, 2 family beds), {gateways} gateways.\n"
        f"  Staff console: {url}/\n"
        f"  Supervisor:    {url}/supervisor\n"
        f"  Family app:    {url}/family\n"
        f"  Log in as nurse (console), manager (supervisor) or "
        f"{family_username(home.beds[-1])} (family app)\n"
        f"  Password (every demo user): {password}\n"
        f"  Data:          {workdir}\n"
        "  A fall (bed SR-E-104), a call button (family bed FB-OKAFOR) and a smoke alarm\n"
        "  (West lounge) happen within the first minute.\n"
        + (f"  Stopping by itself after {duration:g} s.\n" if duration else "  Ctrl-C to stop.\n"),
        flush=True,
    )


def add_demo_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run a simulated care home end to end",
        description="Run an embedded broker, the hub, edge agents and simulated devices.",
    )
    parser.add_argument("--port", type=int, default=8080, help="console port (default 8080)")
    parser.add_argument(
        "--duration", type=float, default=None, help="stop by itself after this many seconds"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where to keep the demo's databases (default: a new temp folder)",
    )
    parser.set_defaults(func=run_demo_command)


def run_demo_command(args: argparse.Namespace) -> int:
    if args.duration is not None and args.duration <= 0:
        print("carewatch demo: --duration must be a positive number of seconds", file=sys.stderr)
        return 2
    workdir = args.data_dir or Path(tempfile.mkdtemp(prefix="carewatch-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            return await run_demo(args.port, args.duration, workdir, stop)
        except OSError as exc:
            if exc.errno == 98:
                print(
                    f"carewatch demo: port {args.port} is in use; try --port 8081", file=sys.stderr
                )
                return 2
            raise

    return asyncio.run(main())
