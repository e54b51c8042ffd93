"""The roster view and the uncovered-zone alarm, through a real hub and Mosquitto.

The hub's clock is a manual clock: each shift start comes when the test moves the clock there,
and the durable timer of `hub/escalation/roster_watch.py` fires then, as it would at 19:00 in a
home.

Sunrise's day shift covers both wings; its night shift covers the east wing only, so the west
wing is uncovered every night. A family zone ("homes") is listed as unstaffed: never an alarm.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from playwright.async_api import Page, async_playwright, expect

from hub.access.auth import hash_password
from hub.alerts.lifecycle import ACTIVE_STATES
from hub.app import Hub
from hub.escalation.roster_routes import PushRow, phone_status, push_reach
from hub.escalation.roster_watch import KIND, RULE
from tests.conftest import (
    ADMIN,
    FAMILY,
    INSTALLER,
    NURSE,
    SMALL_SITE,
    SUPERVISOR,
    HubFactory,
    small_site_users,
)
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, sign_in
from tests.support.clock import FakeClock
from tests.support.waiting import eventually
from tests.support.webpush_receiver import BrowserKeys, PushReceiver

UTC = ZoneInfo("UTC")
DAY_1800 = datetime(2026, 11, 22, 18, 0, tzinfo=UTC).timestamp()  # a Sunday
HOUR = 3600.0
PASSWORD = "roster-test-pw"
SISTER = ("sister", PASSWORD)  # staff, the charge nurse of every shift
STAFF: dict[str, dict[str, Any]] = {
    "carer-east": {"display_name": "Carer East", "sites": ["sunrise"]},
    # Rostered on the west wing, but her account sees only the east wing: a mistake to show.
    "carer-west": {"display_name": "Carer West", "zones": ["sunrise/east"]},
    "carer-night": {"display_name": "Carer Night", "sites": ["sunrise"]},
    "sister": {"display_name": "Sister Grace", "sites": ["sunrise"]},
}
NIGHT_EAST_ONLY = [{"user": "carer-night", "zones": ["east"]}]


def roster(night: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "sites": {
            "sunrise": {
                "unstaffed_zones": ["homes"],
                "shifts": [
                    {
                        "name": "day",
                        "start": "07:00",
                        "end": "19:00",
                        "charge_nurse": "sister",
                        "assignments": [
                            {"user": "carer-east", "zones": ["east"]},
                            {"user": "carer-west", "zones": ["west"]},
                        ],
                    },
                    {
                        "name": "night",
                        "start": "19:00",
                        "end": "07:00",
                        "charge_nurse": "sister",
                        "assignments": night or NIGHT_EAST_ONLY,
                    },
                ],
            }
        }
    }


def sunrise() -> dict[str, Any]:
    """The small site with a zone of family beds at home."""
    site = copy.deepcopy(SMALL_SITE)
    site["zones"].append(
        {
            "id": "homes",
            "name": "Family beds",
            "kind": "family",
            "rooms": [{"id": "flat1", "name": "Flat 1", "beds": [{"code": "SR-H-1"}]}],
        }
    )
    return site


HARBOUR: dict[str, Any] = {
    "id": "harbour",
    "name": "Harbour House",
    "gateways": ["gw-h"],
    "zones": [{"id": "north", "name": "North wing", "rooms": []}],
}


def users() -> list[dict[str, Any]]:
    digest = hash_password(PASSWORD)
    staff = [
        {"username": name, "password_hash": digest, "role": "staff", **fields}
        for name, fields in STAFF.items()
    ]
    return [*small_site_users(), *staff]


async def start(
    hub_factory: HubFactory, clock: FakeClock, night: list[dict[str, Any]] | None = None
) -> Hub:
    return await hub_factory(
        clock=clock,
        users=users(),
        sites=[sunrise(), HARBOUR],
        roster=roster(night),
        watch={"defaults": {"timezone": "UTC"}},
        push={"allowed_hosts": ["127.0.0.1"]},
        outbound={"allowed_hosts": ["127.0.0.1"]},  # the phones' push service is on loopback
    )


async def zone_alerts(hub: Hub, states: tuple[str, ...] = ACTIVE_STATES) -> list[dict[str, Any]]:
    listed = await hub.alerts.records.page(states, limit=None)
    return sorted((a for a in listed if a["rule"] == RULE), key=lambda a: a["id"])


async def opened_detail(hub: Hub, alert_id: int) -> dict[str, Any]:
    (opened,) = [e for e in await hub.store.audit.for_alert(alert_id) if e["action"] == "opened"]
    return dict(opened["detail"])


async def login(client: httpx.AsyncClient, who: tuple[str, str]) -> str:
    response = await client.post("/api/login", json={"username": who[0], "password": who[1]})
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])


async def get(hub: Hub, who: tuple[str, str], path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=hub.url) as client:
        await login(client, who)
        return await client.get(path)


# --- the uncovered-zone alarm ------------------------------------------------------------------


async def test_a_zone_nobody_covers_is_a_trouble_alert_at_shift_start_until_a_shift_covers_it(
    hub_factory: HubFactory,
) -> None:
    clock = FakeClock(DAY_1800)
    hub = await start(hub_factory, clock)
    # 18:00: the day shift covers both wings; the family beds are nobody's by design.
    assert await zone_alerts(hub) == []
    timer = hub.timers.pending(KIND, "sunrise")
    assert timer is not None and timer.due_at == DAY_1800 + HOUR  # the night shift's start

    clock.advance(HOUR)  # 19:00: the night shift covers the east wing only
    await eventually(lambda: zone_alerts(hub))
    (alert,) = await zone_alerts(hub)
    assert (alert["subject"], alert["priority"], alert["state"]) == (
        "zone:sunrise/west",
        "trouble",
        "open",
    )
    assert (alert["site"], alert["opened_at"]) == ("sunrise", DAY_1800 + HOUR)
    # Named for people (the console's card reads "West wing, Sunrise Care Home"), still the
    # site's alert: no zone of its own.
    assert (alert["zone"], alert["zone_name"]) == (None, "West wing")
    async with httpx.AsyncClient(base_url=hub.url) as client:
        await login(client, SUPERVISOR)
        listed = (await client.get(f"/api/alerts/{alert['id']}")).json()
    assert (listed["place"]["headline"], listed["place"]["text"]) == (
        "West wing",
        "West wing, Sunrise Care Home",
    )
    detail = await opened_detail(hub, alert["id"])
    assert detail == {
        "zone": "west",
        "zone_name": "West wing",
        "shifts": ["night"],
        "why": "no one on the night shift covers West wing",
    }
    timer = hub.timers.pending(KIND, "sunrise")
    assert timer is not None and timer.due_at == DAY_1800 + 13 * HOUR  # 07:00, the day shift

    # The escalation tells whoever is on duty at the site (the alert names no zone of a bed).
    async with httpx.AsyncClient(base_url=hub.url) as client:
        await login(client, SUPERVISOR)

        async def first_step() -> list[dict[str, Any]]:
            answer = await client.get(f"/api/alerts/{alert['id']}/escalation")
            steps = answer.json()["steps"]
            return [a for a in steps[0]["attempts"] if a["result"] != "pending"] if steps else []

        await eventually(first_step)
        assert {a["recipient"] for a in await first_step()} == {"carer-night"}

    clock.advance(12 * HOUR)  # 07:00: the day shift covers the west wing again

    async def cleared() -> bool:
        return not await zone_alerts(hub)

    await eventually(cleared)
    closed = await hub.alerts.records.get(alert["id"])
    assert closed is not None
    assert (closed["state"], closed["outcome"], closed["resolved_by"]) == (
        "resolved",
        "self_cleared",
        "system",
    )

    clock.advance(12 * HOUR)  # 19:00 the next night: uncovered again, a new alert
    await eventually(lambda: zone_alerts(hub))
    (again,) = await zone_alerts(hub)
    assert again["id"] != alert["id"] and again["subject"] == "zone:sunrise/west"
    assert all(a["subject"] != "zone:sunrise/homes" for a in await zone_alerts(hub, ("resolved",)))


async def test_a_hub_started_mid_shift_raises_it_at_once_and_a_changed_roster_clears_it(
    hub_factory: HubFactory,
) -> None:
    clock = FakeClock(DAY_1800 + 5 * HOUR)  # 23:00, in the middle of the night shift
    first = await start(hub_factory, clock)
    (alert,) = await zone_alerts(first)  # raised as the hub started, with no clock moved
    assert alert["subject"] == "zone:sunrise/west"
    await first.stop()

    clock.advance(HOUR / 2)
    whole_site = [{"user": "carer-night"}]
    second = await start(hub_factory, clock, night=whole_site)  # the roster was corrected
    assert await zone_alerts(second) == []
    closed = await second.alerts.records.get(alert["id"])
    assert closed is not None and (closed["state"], closed["outcome"]) == (
        "resolved",
        "self_cleared",
    )
    timer = second.timers.pending(KIND, "sunrise")
    assert timer is not None and timer.due_at == DAY_1800 + 13 * HOUR


# --- who is reached ----------------------------------------------------------------------------


def test_a_phone_is_reachable_while_it_confirmed_a_push_or_subscribed_within_the_limit() -> None:
    day = 24 * HOUR
    now = 100 * day
    fresh = PushRow(now - 2 * HOUR, None, None, 0, None)
    assert phone_status(fresh, now, day) == "new"
    assert phone_status(PushRow(now - 3 * day, "201", now - HOUR, 0, now - HOUR), now, day) == (
        "confirmed"
    )
    silent = PushRow(now - 3 * day, "201", now - HOUR, 0, now - 2 * day)
    assert phone_status(silent, now, day) == "stale"
    never = PushRow(now - day - 1, None, None, 0, None)
    assert phone_status(never, now, day) == "stale"
    failing = PushRow(now - HOUR, "500", now - 60, 2, now - HOUR)
    assert phone_status(failing, now, day) == "failing"
    # One good phone is enough; the person's answer says which is best.
    reach = push_reach([silent, fresh], now, day)
    assert (reach["subscriptions"], reach["reachable"], reach["status"]) == (2, True, "new")
    assert push_reach([], now, day)["status"] == "none"


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


async def subscribe_phone(
    hub: Hub, who: tuple[str, str], subscription: dict[str, Any] | None = None
) -> None:
    """A phone subscribes to push through the API, as the app does in a browser."""
    if subscription is None:
        subscription = BrowserKeys.new().subscription(f"http://127.0.0.1:9/push/{who[0]}")
    async with httpx.AsyncClient(base_url=hub.url) as client:
        csrf = await login(client, who)
        response = await client.post(
            "/api/push/subscriptions", json=subscription, headers={"X-CSRF-Token": csrf}
        )
    assert response.status_code == 201, response.text


@contextlib.asynccontextmanager
async def a_roster_evening(hub_factory: HubFactory) -> AsyncIterator[Hub]:
    """18:00 on Sunday: Carer Night's phone subscribed 25 h ago and has confirmed nothing since;
    Carer West subscribed an hour ago; Carer East has her console open."""
    clock = FakeClock(DAY_1800 - 25 * HOUR)
    hub = await start(hub_factory, clock)
    await subscribe_phone(hub, ("carer-night", PASSWORD))
    clock.advance(24 * HOUR)
    await subscribe_phone(hub, ("carer-west", PASSWORD))
    clock.advance(HOUR)
    async with live_console(hub.url, ("carer-east", PASSWORD)):
        yield hub


def by_key(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {row[key]: row for row in rows}


async def test_the_roster_shows_who_covers_each_zone_and_what_reaches_them(
    hub_factory: HubFactory,
) -> None:
    async with a_roster_evening(hub_factory) as hub:
        response = await get(hub, SUPERVISOR, "/api/roster?site=sunrise")
    assert response.status_code == 200, response.text
    view = response.json()
    assert (view["at"], view["push_confirm_within_h"]) == (DAY_1800, 24)
    (site,) = view["sites"]
    assert (site["site"], site["name"], site["rostered"]) == ("sunrise", "Sunrise Care Home", True)

    (day,) = site["now"]["shifts"]
    assert (day["name"], day["start"], day["end"], day["charge_nurse"]) == (
        "day",
        DAY_1800 - 11 * HOUR,
        DAY_1800 + HOUR,
        "sister",
    )
    (night,) = site["next"]["shifts"]
    assert (night["name"], site["next"]["at"]) == ("night", DAY_1800 + HOUR)

    now = by_key(site["now"]["zones"], "zone")
    assert (now["east"]["covered_by"], now["east"]["reachable_by"]) == (
        ["carer-east"],
        ["carer-east"],
    )
    assert now["east"]["status"] == "covered"
    # Carer West's phone is subscribed, but her account does not show the west wing.
    assert (now["west"]["covered_by"], now["west"]["reachable_by"]) == (["carer-west"], [])
    assert now["west"]["status"] == "unreachable"
    assert now["homes"]["status"] == "unstaffed"
    coming = by_key(site["next"]["zones"], "zone")
    assert (coming["east"]["covered_by"], coming["east"]["status"]) == (["carer-night"], "covered")
    assert (coming["west"]["covered_by"], coming["west"]["status"]) == ([], "uncovered")
    assert (site["uncovered_now"], site["unreachable_now"], site["uncovered_next"]) == (
        [],
        ["west"],
        ["west"],
    )

    people = by_key(site["people"], "user")
    assert set(people) == {"carer-east", "carer-west", "carer-night", "sister"}
    east = people["carer-east"]
    assert (east["console"], east["channels"], east["reachable"]) == (
        {"open": 1, "reachable": True},
        ["console"],
        True,
    )
    assert east["push"]["status"] == "none"
    west = people["carer-west"]
    assert (west["push"]["status"], west["push"]["subscribed_at"]) == ("new", DAY_1800 - HOUR)
    assert (west["channels"], west["hidden_zones"]) == (["push"], ["west"])
    assert west["problems"] == ["their access does not show West wing"]
    late = people["carer-night"]
    assert (late["push"]["status"], late["push"]["reachable"], late["reachable"]) == (
        "stale",
        False,
        False,
    )
    assert late["problems"] == ["phone has not confirmed a push within the limit"]
    assert [(s["shift"], s["when"], s["zones"]) for s in late["shifts"]] == [
        ("night", "next", ["east"])
    ]
    sister = people["sister"]
    assert [(s["shift"], s["when"], s["charge_nurse"]) for s in sister["shifts"]] == [
        ("day", "now", True),
        ("night", "next", True),
    ]
    assert (sister["channels"], sister["reachable"]) == ([], False)
    assert sorted(site["unreachable_people"]) == ["carer-night", "sister"]


async def test_a_phone_that_confirmed_a_push_is_reachable_until_it_falls_silent(
    hub_factory: HubFactory,
) -> None:
    async with PushReceiver() as receiver:
        clock = FakeClock(DAY_1800)
        hub = await start(hub_factory, clock)
        _, _, phone = receiver.new_subscription()
        await subscribe_phone(hub, ("carer-night", PASSWORD), phone)
        # 19:00: the west wing is uncovered; the trouble alert is pushed to whoever is on duty,
        # Carer Night, whose phone's service worker confirms it as it arrives.
        clock.advance(HOUR)
        await receiver.wait(1)
        (pushed,) = receiver.delivered
        async with httpx.AsyncClient(base_url=hub.url) as worker:
            receipt = await worker.post(
                "/api/push/action",
                json={"token": pushed.message["action_token"], "action": "received"},
            )
        assert receipt.status_code == 200, receipt.text

        def night_carer(view: dict[str, Any]) -> dict[str, Any]:
            (site,) = view["sites"]
            return by_key(site["people"], "user")["carer-night"]

        late = night_carer((await get(hub, SUPERVISOR, "/api/roster?site=sunrise")).json())
        assert (late["push"]["status"], late["push"]["confirmed_at"]) == (
            "confirmed",
            DAY_1800 + HOUR,
        )
        assert (late["channels"], late["reachable"], late["problems"]) == (["push"], True, [])

        clock.advance(25 * HOUR)  # nothing pushed to her since: her phone may be off or lost
        later = (await get(hub, SUPERVISOR, "/api/roster?site=sunrise")).json()
        late = night_carer(later)
        assert (late["push"]["status"], late["reachable"]) == ("stale", False)
        (site,) = later["sites"]
        east = by_key(site["now"]["zones"], "zone")["east"]
        assert (east["covered_by"], east["reachable_by"], east["status"]) == (
            ["carer-night"],
            [],
            "unreachable",
        )


async def test_supervisors_and_the_rosters_charge_nurses_see_it_no_one_else(
    hub_factory: HubFactory,
) -> None:
    hub = await start(hub_factory, FakeClock(DAY_1800))
    charge = await get(hub, SISTER, "/api/roster")
    assert charge.status_code == 200, charge.text
    assert [s["site"] for s in charge.json()["sites"]] == ["sunrise"]
    assert (await get(hub, SISTER, "/api/roster?site=harbour")).status_code == 404
    assert [s["site"] for s in (await get(hub, SUPERVISOR, "/api/roster")).json()["sites"]] == [
        "sunrise"
    ]
    assert (await get(hub, SUPERVISOR, "/api/roster?site=harbour")).status_code == 404
    assert (await get(hub, SUPERVISOR, "/api/roster?site=nowhere")).status_code == 404
    everything = (await get(hub, ADMIN, "/api/roster")).json()
    harbour, sunrise_site = everything["sites"]
    assert (harbour["site"], harbour["rostered"], harbour["now"]["zones"][0]["status"]) == (
        "harbour",
        False,
        "uncovered",
    )
    assert sunrise_site["site"] == "sunrise"
    # A nurse who is nobody's charge nurse, an installer and a relative may not.
    for who in (NURSE, ("carer-east", PASSWORD), INSTALLER, FAMILY):
        answer = await get(hub, who, "/api/roster")
        assert answer.status_code == 403 and "may not" in answer.text, who
    async with httpx.AsyncClient(base_url=hub.url) as anonymous:
        assert (await anonymous.get("/api/roster")).status_code == 401


# --- the page ----------------------------------------------------------------------------------


async def accessibility_problems(page: Page) -> list[str]:
    """What a screen-reader user would miss: unnamed controls and links, headers without a
    scope, skipped heading levels, more than one visible top heading."""
    problems: list[str] = await page.evaluate(
        """() => {
          const found = [];
          const visible = (n) => !!(n.offsetWidth || n.offsetHeight || n.getClientRects().length);
          for (const n of document.querySelectorAll("button, a, input, select")) {
            if (!visible(n)) continue;
            const label = n.labels && n.labels.length ? n.labels[0].textContent : "";
            const name = (n.getAttribute("aria-label") || label || n.textContent || "").trim();
            if (!name) found.push(`unnamed ${n.tagName.toLowerCase()}`);
          }
          for (const th of document.querySelectorAll("thead th")) {
            if (visible(th) && th.getAttribute("scope") !== "col") {
              found.push(`th without scope: ${th.textContent}`);
            }
          }
          const headings = [...document.querySelectorAll("h1, h2, h3, h4")].filter(visible);
          if (headings.filter((h) => h.tagName === "H1").length !== 1) found.push("not one h1");
          let level = 0;
          for (const h of headings) {
            const next = Number(h.tagName[1]);
            if (next > level + 1) found.push(`heading jumps to ${h.tagName}: ${h.textContent}`);
            level = next;
          }
          if (!document.documentElement.lang) found.push("no lang");
          return found;
        }"""
    )
    return problems


async def test_the_charge_nurse_sees_the_roster_page(hub_factory: HubFactory) -> None:
    async with a_roster_evening(hub_factory) as hub, async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await (
                await chromium.new_context(
                    viewport={"width": 1280, "height": 1400}, timezone_id="UTC"
                )
            ).new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(hub.url + "/roster")
            await sign_in(page, SISTER)
            await expect(page.get_by_test_id("roster")).to_be_visible()
            site = page.locator('[data-testid="roster-site"][data-site="sunrise"]')
            await expect(site.locator("h2")).to_have_text("Sunrise Care Home")
            await expect(site.get_by_test_id("now-title")).to_have_text("Now: day 07:00–19:00")
            await expect(site.get_by_test_id("next-title")).to_have_text(
                "Next: night 19:00–07:00 (from 2026-11-22 19:00:00)"
            )
            now = site.get_by_test_id("zones-now")
            west = now.locator('[data-zone="west"]')
            await expect(west).to_have_attribute("data-status", "unreachable")
            await expect(west.get_by_test_id("zone-status")).to_have_text(
                "Nothing reaches the staff who cover it"
            )
            await expect(
                now.locator('[data-zone="homes"]').get_by_test_id("zone-status")
            ).to_have_text("Not staffed (by design)")
            uncovered = site.get_by_test_id("zones-next").locator('[data-zone="west"]')
            await expect(uncovered.get_by_test_id("zone-status")).to_have_text(
                "Nobody covers this zone"
            )
            await expect(
                site.get_by_test_id("tile-uncovered-next").locator(".tile-n")
            ).to_have_text("1")
            await expect(
                site.get_by_test_id("tile-unreachable-now").locator(".tile-n")
            ).to_have_text("1")
            east = site.locator('[data-testid="person-row"][data-user="carer-east"]')
            await expect(east.get_by_test_id("person-console")).to_have_text("signed in")
            await expect(east.get_by_test_id("person-reached")).to_have_text("console")
            late = site.locator('[data-testid="person-row"][data-user="carer-night"]')
            await expect(late.get_by_test_id("person-phone")).to_have_text(
                "not reachable: no push confirmed for 25 h"
            )
            await expect(late.get_by_test_id("person-reached")).to_have_text("NOTHING")
            west_carer = site.locator('[data-testid="person-row"][data-user="carer-west"]')
            await expect(west_carer.get_by_test_id("person-phone")).to_have_text(
                "subscribed 1 h ago, no push confirmed yet"
            )
            await expect(
                site.locator('[data-testid="person-problems"][data-user="carer-west"]')
            ).to_have_text("Carer West: their access does not show West wing")
            await expect(page.get_by_test_id("supervisor-link")).to_be_hidden()  # staff
            assert await accessibility_problems(page) == []
            assert errors == []
        finally:
            await chromium.close()


async def test_a_nurse_who_is_not_in_charge_is_told_so(hub_factory: HubFactory) -> None:
    hub = await start(hub_factory, FakeClock(DAY_1800))
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await chromium.new_page()
            await page.goto(hub.url + "/roster")
            await sign_in(page, NURSE)
            await expect(page.get_by_test_id("view-error")).to_have_text(
                "Only supervisors and the roster's charge nurses can see the roster."
            )
            await expect(page.get_by_test_id("roster")).to_be_hidden()
        finally:
            await chromium.close()
