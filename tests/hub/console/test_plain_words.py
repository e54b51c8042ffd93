"""Plain words wherever a person reads: refusals are sentences, devices, people and channels
are named as people name them, and room alerts (smoke in the lounge) are on the bed board.

A real hub and Mosquitto; readings go in through the broker like a gateway's. One API pass and
one browser pass (Debian's Chromium, axe-core on every state shown).
"""

from __future__ import annotations

import copy
import re
import time
from typing import Any

import httpx
from playwright.async_api import Page, async_playwright, expect

from hub.app import Hub
from tests.conftest import (
    FAMILY,
    INSTALLER,
    NURSE,
    SMALL_SITE,
    SUPERVISOR,
    HubFactory,
    PublishBatch,
)
from tests.hub.console.test_board import Gateway, client_for, event, reading
from tests.hub.supervisor.test_supervisor import live_console
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, assert_accessible, sign_in
from tests.support.waiting import eventually

# The night nurse covers the east wing all day; the zone's staff are notified at once.
ROSTER = {
    "sites": {
        "sunrise": {
            "shifts": [
                {
                    "name": "all day",
                    "start": "07:00",
                    "end": "07:00",
                    "charge_nurse": NURSE[0],
                    "assignments": [{"user": NURSE[0], "zones": ["east", "west"]}],
                }
            ]
        }
    }
}
WATCH = {"defaults": {"timezone": "UTC", "bed_exit": False, "inactivity": False}}
# Codes that must never reach a person: permissions, channels, device and user ids, nulls.
CODES = re.compile(
    r"alerts\.(read|act)|health\.read|registry\.|walktest|needs |family_app|no_recipient"
    r"|radar-\d|smoke-|button-\d|\bnull\b|\bNone\b|undefined|[{}\[\]]"
)

# The same in a page's text (where "None" is a word: beds with no sensor).
IDS = re.compile(r"radar-\d|smoke-|button-\d|\bnull\b|undefined|family_app|no_recipient")


def with_lounge() -> dict[str, Any]:
    """The small site with a West lounge: a room with a smoke detector and no bed."""
    site = copy.deepcopy(SMALL_SITE)
    site["zones"][1]["rooms"].append({"id": "lounge", "name": "West lounge", "beds": []})
    site["devices"].append(
        {"id": "smoke-lounge", "gateway": "gw-east", "profile": "bthome-smoke", "room": "lounge"}
    )
    return site


async def a_hub(hub_factory: HubFactory) -> Hub:
    return await hub_factory(roster=ROSTER, watch=WATCH, sites=[with_lounge()])


def plain(text: str) -> str:
    """`text`, checked to hold no code, null or JSON."""
    assert text and not CODES.search(text), text
    return text


async def active(client: httpx.AsyncClient, rule: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def listed() -> bool:
        alerts = (await client.get("/api/alerts")).json()["alerts"]
        found.update(next((a for a in alerts if a["rule"] == rule), {}))
        return bool(found)

    await eventually(listed)
    return found


async def test_refusals_devices_people_and_channels_are_said_in_words(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    hub = await a_hub(hub_factory)
    gateway = Gateway(publish_batch)
    async with (
        client_for(hub) as nurse,
        client_for(hub, INSTALLER) as installer,
        client_for(hub, FAMILY) as family,
    ):
        # Refusals: who may, in a sentence; the status code stays 403.
        refused = {
            "alerts": await installer.get("/api/alerts"),
            "walk test": await nurse.get("/api/walktests"),
            "roster": await family.get("/api/roster"),
        }
        assert {what: r.status_code for what, r in refused.items()} == dict.fromkeys(refused, 403)
        said = {what: plain(r.json()["detail"]) for what, r in refused.items()}
        assert said == {
            "alerts": "Only care staff, supervisors or administrators can see alerts. "
            "An installer may not do this.",
            "walk test": "Only installers or administrators can run a walk test. "
            "A member of the care staff may not do this.",
            "roster": "Only care staff, supervisors or administrators can see the staff "
            "roster. A family member may not do this.",
        }

        async with live_console(hub.url, NURSE):
            await gateway.send(event("radar-101", "fall", time.time()))
            fall = await active(nurse, "fall")
            await gateway.send(reading("smoke-lounge", "smoke", True, time.time()))
            smoke = await active(nurse, "smoke")

            async def reached() -> bool:
                answer = await nurse.get(f"/api/alerts/{fall['id']}/escalation")
                return bool(answer.json()["reached"])

            await eventually(reached)
            record = (await nurse.get(f"/api/alerts/{fall['id']}/escalation")).json()
        board = (await nurse.get("/api/board")).json()["beds"]
        timeline = (await nurse.get("/api/residents/E-0001/timeline")).json()["entries"]

    # The device that raised an alert, as staff name it, on every alert the console receives.
    assert plain(fall["place"]["device_name"]) == "fall radar in room 101"
    assert plain(smoke["place"]["device_name"]) == "smoke detector in West lounge"
    assert (smoke["place"]["headline"], smoke["place"]["zone"]) == ("West lounge", "West wing")

    # Whom the escalation reached: the person's name and the channel in words.
    (first,) = {(r["text"], r["channel_name"]) for r in record["reached"]}
    assert first == ("Night Nurse (console)", "console")
    step = record["steps"][0]
    assert [plain(t) for t in step["targets_text"]] == ["staff on duty in East wing"]
    assert [plain(a["text"]) for a in step["attempts"]] == ["Night Nurse (console): delivered"]

    # The lounge has a tile of its own, with its smoke alarm unanswered.
    (lounge,) = [t for t in board if t["kind"] == "room"]
    assert (lounge["place"], lounge["zone_name"], lounge["alert_state"]) == (
        "West lounge",
        "West wing",
        "open",
    )
    assert [(a["rule"], a["about"], a["state"]) for a in lounge["alerts"]] == [
        ("smoke", "room", "open")
    ]
    # The resident page's record, in words.
    for entry in timeline:
        for key in ("actor_name", "channel_name", "recipient_name", "device_name"):
            if entry.get(key):
                plain(entry[key])
        for text in entry.get("targets_text", []):
            plain(text)


async def tap_to_arm(page: Page) -> None:
    """The console asks for a tap before it can sound (issue 12): give it one."""
    overlay = page.get_by_test_id("arm-overlay")
    if await overlay.count() and await overlay.is_visible():
        await page.get_by_test_id("arm-button").click()


async def one_line(page: Page, selector: str) -> list[str]:
    """The texts of `selector` that are laid out on more than one line."""
    found: list[str] = await page.eval_on_selector_all(
        selector,
        """nodes => nodes.filter((n) => {
            const range = document.createRange();
            range.selectNodeContents(n);
            return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size > 1;
        }).map((n) => n.textContent)""",
    )
    return found


async def test_the_board_shows_room_alerts_and_answered_tiles_and_the_supervisor_view_reads(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    hub = await a_hub(hub_factory)
    gateway = Gateway(publish_batch)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context(
            viewport={"width": 1024, "height": 768}, timezone_id="UTC"
        )
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            await page.goto(hub.url + "/")
            await sign_in(page)
            await expect(page.get_by_test_id("connection-state")).to_have_text("Live")
            await tap_to_arm(page)

            # Smoke in Mary Jones's room and in the lounge, her call acknowledged, Li Wei's
            # fall unanswered.
            now = time.time()
            await gateway.send(
                reading("smoke-101", "smoke", True, now),
                reading("smoke-lounge", "smoke", True, now),
                event("button-101", "call_button", now),
                event("radar-102", "fall", now),
                reading("button-101", "battery", 12, now),
            )
            mary = page.locator('[data-testid="bed-tile"][data-bed="SR-E-101"]')
            li_wei = page.locator('[data-testid="bed-tile"][data-bed="SR-E-102"]')
            lounge = page.locator('[data-testid="room-tile"][data-room="lounge"]')
            await expect(mary.get_by_test_id("tile-alert-row")).to_have_count(2)
            async with client_for(hub) as nurse:
                call = await active(nurse, "call_button")
                answer = await nurse.post(
                    f"/api/alerts/{call['id']}/acknowledge", json={"channel": "console"}
                )
                assert answer.status_code == 200, answer.text
            await expect(mary.locator('[data-about="room"]')).to_contain_text(
                "Smoke alarm in the room"
            )
            await expect(mary.locator('[data-alert-state="acknowledged"]')).to_contain_text(
                "Acknowledged Call button"
            )
            await expect(mary).to_have_attribute("data-alert-state", "open")  # the smoke
            await expect(li_wei).to_have_attribute("data-alert-state", "open")
            await expect(li_wei.get_by_test_id("tile-alert-state")).to_have_text("Unanswered")
            await expect(lounge.get_by_test_id("tile-bed")).to_have_text("West lounge")
            await expect(lounge.get_by_test_id("tile-alert")).to_have_text("Smoke alarm")
            assert await one_line(page, '[data-testid="tile-bed"]') == []
            await assert_accessible(page, "bed board with room alerts, 1024×768")

            await page.set_viewport_size({"width": 390, "height": 844})
            await expect(lounge).to_be_visible()
            assert await one_line(page, '[data-testid="tile-bed"]') == []
            await assert_accessible(page, "bed board with room alerts, 390 px")

            # The supervisor view, on the same alerts, as a tablet and a phone see it.
            await page.set_viewport_size({"width": 1024, "height": 768})
            await page.get_by_test_id("logout-button").click()
            await page.goto(hub.url + "/supervisor")
            await sign_in(page, SUPERVISOR)
            rows = page.get_by_test_id("alert-row")
            await expect(rows.filter(has_text="Call button")).to_contain_text(
                "acknowledged by Night Nurse"
            )
            device = page.locator('[data-testid="device-row"][data-device="button-101"]')
            await expect(device.locator("td").nth(0)).to_have_text("call button in room 101")
            await expect(device.locator("td").nth(1)).to_have_text("Shelly BLU Button1 call button")
            shown = await page.get_by_test_id("supervisor").inner_text()
            assert not IDS.search(shown), IDS.findall(shown)
            await assert_accessible(page, "supervisor view, 1024×768")
            await page.set_viewport_size({"width": 390, "height": 844})
            await assert_accessible(page, "supervisor view, 390 px")
            # Its roster page: the tables wrap on a phone rather than scroll out of reach.
            await page.get_by_test_id("roster-link").click()
            await expect(page.get_by_test_id("person-row").first).to_be_visible()
            assert await page.evaluate("document.documentElement.scrollWidth") <= 390
            await assert_accessible(page, "roster page from the supervisor view, 390 px")
        finally:
            await browser.close()
    assert errors == [], f"JavaScript errors: {errors}"
