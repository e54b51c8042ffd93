"""The console's server side: bed board, resident timeline and chart, shift handover, and scope.

Real hub, real Mosquitto; readings go in through the broker like a gateway's.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx

from contract.wire import (
    WireDeviceHealth,
    devices_topic,
    encode_devices_report,
    encode_status,
    status_topic,
)
from hub.app import Hub
from hub.registry.models import Resident
from hub.registry.service import SYSTEM
from tests.conftest import EAST_NURSE, NURSE, HubFactory, PublishBatch
from tests.support.hub import publish_raw
from tests.support.mosquitto import MosquittoBroker
from tests.support.waiting import eventually


class Gateway:
    """gw-east of the small site, with its own sequence numbers."""

    def __init__(self, publish_batch: PublishBatch, start: int = 1) -> None:
        self._publish = publish_batch
        self._seq = itertools.count(start)

    async def send(self, *items: dict[str, Any]) -> None:
        first = next(self._seq)
        for _ in items[1:]:  # a batch's items are numbered on from its first
            next(self._seq)
        await self._publish("sunrise", "gw-east", list(items), seq=first)


def reading(dev: str, name: str, value: Any, at: float) -> dict[str, Any]:
    return {"dev": dev, "at": at, "reading": name, "value": value}


def event(dev: str, name: str, at: float, value: Any = True) -> dict[str, Any]:
    return {"dev": dev, "at": at, "event": name, "value": value}


@contextlib.asynccontextmanager
async def client_for(hub: Hub, who: tuple[str, str] = NURSE) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=hub.url) as client:
        response = await client.post("/api/login", json={"username": who[0], "password": who[1]})
        assert response.status_code == 200, response.text
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        yield client


async def tiles(client: httpx.AsyncClient, **params: str) -> dict[str, dict[str, Any]]:
    response = await client.get("/api/board", params=params)
    assert response.status_code == 200, response.text
    return {tile["bed"]: tile for tile in response.json()["beds"]}


async def tile_becomes(client: httpx.AsyncClient, bed: str, state: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def reached() -> bool:
        found.update((await tiles(client))[bed])
        return bool(found["state"] == state)

    reached.__doc__ = f"bed {bed} becomes {state}"
    await eventually(reached)
    return found


async def test_a_tile_goes_in_bed_up_alert_and_device_trouble(
    hub_factory: HubFactory, publish_batch: PublishBatch, broker: MosquittoBroker
) -> None:
    hub = await hub_factory()
    gateway = Gateway(publish_batch)
    t0 = time.time() - 120
    async with client_for(hub) as client:
        board = await tiles(client)
        assert set(board) == {"SR-E-101", "SR-E-102", "SR-W-201"}
        assert board["SR-E-101"]["state"] == "unknown"
        assert board["SR-E-101"]["resident_name"] == "Mary Jones"
        assert (board["SR-E-101"]["place"], board["SR-E-101"]["at_home"]) == ("Room 101", False)
        assert board["SR-E-101"]["gateways"] == [{"id": "gw-east", "where": "East wing"}]
        assert board["SR-W-201"]["state"] == "empty"
        assert board["SR-W-201"]["resident_name"] is None

        await gateway.send(reading("radar-101", "presence", True, t0))
        tile = await tile_becomes(client, "SR-E-101", "in_bed")
        assert tile["bed_state"]["since"] == t0

        # The edge repeats an unchanged value now and then: the state has not changed.
        await gateway.send(reading("radar-101", "presence", True, t0 + 30))
        await eventually(lambda: hub.ingest.counters()["accepted"] >= 2)
        repeated = (await tiles(client))["SR-E-101"]
        assert repeated["state"] == "in_bed"
        assert repeated["bed_state"]["since"] == t0

        await gateway.send(reading("radar-101", "presence", False, t0 + 60))
        tile = await tile_becomes(client, "SR-E-101", "up")
        assert tile["bed_state"]["since"] == t0 + 60
        assert tile["bed_state"]["in_bed"] is False
        assert tile["bed_state"]["label"] == "Up"

        await gateway.send(event("radar-101", "fall", t0 + 90))
        tile = await tile_becomes(client, "SR-E-101", "alert")
        (alert,) = tile["alerts"]
        assert alert["rule"] == "fall"
        assert (alert["about"], alert["device_name"]) == ("bed", "fall radar in room 101")
        assert (alert["state"], tile["alert_state"]) == ("open", "open")
        # The alert paints the tile; the bed's own state is still there, and still "up".
        assert (tile["bed_state"]["code"], tile["bed_state"]["since"]) == ("up", t0 + 60)
        resolved = await client.post(
            f"/api/alerts/{alert['id']}/resolve", json={"outcome": "assisted_no_injury"}
        )
        assert resolved.status_code == 200, resolved.text
        tile = await tile_becomes(client, "SR-E-101", "up")
        assert tile["bed_state"]["since"] == t0 + 60

        now = time.time()
        report = encode_devices_report(
            now, [WireDeviceHealth(dev="radar-101", online=False, last_seen=now - 30)]
        )
        await publish_raw(broker, devices_topic("sunrise", "gw-east"), report)
        tile = await tile_becomes(client, "SR-E-101", "device_trouble")
        assert tile["trouble_detail"] == ["fall radar offline"]
        assert tile["bed_state"]["trouble"] == ["The fall sensor is not responding"]
        assert tile["bed_state"]["activity"] == "up"  # what the sensor said last is kept
        assert tile["bed_state"]["since"] == now - 30
        assert (await tiles(client))["SR-E-102"]["state"] == "unknown"

        back = encode_devices_report(
            now + 1, [WireDeviceHealth(dev="radar-101", online=True, last_seen=now + 1)]
        )
        await publish_raw(broker, devices_topic("sunrise", "gw-east"), back)
        await tile_becomes(client, "SR-E-101", "up")
        # The gateway's death message: every bed it serves is offline, not the west wing's.
        death = encode_status("offline", 1, None, "test")
        await publish_raw(broker, status_topic("sunrise", "gw-east"), death)
        tile = await tile_becomes(client, "SR-E-102", "device_trouble")
        assert tile["trouble_detail"] == ["gateway offline"]
        assert (await tiles(client))["SR-W-201"]["state"] == "empty"


async def test_the_time_of_the_last_change_survives_a_hub_restart(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    hub = await hub_factory()
    t0 = time.time() - 600
    gateway = Gateway(publish_batch)
    await gateway.send(
        reading("radar-102", "presence", True, t0),
        reading("radar-102", "presence", False, t0 + 100),
        reading("radar-102", "presence", False, t0 + 200),
        reading("radar-102", "presence", False, t0 + 300),
    )
    await eventually(lambda: hub.ingest.counters()["accepted"] >= 4)
    await hub.stop()

    restarted = await hub_factory()
    async with client_for(restarted) as client:
        tile = (await tiles(client))["SR-E-102"]
    assert tile["state"] == "up"
    assert tile["bed_state"]["since"] == t0 + 100
    assert tile["bed_state"]["since_exact"] is True


async def test_the_chart_buckets_hold_the_values_sent(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    hub = await hub_factory()
    gateway = Gateway(publish_batch)
    bucket = 300.0
    # The middle of the bucket that began two buckets before the current one.
    start = (math.floor(time.time() / bucket) - 2) * bucket
    await gateway.send(
        reading("radar-101", "heart_rate", 60, start + 10),
        reading("radar-101", "heart_rate", 70, start + 20),
        reading("radar-101", "heart_rate", 0, start + 30),  # no reading: not averaged
        reading("radar-101", "respiration_rate", 14, start + 40),
        reading("radar-101", "presence", True, start + 50),
        reading("radar-101", "presence", False, start + 60),
        reading("radar-101", "presence", True, start + 70),
        reading("radar-101", "presence", True, start + 80),
        reading("radar-102", "heart_rate", 110, start + 10),  # another resident's bed
    )
    await eventually(lambda: hub.ingest.counters()["accepted"] >= 9)
    async with client_for(hub) as client:
        response = await client.get("/api/residents/E-0001/chart", params={"hours": 1})
        assert response.status_code == 200, response.text
        chart = response.json()
    assert chart["bucket_s"] == bucket
    assert chart["occupancy_source"] == "presence"
    (point,) = [p for p in chart["points"] if p["t"] == start]
    assert point == {"t": start, "heart_rate": 65.0, "respiration_rate": 14.0, "occupancy": 0.75}
    others = [p for p in chart["points"] if p["t"] != start]
    assert others and all(p["heart_rate"] is None for p in others)
    assert chart["points"][-1]["t"] <= time.time() < chart["points"][-1]["t"] + bucket


async def test_the_timeline_has_events_alerts_and_staff_actions(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    hub = await hub_factory()
    gateway = Gateway(publish_batch)
    await gateway.send(event("button-101", "call_button", time.time() - 5))
    await eventually(lambda: hub.alerts.is_active("call_button", "bed:SR-E-101"))
    async with client_for(hub) as client:
        (alert,) = (await client.get("/api/alerts")).json()["alerts"]
        await client.post(f"/api/alerts/{alert['id']}/acknowledge", json={"channel": "console"})
        response = await client.get("/api/residents/E-0001/timeline")
        assert response.status_code == 200, response.text
        entries = response.json()["entries"]
        other = (await client.get("/api/residents/E-0002/timeline")).json()["entries"]
    kinds = [(e["kind"], e.get("event") or e.get("action") or e["alert"]["rule"]) for e in entries]
    # The escalation's own steps and notifications are there too, between the alert and the ack
    # (with no roster here, the steps reach nobody, and say so).
    assert ("action", "escalation_step") in kinds
    escalation = ("escalation_step", "notification", "nobody_reached")
    staff = [k for k in kinds if k[1] not in escalation]
    assert staff == [("action", "acknowledged"), ("alert", "call_button"), ("event", "call_button")]
    assert entries[0]["actor"] == "nurse"
    # People, channels and devices in words, for the console to say.
    assert (entries[0]["actor_name"], entries[0]["channel_name"]) == ("Night Nurse", "console")
    pressed = next(e for e in entries if e["kind"] == "event")
    assert pressed["device_name"] == "call button in room 101"
    assert all(e["targets_text"] for e in entries if e.get("action") == "escalation_step")
    assert other == []


async def test_the_handover_lists_what_happened_and_what_is_still_open(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    hub = await hub_factory()
    gateway = Gateway(publish_batch)
    await gateway.send(event("radar-101", "fall", time.time() - 5))
    await eventually(lambda: hub.alerts.is_active("fall", "bed:SR-E-101"))
    await gateway.send(event("radar-102", "fall", time.time() - 5))
    await eventually(lambda: hub.alerts.is_active("fall", "bed:SR-E-102"))
    async with client_for(hub) as client:
        first = next(
            a for a in (await client.get("/api/alerts")).json()["alerts"] if a["bed"] == "SR-E-101"
        )
        await client.post(
            f"/api/alerts/{first['id']}/resolve",
            json={"outcome": "false_alarm", "note": "dropped a pillow"},
        )
        response = await client.get("/api/handover", params={"site": "sunrise"})
        assert response.status_code == 200, response.text
        report = response.json()
        later = await client.get("/api/handover", params={"since": datetime.now(UTC).isoformat()})
        future = await client.get("/api/handover", params={"since": "2999-01-01"})
        garbled = await client.get("/api/handover", params={"since": "yesterday-ish"})
        elsewhere = await client.get("/api/handover", params={"site": "moonbase"})
    assert report["counts"] == {"opened": 2, "acknowledged": 1, "resolved": 1, "still_open": 1}
    resolved = next(a for a in report["happened"] if a["id"] == first["id"])
    assert resolved["during"] == ["opened", "acknowledged", "resolved"]
    assert (resolved["outcome"], resolved["resolved_by"]) == ("false_alarm", "nurse")
    assert (resolved["resolved_by_name"], resolved["acknowledged_by_name"]) == ("Night Nurse",) * 2
    assert resolved["note"] == "dropped a pillow"
    assert [a["bed"] for a in report["still_open"]] == ["SR-E-102"]
    # Nothing happened since now, but the open alert is still handed over.
    assert later.status_code == 200 and later.json()["happened"] == []
    assert [a["bed"] for a in later.json()["still_open"]] == ["SR-E-102"]
    assert future.status_code == 422
    assert garbled.status_code == 422
    assert elsewhere.status_code == 404


async def test_scope_keeps_other_zones_beds_and_residents_out(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    hub = await hub_factory()
    assert hub.registry_admin is not None
    await hub.registry_admin.create(Resident, {"code": "W-0001", "name": "Tom West"}, SYSTEM)
    await hub.registry_admin.admit("W-0001", "SR-W-201", None, SYSTEM)
    await Gateway(publish_batch).send(event("radar-101", "fall", time.time() - 5))
    await eventually(lambda: hub.alerts.is_active("fall", "bed:SR-E-101"))
    async with client_for(hub, EAST_NURSE) as east:
        board = (await east.get("/api/board")).json()
        assert {t["bed"] for t in board["beds"]} == {"SR-E-101", "SR-E-102"}
        assert board["zones"] == [{"site": "sunrise", "zone": "east", "name": "East wing"}]
        assert (
            await east.get("/api/board", params={"site": "sunrise", "zone": "west"})
        ).status_code == 404
        assert (await east.get("/api/board", params={"site": "moonbase"})).status_code == 404
        assert (await east.get("/api/board", params={"zone": "east"})).status_code == 422
        for path in ("timeline", "chart"):
            hidden = await east.get(f"/api/residents/W-0001/{path}")
            missing = await east.get(f"/api/residents/X-9999/{path}")
            assert (hidden.status_code, missing.status_code) == (404, 404), path
            assert hidden.json() == {"detail": "no resident W-0001"}
            assert (await east.get(f"/api/residents/E-0001/{path}")).status_code == 200
        assert (
            await east.get("/api/residents/E-0001/chart", params={"hours": 0})
        ).status_code == 422
    async with client_for(hub) as everywhere:
        west = (await tiles(everywhere))["SR-W-201"]
        assert (west["state"], west["resident_name"]) == ("unknown", "Tom West")
        assert (await everywhere.get("/api/residents/W-0001/timeline")).status_code == 200


async def test_a_late_replay_of_an_older_reading_does_not_turn_a_tile_back(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    hub = await hub_factory()
    gateway = Gateway(publish_batch)
    t0 = time.time() - 300
    async with client_for(hub) as client:
        await gateway.send(reading("radar-101", "presence", True, t0))
        await tile_becomes(client, "SR-E-101", "in_bed")
        await gateway.send(reading("radar-101", "presence", False, t0 + 120))
        await tile_becomes(client, "SR-E-101", "up")

        # A gateway's backlog brings an older "in bed" after the newer "out of bed"; the next
        # reading, on another bed, shows the board has seen it.
        await gateway.send(
            reading("radar-101", "presence", True, t0 + 60),
            reading("radar-102", "presence", True, t0 + 130),
        )
        await tile_becomes(client, "SR-E-102", "in_bed")
        after_replay = (await tiles(client))["SR-E-101"]
        # The edge repeats the unchanged "out of bed": still the state that began at t0 + 120.
        await gateway.send(
            reading("radar-101", "presence", False, t0 + 140),
            reading("radar-102", "presence", False, t0 + 150),
        )
        await tile_becomes(client, "SR-E-102", "up")
        after_repeat = (await tiles(client))["SR-E-101"]
    assert (after_replay["state"], after_replay["bed_state"]["since"]) == ("up", t0 + 120)
    assert (after_repeat["state"], after_repeat["bed_state"]["since"]) == ("up", t0 + 120)
