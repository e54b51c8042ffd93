"""One truth about a bed: the console's bed board, the family app and the resident page say the
same state after every occupancy change, and places are said as a person would.

Real hub, real Mosquitto (readings go in as a gateway's batches), real Chromium for the pages.
"""

from __future__ import annotations

import copy
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, async_playwright, expect

from contract.wire import (
    WireDeviceHealth,
    devices_topic,
    encode_devices_report,
    encode_status,
    status_topic,
)
from hub.access.auth import hash_password
from hub.app import Hub
from hub.registry.labels import alert_place, gateway_where, room_words
from hub.registry.models import Gateway
from hub.registry.service import SYSTEM
from hub.watch.bed_state import AWAY_AFTER_S, BedStates
from tests.conftest import FAMILY, NURSE, SMALL_SITE, HubFactory, PublishBatch, small_site_users
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, sign_in
from tests.support.hub import publish_raw
from tests.support.mosquitto import MosquittoBroker
from tests.support.waiting import eventually

# Samuel Okafor's son follows his father, who lives at home with a bed sensor the home watches.
SON = ("okafor-son", "okafor-pw")
HOME_TEXT = "At home — cared for by Sunrise Care Home"
# No bed-exit or inactivity alerts here: readings from hours ago would raise them at once.
QUIET_WATCH = {"defaults": {"timezone": "UTC", "bed_exit": False, "inactivity": False}}


def site_with_a_home_and_a_lounge() -> dict[str, Any]:
    """The small site, with a bed at Samuel Okafor's home and a lounge with a smoke detector."""
    site = copy.deepcopy(SMALL_SITE)
    site["gateways"].append("gw-home-okafor")
    west = next(zone for zone in site["zones"] if zone["id"] == "west")
    west["rooms"].append({"id": "west-lounge", "name": "West lounge", "kind": "lounge"})
    site["zones"].append(
        {
            "id": "family",
            "name": "Family beds",
            "kind": "family",
            "rooms": [
                {
                    "id": "home-okafor",
                    "name": "Okafor home",
                    "beds": [
                        {
                            "code": "FB-OKAFOR",
                            "resident": {"code": "E-0009", "name": "Samuel Okafor"},
                        }
                    ],
                }
            ],
        }
    )
    site["devices"] += [
        {
            "id": "smoke-lounge",
            "gateway": "gw-west",
            "profile": "bthome-smoke",
            "room": "west-lounge",
        },
        {
            "id": "radar-okafor",
            "gateway": "gw-home-okafor",
            "profile": "seeed-mr60fda1",
            "bed": "FB-OKAFOR",
        },
    ]
    return site


def users() -> list[dict[str, Any]]:
    son = {"role": "family", "residents": ["E-0009"], "display_name": "Tobi Okafor"}
    return [
        *small_site_users(),
        {"username": SON[0], "password_hash": hash_password(SON[1]), **son},
    ]


class Beds:
    """Readings into the hub as its gateways send them, and the three pages' answers."""

    def __init__(self, hub: Hub, publish: PublishBatch, broker: MosquittoBroker) -> None:
        self.hub = hub
        self._publish = publish
        self._broker = broker
        self._seq: dict[str, itertools.count[int]] = {}
        # One signed-in client per person, kept for the test (a password check costs ~0.1 s).
        self._sessions: dict[str, httpx.AsyncClient] = {}

    async def send(self, gateway: str, *items: dict[str, Any]) -> None:
        seq = self._seq.setdefault(gateway, itertools.count(1))
        first = next(seq)
        for _ in items[1:]:  # a batch's items are numbered on from its first
            next(seq)
        await self._publish("sunrise", gateway, list(items), seq=first)

    async def presence(self, dev: str, value: bool, at: float, gateway: str = "gw-east") -> None:
        await self.send(gateway, {"dev": dev, "at": at, "reading": "presence", "value": value})

    async def health(self, dev: str, online: bool) -> None:
        now = time.time()
        report = encode_devices_report(
            now, [WireDeviceHealth(dev=dev, online=online, last_seen=now - 20)]
        )
        await publish_raw(self._broker, devices_topic("sunrise", "gw-east"), report)

    async def gateway_dies(self, gateway: str) -> None:
        death = encode_status("offline", 1, None, "test")
        await publish_raw(self._broker, status_topic("sunrise", gateway), death)

    async def session(self, who: tuple[str, str]) -> httpx.AsyncClient:
        """`who`'s client, signed in at its first use."""
        client = self._sessions.get(who[0])
        if client is None:
            client = httpx.AsyncClient(base_url=self.hub.url)
            self._sessions[who[0]] = client
            response = await client.post(
                "/api/login", json={"username": who[0], "password": who[1]}
            )
            assert response.status_code == 200, response.text
            client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        return client

    async def close(self) -> None:
        for client in self._sessions.values():
            await client.aclose()

    async def tile(self, bed: str) -> dict[str, Any]:
        response = await (await self.session(NURSE)).get("/api/board")
        assert response.status_code == 200, response.text
        (tile,) = [t for t in response.json()["beds"] if t["bed"] == bed]
        return dict(tile)

    async def family(self, who: tuple[str, str], resident: str) -> dict[str, Any]:
        response = await (await self.session(who)).get(f"/api/family/residents/{resident}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def resident_page(self, resident: str) -> dict[str, Any]:
        response = await (await self.session(NURSE)).get(f"/api/residents/{resident}/timeline")
        assert response.status_code == 200, response.text
        return dict(response.json()["resident"])

    async def board_says(self, bed: str, code: str) -> dict[str, Any]:
        """The bed's tile once the board says `code` for it."""
        seen: dict[str, Any] = {}

        async def reached() -> bool:
            seen.clear()
            seen.update(await self.tile(bed))
            return bool(seen["bed_state"]["code"] == code)

        reached.__doc__ = f"the board says {code} for bed {bed}"
        await eventually(reached)
        return seen

    async def all_say(
        self, bed: str, resident: str, code: str, family: tuple[str, str] | None
    ) -> dict[str, Any]:
        """Once the board says `code`, the family app and the resident page say the same, to
        the second and the word; the state as they all say it."""
        tile = await self.board_says(bed, code)
        page = await self.resident_page(resident)
        assert page["state"] == tile["bed_state"], (page["state"], tile["bed_state"])
        if family is not None:
            relative = await self.family(family, resident)
            assert relative["state"] == tile["bed_state"], (relative["state"], tile["bed_state"])
        return dict(tile["bed_state"])


@pytest.fixture
async def beds(
    hub_factory: HubFactory, publish_batch: PublishBatch, broker: MosquittoBroker
) -> AsyncIterator[Beds]:
    hub = await hub_factory(
        sites=[site_with_a_home_and_a_lounge()], users=users(), watch=QUIET_WATCH
    )
    beds = Beds(hub, publish_batch, broker)
    yield beds
    await beds.close()


async def test_the_board_the_family_app_and_the_resident_page_agree_after_every_change(
    beds: Beds,
) -> None:
    mary = ("SR-E-101", "E-0001")
    state = await beds.all_say(*mary, "unknown", FAMILY)
    assert (state["label"], state["since"]) == ("No reading yet", None)

    # The radar bound to Mary's bed says someone is there: in bed, on all three (the family app
    # used to say "Up" here while the board said "In bed").
    t0 = time.time() - 3 * 3600
    await beds.presence("radar-101", True, t0)
    state = await beds.all_say(*mary, "in_bed", FAMILY)
    assert (state["label"], state["since"], state["in_bed"]) == ("In bed", t0, True)

    # Out of bed for more than AWAY_AFTER_S: away at once, since she got up.
    await beds.presence("radar-101", False, t0 + 60)
    state = await beds.all_say(*mary, "away", FAMILY)
    assert (state["label"], state["since"]) == ("Away", t0 + 60)

    await beds.presence("radar-101", True, t0 + 120)
    state = await beds.all_say(*mary, "in_bed", FAMILY)
    assert state["since"] == t0 + 120

    # A repeat of the same value moves nothing; an older reading replayed late changes nothing.
    await beds.presence("radar-101", True, t0 + 180)
    await beds.presence("radar-101", False, t0 + 90)
    await beds.presence("radar-102", True, t0 + 200)  # another bed: the hub has read them all
    await beds.board_says("SR-E-102", "in_bed")
    state = await beds.all_say(*mary, "in_bed", FAMILY)
    assert state["since"] == t0 + 120

    # Just up.
    got_up = time.time()
    await beds.presence("radar-101", False, got_up)
    state = await beds.all_say(*mary, "up", FAMILY)
    assert (state["label"], state["since"]) == ("Up", got_up)
    assert got_up + AWAY_AFTER_S > time.time()

    # A fall paints the tile red; the bed's state is still "up" everywhere.
    await beds.send("gw-east", {"dev": "radar-101", "at": time.time(), "event": "fall"})
    await eventually(lambda: beds.hub.alerts.is_active("fall", "bed:SR-E-101"))

    async def painted() -> bool:
        return bool((await beds.tile("SR-E-101"))["state"] == "alert")

    await eventually(painted)
    state = await beds.all_say(*mary, "up", FAMILY)
    assert state["since"] == got_up

    # The radar stops answering: device trouble, with what it said last.
    await beds.health("radar-101", online=False)
    state = await beds.all_say(*mary, "device_trouble", FAMILY)
    assert state["trouble"] == ["The fall sensor is not responding"]
    assert (state["activity"], state["activity_label"]) == ("up", "Up")
    await beds.health("radar-101", online=True)
    await beds.all_say(*mary, "up", FAMILY)

    # Mary leaves: her bed is empty on the board; she is in no monitored bed.
    assert beds.hub.registry_admin is not None
    await beds.hub.registry_admin.discharge("E-0001", None, SYSTEM)
    await beds.board_says("SR-E-101", "empty")
    page = await beds.resident_page("E-0001")
    relative = await beds.family(FAMILY, "E-0001")
    assert page["state"] == relative["state"]
    assert (page["state"]["code"], page["state"]["label"]) == ("no_bed", "Not in a monitored bed")
    assert (page["place"], relative["place"]) == (None, None)

    # The gateway of the east wing dies: Li Wei's bed cannot be watched.
    await beds.gateway_dies("gw-east")
    state = await beds.all_say("SR-E-102", "E-0002", "device_trouble", None)
    assert state["trouble"] == ["The gateway beside the bed has lost its connection"]


async def test_a_home_bed_agrees_too_and_reads_at_home(beds: Beds) -> None:
    samuel = ("FB-OKAFOR", "E-0009")
    await beds.all_say(*samuel, "unknown", SON)
    await beds.presence("radar-okafor", True, time.time() - 60, gateway="gw-home-okafor")
    await beds.all_say(*samuel, "in_bed", SON)

    relative = await beds.family(SON, "E-0009")
    assert relative["place"]["text"] == HOME_TEXT
    assert relative["place"]["at_home"] is True
    page = await beds.resident_page("E-0009")
    assert page["place"] == {"text": HOME_TEXT, "room": "Okafor home", "at_home": True}
    tile = await beds.tile("FB-OKAFOR")
    assert (tile["place"], tile["at_home"]) == ("Okafor home", True)
    assert tile["gateways"] == [{"id": "gw-home-okafor", "where": "Okafor home"}]

    mary = await beds.family(FAMILY, "E-0001")
    assert mary["place"]["text"] == "Room 101, Sunrise Care Home"
    assert mary["place"]["at_home"] is False


async def test_room_and_gateway_alerts_name_the_room_the_gateway_and_the_beds_it_leaves(
    beds: Beds,
) -> None:
    await beds.send(
        "gw-west", {"dev": "smoke-lounge", "at": time.time(), "reading": "smoke", "value": True}
    )
    await beds.gateway_dies("gw-east")
    await eventually(
        lambda: beds.hub.alerts.is_active("gateway_offline", "gateway:sunrise/gw-east")
    )
    await eventually(lambda: beds.hub.alerts.is_active("smoke", "room:sunrise/west-lounge"))
    data = beds.hub.registry.data
    active = {a["rule"]: a for a in await beds.hub.alerts.records.page(("open",), 100)}

    lounge = alert_place(data, active["smoke"])
    assert (lounge["headline"], lounge["room"], lounge["zone"]) == (
        "West lounge",
        "West lounge",
        "West wing",
    )
    assert lounge["text"] == "West lounge, West wing"

    gateway = alert_place(data, active["gateway_offline"])
    assert (gateway["headline"], gateway["room"]) == ("Gateway gw-east", "East wing")
    assert gateway["unwatched"] == [
        {"bed": "SR-E-101", "place": "Room 101"},
        {"bed": "SR-E-102", "place": "Room 102"},
    ]
    assert gateway["text"] == (
        "Gateway gw-east, East wing — 2 beds unwatched: Room 101 (SR-E-101), Room 102 (SR-E-102)"
    )
    # Where a gateway is: the one room, zone or site of its devices, or the name it was given.
    assert gateway_where(data, "sunrise", "gw-home-okafor") == "Okafor home"
    assert gateway_where(data, "sunrise", "gw-west") == "West wing"
    assert beds.hub.registry_admin is not None
    await beds.hub.registry_admin.update(
        Gateway, ("sunrise", "gw-west"), {"name": "Cupboard by the west stairs"}, SYSTEM
    )
    assert gateway_where(beds.hub.registry.data, "sunrise", "gw-west") == (
        "Cupboard by the west stairs"
    )


async def test_up_turns_to_away_by_time_alone_without_a_new_reading(beds: Beds) -> None:
    """A state worked out once is kept until its inputs change, or until the time it changes by
    itself: 'up' becomes 'away' AWAY_AFTER_S after getting up, with nothing heard since."""
    truth = BedStates(beds.hub.store, beds.hub.registry)
    got_up = time.time()
    truth.note("radar-101", "presence", True, got_up - 600)
    truth.note("radar-101", "presence", False, got_up)
    up = await truth.bed("SR-E-101", got_up + 60)
    assert up is not None and (up.code, up.since, up.changes_at) == (
        "up",
        got_up,
        got_up + AWAY_AFTER_S,
    )
    assert await truth.bed("SR-E-101", got_up + 60.5) is up  # the same answer for everyone
    still = await truth.bed("SR-E-101", got_up + AWAY_AFTER_S - 1)
    assert still is not None and still.code == "up"
    away = await truth.bed("SR-E-101", got_up + AWAY_AFTER_S)
    assert away is not None and (away.code, away.since, away.label) == ("away", got_up, "Away")


def test_a_numbered_room_is_a_room_and_a_named_one_keeps_its_name() -> None:
    assert room_words("101") == "Room 101"
    assert room_words("2B") == "Room 2B"
    assert room_words("West lounge") == "West lounge"
    assert room_words("Okafor home") == "Okafor home"


# --- in the browser ------------------------------------------------------------------------


async def test_the_console_and_the_family_app_show_the_same_label_after_each_change(
    beds: Beds,
) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        errors: list[str] = []
        pages: list[Page] = []
        for width, height in ((1180, 820), (390, 844)):
            context = await browser.new_context(
                viewport={"width": width, "height": height}, timezone_id="Europe/London"
            )
            page = await context.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            pages.append(page)
        console, phone = pages
        try:
            await console.goto(beds.hub.url + "/")
            await sign_in(console)
            await phone.goto(beds.hub.url + "/family")
            await sign_in(phone, FAMILY)
            tile = console.locator('[data-testid="bed-tile"][data-bed="SR-E-101"]')
            card = phone.get_by_test_id("resident-card")
            await expect(card).to_have_count(1)  # signed in: a reload keeps the session

            async def both_show(label: str) -> None:
                await expect(tile.get_by_test_id("tile-state")).to_have_text(label)
                shown = await tile.get_by_test_id("tile-state").text_content()
                await phone.reload()  # the app refreshes itself every 15 s; a relative reloads
                await expect(card.get_by_test_id("resident-state")).to_have_text(shown or "")

            await both_show("No reading yet")
            # The radar bound to the bed: "In bed" on both (the family app said "Up").
            await beds.presence("radar-101", True, time.time() - 600)
            await both_show("In bed")
            await beds.presence("radar-101", False, time.time())
            await both_show("Up")
            await beds.presence("radar-101", True, time.time())
            await both_show("In bed")
            await beds.health("radar-101", online=False)
            await both_show("Device trouble")
            await expect(tile.get_by_test_id("tile-trouble")).to_have_text("fall radar offline")
            await expect(tile.get_by_test_id("tile-last")).to_have_text("Last reading: In bed")

            # Places as a person says them, on the console.
            home = console.locator('[data-testid="bed-tile"][data-bed="FB-OKAFOR"]')
            await expect(home.get_by_test_id("tile-place")).to_have_text("At home · Okafor home")
            await expect(tile.get_by_test_id("tile-place")).to_have_text("Room 101")
            await beds.send(
                "gw-west",
                {"dev": "smoke-lounge", "at": time.time(), "reading": "smoke", "value": True},
            )
            smoke = console.get_by_test_id("alert-card").filter(
                has=console.get_by_test_id("alert-rule").get_by_text("Smoke alarm", exact=True)
            )
            await expect(smoke.get_by_test_id("alert-bed")).to_have_text("West lounge")
            await expect(smoke.get_by_test_id("alert-room")).to_have_text("West lounge")
            await expect(smoke.get_by_test_id("alert-zone")).to_have_text("West wing")
            await beds.gateway_dies("gw-west")
            lost = console.get_by_test_id("alert-card").filter(
                has=console.get_by_test_id("alert-rule").get_by_text("Gateway offline", exact=True)
            )
            await expect(lost.get_by_test_id("alert-bed")).to_have_text("Gateway gw-west")
            await expect(lost.get_by_test_id("alert-room")).to_have_text("West wing")
            await expect(lost.get_by_test_id("alert-unwatched")).to_have_text(
                "Beds unwatched: Room 201 (SR-W-201)"
            )
            await expect(
                console.locator('[data-testid="alert-room"]:text("undefined")')
            ).to_have_count(0)
        finally:
            await browser.close()
    assert errors == [], f"JavaScript errors: {errors}"
