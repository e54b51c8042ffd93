"""The hub's API over real HTTP: login, CSRF, the alert lifecycle and the live stream."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx

from contract.wire import WireDeviceHealth, devices_topic, encode_devices_report
from hub.access.auth import token_digest
from hub.app import Hub
from tests.conftest import NURSE, HubFactory, PublishBatch
from tests.support.hub import fall, login, publish_raw
from tests.support.mosquitto import MosquittoBroker
from tests.support.waiting import eventually


async def open_fall(hub: Hub, publish_batch: PublishBatch, device: str = "radar-101") -> int:
    await publish_batch("sunrise", "gw-east", [fall(device)], seq=1)

    async def opened() -> bool:
        return len(await hub.alerts.records.page(("open",), 10)) == 1

    await eventually(opened)
    (alert,) = await hub.alerts.records.page(("open",), 10)
    return int(alert["id"])


async def test_nothing_is_open_without_login(hub_factory: HubFactory) -> None:
    hub = await hub_factory()
    async with httpx.AsyncClient(base_url=hub.url) as client:
        for path in ("/api/alerts", "/api/alerts/1", "/api/me", "/api/outcomes", "/api/stream"):
            assert (await client.get(path)).status_code == 401, path
        assert (await client.post("/api/alerts/1/acknowledge")).status_code == 401
        bad = await client.post("/api/login", json={"username": NURSE[0], "password": "guess"})
        assert bad.status_code == 401
        unknown = await client.post("/api/login", json={"username": "mallory", "password": "x"})
        assert unknown.status_code == 401
        malformed = await client.post("/api/login", json={"user": "nurse"})
        assert malformed.status_code == 422


async def test_acknowledge_and_resolve_are_recorded_with_who_and_when(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    hub = await hub_factory()
    alert_id = await open_fall(hub, publish_batch)
    async with httpx.AsyncClient(base_url=hub.url) as client:
        csrf = await login(client)
        no_csrf = await client.post(f"/api/alerts/{alert_id}/acknowledge")
        assert no_csrf.status_code == 403
        before = time.time()
        acked = await client.post(
            f"/api/alerts/{alert_id}/acknowledge", headers={"X-CSRF-Token": csrf}
        )
        assert acked.status_code == 200
        assert acked.json()["state"] == "acknowledged"
        assert acked.json()["acknowledged_by"] == "nurse"
        assert acked.json()["acknowledged_at"] >= before
        again = await client.post(
            f"/api/alerts/{alert_id}/acknowledge", headers={"X-CSRF-Token": csrf}
        )
        assert again.status_code == 409
        wrong = await client.post(
            f"/api/alerts/{alert_id}/resolve",
            json={"outcome": "it was fine"},
            headers={"X-CSRF-Token": csrf},
        )
        assert wrong.status_code == 422
        resolved = await client.post(
            f"/api/alerts/{alert_id}/resolve",
            json={"outcome": "assisted_no_injury", "note": "helped back to bed"},
            headers={"X-CSRF-Token": csrf},
        )
        assert resolved.status_code == 200
        body = resolved.json()
        assert (body["state"], body["resolved_by"], body["outcome"]) == (
            "resolved",
            "nurse",
            "assisted_no_injury",
        )
        detail = (await client.get(f"/api/alerts/{alert_id}")).json()
        lifecycle = ("opened", "acknowledged", "resolved")  # escalation steps are recorded too
        actions = [(h["action"], h["actor"]) for h in detail["history"] if h["action"] in lifecycle]
        assert actions == [("opened", "system"), ("acknowledged", "nurse"), ("resolved", "nurse")]
        assert (await client.get("/api/alerts")).json()["alerts"] == []
        assert (await client.get("/api/alerts/999")).status_code == 404
        assert (await client.get("/api/alerts?state=bogus")).status_code == 422


async def test_api_token_works_without_a_session_and_a_wrong_one_is_refused(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    token = "integration-token-for-tests"
    hub = await hub_factory(
        tokens=[{"name": "bms", "sha256": token_digest(token), "role": "staff", "sites": ["*"]}]
    )
    alert_id = await open_fall(hub, publish_batch)
    async with httpx.AsyncClient(base_url=hub.url) as client:
        wrong = await client.get("/api/alerts", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        acked = await client.post(
            f"/api/alerts/{alert_id}/acknowledge", headers={"Authorization": f"Bearer {token}"}
        )
        assert acked.status_code == 200
        assert acked.json()["acknowledged_by"] == "token:bms"
        assert acked.json()["acknowledged_via"] == "api"


async def read_stream_events(
    client: httpx.AsyncClient, count: int, ready: asyncio.Event
) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    name = ""
    async with client.stream("GET", "/api/stream") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                if name == "hello":
                    ready.set()
                else:
                    events.append((name, json.loads(line.removeprefix("data: "))))
                if len(events) == count:
                    return events
    return events


async def test_live_stream_carries_new_alerts_and_their_changes(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    # The nurse is on duty, so the fall reaches her console: no "nobody reached" change between.
    on_duty = {
        "name": "all-day",
        "start": "00:00",
        "end": "00:00",
        "assignments": [{"user": "nurse"}],
    }
    hub = await hub_factory(roster={"sites": {"sunrise": {"shifts": [on_duty]}}})
    async with httpx.AsyncClient(base_url=hub.url, timeout=20) as client:
        csrf = await login(client)
        ready = asyncio.Event()
        reader = asyncio.create_task(read_stream_events(client, 2, ready))
        await asyncio.wait_for(ready.wait(), 10)
        alert_id = await open_fall(hub, publish_batch)
        await client.post(f"/api/alerts/{alert_id}/acknowledge", headers={"X-CSRF-Token": csrf})
        events = await asyncio.wait_for(reader, 10)
    assert [(name, alert["state"]) for name, alert in events] == [
        ("alert", "open"),
        ("alert", "acknowledged"),
    ]
    assert events[0][1]["bed"] == "SR-E-101"


async def test_hub_stops_promptly_while_a_console_is_connected(hub_factory: HubFactory) -> None:
    hub = await hub_factory()
    async with httpx.AsyncClient(base_url=hub.url, timeout=30) as client:
        await login(client)
        ready = asyncio.Event()
        stream = asyncio.create_task(read_stream_events(client, 1, ready))
        await asyncio.wait_for(ready.wait(), 10)
        await asyncio.wait_for(hub.stop(), 10)
        assert await asyncio.wait_for(stream, 10) == []


async def test_device_health_reports_are_stored_and_listed(
    hub_factory: HubFactory, broker: MosquittoBroker
) -> None:
    hub = await hub_factory()
    now = time.time()
    report = encode_devices_report(
        now,
        [
            WireDeviceHealth(dev="radar-101", online=False, last_seen=now - 120),
            WireDeviceHealth(dev="button-101", online=True, last_seen=now, battery=87, rssi=-71),
            WireDeviceHealth(dev="radar-201", online=True, last_seen=now),  # gw-west's device
        ],
    )
    await publish_raw(broker, devices_topic("sunrise", "gw-east"), report)

    async def stored() -> bool:
        return len(await hub.ingest.records.device_health()) == 2

    await eventually(stored)
    assert hub.ingest.counters()["rejected_foreign_device"] == 1
    async with httpx.AsyncClient(base_url=hub.url) as client:
        await login(client)
        devices = {d["device"]: d for d in (await client.get("/api/devices")).json()["devices"]}
    assert devices["radar-101"]["health"]["online"] is False
    assert devices["radar-101"]["bed"] == "SR-E-101"
    assert devices["button-101"]["health"]["battery"] == 87
    assert devices["radar-201"]["health"] is None
