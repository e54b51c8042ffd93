"""The watch with the devices homes actually fit: the "standard bed" of docs/rules-and-devices.md.

An MR60BHA2 over the bed (presence, heart and breathing rate), an MR60FDA2 fall radar, a Shelly
BLU Door/Window on the room door, a Shelly BLU Button, a BTHome smoke detector and a Shelly BLU
Motion in the bathroom, each rule with a case that must alert and one that must not. Real
Mosquitto and a real hub on a manual clock, items published in the wire format as a gateway
would, replays included.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hub.app import Hub
from tests.conftest import HubFactory, PublishBatch
from tests.hub.watch.test_rules import Ward
from tests.support.clock import FakeClock
from tests.support.waiting import eventually

UTC = ZoneInfo("UTC")
NIGHT_0300 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC).timestamp()
DAY_1000 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC).timestamp()
MORNING_0600 = datetime(2026, 11, 22, 6, 0, tzinfo=UTC).timestamp()


def _device(id: str, profile: str, **where: str) -> dict[str, str]:
    return {"id": id, "gateway": "gw-east", "profile": profile, **where}


STANDARD_BED = [
    _device("bha2-101", "seeed-mr60bha2", bed="SR-E-101"),
    _device("fda2-101", "seeed-mr60fda2", bed="SR-E-101"),
    _device("button-101", "shelly-blu-button1", bed="SR-E-101"),
    _device("door-101", "shelly-blu-door-window", room="r101"),
    _device("smoke-101", "bthome-smoke", room="r101"),
    _device("pir-bath-101", "shelly-blu-motion", room="bath-101"),
]
SITE: dict[str, Any] = {
    "id": "sunrise",
    "name": "Sunrise Care Home",
    "gateways": ["gw-east"],
    "zones": [
        {
            "id": "east",
            "name": "East wing",
            "rooms": [
                {
                    "id": "r101",
                    "name": "101",
                    "beds": [
                        {"code": "SR-E-101", "resident": {"code": "E-0001", "name": "Mary Jones"}}
                    ],
                },
                {"id": "bath-101", "name": "Bathroom 101", "kind": "bathroom"},
                {"id": "bath-102", "name": "Bathroom 102", "kind": "bathroom"},
                {"id": "exit-e", "name": "East exit", "kind": "exit"},
            ],
        },
        {
            "id": "west",
            "name": "West wing",
            "rooms": [
                {
                    "id": "r201",
                    "name": "201",
                    "beds": [
                        {
                            "code": "SR-W-201",
                            "resident": {
                                "code": "E-0003",
                                "name": "Ada Brown",
                                "flags": ["wander_risk"],
                            },
                        }
                    ],
                },
                {"id": "exit-w", "name": "West exit", "kind": "exit"},
            ],
        },
    ],
    "devices": [
        *STANDARD_BED,
        _device("bathdoor-101", "shelly-blu-door-window", room="bath-101"),
        _device("pir-bath-102", "shelly-blu-motion", room="bath-102"),
        _device("exit-east", "shelly-blu-door-window", room="exit-e", role="exit_door"),
        _device("exit-west", "shelly-blu-door-window", room="exit-w", role="exit_door"),
    ],
}
WATCH = {
    "defaults": {
        "timezone": "UTC",
        "night": {"start": "22:00", "end": "07:00"},
        "bed_exit_return_min": 30,
        "up_by": "09:30",
        "bathroom_max_min": 45,
        "door_at_night": False,
        "breathing_pause_s": 20,
        "heart_rate": {"min": 40, "max": 130, "for_s": 60},
    }
}


@pytest.fixture
def ward_at(hub_factory: HubFactory, publish_batch: PublishBatch) -> Callable[..., Awaitable[Ward]]:
    async def start(when: float) -> Ward:
        clock = FakeClock(when)
        hub = await hub_factory(clock=clock, sites=[SITE], watch=WATCH)
        return Ward(hub, clock, publish_batch)

    return start


WardAt = Callable[..., Awaitable[Ward]]


async def _raised(ward: Ward, rule: str, count: int = 1) -> list[dict[str, Any]]:
    async def done() -> bool:
        return len(await ward.alerts(rule)) == count

    await eventually(done)
    return await ward.alerts(rule)


async def _audit_detail(hub: Hub, alert_id: int) -> dict[str, Any]:
    async with hub.store.db.execute(
        "SELECT detail FROM audit WHERE alert_id = ? AND action = 'opened'", (alert_id,)
    ) as cur:
        row = await cur.fetchone()
    assert row is not None
    detail: dict[str, Any] = json.loads(row["detail"])
    return detail


# --- bed exit and not up, from a radar over the bed ---------------------------------------


async def test_up_at_night_and_not_back_raises_bed_exit_from_the_radar_over_the_bed(
    ward_at: WardAt,
) -> None:
    ward = await ward_at(NIGHT_0300)
    await ward.send("bha2-101", "presence", True)
    await ward.send("bha2-101", "presence", False)
    await ward.send("fda2-101", "presence", True)  # someone in the room is not in the bed
    await ward.pass_time(29 * 60)
    assert await ward.alerts("bed_exit") == []
    await ward.pass_time(2 * 60)
    (alert,) = await _raised(ward, "bed_exit")
    assert (alert["bed"], alert["priority"]) == ("SR-E-101", "emergency")


async def test_back_over_the_bed_in_time_raises_no_bed_exit(ward_at: WardAt) -> None:
    ward = await ward_at(NIGHT_0300)
    await ward.send("bha2-101", "presence", True)
    await ward.send("bha2-101", "presence", False)
    await ward.pass_time(20 * 60)
    await ward.send("bha2-101", "presence", True)
    await ward.pass_time(40 * 60)
    assert await ward.alerts("bed_exit") == []


async def test_still_in_bed_at_the_up_by_time_raises_not_up(ward_at: WardAt) -> None:
    ward = await ward_at(MORNING_0600)
    await ward.send("bha2-101", "presence", True)
    await ward.pass_time(3.6 * 3600)  # 09:36
    (alert,) = await _raised(ward, "not_up")
    assert alert["bed"] == "SR-E-101"


async def test_up_before_the_up_by_time_raises_no_not_up(ward_at: WardAt) -> None:
    early = await ward_at(MORNING_0600)
    await early.send("bha2-101", "presence", True)
    await early.pass_time(3600)
    await early.send("bha2-101", "presence", False)  # up at 07:00
    await early.pass_time(2.6 * 3600)
    assert await early.alerts("not_up") == []


# --- the bathroom, with a motion sensor ----------------------------------------------------


async def test_a_motion_sensor_with_a_door_contact_tells_a_stay_too_long(ward_at: WardAt) -> None:
    ward = await ward_at(DAY_1000)
    await ward.send("pir-bath-101", "motion", True)
    await ward.pass_time(2 * 60)
    await ward.send("pir-bath-101", "motion", False)  # still, not gone: the door did not open
    await ward.pass_time(44 * 60)
    (alert,) = await _raised(ward, "prolonged_stay")
    assert (alert["room_name"], alert["priority"]) == ("Bathroom 101", "routine")


async def test_leaving_through_the_bathroom_door_ends_the_stay(ward_at: WardAt) -> None:
    ward = await ward_at(DAY_1000)
    await ward.send("pir-bath-101", "motion", True)
    await ward.pass_time(5 * 60)
    await ward.send("bathdoor-101", "contact_open", True)
    await ward.send("pir-bath-101", "motion", False)
    await ward.pass_time(60 * 60)
    assert await ward.alerts("prolonged_stay") == []


async def test_a_motion_sensor_alone_ends_the_stay_at_no_motion(ward_at: WardAt) -> None:
    """It cannot tell a still person from an empty room: docs/rules-and-devices.md says so."""
    ward = await ward_at(DAY_1000)
    await ward.send("pir-bath-102", "motion", True)
    await ward.pass_time(2 * 60)
    await ward.send("pir-bath-102", "motion", False)
    await ward.pass_time(60 * 60)
    assert await ward.alerts("prolonged_stay") == []


# --- vital signs, sign by sign -------------------------------------------------------------


async def test_a_normal_breathing_rate_does_not_clear_a_slow_heart(ward_at: WardAt) -> None:
    ward = await ward_at(NIGHT_0300)
    await ward.send("bha2-101", "presence", True)
    await ward.send("bha2-101", "heart_rate", 35)
    await ward.pass_time(61)
    await ward.send("bha2-101", "heart_rate", 35)
    (alert,) = await _raised(ward, "vital_signs")
    await ward.send("bha2-101", "respiration_rate", 14)
    await ward.send("bha2-101", "heart_rate", 0)  # no reading: clears nothing either
    (alert,) = await ward.alerts("vital_signs")
    assert alert["cleared_at"] is None
    await ward.send("bha2-101", "heart_rate", 64)

    async def cleared() -> bool:
        (alert,) = await ward.alerts("vital_signs")
        return alert["cleared_at"] is not None

    await eventually(cleared)


async def test_a_breathing_pause_in_bed_raises_vital_signs(ward_at: WardAt) -> None:
    ward = await ward_at(NIGHT_0300)
    await ward.send("bha2-101", "presence", True)
    await ward.send("bha2-101", "respiration_rate", 14)
    await ward.send("bha2-101", "respiration_rate", 0)
    await ward.pass_time(19)
    assert await ward.alerts("vital_signs") == []
    await ward.pass_time(2)
    (alert,) = await _raised(ward, "vital_signs")
    detail = await _audit_detail(ward.hub, alert["id"])
    assert (detail["reading"], detail["value"], detail["pause"]) == ("respiration_rate", 0, True)


async def test_a_short_pause_or_a_zero_from_an_empty_bed_raises_nothing(ward_at: WardAt) -> None:
    ward = await ward_at(NIGHT_0300)
    await ward.send("bha2-101", "presence", True)
    await ward.send("bha2-101", "respiration_rate", 0)
    await ward.pass_time(10)
    await ward.send("bha2-101", "respiration_rate", 13)  # breathing again within the limit
    await ward.send("bha2-101", "presence", False)
    await ward.send("bha2-101", "respiration_rate", 0)  # nobody there to breathe
    await ward.pass_time(120)
    assert await ward.alerts("vital_signs") == []


# --- risk flags ----------------------------------------------------------------------------


async def test_a_wander_risk_resident_switches_the_night_door_rule_on_for_their_zone(
    ward_at: WardAt,
) -> None:
    ward = await ward_at(NIGHT_0300)
    await ward.send("exit-east", "contact_open", True)  # nobody at risk in the east wing
    await ward.send("exit-west", "contact_open", True)
    (alert,) = await _raised(ward, "door_at_night")
    assert alert["room_name"] == "West exit"
    detail = await _audit_detail(ward.hub, alert["id"])
    assert detail["wander_risk"] == ["E-0003"]


async def test_a_wander_risk_residents_zone_door_by_day_raises_nothing(ward_at: WardAt) -> None:
    by_day = await ward_at(DAY_1000)
    await by_day.send("exit-west", "contact_open", True)
    assert await by_day.alerts("door_at_night") == []


# --- a replay keeps the present true -------------------------------------------------------


async def test_a_replayed_reading_becomes_live_state_unless_something_newer_is_known(
    ward_at: WardAt, publish_batch: PublishBatch
) -> None:
    ward = await ward_at(NIGHT_0300)
    hub, clock = ward.hub, ward.clock
    await ward.send("bha2-101", "presence", True)  # 03:00, live
    clock.advance(25 * 60)  # the gateway was cut off; it replays its backlog on return
    replay = [
        {"dev": "bha2-101", "reading": "presence", "value": False, "at": NIGHT_0300 + 60},
        {"dev": "fda2-101", "event": "fall", "at": NIGHT_0300 + 120},
    ]
    await publish_batch("sunrise", "gw-east", [{**i, "hist": True} for i in replay], seq=2)

    async def out_of_bed() -> bool:
        clock.advance(1.5)  # the bed states answer anew only once a second has passed
        state = await hub.beds.bed("SR-E-101", clock.now())
        return state is not None and state.in_bed is False

    await eventually(out_of_bed)
    assert await hub.ingest.records.device_state("bha2-101", "presence") is False
    (fall,) = await _raised(ward, "fall")
    assert fall["late_s"] == pytest.approx(25 * 60 - 120, abs=10)  # marked late
    # Out of bed since 03:01 by the replay: not back within 30 minutes is a bed exit at 03:31.
    await ward.pass_time(7 * 60)
    await _raised(ward, "bed_exit")

    # An older replay after that changes nothing now.
    older = {"dev": "bha2-101", "reading": "presence", "value": True, "at": NIGHT_0300 + 30}
    await publish_batch("sunrise", "gw-east", [{**older, "hist": True}], seq=4)
    await eventually(lambda: hub.ingest.accepted >= 4)
    assert await hub.ingest.records.device_state("bha2-101", "presence") is False
    clock.advance(1.5)
    state = await hub.beds.bed("SR-E-101", clock.now())
    assert state is not None and state.in_bed is False
