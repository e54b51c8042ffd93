"""The family API on a real hub and Mosquitto: state in plain words, alerts, contacts, scope."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt
import httpx
import pytest
from PIL import Image

from contract.wire import status_topic
from hub.alerts.lifecycle import Trigger
from hub.app import Hub
from hub.watch.bed_state import AWAY_AFTER_S, Seen, activity_from
from tests.conftest import ADMIN, FAMILY, NURSE, SMALL_SITE, HubFactory, PublishBatch
from tests.support.waiting import eventually

CONTACTS = [
    {
        "name": "Anne Jones",
        "relation": "family",
        "phone": "+44 7700 900123",
        "email": "anne@example.org",
        "user": "daughter",
    },
    {"name": "Dr Patel", "relation": "family_doctor", "phone": "+44 20 7946 0000"},
]


CARE_SERVICE = "+44 20 7946 0999"
QUIET = {"defaults": {"timezone": "UTC", "bed_exit": False, "inactivity": False}}
ALL_DAY_NURSE = {
    "name": "all-day",
    "start": "00:00",
    "end": "00:00",
    "charge_nurse": "nurse",
    "assignments": [{"user": "nurse"}],
}


def site_with_contacts() -> dict[str, Any]:
    site = copy.deepcopy(SMALL_SITE)
    site["phone"] = CARE_SERVICE
    mary = site["zones"][0]["rooms"][0]["beds"][0]["resident"]
    assert mary["code"] == "E-0001"
    mary["contacts"] = CONTACTS
    return site


class Home:
    """A hub whose bed sensors the test moves, and sessions to ask it as family or nurse."""

    def __init__(self, hub: Hub, publish: PublishBatch) -> None:
        self.hub = hub
        self._publish = publish
        self._seq = 0

    async def send(self, *items: dict[str, Any]) -> None:
        """Items from gateway gw-east, in one batch (numbered one by one, as an outbox does)."""
        batch = [{"at": time.time(), **item} for item in items]
        await self._publish("sunrise", "gw-east", batch, seq=self._seq + 1)
        self._seq += len(batch)

    async def gateway_dies(self, gateway: str) -> None:
        broker = self.hub.config.broker
        async with aiomqtt.Client(broker.host, broker.port) as client:
            death = json.dumps({"state": "offline", "bdseq": 5})
            await client.publish(status_topic("sunrise", gateway), death, qos=1)

    @contextlib.asynccontextmanager
    async def session(self, who: tuple[str, str]) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
        async with httpx.AsyncClient(base_url=self.hub.url) as client:
            response = await client.post(
                "/api/login", json={"username": who[0], "password": who[1]}
            )
            assert response.status_code == 200, response.text
            yield client, str(response.json()["csrf_token"])

    async def mary(self) -> dict[str, Any]:
        async with self.session(FAMILY) as (client, _):
            response = await client.get("/api/family")
        assert response.status_code == 200, response.text
        (resident,) = response.json()["residents"]
        return dict(resident)

    async def mary_when(self, check: Any) -> dict[str, Any]:
        """Mary's view once `check(view)` holds."""
        seen: dict[str, Any] = {}

        async def holds() -> bool:
            seen.update(await self.mary())
            return bool(check(seen))

        try:
            await eventually(holds)
        except AssertionError:
            raise AssertionError(f"Mary's view never matched; last: {seen}") from None
        return seen

    async def open_alert(self, item: dict[str, Any]) -> int:
        before = {a["id"] for a in await self.hub.alerts.records.page(("open",), 100)}
        await self.send(item)

        async def opened() -> bool:
            return len(await self.hub.alerts.records.page(("open",), 100)) > len(before)

        await eventually(opened)
        (alert_id,) = {a["id"] for a in await self.hub.alerts.records.page(("open",), 100)} - before
        return int(alert_id)


@pytest.fixture
async def home(hub_factory: HubFactory, publish_batch: PublishBatch) -> Home:
    hub = await hub_factory(sites=[site_with_contacts()], watch=QUIET)
    return Home(hub, publish_batch)


async def test_a_family_member_sees_their_resident_and_whom_to_call(home: Home) -> None:
    async with home.session(FAMILY) as (client, _):
        response = await client.get("/api/family")
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["user"], body["name"]) == ("daughter", "Anne Jones")
        (mary,) = body["residents"]
        one = await client.get("/api/family/residents/E-0001")
        other = await client.get("/api/family/residents/E-0002")
        missing = await client.get("/api/family/residents/E-9999")
    assert (mary["code"], mary["name"]) == ("E-0001", "Mary Jones")
    assert mary["place"] == {
        "text": "Room 101, Sunrise Care Home",
        "at_home": False,
        "site_name": "Sunrise Care Home",
        "room_name": "101",
        "bed": "SR-E-101",
    }
    assert mary["state"]["code"] == "unknown" and mary["state"]["label"] == "No reading yet"
    # Name, relation and phone only: not the e-mail address or the account of a contact.
    assert mary["contacts"] == [
        {"name": "Anne Jones", "relation": "family", "phone": "+44 7700 900123"},
        {"name": "Dr Patel", "relation": "family_doctor", "phone": "+44 20 7946 0000"},
    ]
    assert (mary["active_alerts"], mary["recent_alerts"]) == ([], [])
    assert one.status_code == 200 and one.json()["name"] == "Mary Jones"
    # Another family's resident is answered exactly like one that does not exist.
    assert (other.status_code, missing.status_code) == (404, 404)
    assert other.json()["detail"] == "no resident E-0002"


async def test_others_are_refused(home: Home) -> None:
    async with httpx.AsyncClient(base_url=home.hub.url) as anonymous:
        assert (await anonymous.get("/api/family")).status_code == 401
        assert (await anonymous.post("/api/family/alerts/1/seen")).status_code == 401
    async with home.session(NURSE) as (client, csrf):
        assert (await client.get("/api/family")).status_code == 403
        assert (await client.get("/api/family/residents/E-0001")).status_code == 403
        refused = await client.post(
            "/api/family/alerts/1/send-someone", headers={"X-CSRF-Token": csrf}
        )
        assert refused.status_code == 403


async def test_the_state_follows_the_bed_sensor_in_plain_words(home: Home) -> None:
    now = time.time()
    await home.send({"dev": "radar-101", "reading": "occupancy", "value": True, "at": now - 3600})
    mary = await home.mary_when(lambda m: m["state"]["code"] == "in_bed")
    assert mary["state"]["label"] == "In bed"
    assert mary["state"]["since"] == pytest.approx(now - 3600)

    # Out of bed longer than AWAY_AFTER_S: away, since she got up.
    got_up = now - AWAY_AFTER_S - 600
    await home.send({"dev": "radar-101", "reading": "occupancy", "value": False, "at": got_up})
    mary = await home.mary_when(lambda m: m["state"]["code"] == "away")
    assert (mary["state"]["label"], mary["state"]["since"]) == ("Away", pytest.approx(got_up))

    # Back in bed, and repeated readings do not move "since".
    back = time.time()
    await home.send(
        {"dev": "radar-101", "reading": "occupancy", "value": True, "at": back},
        {"dev": "radar-101", "reading": "occupancy", "value": True, "at": back + 1},
    )
    mary = await home.mary_when(lambda m: m["state"]["code"] == "in_bed")
    assert mary["state"]["since"] == pytest.approx(back)

    # Just up: "up" until AWAY_AFTER_S has passed.
    await home.send({"dev": "radar-101", "reading": "occupancy", "value": False, "at": back + 2})
    mary = await home.mary_when(lambda m: m["state"]["code"] == "up")
    assert mary["state"]["label"] == "Up" and mary["state"]["trouble"] == []


async def test_device_trouble_is_said_in_plain_words(home: Home) -> None:
    await home.send({"dev": "radar-101", "reading": "occupancy", "value": True})
    await home.mary_when(lambda m: m["state"]["code"] == "in_bed")

    await home.send({"dev": "button-101", "reading": "battery", "value": 5})
    mary = await home.mary_when(lambda m: m["state"]["code"] == "device_trouble")
    assert mary["state"]["label"] == "Device trouble"
    assert mary["state"]["trouble"] == ["The call button needs a new battery"]
    assert mary["state"]["activity"] == "in_bed"  # what the sensors last said is kept
    (battery,) = mary["recent_alerts"]
    assert (battery["rule"], battery["priority"]) == ("low_battery", "trouble")

    # The gateway beside the bed dies: said once, in words a relative understands.
    await home.gateway_dies("gw-east")
    mary = await home.mary_when(lambda m: len(m["state"]["trouble"]) == 2)
    assert mary["state"]["trouble"][1] == "The gateway beside the bed has lost its connection"


async def test_i_have_seen_it_changes_no_staff_state_and_send_someone_says_what_happened(
    home: Home,
) -> None:
    """No roster here: nobody is on duty, so nobody is reached, and the family is told so,
    with the care service's number, never that someone was asked to go."""
    mine = await home.open_alert({"dev": "radar-101", "event": "fall", "value": True})
    theirs = await home.open_alert({"dev": "radar-102", "event": "fall", "value": True})

    mary = await home.mary()
    (active,) = mary["active_alerts"]
    assert (active["id"], active["rule"], active["state"]) == (mine, "fall", "open")
    assert [a["id"] for a in mary["recent_alerts"]] == [mine]
    assert mary["care_service"] == {"name": "Sunrise Care Home", "phone": CARE_SERVICE}
    assert active["can_handle"] is False  # a care-home bed: the care service answers

    async with home.session(FAMILY) as (client, csrf):
        csrf_header = {"X-CSRF-Token": csrf}
        no_csrf = await client.post(f"/api/family/alerts/{mine}/seen")
        assert no_csrf.status_code == 403
        for action in ("seen", "handling", "send-someone", "acknowledge"):
            other = await client.post(f"/api/family/alerts/{theirs}/{action}", headers=csrf_header)
            assert other.status_code == 404, (action, other.text)
        missing = await client.post("/api/family/alerts/99999/seen", headers=csrf_header)
        assert missing.status_code == 404

        seen = await client.post(f"/api/family/alerts/{mine}/seen", headers=csrf_header)
        assert seen.status_code == 200, seen.text
        assert (seen.json()["state"], seen.json()["seen_by"]) == ("open", ["Anne Jones"])
        handling = await client.post(f"/api/family/alerts/{mine}/handling", headers=csrf_header)
        assert handling.status_code == 409, handling.text

        sent = await client.post(f"/api/family/alerts/{mine}/send-someone", headers=csrf_header)
        assert sent.status_code == 200, sent.text
        answer = sent.json()
    assert answer["help_requested_by"] == ["Anne Jones"]
    response = answer["staff_response"]
    assert (response["kind"], response["name"], response["call"]) == (
        "nobody_reached",
        None,
        CARE_SERVICE,
    )

    async with home.session(NURSE) as (client, csrf):
        before = (await client.get(f"/api/alerts/{mine}")).json()
        escalation = (await client.get(f"/api/alerts/{mine}/escalation")).json()
        untouched = (await client.get(f"/api/alerts/{theirs}")).json()
        acked = await client.post(f"/api/alerts/{mine}/acknowledge", headers={"X-CSRF-Token": csrf})
        assert acked.status_code == 200, acked.text
    # "I've seen it" acknowledged nothing: the console still has an open alert to answer.
    assert (before["state"], before["acknowledged_by"]) == ("open", None)
    assert before["nobody_reached_at"] is not None
    assert escalation["family_seen_by"] == ["Anne Jones"]
    assert escalation["help_requested_by"] == ["Anne Jones"]
    assert [entry["phase"] for entry in escalation["nobody_reached"]][:2] == ["escalate", "help"]
    assert "no one on duty in East wing" in escalation["nobody_reached"][0]["reason"]
    assert untouched["state"] == "open"

    (recent,) = (await home.mary())["recent_alerts"]
    assert recent["staff_response"]["kind"] == "acknowledged"
    assert recent["staff_response"]["name"] == recent["acknowledged_by_name"] == "Night Nurse"
    assert recent["acknowledged_via"] == "at the nurses' station"


async def test_a_staff_member_reached_is_named_to_the_family(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    roster = {"sites": {"sunrise": {"shifts": [ALL_DAY_NURSE]}}}
    home = Home(
        await hub_factory(sites=[site_with_contacts()], roster=roster, watch=QUIET),
        publish_batch,
    )
    async with home.session(NURSE) as (nurse, _):
        async with nurse.stream("GET", "/api/stream") as stream:  # the nurse's console is open
            lines = stream.aiter_lines()
            assert await anext(lines) == "retry: 2000"
            alert_id = await home.open_alert({"dev": "radar-101", "event": "fall", "value": True})
            mary = await home.mary_when(
                lambda m: m["active_alerts"][0]["staff_response"]["kind"] != "waiting"
            )
    response = mary["active_alerts"][0]["staff_response"]
    assert mary["active_alerts"][0]["id"] == alert_id
    assert (response["kind"], response["name"], response["channel"]) == (
        "alerted",
        "Night Nurse",
        "nurses' station screen",
    )


async def test_a_family_responder_may_say_they_are_handling_it(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    escalation = {"residents": {"E-0001": {"family_responder": True}}}
    home = Home(
        await hub_factory(sites=[site_with_contacts()], escalation=escalation, watch=QUIET),
        publish_batch,
    )
    alert_id = await home.open_alert({"dev": "radar-101", "event": "fall", "value": True})
    assert (await home.mary())["active_alerts"][0]["can_handle"] is True
    async with home.session(FAMILY) as (client, csrf):
        handling = await client.post(
            f"/api/family/alerts/{alert_id}/handling", headers={"X-CSRF-Token": csrf}
        )
    assert handling.status_code == 200, handling.text
    assert handling.json()["handling"]["name"] == "Anne Jones"
    assert handling.json()["state"] == "open"  # staff still acknowledge it
    assert home.hub.escalation is not None
    summary = await home.hub.escalation.summary(alert_id)
    assert summary["family_handling"] is not None
    assert summary["family_handling"]["by"] == "Anne Jones"


async def test_test_alerts_are_never_shown_to_family(home: Home) -> None:
    place = home.hub.registry.placement("radar-101")
    assert place is not None
    now = time.time()
    test_alert = await home.hub.alerts.trigger(
        Trigger("fall", "emergency", "sunrise", place.subject, now, now, place, test=True)
    )
    mary = await home.mary()
    assert (mary["active_alerts"], mary["recent_alerts"]) == ([], [])
    async with home.session(FAMILY) as (client, csrf):
        refused = await client.post(
            f"/api/family/alerts/{test_alert['id']}/seen", headers={"X-CSRF-Token": csrf}
        )
    assert refused.status_code == 404


async def test_the_app_files_are_served_as_a_pwa(home: Home) -> None:
    async with httpx.AsyncClient(base_url=home.hub.url) as client:
        page = await client.get("/family")
        manifest = await client.get("/family.webmanifest")
        worker = await client.get("/sw.js")
        icons = [await client.get(f"/family/static/icon-{n}.png") for n in (192, 512)]
        script = await client.get("/family/static/family.js")
        unknown = await client.get("/family/static/hub.db")
    assert (
        page.status_code == 200 and '<link rel="manifest" href="/family.webmanifest">' in page.text
    )
    assert manifest.headers["content-type"] == "application/manifest+json"
    fields = manifest.json()
    assert fields["name"] == "carewatch family"
    assert (fields["start_url"], fields["scope"], fields["display"]) == (
        "/family",
        "/family",
        "standalone",
    )
    assert [icon["sizes"] for icon in fields["icons"]] == ["192x192", "512x512"]
    assert worker.headers["content-type"].startswith("text/javascript")
    assert "notificationclick" in worker.text
    for n, icon in zip((192, 512), icons, strict=True):
        assert icon.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(icon.content)).size == (n, n)
    assert script.status_code == 200
    assert unknown.status_code == 404


def test_a_bed_exit_alert_means_away_and_a_room_sensor_alone_never_says_in_bed() -> None:
    now = 1_800_000_000.0
    out = Seen(False, now - 60, now)
    assert activity_from(out, None, exit_alert=False, now=now) == ("up", now - 60)
    # Not back in bed at night (the watch's bed-exit alert): away, however short.
    assert activity_from(out, None, exit_alert=True, now=now) == ("away", now - 60)
    in_room = Seen(True, now - 600, now)
    assert activity_from(None, in_room, exit_alert=False, now=now) == ("up", now - 600)
    gone = Seen(False, now - AWAY_AFTER_S, now)
    assert activity_from(None, gone, exit_alert=False, now=now) == ("away", now - AWAY_AFTER_S)
    assert activity_from(None, None, exit_alert=False, now=now) == ("unknown", None)


async def test_the_care_service_number_is_set_in_the_registry_and_kept(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    home = Home(await hub_factory(sites=[copy.deepcopy(SMALL_SITE)], watch=QUIET), publish_batch)
    assert (await home.mary())["care_service"] == {"name": "Sunrise Care Home", "phone": None}
    async with home.session(ADMIN) as (client, csrf):
        headers = {"X-CSRF-Token": csrf}
        bad = await client.patch("/api/sites/sunrise", json={"phone": "call us"}, headers=headers)
        changed = await client.patch(
            "/api/sites/sunrise", json={"phone": CARE_SERVICE}, headers=headers
        )
    assert bad.status_code == 422, bad.text
    assert changed.status_code == 200, changed.text
    assert (await home.mary())["care_service"]["phone"] == CARE_SERVICE
    async with home.hub.store.db.execute("SELECT phone FROM registry_site") as cur:
        assert [tuple(row) for row in await cur.fetchall()] == [(CARE_SERVICE,)]
