"""The simulated care home: its beds, smoke detectors and gateways, its staff and roster, and
the records the hub and the edge agents are given (registry, users, escalation, edge.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from carewatch.demo.broker import EmbeddedBroker
from edge.config import EdgeConfig
from hub.access.auth import hash_password
from simulators.mr60fda1 import MR60FDA1Simulator

SITE = "sunrise"
SITE_NAME = "Sunrise Care Home"
# The care service's desk / on-call line (a UK number reserved for drama: it rings nowhere).
CARE_SERVICE_PHONE = "+44 20 7946 0321"
# The room no one on the roster covers: its call button is pressed early, on purpose.
UNCOVERED_ZONE: Final = "garden"
UNCOVERED_BED: Final = "SR-G-301"
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
