"""The supervisor view through a real hub and Mosquitto: figures, overdue alerts, device
trouble and beds by type, the alerts that reached nobody, its CSV exports, and who may see
which site.

The hub's clock is a manual clock, so each alert is acknowledged at a chosen moment and the
figures and deadlines below follow from those moments. The night nurse covers the east wing
with her console open all night; the west wing's carer has no console open, so the west wing's
alerts reach nobody (the real escalation engine decides and records it).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import csv
import io
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiomqtt
import httpx
import pytest

from contract.wire import WireDeviceHealth, devices_topic, encode_devices_report, status_topic
from hub.access.auth import hash_password
from hub.app import Hub
from hub.escalation.policy import Policy, Step
from hub.supervisor.overview import deadline
from tests.conftest import (
    ADMIN,
    NURSE,
    SMALL_SITE,
    SUPERVISOR,
    HubFactory,
    PublishBatch,
    small_site_users,
)
from tests.support.clock import FakeClock
from tests.support.mosquitto import MosquittoBroker
from tests.support.waiting import eventually

NIGHT_0300 = datetime(2026, 11, 22, 3, 0, tzinfo=ZoneInfo("UTC")).timestamp()
WEST_CARER = ("west-carer", "west-carer-pw")
ROSTER = {
    "sites": {
        "sunrise": {
            "shifts": [
                {
                    "name": "day",
                    "start": "07:00",
                    "end": "19:00",
                    "assignments": [{"user": "nurse"}],
                },
                {
                    "name": "night",
                    "start": "19:00",
                    "end": "07:00",
                    "assignments": [
                        {"user": NURSE[0], "zones": ["east"]},
                        {"user": WEST_CARER[0], "zones": ["west"]},
                    ],
                },
            ]
        }
    }
}
# Re-alert after 2 min, so that an acknowledged alert becomes overdue within the test.
ESCALATION = {
    "defaults": {
        "steps": [
            {"after_min": 0, "notify": "on_duty_zone"},
            {"after_min": 3, "notify": "charge_nurse"},
        ],
        "realert_after_min": 2,
    }
}
HARBOUR: dict[str, Any] = {
    "id": "harbour",
    "name": "Harbour Home Care",
    "gateways": ["gw-h1"],
    "zones": [
        {
            "id": "homes",
            "name": "Family beds",
            "kind": "family",
            "rooms": [
                {
                    "id": "flat1",
                    "name": "Flat 1",
                    "beds": [{"code": "HB-1", "resident": {"code": "H-0001", "name": "Ada Brown"}}],
                }
            ],
        }
    ],
    "devices": [
        {"id": "vitals-h1", "gateway": "gw-h1", "profile": "seeed-mr60bha2", "bed": "HB-1"},
        {"id": "mat-h1", "gateway": "gw-h1", "profile": "linptech-ps1bb", "bed": "HB-1"},
        {"id": "button-h1", "gateway": "gw-h1", "profile": "shelly-blu-button1", "bed": "HB-1"},
    ],
}


def users() -> list[dict[str, Any]]:
    """The small site's people and the west wing's night carer."""
    carer = {
        "username": WEST_CARER[0],
        "display_name": "West Carer",
        "password_hash": hash_password(WEST_CARER[1]),
        "role": "staff",
        "sites": ["sunrise"],
    }
    return [*small_site_users(), carer]


@contextlib.asynccontextmanager
async def live_console(url: str, who: tuple[str, str]) -> AsyncIterator[None]:
    """A live console (the alert stream) open as `who` until the block ends."""
    async with httpx.AsyncClient(base_url=url, timeout=None) as client:
        await login(client, who)
        ready = asyncio.Event()

        async def watch() -> None:
            async with client.stream("GET", "/api/stream") as response:
                async for line in response.aiter_lines():
                    if line.startswith("event: hello"):
                        ready.set()

        task = asyncio.create_task(watch())
        await asyncio.wait_for(ready.wait(), 10)
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def sunrise_with_an_empty_bed() -> dict[str, Any]:
    """The small site plus room 202, whose bed has no sensor at all."""
    site = copy.deepcopy(SMALL_SITE)
    site["zones"][1]["rooms"].append({"id": "r202", "name": "202", "beds": [{"code": "SR-W-202"}]})
    return site


@dataclass
class Record:
    """A night at Sunrise and Harbour, built through the broker with a clock the test moves."""

    hub: Hub
    clock: FakeClock
    publish_batch: PublishBatch
    broker: MosquittoBroker
    ids: dict[str, int] = field(default_factory=dict)
    _seq: dict[str, itertools.count[int]] = field(default_factory=dict)

    async def send(
        self, site: str, gateway: str, dev: str, kind: str, name: str, value: Any
    ) -> None:
        seq = next(self._seq.setdefault(gateway, itertools.count(1)))
        item = {"dev": dev, "at": self.clock.now(), kind: name, "value": value}
        await self.publish_batch(site, gateway, [item], seq=seq)

    async def raise_alert(
        self, label: str, site: str, gateway: str, dev: str, rule: str = "fall"
    ) -> int:
        """Publish the event and wait for the alert it opens, and for its first step."""
        before = set(await self.active_ids())
        await self.send(site, gateway, dev, "event", rule, True)

        async def opened() -> bool:
            return bool(set(await self.active_ids()) - before)

        await eventually(opened)
        (new,) = set(await self.active_ids()) - before
        self.ids[label] = new
        await self.told(new)
        return new

    async def told(self, alert_id: int) -> None:
        """Until the alert's first step reached someone, or its nobody-reached alarm went out."""

        async def settled() -> bool:
            async with self.hub.store.db.execute(
                "SELECT count(*), sum(CASE WHEN result = 'delivered' THEN 1 ELSE 0 END), "
                "sum(CASE WHEN result = 'pending' THEN 1 ELSE 0 END) "
                "FROM notifications WHERE alert_id = ?",
                (alert_id,),
            ) as cur:
                row = await cur.fetchone()
            alert = await self.hub.alerts.records.get(alert_id)
            if row is None or not row[0] or row[2] or alert is None:
                return False
            return bool(row[1]) or alert["nobody_reached_at"] is not None

        await eventually(settled)

    async def active_ids(self) -> list[int]:
        return [
            int(a["id"]) for a in await self.hub.alerts.records.page(("open", "acknowledged"), None)
        ]

    async def act(self, label: str, action: str) -> None:
        body = {"outcome": "assisted_no_injury"} if action == "resolve" else {}
        async with httpx.AsyncClient(base_url=self.hub.url) as client:
            csrf = await login(client, NURSE)
            response = await client.post(
                f"/api/alerts/{self.ids[label]}/{action}", json=body, headers={"X-CSRF-Token": csrf}
            )
        assert response.status_code == 200, response.text

    async def publish(self, topic: str, payload: bytes) -> None:
        async with aiomqtt.Client(self.broker.host, self.broker.port) as client:
            await client.publish(topic, payload, qos=1)

    async def alert_by_rule(self, rule: str) -> dict[str, Any] | None:
        listed = await self.hub.alerts.records.page(("open", "acknowledged"), None)
        return next((a for a in listed if a["rule"] == rule), None)

    async def build(self) -> None:
        """Acknowledged at 30 s (A, east) and 120 s (B, west), both resolved; E (west)
        acknowledged at once and not resolved; C (east) left open; D (east) opened last;
        H at Harbour; then radar-102 reported offline, button-101 low on battery and gw-west
        gone offline. Ends at 03:05:10."""
        await self.raise_alert("A", "sunrise", "gw-east", "radar-101")
        self.clock.advance(30)
        await self.act("A", "acknowledge")
        await self.act("A", "resolve")
        await self.raise_alert("B", "sunrise", "gw-west", "radar-201")
        self.clock.advance(120)
        await self.act("B", "acknowledge")
        await self.act("B", "resolve")
        await self.raise_alert("E", "sunrise", "gw-west", "radar-201")
        await self.act("E", "acknowledge")
        await self.raise_alert("C", "sunrise", "gw-east", "radar-102")
        self.clock.advance(150)
        await self.raise_alert("D", "sunrise", "gw-east", "button-101", rule="call_button")
        await self.raise_alert("H", "harbour", "gw-h1", "button-h1", rule="call_button")
        now = self.clock.now()
        report = encode_devices_report(
            now,
            [
                WireDeviceHealth(dev="radar-101", online=True, last_seen=now),
                WireDeviceHealth(dev="radar-102", online=False, last_seen=now - 400),
            ],
        )
        await self.publish(devices_topic("sunrise", "gw-east"), report)
        await self.send("sunrise", "gw-east", "button-101", "reading", "battery", 12)
        await self.publish(
            status_topic("sunrise", "gw-west"),
            json.dumps({"state": "offline", "bdseq": 1}).encode(),
        )
        for rule in ("device_offline", "low_battery", "gateway_offline"):
            await eventually(lambda rule=rule: self.alert_by_rule(rule))
            trouble = await self.alert_by_rule(rule)
            assert trouble is not None
            await self.told(int(trouble["id"]))
        self.clock.advance(10)


async def login(client: httpx.AsyncClient, who: tuple[str, str]) -> str:
    response = await client.post("/api/login", json={"username": who[0], "password": who[1]})
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])


@contextlib.asynccontextmanager
async def start_record(
    hub_factory: HubFactory, publish_batch: PublishBatch, broker: MosquittoBroker
) -> AsyncIterator[Record]:
    """The night built, with the night nurse's console open throughout."""
    clock = FakeClock(NIGHT_0300)
    hub = await hub_factory(
        clock=clock,
        users=users(),
        sites=[sunrise_with_an_empty_bed(), HARBOUR],
        roster=ROSTER,
        escalation=ESCALATION,
        # No console here arms its sound; the "no console watching" alarm has its own tests
        # (tests/hub/console/test_presence.py) and would join this night's trouble alerts.
        watch={"defaults": {"timezone": "UTC", "console_grace_s": 3600}},
    )
    record = Record(hub, clock, publish_batch, broker)
    async with live_console(hub.url, NURSE):
        await record.build()
        yield record


@pytest.fixture
async def record(
    hub_factory: HubFactory, publish_batch: PublishBatch, broker: MosquittoBroker
) -> AsyncIterator[Record]:
    async with start_record(hub_factory, publish_batch, broker) as built:
        yield built


async def get(hub: Hub, who: tuple[str, str], path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=hub.url) as client:
        await login(client, who)
        return await client.get(path)


def figure(view: dict[str, Any], by: str, group: str | None = None) -> dict[str, Any]:
    (found,) = [f for f in view["figures"] if f["by"] == by and f["group"] == group]
    return dict(found)


async def test_figures_per_site_zone_and_shift(record: Record) -> None:
    response = await get(record.hub, SUPERVISOR, "/api/supervisor")
    assert response.status_code == 200, response.text
    view = response.json()
    assert [s["id"] for s in view["sites"]] == ["sunrise"]

    # Sunrise: A 30 s, B 120 s, E 0 s; C open 160 s (late for 60 s, undecided for 180 s);
    # D opened 10 s ago (undecided). Harbour's alert is not the supervisor's.
    total = figure(view, "total")
    assert (total["alerts"], total["acknowledged"], total["resolved"]) == (5, 3, 2)
    assert (total["ack_within_60s"], total["ack_within_180s"]) == (0.5, 1.0)
    assert total["meets_target"] is False
    site = figure(view, "site")
    assert (site["site"], site["alerts"]) == ("sunrise", 5)
    east, west = figure(view, "zone", "east"), figure(view, "zone", "west")
    assert (east["alerts"], east["acknowledged"], east["ack_within_60s"]) == (3, 1, 1.0 / 2)
    assert (west["alerts"], west["ack_median_s"], west["ack_within_60s"]) == (2, 60.0, 0.5)
    night = figure(view, "shift", "night")
    assert (night["alerts"], night["ack_within_180s"]) == (5, 1.0)

    everything = (await get(record.hub, ADMIN, "/api/supervisor")).json()
    assert figure(everything, "total")["alerts"] == 6
    assert [s["id"] for s in everything["sites"]] == ["harbour", "sunrise"]


async def test_alerts_that_reached_nobody_are_counted_per_zone_and_shift_and_listed(
    record: Record,
) -> None:
    ids = record.ids
    view = (await get(record.hub, SUPERVISOR, "/api/supervisor")).json()
    # The west wing's carer had no console open: B and E reached nobody. The east wing's
    # alerts, and the device trouble the nurse's console showed, reached her.
    assert (figure(view, "total")["nobody_reached"], figure(view, "site")["nobody_reached"]) == (
        2,
        2,
    )
    assert figure(view, "zone", "west")["nobody_reached"] == 2
    assert figure(view, "zone", "east")["nobody_reached"] == 0
    assert figure(view, "shift", "night")["nobody_reached"] == 2
    listed = view["nobody_reached_alerts"]
    assert [a["id"] for a in listed] == [ids["B"], ids["E"]]
    b = listed[0]
    assert (b["zone"], b["shift"], b["rule"], b["times"]) == ("west", "night", "fall", 1)
    assert "West Carer" in b["reason"], b["reason"]
    assert (b["acknowledged_by"], b["acknowledged_at"] - b["opened_at"]) == (NURSE[0], 120)
    counts = {(c["by"], c["group"]): c["alerts"] for c in view["nobody_reached_counts"]}
    assert counts == {
        ("total", None): 2,
        ("site", None): 2,
        ("zone", "west"): 2,
        ("shift", "night"): 2,
    }
    # E is still acknowledged, not resolved: the open list marks it too.
    active = {a["id"]: a for a in view["alerts"]}
    assert active[ids["E"]]["nobody_reached_at"] is not None
    assert active[ids["C"]]["nobody_reached_at"] is None
    assert view["alert_counts"]["nobody_reached"] == 1

    # Harbour has no roster at all: its alert reached nobody too, which only its own
    # supervisors and admins see.
    everything = (await get(record.hub, ADMIN, "/api/supervisor")).json()
    assert [a["id"] for a in everything["nobody_reached_alerts"]] == [ids["B"], ids["E"], ids["H"]]


async def test_overdue_alerts_are_those_past_their_deadline(record: Record) -> None:
    view = (await get(record.hub, SUPERVISOR, "/api/supervisor")).json()
    alerts = {a["id"]: a for a in view["alerts"]}
    ids = record.ids
    # C waited 160 s unacknowledged (limit 60 s); E was acknowledged 160 s ago (re-alert 2 min).
    assert alerts[ids["C"]]["overdue"] is True
    assert alerts[ids["C"]]["overdue_s"] == 100
    assert alerts[ids["C"]]["deadline"] == alerts[ids["C"]]["opened_at"] + 60
    assert (alerts[ids["E"]]["state"], alerts[ids["E"]]["overdue"]) == ("acknowledged", True)
    assert alerts[ids["E"]]["overdue_s"] == 40
    # D opened 10 s ago: within its minute.
    assert (alerts[ids["D"]]["overdue"], alerts[ids["D"]]["overdue_s"]) == (False, None)
    assert ids["A"] not in alerts and ids["B"] not in alerts  # resolved
    assert ids["H"] not in alerts  # Harbour's
    assert [a["id"] for a in view["alerts"][:2]] == sorted([ids["C"], ids["E"]])
    assert view["alert_counts"]["overdue"] == 2
    trouble = {a["rule"]: a for a in view["alerts"] if a["priority"] == "trouble"}
    assert set(trouble) == {"device_offline", "low_battery", "gateway_offline"}
    assert not any(a["overdue"] for a in trouble.values())  # opened 10 s ago


async def test_devices_offline_and_low_on_battery_are_listed(record: Record) -> None:
    view = (await get(record.hub, SUPERVISOR, "/api/supervisor")).json()
    devices = {d["device"]: d for d in view["devices"]}
    assert set(devices) == {"radar-102", "radar-201", "button-101"}
    assert devices["radar-102"]["offline_why"] == "reported offline by its gateway"
    assert devices["radar-201"]["offline_why"] == "gateway offline"
    button = devices["button-101"]
    assert (button["offline"], button["low_battery"], button["battery"]) == (False, True, 12)
    assert button["battery_low"] == 20
    assert view["device_counts"] == {"devices": 5, "offline": 2, "low_battery": 1}
    assert [(g["site"], g["gateway"]) for g in view["gateways_offline"]] == [("sunrise", "gw-west")]


async def test_beds_are_counted_by_zone_kind_and_what_watches_them(record: Record) -> None:
    view = (await get(record.hub, ADMIN, "/api/supervisor")).json()
    beds = {(b["site"], b["zone_kind"]): b for b in view["beds"]}
    assert beds[("sunrise", "care_home")] == {
        "site": "sunrise",
        "zone_kind": "care_home",
        "beds": 4,
        "monitored": 3,
        "fall_radar": 3,
        "vital_signs_radar": 0,
        "bed_sensor": 0,
        "call_button": 1,
        "none": 1,
    }
    family = beds[("harbour", "family")]
    assert (family["beds"], family["vital_signs_radar"], family["bed_sensor"]) == (1, 1, 1)
    assert (family["call_button"], family["fall_radar"], family["none"]) == (1, 0, 0)


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def cell(value: Any) -> str:
    return "" if value is None else str(value)


async def test_csv_exports_match_the_view(record: Record) -> None:
    async with httpx.AsyncClient(base_url=record.hub.url) as client:
        await login(client, SUPERVISOR)
        view = (await client.get("/api/supervisor")).json()
        for what, key, ident in (
            ("figures", "figures", ("by", "group")),
            ("alerts", "alerts", ("id",)),
            ("devices", "devices", ("device",)),
            ("nobody_reached", "nobody_reached_alerts", ("id",)),
        ):
            response = await client.get(f"/api/supervisor/export/{what}.csv")
            assert response.status_code == 200, response.text
            assert response.headers["content-type"].startswith("text/csv")
            assert "attachment" in response.headers["content-disposition"]
            rows = parse_csv(response.text)
            assert len(rows) == len(view[key]) > 0
            for row, item in zip(rows, view[key], strict=True):
                assert all(row[name] == cell(item[name]) for name in ident)
                assert all(row[name] == cell(item[name]) for name in row), (what, row)
        overdue = parse_csv((await client.get("/api/supervisor/export/alerts.csv")).text)
        assert {int(r["id"]) for r in overdue if r["overdue"] == "True"} == {
            record.ids["C"],
            record.ids["E"],
        }
        missing = await client.get("/api/supervisor/export/residents.csv")
        assert missing.status_code == 404


async def test_a_supervisor_sees_only_their_sites_and_staff_are_refused(record: Record) -> None:
    hub = record.hub
    assert (await get(hub, SUPERVISOR, "/api/supervisor?site=sunrise")).status_code == 200
    for path in (
        "/api/supervisor?site=harbour",
        "/api/supervisor?site=nowhere",
        "/api/supervisor/export/alerts.csv?site=harbour",
    ):
        response = await get(hub, SUPERVISOR, path)
        assert response.status_code == 404, path
    harbour = (await get(hub, ADMIN, "/api/supervisor?site=harbour")).json()
    assert [a["id"] for a in harbour["alerts"]] == [record.ids["H"]]
    assert figure(harbour, "total")["alerts"] == 1

    for path in ("/api/supervisor", "/api/supervisor/export/figures.csv"):
        response = await get(hub, NURSE, path)
        assert response.status_code == 403, path
    async with httpx.AsyncClient(base_url=hub.url) as client:
        assert (await client.get("/api/supervisor")).status_code == 401
    bad = await get(hub, SUPERVISOR, "/api/supervisor?since=yesterday")
    assert bad.status_code == 422 and "is not an ISO 8601 time" in bad.text


def test_deadlines_follow_priority_and_policy() -> None:
    policy = Policy()  # steps at 0, 3 and 10 min; re-alert after 30 min
    opened = {"state": "open", "opened_at": 1000.0}
    assert deadline({**opened, "priority": "emergency"}, policy) == 1060
    assert deadline({**opened, "priority": "routine"}, policy) == 1180
    assert deadline({**opened, "priority": "trouble"}, policy) == 1180
    quick = Policy(steps=(Step(after_min=0, notify=("on_duty_zone",)),), realert_after_min=None)
    assert deadline({**opened, "priority": "trouble"}, quick) is None
    acked = {"state": "acknowledged", "priority": "emergency", "acknowledged_at": 2000.0}
    assert deadline(acked, policy) == 2000 + 1800
    assert deadline(acked, quick) is None
