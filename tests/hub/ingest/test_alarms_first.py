"""Alarms first: a fall, a call or smoke is watched and reaches the console before the telemetry
that arrived with or before it is stored; every reading is still stored once, in order per device.

The hub is the real one (Store, Watch, AlertService, AlertBus on SQLite); the fleet's telemetry
is the fleet simulator's (simulators/fleet.py). The order of announcements and stores is read
off the real objects: the console's live subscription on the AlertBus, and a wrapper around
`Store.save_batches` that notes how many alerts had been announced when it was called, then
stores as always.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from typing import Any

import aiomqtt
import orjson
import pytest

from contract.wire import data_topic
from hub.app import Hub
from hub.ingest.pipeline import MAX_BURST, Arrivals, carries_alarm
from simulators.fleet import Bed, EventKind, VirtualGateway, event_items, plan_fleet, site_spec
from tests.conftest import SMALL_SITE, HubFactory
from tests.support.clock import FakeClock
from tests.support.mosquitto import MosquittoBroker

NOW = 1_767_225_600.0  # 2026-01-01 00:00 UTC
SITE = "fleet"
Message = tuple[str, bytes]
ALARM_RULES = {"fall", "call_button", "smoke"}


class Fleet:
    """The fleet simulator's gateways, each second's batches as its gateways publish them."""

    def __init__(self, beds: int) -> None:
        self.plan = plan_fleet(beds, site=SITE)
        self.gateways = [
            VirtualGateway(g, SITE, 1, random.Random(g.index)) for g in self.plan.gateways
        ]
        self.sent: list[Message] = []  # every distinct batch, in the order sent

    def batch(self, gateway: int, tick: int, alarm: tuple[EventKind, int] | None = None) -> Message:
        """Gateway `gateway`'s batch for second `tick`, with an alarm at a bed if asked."""
        virtual = self.gateways[gateway]
        at = NOW + tick
        virtual.routine(tick, at)
        if alarm is not None:
            kind, bed = alarm
            virtual.add(event_items(kind, Bed(bed), at)[0])
        taken = virtual.take_batch(at)
        assert taken is not None
        message = (data_topic(SITE, virtual.plan.id), taken[0])
        self.sent.append(message)
        return message

    def second(self, tick: int, alarms: dict[int, tuple[EventKind, int]]) -> list[Message]:
        """Every gateway's batch for second `tick`; `alarms` by gateway index."""
        return [self.batch(g, tick, alarms.get(g)) for g in range(len(self.gateways))]

    def expected(self) -> tuple[dict[str, list[tuple[str, str]]], int, int]:
        """Per device, its readings and events (name, value as stored) in the order sent; and
        how many readings and events that is."""
        per_device: defaultdict[str, list[tuple[str, str]]] = defaultdict(list)
        readings = events = 0
        for _, payload in self.sent:
            for item in orjson.loads(payload)["items"]:
                kind = "event" if "event" in item else "reading"
                readings += kind == "reading"
                events += kind == "event"
                per_device[item["dev"]].append((item[kind], orjson.dumps(item["value"]).decode()))
        return dict(per_device), readings, events

    def last_seq(self, gateway: int) -> int:
        return self.gateways[gateway].outbox.next_seq - 1


def gateway_of(bed: int) -> int:
    return (bed - 1) // 20


class Order:
    """What the console had been told each time the store was asked to write telemetry."""

    def __init__(self, hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
        self.live = hub.bus.subscribe()
        self.announced: list[dict[str, Any]] = []
        self.writes: list[int] = []  # alerts announced before each save_batches call
        save_batches = hub.ingest.records.save_batches

        async def recording(batches: list[Any]) -> None:
            self.writes.append(self._announced())
            await save_batches(batches)

        monkeypatch.setattr(hub.ingest.records, "save_batches", recording)

    def _announced(self) -> int:
        while not self.live.empty():
            alert = self.live.get_nowait()
            assert alert is not None
            self.announced.append(alert)
        return len(self.announced)

    def opened_before_first_write(self) -> list[tuple[str, str]]:
        self._announced()
        first = self.writes[0]
        return sorted(
            {
                (a["rule"], a["room_name"])
                for a in self.announced[:first]
                if a["rule"] in ALARM_RULES and a["state"] == "open"
            }
        )


async def stored_per_device(hub: Hub) -> dict[str, list[tuple[str, str]]]:
    per_device: defaultdict[str, list[tuple[str, str]]] = defaultdict(list)
    for table in ("readings", "events"):
        # Readings and events are compared apart: a device's events are watched first.
        async with hub.store.db.execute(
            f"SELECT device, name, value FROM {table} ORDER BY id"
        ) as cursor:
            for device, name, value in await cursor.fetchall():
                per_device[device].append((name, value))
    return dict(per_device)


def split_by_kind(per_device: dict[str, list[tuple[str, str]]]) -> dict[str, list[Any]]:
    """Each device's readings, then its events, each in order (as `stored_per_device`)."""
    events = {"fall", "call_button", "tamper"}
    return {
        device: [i for i in items if i[0] not in events] + [i for i in items if i[0] in events]
        for device, items in per_device.items()
    }


async def fleet_hub(hub_factory: HubFactory, fleet: Fleet) -> Hub:
    return await hub_factory(FakeClock(NOW), sites=[SMALL_SITE, site_spec(fleet.plan)])


# --- the cheap first look -------------------------------------------------------------------


def test_an_alarm_is_a_fall_a_call_or_smoke_and_anything_else_is_not() -> None:
    def batch(*items: dict[str, Any]) -> bytes:
        return orjson.dumps({"epoch": "ab" * 8, "seq": 1, "items": list(items)})

    assert carries_alarm(batch({"dev": "r", "event": "fall", "value": True}))
    assert carries_alarm(batch({"dev": "b", "event": "call_button", "value": "press"}))
    assert carries_alarm(batch({"dev": "s", "reading": "smoke", "value": True}))
    assert not carries_alarm(batch({"dev": "r", "event": "fall", "value": False}))
    assert not carries_alarm(batch({"dev": "s", "reading": "smoke", "value": False}))
    assert not carries_alarm(batch({"dev": "t", "event": "tamper", "value": True}))
    assert not carries_alarm(batch({"dev": "r", "reading": "presence", "value": True}))
    # Whatever a gateway sends, the look says no rather than fail: ingest judges it later.
    assert not carries_alarm(batch({"dev": "r", "event": ["fall"], "value": True}))
    assert not carries_alarm(b'{"items":[{"event":"fall"' + b"[" * 5000)
    assert not carries_alarm(orjson.dumps({"items": {"event": "fall"}}))


# --- a burst of 10,000 beds' telemetry with alarms inside it --------------------------------


async def test_alarms_in_a_10000_bed_burst_reach_the_console_before_any_telemetry_is_stored(
    hub_factory: HubFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = Fleet(10_000)
    hub = await fleet_hub(hub_factory, fleet)
    order = Order(hub, monkeypatch)
    # Two seconds of the fleet (1,000 batches, one burst): alarms in either second, on the
    # first gateway, in the middle and on the very last batch of the burst.
    alarms_1: dict[int, tuple[EventKind, int]] = {gateway_of(5003): ("fall", 5003)}
    alarms_2: dict[int, tuple[EventKind, int]] = {
        gateway_of(17): ("fall", 17),
        gateway_of(2500): ("smoke", 2500),
        gateway_of(9999): ("call", 9999),
        gateway_of(7777): ("fall", 7777),
    }
    first, second = fleet.second(0, alarms_1), fleet.second(1, alarms_2)
    # A poison message ahead of a fall on its own gateway, and redeliveries of a telemetry
    # batch and of a fall's batch after later ones of their gateways.
    poison = (data_topic(SITE, "gw-0250"), b'{"epoch":' + b"[" * 5000)
    burst = [
        *first[:250],
        poison,
        *first[250:],
        *second,
        first[100],
        second[gateway_of(17)],
    ]

    await hub.ingest.handle_many(burst)

    assert order.opened_before_first_write() == sorted(
        [
            ("call_button", "Room 9999"),
            ("fall", "Room 17"),
            ("fall", "Room 5003"),
            ("fall", "Room 7777"),
            ("smoke", "Room 2500"),
        ]
    )
    expected, readings, events = fleet.expected()
    assert await stored_per_device(hub) == split_by_kind(expected)
    assert await hub.ingest.records.count_rows("readings") == readings
    assert await hub.ingest.records.count_rows("events") == events
    counters = hub.ingest.counters()
    duplicates = sum(len(orjson.loads(p)["items"]) for _, p in (first[100], second[0]))
    assert counters["duplicates"] == duplicates
    assert counters["accepted"] == readings + events
    assert counters["rejected_malformed"] == 1
    assert counters["gaps"] == 0
    assert "rejected_internal_error" not in counters
    for g in (0, 100, 125, 250, 499):
        mark = await hub.ingest.records.sequence_mark(SITE, f"gw-{g:04d}")
        assert mark is not None and mark[1] == fleet.last_seq(g)
    # One alert per alarm: the redelivered fall is not a second one.
    alerts = await hub.alerts.records.page(("open",), 100)
    assert sorted(a["rule"] for a in alerts if a["rule"] in ALARM_RULES) == [
        "call_button",
        "fall",
        "fall",
        "fall",
        "smoke",
    ]
    # Telemetry still goes in a few transactions, not one per batch.
    assert len(order.writes) <= 3


# --- an alarm that arrives while a burst is being handled -----------------------------------


async def test_an_alarm_arriving_during_a_burst_is_handled_in_front_of_the_rest_of_it(
    hub_factory: HubFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = Fleet(200)  # 10 gateways
    hub = await fleet_hub(hub_factory, fleet)
    order = Order(hub, monkeypatch)
    burst = fleet.second(0, {})
    burst.append(fleet.batch(3, 1))  # gw-0003's next batch, at the end of the burst
    late_fall = fleet.batch(3, 2, ("fall", 70))  # and the one after, with a fall
    arrivals = Arrivals()
    heard = 0
    on_gateway_heard = hub.watch.on_gateway_heard

    async def arrives_meanwhile(site: str, gateway: str, at: float) -> None:
        nonlocal heard
        heard += 1
        if heard == 2:  # the burst's second batch is being read: the fall comes in
            arrivals.put(*late_fall)
        await on_gateway_heard(site, gateway, at)

    monkeypatch.setattr(hub.watch, "on_gateway_heard", arrives_meanwhile)
    with arrivals.handled_here():
        await hub.ingest.handle_many(burst)

    assert len(arrivals) == 0  # taken in
    assert order.opened_before_first_write() == [("fall", "Room 70")]
    assert len(order.writes) == 2  # up to the fall, then the rest of the burst
    expected, readings, events = fleet.expected()
    assert await stored_per_device(hub) == split_by_kind(expected)
    counters = hub.ingest.counters()
    assert counters["accepted"] == readings + events
    assert (counters["duplicates"], counters["gaps"]) == (0, 0)
    assert await hub.ingest.records.sequence_mark(SITE, "gw-0003") == (
        fleet.gateways[3].outbox.epoch,
        fleet.last_seq(3),
    )


async def test_bursts_take_alarm_lanes_first_never_cut_and_in_each_gateways_order() -> None:
    fleet = Fleet(2_000)  # 100 gateways
    telemetry = fleet.second(0, {})
    later = fleet.second(1, {5: ("fall", 110), 60: ("smoke", 1210)})
    arrivals = Arrivals()
    for topic, payload in [*telemetry, *later]:
        arrivals.put(topic, payload, more=True)
    assert arrivals.alarm_waiting

    first = await arrivals.next_burst()
    # Both gateways' lanes (their two batches each, in arrival order) first, then the oldest.
    assert first[:4] == [telemetry[5], telemetry[60], later[5], later[60]]
    oldest = [m for g, m in enumerate(telemetry) if g not in (5, 60)]
    assert first[4:] == oldest[: MAX_BURST - 4]
    assert not arrivals.alarm_waiting
    taken = list(first)
    arrivals.close()
    while burst := await arrivals.next_burst():
        assert len(burst) <= MAX_BURST
        taken += burst
    assert sorted(taken) == sorted([*telemetry, *later])
    for g in range(len(fleet.gateways)):
        topic = data_topic(SITE, f"gw-{g:04d}")
        assert [m for m in taken if m[0] == topic] == [telemetry[g], later[g]]


async def test_a_wake_up_with_nothing_left_waits_instead_of_ending_the_handler() -> None:
    """Ingest takes an alarm's lane in front of its burst after the alarm woke the handler:
    the next burst must wait for messages, not come back empty (which ended ingest for good)."""
    fleet = Fleet(200)
    arrivals = Arrivals()
    arrivals.put(*fleet.batch(3, 0, ("fall", 70)))  # wakes the handler
    assert [a.topic for a in arrivals.take_lanes()] == [data_topic(SITE, "gw-0003")]
    waiting = asyncio.create_task(arrivals.next_burst())
    await asyncio.sleep(0.05)
    assert not waiting.done()  # nothing to take: it waits
    telemetry = fleet.batch(4, 0)
    arrivals.put(*telemetry)
    assert await asyncio.wait_for(waiting, 5) == [telemetry]
    arrivals.close()
    assert await arrivals.next_burst() == []  # empty only once closed


# --- through Mosquitto ----------------------------------------------------------------------


async def test_a_flood_queued_on_mosquitto_with_falls_inside_is_stored_once_and_in_order(
    hub_factory: HubFactory, broker: MosquittoBroker
) -> None:
    fleet = Fleet(1_000)  # 50 gateways
    clock = FakeClock(NOW)
    sites = [SMALL_SITE, site_spec(fleet.plan)]
    first = await hub_factory(clock, sites=sites)
    await first.stop()  # its session stays: the broker queues the flood for it
    flood: list[Message] = []
    for tick in range(6):
        alarms: dict[int, tuple[EventKind, int]] = (
            {7: ("fall", 150), 31: ("call", 630)} if tick == 4 else {}
        )
        flood += fleet.second(tick, alarms)
    flood.append(flood[3])  # a redelivery
    async with aiomqtt.Client(broker.host, broker.port) as client:
        for topic, payload in flood:
            await client.publish(topic, payload, qos=1)

    hub = await hub_factory(clock, sites=sites)
    expected, readings, events = fleet.expected()
    deadline = time.monotonic() + 30
    while hub.ingest.counters()["accepted"] < readings + events:
        assert time.monotonic() < deadline, hub.ingest.counters()
        await asyncio.sleep(0.05)

    assert await stored_per_device(hub) == split_by_kind(expected)
    counters = hub.ingest.counters()
    assert counters["duplicates"] == len(orjson.loads(flood[3][1])["items"])
    assert counters["gaps"] == 0
    assert not [name for name in counters if name.startswith("rejected_")]
    alerts = await hub.alerts.records.page(("open",), 100)
    assert sorted((a["rule"], a["room_name"]) for a in alerts if a["rule"] in ALARM_RULES) == [
        ("call_button", "Room 630"),
        ("fall", "Room 150"),
    ]
