"""A hostile or broken neighbour cannot cost a fall (issue 18): poisoned input to the hub's ingest.

Deep nesting, giant integers, sequence numbers beyond SQLite's 64 bits, NaN and Infinity, times
in the year 10^300: each is rejected and counted, nothing raises, what was stored before stays,
and a fall from another gateway in the same burst is still alerted. A fault of the hub's own
(the watch or the store failing on one message) costs that message alone. A real hub against a
real Mosquitto; the hub's clock is a manual clock, so times are fixed.
"""

from __future__ import annotations

import itertools
import json
import math
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import aiomqtt
import pytest
from hypothesis import HealthCheck, configuration, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from contract.wire import (
    MAX_ABS_VALUE,
    MAX_JSON_DEPTH,
    MAX_PAYLOAD_BYTES,
    MAX_SEQ,
    MAX_TEXT_CHARS,
    MAX_TIME,
    READINGS,
    WireBatch,
    WireDeviceHealth,
    WireDevicesReport,
    WireItem,
    WireStatus,
    data_topic,
    devices_topic,
    status_topic,
)
from hub.app import Hub
from hub.console.board import BedBoard
from hub.core.store import StoredItem
from hub.ingest.pipeline import Ingest
from hub.registry.index import Placement
from tests.conftest import HubFactory
from tests.support.clock import FakeClock
from tests.support.mosquitto import MosquittoBroker
from tests.support.waiting import eventually

NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC).timestamp()
EPOCH = "0123abcd"
EAST = data_topic("sunrise", "gw-east")
WEST = data_topic("sunrise", "gw-west")
EAST_STATUS = status_topic("sunrise", "gw-east")
EAST_DEVICES = devices_topic("sunrise", "gw-east")

# --- payloads, written as JSON text so that NaN, Infinity and giant numbers can be put in ------


def obj(**fields: str) -> str:
    """A JSON object from fields whose values are already JSON text."""
    return "{" + ",".join(f"{json.dumps(key)}:{value}" for key, value in fields.items()) + "}"


def item(dev: str = "radar-101", at: str = repr(NOW), **fields: str) -> str:
    if "event" not in fields and "reading" not in fields:
        fields = {"event": '"fall"', "value": "true", **fields}
    return obj(dev=json.dumps(dev), at=at, **fields)


def batch(
    seq: str = "2", items: str | None = None, sent: str = repr(NOW + 0.5), **fields: str
) -> bytes:
    body = {"epoch": json.dumps(EPOCH), "seq": seq, "bdseq": "1", "sent": sent}
    body |= fields
    body["items"] = f"[{item()}]" if items is None else items
    return obj(**body).encode()


def fall_batch(dev: str, seq: int, at: float = NOW) -> bytes:
    return batch(seq=str(seq), items=f"[{item(dev, repr(at))}]")


def status(**fields: str) -> bytes:
    return obj(**({"state": '"online"', "bdseq": "3", "at": repr(NOW)} | fields)).encode()


def report(at: str = repr(NOW), **device: str) -> bytes:
    entry = obj(**({"dev": '"radar-101"', "online": "true", "last_seen": repr(NOW)} | device))
    return obj(at=at, devices=f"[{entry}]").encode()


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


GIANT = "9" * 5000
HEART_RATE = json.dumps("heart_rate")
LONG_NAME = json.dumps("x" * 10_000)
# (what, topic, payload, the reason it is rejected for)
POISONS: list[tuple[str, str, bytes, str]] = [
    ("100,000 levels of nesting", EAST, batch(items=nested(100_000)), "malformed"),
    ("1,000 levels of nesting", EAST, batch(items=nested(1000)), "malformed"),
    (
        f"nesting one level deeper than {MAX_JSON_DEPTH}",
        EAST,
        batch(items=nested(MAX_JSON_DEPTH)),  # the batch's object is the first level
        "malformed",
    ),
    ("a 5,000-digit seq", EAST, batch(seq=GIANT), "malformed"),
    ("a 5,000-digit value", EAST, batch(items=f"[{item(value=GIANT)}]"), "malformed"),
    ("a 5,000-digit time", EAST, batch(items=f"[{item(at=GIANT)}]"), "malformed"),
    ("seq 2**63", EAST, batch(seq=str(2**63)), "malformed"),
    ("seq 2**64 (a double once parsed)", EAST, batch(seq=str(2**64)), "malformed"),
    ("seq 10**30", EAST, batch(seq=str(10**30)), "malformed"),
    ("bdseq 2**63", EAST, batch(bdseq=str(2**63)), "malformed"),
    ("bdseq -1", EAST, batch(bdseq="-1"), "malformed"),
    (
        "a last item numbered beyond 2**63 - 1",
        EAST,
        batch(seq=str(MAX_SEQ), items=f"[{item()},{item('radar-102')}]"),
        "malformed",
    ),
    ("at Infinity", EAST, batch(items=f"[{item(at='Infinity')}]"), "malformed"),
    ("at -Infinity", EAST, batch(items=f"[{item(at='-Infinity')}]"), "malformed"),
    ("at NaN", EAST, batch(items=f"[{item(at='NaN')}]"), "malformed"),
    ("at 1e400 (infinite as a double)", EAST, batch(items=f"[{item(at='1e400')}]"), "malformed"),
    ("sent Infinity", EAST, batch(sent="Infinity"), "malformed"),
    ("sent -Infinity", EAST, batch(sent="-Infinity"), "malformed"),
    ("sent 1e308", EAST, batch(sent="1e308"), "malformed"),
    ("value NaN", EAST, batch(items=f"[{item(value='NaN')}]"), "malformed"),
    ("value Infinity", EAST, batch(items=f"[{item(value='Infinity')}]"), "malformed"),
    ("value -Infinity", EAST, batch(items=f"[{item(value='-Infinity')}]"), "malformed"),
    ("at 1e308", EAST, batch(items=f"[{item(at='1e308')}]"), "malformed_item"),
    ("at after the year 2200", EAST, batch(items=f"[{item(at='7258118400')}]"), "malformed_item"),
    (
        "heart rate 1e308",
        EAST,
        batch(items=f"[{item(reading=HEART_RATE, value='1e308')}]"),
        "malformed_item",
    ),
    (
        "heart rate 2**63",
        EAST,
        batch(items=f"[{item(reading=HEART_RATE, value=str(2**63))}]"),
        "malformed_item",
    ),
    (
        "heart rate -2**64 (a double once parsed)",
        EAST,
        batch(items=f"[{item(reading=HEART_RATE, value=str(-(2**64)))}]"),
        "malformed_item",
    ),
    (
        "a 10,000-character value",
        EAST,
        batch(items=f"[{item(value=json.dumps('x' * 10_000))}]"),
        "malformed_item",
    ),
    (
        "a 10,000-character reading name",
        EAST,
        batch(items=f"[{item(reading=LONG_NAME)}]"),
        "malformed_item",
    ),
    ("invalid UTF-8", EAST, b'{"epoch":"\xff\xfe"}', "malformed"),
    ("a lone surrogate", EAST, batch(epoch='"\\ud800"'), "malformed"),
    ("status bdseq 2**63", EAST_STATUS, status(bdseq=str(2**63)), "malformed"),
    ("status bdseq 5,000 digits", EAST_STATUS, status(bdseq=GIANT), "malformed"),
    ("status at Infinity", EAST_STATUS, status(at="Infinity"), "malformed"),
    ("status at 1e308", EAST_STATUS, status(at="1e308"), "malformed"),
    (
        "status agent of 10,000 characters",
        EAST_STATUS,
        status(agent=json.dumps("a" * 10_000)),
        "malformed",
    ),
    ("status nested 100,000 levels", EAST_STATUS, status(agent=nested(100_000)), "malformed"),
    ("report at NaN", EAST_DEVICES, report(at="NaN"), "malformed"),
    ("report at 1e308", EAST_DEVICES, report(at="1e308"), "malformed"),
    ("report last_seen 1e308", EAST_DEVICES, report(last_seen="1e308"), "malformed"),
    ("report last_seen -Infinity", EAST_DEVICES, report(last_seen="-Infinity"), "malformed"),
    ("report battery NaN", EAST_DEVICES, report(battery="NaN"), "malformed"),
    ("report battery 1e308", EAST_DEVICES, report(battery="1e308"), "malformed"),
    ("report rssi 2**63", EAST_DEVICES, report(rssi=str(2**63)), "malformed"),
]


def test_every_poison_is_under_the_size_limit_so_it_reaches_the_parser() -> None:
    for what, _, payload, _ in POISONS:
        assert len(payload) <= MAX_PAYLOAD_BYTES, what


# --- the wire models themselves (shared with the edge and the fleet simulator) --------------

FALL: dict[str, Any] = {"dev": "radar-101", "at": NOW, "event": "fall", "value": True}
HEART: dict[str, Any] = {"dev": "radar-101", "at": NOW, "reading": "heart_rate", "value": 61}
BATCH: dict[str, Any] = {"epoch": EPOCH, "seq": 1, "bdseq": 0, "sent": NOW, "items": [FALL]}
STATUS: dict[str, Any] = {"state": "online", "bdseq": 0, "at": NOW, "agent": "carewatch-edge"}
HEALTH: dict[str, Any] = {"dev": "radar-101", "online": True, "last_seen": NOW, "battery": 50}
REPORT: dict[str, Any] = {"at": NOW, "devices": [HEALTH]}
# (model, a valid body, a change that must keep it valid, a change that must not)
BOUNDS: list[tuple[type[BaseModel], dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    (WireBatch, BATCH, {"seq": MAX_SEQ}, {"seq": MAX_SEQ + 1}),
    (
        WireBatch,
        BATCH,
        {"seq": MAX_SEQ - 1, "items": [FALL] * 2},
        {"seq": MAX_SEQ, "items": [FALL] * 2},
    ),
    (WireBatch, BATCH, {"seq": 1}, {"seq": 0}),
    (WireBatch, BATCH, {"bdseq": MAX_SEQ}, {"bdseq": MAX_SEQ + 1}),
    (WireBatch, BATCH, {"bdseq": 0}, {"bdseq": -1}),
    (WireBatch, BATCH, {"sent": 1.0}, {"sent": math.inf}),
    (WireBatch, BATCH, {"sent": MAX_TIME - 1}, {"sent": MAX_TIME}),
    (WireBatch, BATCH, {"sent": NOW}, {"sent": math.nan}),
    (WireBatch, BATCH, {"items": [FALL]}, {"items": [{**FALL, "at": math.inf}]}),
    (WireItem, FALL, {"at": 0.001}, {"at": 0}),
    (WireItem, FALL, {"at": MAX_TIME - 1}, {"at": 1e308}),
    (WireItem, FALL, {"at": NOW}, {"at": math.nan}),
    (WireItem, FALL, {"at": NOW}, {"at": -math.inf}),
    (WireItem, HEART, {"value": MAX_ABS_VALUE}, {"value": MAX_ABS_VALUE + 1}),
    (WireItem, HEART, {"value": -MAX_ABS_VALUE}, {"value": -(2**63)}),
    (WireItem, HEART, {"value": 61.5}, {"value": math.nan}),
    (WireItem, HEART, {"value": 61.5}, {"value": math.inf}),
    (WireItem, HEART, {"value": 61.5}, {"value": -1e308}),
    (WireItem, FALL, {"value": "x" * MAX_TEXT_CHARS}, {"value": "x" * (MAX_TEXT_CHARS + 1)}),
    (WireItem, FALL, {"event": "fall"}, {"event": "x" * 10_000}),
    (WireStatus, STATUS, {"bdseq": MAX_SEQ}, {"bdseq": MAX_SEQ + 1}),
    (WireStatus, STATUS, {"at": None}, {"at": math.inf}),
    (WireStatus, STATUS, {"at": NOW}, {"at": 1e308}),
    (WireStatus, STATUS, {"agent": "a" * MAX_TEXT_CHARS}, {"agent": "a" * (MAX_TEXT_CHARS + 1)}),
    (WireDeviceHealth, HEALTH, {"last_seen": None}, {"last_seen": math.inf}),
    (WireDeviceHealth, HEALTH, {"last_seen": NOW}, {"last_seen": 1e308}),
    (WireDeviceHealth, HEALTH, {"battery": 100}, {"battery": math.nan}),
    (WireDeviceHealth, HEALTH, {"rssi": -127}, {"rssi": 2**63}),
    (WireDevicesReport, REPORT, {"at": NOW}, {"at": math.nan}),
    (WireDevicesReport, REPORT, {"at": NOW}, {"at": MAX_TIME}),
    (WireDevicesReport, REPORT, {"devices": []}, {"devices": [{**HEALTH, "battery": math.inf}]}),
]


def test_wire_models_take_values_up_to_their_bounds_and_refuse_beyond() -> None:
    for model, body, within, beyond in BOUNDS:
        model.model_validate(body | within)
        with pytest.raises(ValidationError):
            model.model_validate(body | beyond)
            pytest.fail(f"{model.__name__} took {beyond}")


def test_wire_models_refuse_non_finite_numbers_in_json_too() -> None:
    text = json.dumps(BATCH).replace(repr(NOW), "Infinity", 1)
    assert "Infinity" in text
    with pytest.raises(ValidationError):
        WireBatch.model_validate_json(text)


# --- helpers --------------------------------------------------------------------------------


async def fall_alerts(hub: Hub, bed: str) -> int:
    """How many falls the active fall alerts of `bed` have counted."""
    alerts = await hub.alerts.records.page(("open", "acknowledged"), 100)
    return sum(a["count"] for a in alerts if a["rule"] == "fall" and a["bed"] == bed)


def changed(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    keys = before.keys() | after.keys()
    return {k: after.get(k, 0) - before.get(k, 0) for k in keys if after.get(k) != before.get(k)}


async def publish(
    broker: MosquittoBroker, messages: list[tuple[str, bytes]], retain: bool = False
) -> None:
    async with aiomqtt.Client(broker.host, broker.port) as client:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=1, retain=retain)


# --- each poison alone ----------------------------------------------------------------------


async def test_each_poison_is_rejected_and_counted_and_stored_data_stays(
    hub_factory: HubFactory,
) -> None:
    hub = await hub_factory(FakeClock(NOW))
    ingest = hub.ingest
    await ingest.handle_many([(EAST, fall_batch("radar-101", 1))])
    assert await fall_alerts(hub, "SR-E-101") == 1
    assert await hub.ingest.records.count_rows("events") == 1

    for what, topic, payload, reason in POISONS:
        before = ingest.counters()
        await ingest.handle_many([(topic, payload)])  # never raises
        assert changed(before, ingest.counters()) == {f"rejected_{reason}": 1}, what

    # Nothing of them got in, and what was there before is as it was.
    assert await hub.ingest.records.count_rows("events") == 1
    assert await hub.ingest.records.count_rows("readings") == 0
    assert await hub.ingest.records.sequence_mark("sunrise", "gw-east") == (EPOCH, 1)
    assert await hub.ingest.records.gateway_status("sunrise", "gw-east") is None
    assert await hub.ingest.records.device_health() == {}
    assert await fall_alerts(hub, "SR-E-101") == 1
    # The gateway's next real batch is taken as the next one: no duplicate, no gap.
    await ingest.handle_many([(EAST, fall_batch("radar-102", 2))])
    assert await fall_alerts(hub, "SR-E-102") == 1
    counters = ingest.counters()
    assert (counters["accepted"], counters["duplicates"], counters["gaps"]) == (2, 0, 0)
    assert "rejected_internal_error" not in counters


async def test_every_poison_and_a_fall_from_another_gateway_in_one_burst(
    hub_factory: HubFactory,
) -> None:
    hub = await hub_factory(FakeClock(NOW))
    poisons = [(topic, payload) for _, topic, payload, _ in POISONS]
    half = len(poisons) // 2
    burst = [*poisons[:half], (WEST, fall_batch("radar-201", 1)), *poisons[half:]]

    await hub.ingest.handle_many(burst)

    assert await fall_alerts(hub, "SR-W-201") == 1
    assert await hub.ingest.records.count_rows("events") == 1
    assert await hub.ingest.records.sequence_mark("sunrise", "gw-west") == (EPOCH, 1)
    counters = hub.ingest.counters()
    assert counters["accepted"] == 1
    rejected = sum(n for name, n in counters.items() if name.startswith("rejected_"))
    assert rejected == len(POISONS)
    assert "rejected_internal_error" not in counters


# --- through a real Mosquitto ---------------------------------------------------------------


async def test_poison_and_a_fall_queued_together_on_mosquitto_the_fall_alerts(
    hub_factory: HubFactory, broker: MosquittoBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    bursts: list[list[str]] = []
    handle_many = Ingest.handle_many

    async def recording(self: Ingest, messages: list[tuple[str, bytes]]) -> None:
        bursts.append([topic for topic, _ in messages])
        await handle_many(self, messages)

    monkeypatch.setattr(Ingest, "handle_many", recording)
    clock = FakeClock(NOW)
    first = await hub_factory(clock)
    await first.stop()  # its session stays: the broker queues what comes meanwhile
    # The hub's persistent session gets them together when it is back, in one burst.
    await publish(
        broker,
        [
            (EAST, batch(seq="1", items=nested(100_000))),
            (EAST, batch(seq=GIANT)),
            (EAST, batch(seq="1", items=f"[{item(at='Infinity')}]")),
            (WEST, fall_batch("radar-201", 1)),
            (EAST, batch(seq=str(2**63))),
        ],
    )
    hub = await hub_factory(clock)

    async def alerted() -> bool:
        return await fall_alerts(hub, "SR-W-201") == 1

    await eventually(alerted)
    await eventually(lambda: hub.ingest.counters().get("accepted", 0) >= 1)  # stored after
    assert any(WEST in burst and EAST in burst for burst in bursts), bursts
    counters = hub.ingest.counters()
    assert counters["rejected_malformed"] == 4
    assert counters["accepted"] == 1
    assert await hub.ingest.records.count_rows("events") == 1


async def test_retained_poison_is_counted_per_delivery_and_never_stops_a_fall(
    hub_factory: HubFactory, broker: MosquittoBroker
) -> None:
    # Left retained on a gateway's topics: the hub gets them again at every start.
    await publish(
        broker,
        [(EAST, batch(seq="1", items=nested(100_000))), (EAST_STATUS, status(bdseq=GIANT))],
        retain=True,
    )
    clock = FakeClock(NOW)
    for start, seq in ((1, 1), (2, 2)):
        hub = await hub_factory(clock)

        async def poison_delivered(hub: Hub = hub) -> bool:
            return hub.ingest.counters().get("rejected_malformed", 0) >= 2

        await eventually(poison_delivered)
        await publish(broker, [(EAST, fall_batch("radar-101", seq))])
        await publish(broker, [(WEST, fall_batch("radar-201", seq))])

        async def both_alerted(hub: Hub = hub, seq: int = seq) -> bool:
            east = await fall_alerts(hub, "SR-E-101")
            return east == seq and await fall_alerts(hub, "SR-W-201") == seq

        await eventually(both_alerted)

        async def both_stored(hub: Hub = hub) -> bool:
            # An alarm is announced before its batch is stored; "accepted" counts stored items.
            return hub.ingest.counters().get("accepted", 0) >= 2

        await eventually(both_stored)
        counters = hub.ingest.counters()
        assert counters["rejected_malformed"] == 2, f"start {start}: counted once per delivery"
        assert counters["accepted"] == 2
        assert "rejected_internal_error" not in counters
        await hub.stop()


# --- a fault of the hub's own costs one message ---------------------------------------------


async def test_the_watch_failing_on_one_message_rejects_that_message_alone(
    hub_factory: HubFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = await hub_factory(FakeClock(NOW))
    on_item = hub.watch.on_item

    async def failing(item: StoredItem, place: Placement) -> None:
        if item.device == "radar-101":
            raise RuntimeError("a rule fell over")
        await on_item(item, place)

    monkeypatch.setattr(hub.watch, "on_item", failing)
    east = batch(seq="1", items=f"[{item('radar-101')},{item('radar-102')}]")
    await hub.ingest.handle_many([(EAST, east), (WEST, fall_batch("radar-201", 1))])

    assert await fall_alerts(hub, "SR-W-201") == 1
    counters = hub.ingest.counters()
    assert (counters["rejected_internal_error"], counters["accepted"]) == (1, 1)
    assert (
        await hub.ingest.records.count_rows("events") == 1
    )  # gw-west's fall; gw-east's are rejected
    # gw-east's numbers were used: its next batch is neither a repeat nor after a gap.
    assert await hub.ingest.records.sequence_mark("sunrise", "gw-east") == (EPOCH, 2)


async def test_the_store_failing_on_one_batch_loses_that_batch_alone(
    hub_factory: HubFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = await hub_factory(FakeClock(NOW))
    save_batches = hub.ingest.records.save_batches

    async def failing(batches: list[Any]) -> None:
        if any(gateway == "gw-east" for _, gateway, *_ in batches):
            raise sqlite3.OperationalError("cannot store this")
        await save_batches(batches)

    monkeypatch.setattr(hub.ingest.records, "save_batches", failing)
    await hub.ingest.handle_many(
        [(EAST, fall_batch("radar-101", 1)), (WEST, fall_batch("radar-201", 1))]
    )

    assert await fall_alerts(hub, "SR-W-201") == 1  # watched before storing
    assert await hub.ingest.records.count_rows("events") == 1
    assert await hub.ingest.records.sequence_mark("sunrise", "gw-west") == (EPOCH, 1)
    assert await hub.ingest.records.sequence_mark("sunrise", "gw-east") is None
    counters = hub.ingest.counters()
    assert (counters["rejected_internal_error"], counters["accepted"]) == (1, 1)
    # Not stored, so not taken as received: a redelivery is stored.
    monkeypatch.setattr(hub.ingest.records, "save_batches", save_batches)
    await hub.ingest.handle_many([(EAST, fall_batch("radar-101", 1))])
    assert await hub.ingest.records.count_rows("events") == 2
    assert hub.ingest.duplicates == 0


async def test_a_fault_reading_or_handling_one_message_spares_the_rest_of_its_burst(
    hub_factory: HubFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = await hub_factory(FakeClock(NOW))
    placement = hub.registry.placement

    def failing_placement(device: str, at: float | None = None) -> Placement | None:
        if device == "radar-102":
            raise KeyError(device)
        return placement(device, at)

    async def failing_status(*args: Any) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(hub.registry, "placement", failing_placement)
    monkeypatch.setattr(hub.ingest.records, "set_gateway_status", failing_status)
    await hub.ingest.handle_many(
        [
            (EAST, fall_batch("radar-101", 1)),
            (EAST, fall_batch("radar-102", 2)),  # its preparation fails
            (EAST_STATUS, status()),  # its handling fails, after the batches before it
            (WEST, fall_batch("radar-201", 1)),
        ]
    )

    assert await fall_alerts(hub, "SR-E-101") == 1
    assert await fall_alerts(hub, "SR-E-102") == 0
    assert await fall_alerts(hub, "SR-W-201") == 1
    counters = hub.ingest.counters()
    assert (counters["rejected_internal_error"], counters["accepted"]) == (2, 2)
    assert await hub.ingest.records.count_rows("events") == 2


# --- the board stays JSON with a bad time stored before these checks ------------------------


async def test_board_stays_json_with_an_infinite_time_already_stored(
    hub_factory: HubFactory,
) -> None:
    hub = await hub_factory(FakeClock(NOW))
    stored = StoredItem("radar-101", "reading", "presence", True, math.inf, NOW, False)
    await hub.ingest.records.save_batches([("sunrise", "gw-east", "0123abcd", 1, [stored])])
    async with hub.store.transaction() as db:
        await db.execute(
            "INSERT INTO device_health (device, online, last_seen, reported_at) "
            "VALUES ('radar-102', 0, ?, ?)",
            (math.inf, NOW),
        )
    board = BedBoard(hub.beds)

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    (east, west) = await board.zones(NOW, lambda site, zone: True)
    tiles = {t["bed"]: t for t in json.loads(f"[{east.json_items}]", parse_constant=refuse)}
    assert (tiles["SR-E-101"]["state"], tiles["SR-E-101"]["bed_state"]["since"]) == ("in_bed", None)
    assert (tiles["SR-E-102"]["state"], tiles["SR-E-102"]["bed_state"]["since"]) == (
        "device_trouble",
        None,
    )
    json.loads(f"[{west.json_items}]", parse_constant=refuse)


# --- fuzz: whatever the neighbours send, the fall is alerted --------------------------------

NASTY_NUMBERS = [
    "0",
    "-1",
    "1",
    str(MAX_SEQ),
    str(2**63),
    str(2**64),
    str(-(2**63) - 1),
    "1e308",
    "-1e308",
    "1e400",
    "5e-324",
    "Infinity",
    "-Infinity",
    "NaN",
    GIANT,
    repr(NOW),
    "true",
    "null",
    '"1"',
    "[]",
    "{}",
]


class RawJson(str):
    """JSON text to be put into a payload as it is (NaN, Infinity, a giant number)."""


def to_json(value: object) -> str:
    if isinstance(value, RawJson):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    return json.dumps(value)  # float('nan') becomes NaN, as a careless encoder would write it


_leaf = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(NASTY_NUMBERS).map(RawJson)
)
json_values = st.recursive(
    _leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=16,
)
nasty = st.sampled_from(NASTY_NUMBERS).map(RawJson) | json_values
devices = st.sampled_from(["radar-101", "radar-102", "button-101", "smoke-101", "radar-201", "x"])
names = st.sampled_from(["fall", "call_button", "presence", "heart_rate", "smoke", "bogus"])
items = st.fixed_dictionaries(
    {"dev": devices, "at": nasty},
    optional={
        "event": names,
        "reading": names,
        "value": nasty,
        "hist": nasty,
        "extra": nasty,
    },
)
batches = st.fixed_dictionaries(
    {
        "epoch": st.just(EPOCH) | json_values,
        "seq": nasty,
        "bdseq": nasty,
        "sent": nasty,
        "items": st.lists(items, max_size=4) | nasty,
    }
)
# Batches that pass the envelope, with items that often pass too: they reach the watch.
sound_times = st.sampled_from([NOW, NOW - 600]) | st.floats(-1e10, 1e10) | nasty
sound_values = st.booleans() | st.integers(-200, 200) | st.floats(-1e3, 1e3) | nasty
sound_items = st.fixed_dictionaries(
    {
        "dev": devices,
        "at": sound_times,
        "event": st.sampled_from(["fall", "call_button", "stillness", "tamper", "device_test"]),
    },
    optional={"value": sound_values, "hist": st.booleans()},
) | st.fixed_dictionaries(
    {"dev": devices, "at": sound_times, "reading": st.sampled_from(sorted(READINGS))},
    optional={"value": sound_values, "hist": st.booleans()},
)
sound_batches = st.fixed_dictionaries(
    {
        "epoch": st.just(EPOCH),
        "seq": st.integers(1, 1_000_000),
        "bdseq": st.integers(0, 5),
        "sent": st.just(NOW),
        "items": st.lists(sound_items, min_size=1, max_size=4),
    }
)
statuses = st.fixed_dictionaries(
    {"state": st.sampled_from(["online", "offline"]) | json_values, "bdseq": nasty},
    optional={"at": nasty, "agent": nasty},
)
reports = st.fixed_dictionaries(
    {
        "at": nasty,
        "devices": st.lists(
            st.fixed_dictionaries(
                {"dev": devices, "online": nasty},
                optional={"last_seen": nasty, "battery": nasty, "rssi": nasty},
            ),
            max_size=3,
        ),
    }
)
payloads = (
    st.binary(max_size=64)
    | json_values.map(to_json).map(str.encode)
    | (batches | sound_batches | statuses | reports).map(to_json).map(str.encode)
    | st.integers(1, 100_000).map(lambda n: nested(n).encode())
    | st.integers(1, 30_000).map(lambda n: batch(items=nested(n)))
)
# The neighbours: gw-east and strangers; gw-west's data topic is left to the fall.
topics = st.sampled_from(
    [
        EAST,
        EAST,
        EAST_STATUS,
        EAST_DEVICES,
        status_topic("sunrise", "gw-west"),
        devices_topic("sunrise", "gw-west"),
        data_topic("sunrise", "gw-nobody"),
        "carewatch/v1/sunrise/gw-east/cmd",
        "carewatch/v1/Sunrise!/gw-east/data",
    ]
)
noise = st.lists(st.tuples(topics, payloads), max_size=6)

FuzzCheck = Callable[[list[tuple[str, bytes]], int], Awaitable[None]]


@pytest.fixture
def hypothesis_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Hypothesis caches Unicode tables and the constants of our sources in a folder of its
    own (by default .hypothesis in the working directory): a temporary one, for this test."""
    previous = getattr(configuration, "__hypothesis_home_directory", None)
    configuration.set_hypothesis_home_dir(tmp_path_factory.mktemp("hypothesis"))
    yield
    configuration.set_hypothesis_home_dir(previous)


@pytest.fixture
async def fall_still_alerts(hub_factory: HubFactory, hypothesis_home: None) -> FuzzCheck:
    clock = FakeClock(NOW)
    hub = await hub_factory(clock)
    seqs = itertools.count(1)

    async def check(neighbours: list[tuple[str, bytes]], where: int) -> None:
        clock.advance(1)
        burst = list(neighbours)
        burst.insert(where, (WEST, fall_batch("radar-201", next(seqs), clock.now())))
        before = await fall_alerts(hub, "SR-W-201")
        await hub.ingest.handle_many(burst)  # never raises
        assert await fall_alerts(hub, "SR-W-201") == before + 1
        assert "rejected_internal_error" not in hub.ingest.counters()

    return check


@settings(
    max_examples=200,
    deadline=None,
    database=None,  # nothing written outside the test's own folders
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one hub for all examples, on purpose
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
@given(neighbours=noise, where=st.integers(0, 6))
async def test_fuzz_whatever_the_neighbours_send_the_fall_alerts(
    fall_still_alerts: FuzzCheck, neighbours: list[tuple[str, bytes]], where: int
) -> None:
    await fall_still_alerts(neighbours, min(where, len(neighbours)))
