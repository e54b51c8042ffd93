"""The 24-hour watch, rule by rule: a case that must alert and one that must not.

Real Mosquitto and a real hub; the hub's clock is a manual clock the test moves, so a night
passes in moments. Items are published in the wire format, as a gateway would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hub.app import Hub
from tests.conftest import HubFactory, PublishBatch
from tests.support.clock import FakeClock
from tests.support.waiting import eventually

UTC = ZoneInfo("UTC")
NIGHT_0300 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC).timestamp()
DAY_1000 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC).timestamp()
MORNING_0600 = datetime(2026, 11, 22, 6, 0, tzinfo=UTC).timestamp()

SITE: dict[str, Any] = {
    "id": "sunrise",
    "name": "Sunrise Care Home",
    "gateways": ["gw-east", "gw-west"],
    "zones": [
        {
            "id": "east",
            "name": "East wing",
            "rooms": [
                {
                    "id": "r101",
                    "name": "101",
                    "kind": "bedroom",
                    "beds": [
                        {"code": "SR-E-101", "resident": {"code": "E-0001", "name": "Mary Jones"}}
                    ],
                },
                {
                    "id": "r102",
                    "name": "102",
                    "kind": "bedroom",
                    "beds": [
                        {"code": "SR-E-102", "resident": {"code": "E-0002", "name": "Li Wei"}}
                    ],
                },
                {"id": "bath-e", "name": "East bathroom", "kind": "bathroom"},
                {"id": "exit-e", "name": "East exit", "kind": "exit"},
            ],
        },
        {
            "id": "west",
            "name": "West wing",
            "rooms": [{"id": "r201", "name": "201", "beds": [{"code": "SR-W-201"}]}],
        },
    ],
    "devices": [
        {"id": "bed-101", "gateway": "gw-east", "profile": "seeed-mr60bha1", "bed": "SR-E-101"},
        {"id": "bed-102", "gateway": "gw-east", "profile": "seeed-mr60bha1", "bed": "SR-E-102"},
        {
            "id": "button-101",
            "gateway": "gw-east",
            "profile": "shelly-blu-button1",
            "bed": "SR-E-101",
        },
        {"id": "bath-radar", "gateway": "gw-east", "profile": "hlk-ld2410", "room": "bath-e"},
        {
            "id": "exit-door",
            "gateway": "gw-east",
            "profile": "shelly-blu-door-window",
            "room": "exit-e",
            "role": "exit_door",
        },
        {"id": "bed-201", "gateway": "gw-west", "profile": "seeed-mr60bha1", "bed": "SR-W-201"},
    ],
}
WATCH: dict[str, Any] = {
    "defaults": {
        "timezone": "UTC",
        "night": {"start": "22:00", "end": "07:00"},
        "bed_exit_return_min": 30,
        "inactivity_hours": 4,
        "up_by": "09:30",
        "bathroom_max_min": 45,
        "door_at_night": True,
    },
    "residents": {"E-0002": {"bed_exit_return_min": 10}},
}

Send = Callable[..., Awaitable[None]]


class Ward:
    """A hub watching SITE, a manual clock, and a gateway's way of saying things."""

    def __init__(self, hub: Hub, clock: FakeClock, publish: PublishBatch) -> None:
        self.hub = hub
        self.clock = clock
        self._publish = publish
        self._seq = {"gw-east": 1, "gw-west": 1}

    async def send(
        self,
        device: str,
        reading: str | None = None,
        value: Any = None,
        event: str | None = None,
        gateway: str = "gw-east",
    ) -> None:
        item: dict[str, Any] = {"dev": device, "at": self.clock.now()}
        item |= {"reading": reading} if reading else {"event": event}
        if value is not None:
            item["value"] = value
        seq = self._seq[gateway]
        self._seq[gateway] += 1
        before = self.hub.ingest.accepted
        await self._publish("sunrise", gateway, [item], seq=seq)
        # Stored and seen by every rule, before the test moves the clock on.
        await eventually(lambda: self.hub.ingest.accepted > before)

    async def pass_time(self, seconds: float) -> None:
        """Move the clock in steps so timers fire in order, and let them run."""
        step = 60.0
        while seconds > 0:
            self.clock.advance(min(step, seconds))
            seconds -= step
            await asyncio.sleep(0)
        await asyncio.sleep(0.05)

    async def alerts(self, rule: str) -> list[dict[str, Any]]:
        return [
            a
            for a in await self.hub.alerts.records.page(("open", "acknowledged", "resolved"), None)
            if a["rule"] == rule
        ]


@pytest.fixture
def ward_at(hub_factory: HubFactory, publish_batch: PublishBatch) -> Callable[..., Awaitable[Ward]]:
    async def start(when: float, **watch: Any) -> Ward:
        clock = FakeClock(when)
        config = {**WATCH, "defaults": {**WATCH["defaults"], **watch}}
        hub = await hub_factory(clock=clock, sites=[SITE], watch=config)
        return Ward(hub, clock, publish_batch)

    return start


WardAt = Callable[..., Awaitable[Ward]]


async def test_out_of_bed_at_night_and_not_back_raises_bed_exit(ward_at: WardAt) -> None:
    ward = await ward_at(NIGHT_0300)
    await ward.send("bed-101", "occupancy", True)
    await ward.send("bed-101", "occupancy", False)
    await ward.pass_time(29 * 60)
    assert await ward.alerts("bed_exit") == []
    await ward.pass_time(2 * 60)

    async def raised() -> bool:
        return len(await ward.alerts("bed_exit")) == 1

    await eventually(raised)
    (alert,) = await ward.alerts("bed_exit")
    assert (alert["bed"], alert["priority"], alert["resident_name"]) == (
        "SR-E-101",
        "emergency",
        "Mary Jones",
    )


async def test_back_in_bed_in_time_raises_nothing(ward_at: WardAt) -> None:
    ward = await ward_at(NIGHT_0300)
    await ward.send("bed-101", "occupancy", False)
    await ward.pass_time(20 * 60)
    await ward.send("bed-101", "occupancy", True)
    await ward.pass_time(40 * 60)
    assert await ward.alerts("bed_exit") == []
    assert ward.hub.timers.pending("bed_exit", "SR-E-101") is None


async def test_getting_up_by_day_is_not_a_bed_exit(ward_at: WardAt) -> None:
    ward = await ward_at(DAY_1000)
    await ward.send("bed-101", "occupancy", False)
    await ward.pass_time(60 * 60)
    assert await ward.alerts("bed_exit") == []


async def test_a_residents_override_shortens_the_bed_exit_wait(ward_at: WardAt) -> None:
    ward = await ward_at(NIGHT_0300)
    await ward.send("bed-102", "occupancy", False)
    await ward.pass_time(11 * 60)

    async def raised() -> bool:
        return [a["bed"] for a in await ward.alerts("bed_exit")] == ["SR-E-102"]

    await eventually(raised)


async def test_exit_door_at_night_alerts_and_by_day_does_not(ward_at: WardAt) -> None:
    ward = await ward_at(DAY_1000)
    await ward.send("exit-door", "contact_open", True)
    await ward.send("exit-door", "contact_open", False)
    assert await ward.alerts("door_at_night") == []
    await ward.pass_time(14 * 3600)  # 00:00
    await ward.send("exit-door", "contact_open", True)

    async def raised() -> bool:
        return len(await ward.alerts("door_at_night")) == 1

    await eventually(raised)
    (alert,) = await ward.alerts("door_at_night")
    assert (alert["room_name"], alert["priority"]) == ("East exit", "emergency")


async def test_no_activity_for_hours_by_day_raises_inactivity(ward_at: WardAt) -> None:
    ward = await ward_at(DAY_1000)
    await ward.send("bed-101", "motion", True)
    await ward.pass_time(3 * 3600)
    await ward.send("bed-101", "presence", True)  # merely present: not activity
    await ward.send("bed-101", "motion", True)  # activity resets the wait
    await ward.pass_time(3 * 3600)
    assert await ward.alerts("inactivity") == []
    await ward.pass_time(1.5 * 3600)

    async def raised() -> bool:
        return [a["bed"] for a in await ward.alerts("inactivity")] == ["SR-E-101"]

    await eventually(raised)


async def test_sleeping_through_the_night_is_not_inactivity(ward_at: WardAt) -> None:
    ward = await ward_at(datetime(2026, 11, 22, 21, 0, tzinfo=UTC).timestamp())
    await ward.send("bed-101", "presence", True)
    await ward.pass_time(9 * 3600)  # 06:00, still night
    assert await ward.alerts("inactivity") == []


async def test_still_in_bed_at_the_up_by_time_raises_not_up(ward_at: WardAt) -> None:
    ward = await ward_at(MORNING_0600)
    await ward.send("bed-101", "occupancy", True)
    await ward.send("bed-102", "occupancy", True)
    await ward.send("bed-102", "occupancy", False)
    await ward.pass_time(3.6 * 3600)  # 09:36

    async def raised() -> bool:
        return [a["bed"] for a in await ward.alerts("not_up")] == ["SR-E-101"]

    await eventually(raised)


async def test_too_long_in_the_bathroom_raises_a_routine_alert(ward_at: WardAt) -> None:
    ward = await ward_at(DAY_1000)
    await ward.send("bath-radar", "presence", True)
    await ward.pass_time(30 * 60)
    await ward.send("bath-radar", "presence", False)
    await ward.send("bath-radar", "presence", True)
    await ward.pass_time(44 * 60)
    assert await ward.alerts("prolonged_stay") == []
    await ward.pass_time(2 * 60)

    async def raised() -> bool:
        return len(await ward.alerts("prolonged_stay")) == 1

    await eventually(raised)
    (alert,) = await ward.alerts("prolonged_stay")
    assert (alert["priority"], alert["room_name"]) == ("routine", "East bathroom")


async def test_heart_rate_out_of_range_while_in_bed_raises_vital_signs(ward_at: WardAt) -> None:
    ward = await ward_at(NIGHT_0300)
    await ward.send("bed-101", "occupancy", True)
    await ward.send("bed-101", "heart_rate", 150)
    await ward.pass_time(30)
    await ward.send("bed-101", "heart_rate", 72)  # back in range: the wait starts again
    await ward.pass_time(120)
    assert await ward.alerts("vital_signs") == []
    await ward.send("bed-101", "heart_rate", 32)
    await ward.pass_time(61)

    async def raised() -> bool:
        return len(await ward.alerts("vital_signs")) == 1

    await eventually(raised)


async def test_vital_signs_out_of_bed_are_not_judged(ward_at: WardAt) -> None:
    ward = await ward_at(DAY_1000)
    await ward.send("bed-101", "occupancy", False)
    await ward.send("bed-101", "respiration_rate", 45)
    await ward.pass_time(300)
    assert await ward.alerts("vital_signs") == []


async def test_a_silent_device_goes_offline_and_comes_back(ward_at: WardAt) -> None:
    ward = await ward_at(DAY_1000)
    await ward.send("bed-201", "presence", True, gateway="gw-west")
    for _ in range(3):
        await ward.send("bed-101", "presence", True)
        await ward.pass_time(4 * 60)
    await ward.send("bed-101", "presence", True)  # bed-201 has been silent for 12 minutes

    async def offline() -> bool:
        return "bed-201" in {a["device"] for a in await ward.alerts("device_offline")}

    await eventually(offline)
    assert "bed-101" not in {a["device"] for a in await ward.alerts("device_offline")}
    await ward.send("bed-201", "presence", True, gateway="gw-west")

    async def resolved_by_itself() -> bool:
        alerts = [a for a in await ward.alerts("device_offline") if a["device"] == "bed-201"]
        return [(a["state"], a["outcome"]) for a in alerts] == [("resolved", "self_cleared")]

    await eventually(resolved_by_itself)


async def test_an_offline_gateway_raises_one_alert_not_one_per_device(
    ward_at: WardAt, publish_raw_status: Send
) -> None:
    ward = await ward_at(DAY_1000)
    await ward.send("bed-101", "presence", True)
    await ward.send("bed-201", "presence", True, gateway="gw-west")
    await publish_raw_status("gw-west", "offline")

    async def west(state: str) -> bool:
        alerts = await ward.alerts("gateway_offline")
        return [a["state"] for a in alerts if a["subject"] == "gateway:sunrise/gw-west"] == [state]

    await eventually(lambda: west("open"))
    await ward.pass_time(11 * 60)
    offline = {a["device"] for a in await ward.alerts("device_offline")}
    assert "bed-201" not in offline  # its gateway's alert says it all
    assert "bed-101" in offline  # the east gateway is up: its silent radar is reported
    await publish_raw_status("gw-west", "online")
    await eventually(lambda: west("resolved"))


async def test_low_battery_reminds_until_replaced(ward_at: WardAt) -> None:
    ward = await ward_at(DAY_1000)
    await ward.send("button-101", "battery", 15)

    async def raised() -> bool:
        return len(await ward.alerts("low_battery")) == 1

    await eventually(raised)
    await ward.pass_time(4 * 3600 + 60)

    async def reminded() -> bool:
        return bool((await ward.alerts("low_battery"))[0]["count"] == 2)

    await eventually(reminded)
    await ward.send("button-101", "battery", 100)

    async def cleared() -> bool:
        return bool((await ward.alerts("low_battery"))[0]["state"] == "resolved")

    await eventually(cleared)


async def test_tamper_raises_a_trouble_alert(ward_at: WardAt) -> None:
    ward = await ward_at(DAY_1000)
    await ward.send("exit-door", event="tamper")

    async def raised() -> bool:
        return [a["priority"] for a in await ward.alerts("tamper")] == ["trouble"]

    await eventually(raised)


async def test_maintenance_mode_marks_alerts_as_tests(ward_at: WardAt) -> None:
    ward = await ward_at(DAY_1000, maintenance=True)
    await ward.send("button-101", event="call_button", value="press")

    async def raised() -> bool:
        return len(await ward.alerts("call_button")) == 1

    await eventually(raised)
    assert (await ward.alerts("call_button"))[0]["test"] == 1


async def test_a_pending_bed_exit_survives_a_hub_restart_and_fires_once(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    clock = FakeClock(NIGHT_0300)
    hub = await hub_factory(clock=clock, sites=[SITE], watch=WATCH)
    ward = Ward(hub, clock, publish_batch)
    await ward.send("bed-101", "occupancy", False)
    await hub.stop()
    clock.advance(10 * 60)
    hub = await hub_factory(clock=clock, sites=[SITE], watch=WATCH)
    ward.hub = hub
    assert hub.timers.pending("bed_exit", "SR-E-101") is not None
    await ward.pass_time(25 * 60)

    async def raised() -> bool:
        return len(await ward.alerts("bed_exit")) == 1

    await eventually(raised)
    await ward.pass_time(30 * 60)
    (alert,) = await ward.alerts("bed_exit")
    assert alert["count"] == 1
    assert alert["sensed_at"] == pytest.approx(NIGHT_0300 + 30 * 60)


@pytest.fixture
def publish_raw_status(broker: Any) -> Send:
    import json

    import aiomqtt

    from contract.wire import status_topic

    async def publish(gateway: str, state: str) -> None:
        body = json.dumps({"state": state, "bdseq": 1})
        async with aiomqtt.Client(broker.host, broker.port) as client:
            await client.publish(status_topic("sunrise", gateway), body, qos=1)

    return publish


async def test_someone_present_but_still_is_not_activity(ward_at: WardAt) -> None:
    ward = await ward_at(DAY_1000)
    await ward.send("bed-101", "motion", True)
    for _ in range(4):
        await ward.pass_time(3600)
        await ward.send("bed-101", "presence", True)  # a radar repeating "someone is here"
    await ward.pass_time(120)

    async def raised() -> bool:
        return [a["bed"] for a in await ward.alerts("inactivity")] == ["SR-E-101"]

    await eventually(raised)


async def test_a_raised_vital_signs_alert_is_not_repeated_and_shows_recovery(
    ward_at: WardAt,
) -> None:
    ward = await ward_at(NIGHT_0300)
    await ward.send("bed-101", "occupancy", True)
    await ward.send("bed-101", "heart_rate", 150)
    await ward.pass_time(61)

    async def raised() -> bool:
        return len(await ward.alerts("vital_signs")) == 1

    await eventually(raised)
    for _ in range(5):  # still high: the same alert, not a new wait and repeat each minute
        await ward.send("bed-101", "heart_rate", 152)
        await ward.pass_time(61)
    (alert,) = await ward.alerts("vital_signs")
    assert alert["count"] == 1
    await ward.send("bed-101", "heart_rate", 75)

    async def recovered() -> bool:
        (alert,) = await ward.alerts("vital_signs")
        return alert["cleared_at"] is not None and alert["state"] == "open"

    await eventually(recovered)
