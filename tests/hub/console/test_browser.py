"""The night-staff console in a real browser (Debian's Chromium), a real hub and Mosquitto."""

from __future__ import annotations

import asyncio
import itertools
import math
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.async_api import Locator, Page, async_playwright, expect

from hub.app import Hub
from tests.conftest import FAMILY, NURSE, SUPERVISOR, HubFactory, PublishBatch
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, sign_in
from tests.support.tcpproxy import TcpProxy

STALE_AFTER_S = 10  # hub/web/console_views.js: the board's tiles are said to be old after this
LOST_BANNER = (
    "Lost contact with the hub — reconnecting… New alerts are not reaching this screen; "
    "alerts and bed states here may be out of date."
)


@dataclass
class Console:
    hub: Hub
    page: Page
    publish_batch: PublishBatch
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def send(
        self, dev: str, name: str, value: Any = True, kind: str = "event", **extra: Any
    ) -> None:
        """One item from gateway gw-east, with a fresh sequence number."""
        item = {"dev": dev, "at": time.time(), kind: name, "value": value, **extra}
        await self.publish_batch("sunrise", "gw-east", [item], seq=next(self._seq))

    async def wait_for_active_alerts(self, n: int) -> None:
        deadline = time.monotonic() + 10
        while len(await self.hub.alerts.records.page(("open", "acknowledged"), 100)) != n:
            assert time.monotonic() < deadline, f"the hub never had {n} active alerts"
            await asyncio.sleep(0.05)

    async def send_items(self, items: list[dict[str, Any]]) -> None:
        """Several items in one batch from gw-east (at most 500, the wire's limit)."""
        first = next(self._seq)
        for _ in items[1:]:  # a batch's items are numbered on from its first
            next(self._seq)
        await self.publish_batch("sunrise", "gw-east", items, seq=first)

    def tile(self, bed: str) -> Locator:
        return self.page.locator(f'[data-testid="bed-tile"][data-bed="{bed}"]')

    def card(self, bed: str, rule: str) -> Locator:
        return (
            self.page.get_by_test_id("alert-card")
            .filter(has=self.page.get_by_test_id("alert-bed").get_by_text(bed, exact=True))
            .filter(has=self.page.get_by_test_id("alert-rule").get_by_text(rule, exact=True))
        )

    async def alarms(self) -> int:
        return int(await self.page.evaluate("window.carewatchConsole.alarmsSounded"))

    async def api_alert(self, alert_id: str) -> dict[str, Any]:
        response = await self.page.request.get(f"{self.hub.url}/api/alerts/{alert_id}")
        assert response.status == 200, await response.text()
        return dict(await response.json())


@pytest.fixture
async def console(hub_factory: HubFactory, publish_batch: PublishBatch) -> AsyncIterator[Console]:
    hub = await hub_factory()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context(
            viewport={"width": 1180, "height": 820}, timezone_id="Europe/London"
        )
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(hub.url + "/")
        try:
            yield Console(hub, page, publish_batch)
        finally:
            # Closing the browser ends its live stream before the hub is stopped.
            await browser.close()
    assert errors == [], f"JavaScript errors in the console: {errors}"


async def test_a_wrong_password_shows_an_error_and_no_console(console: Console) -> None:
    page = console.page
    await expect(page.get_by_test_id("login-form")).to_be_visible()
    await sign_in(page, (NURSE[0], "not-the-password"))
    await expect(page.get_by_test_id("login-error")).to_have_text("Wrong user name or password.")
    await expect(page.get_by_test_id("console")).to_be_hidden()
    # The right password then gets in, and the error goes away.
    await sign_in(page)
    await expect(page.get_by_test_id("console")).to_be_visible()
    await expect(page.get_by_test_id("login-error")).to_be_hidden()
    await expect(page.get_by_test_id("current-user")).to_have_text("Night Nurse (nurse)")


async def test_a_family_member_who_opens_the_console_is_sent_to_the_family_app(
    console: Console,
) -> None:
    page = console.page
    await sign_in(page, FAMILY)
    await expect(page).to_have_url(f"{console.hub.url}/family")
    await expect(page.get_by_test_id("family-app")).to_be_visible()
    await expect(page.get_by_test_id("family-user")).to_have_text("Anne Jones")
    # Signed in already, the console at / sends them on at once.
    await page.goto(console.hub.url + "/")
    await expect(page).to_have_url(f"{console.hub.url}/family")
    await expect(page.get_by_test_id("family-app")).to_be_visible()


async def test_only_a_supervisor_gets_the_link_to_the_supervisor_view(console: Console) -> None:
    page = console.page
    await sign_in(page, SUPERVISOR)
    await expect(page.get_by_test_id("connection-state")).to_have_text("Live")
    link = page.get_by_test_id("supervisor-link")
    await expect(link).to_be_visible()
    await expect(link).to_have_attribute("href", "/supervisor")
    await page.get_by_test_id("logout-button").click()
    await expect(link).to_be_hidden()
    await sign_in(page)
    await expect(page.get_by_test_id("current-user")).to_have_text("Night Nurse (nurse)")
    await expect(page.get_by_test_id("console")).to_be_visible()
    await expect(link).to_be_hidden()


async def test_a_fall_arrives_live_is_acknowledged_and_resolved(console: Console) -> None:
    page = console.page
    await sign_in(page)
    await expect(page.get_by_test_id("queue-empty")).to_be_visible()
    await expect(page.get_by_test_id("site-name")).to_have_text("Sunrise Care Home")
    await expect(page.get_by_test_id("connection-state")).to_have_text("Live")
    await expect(page.get_by_test_id("sound-toggle")).to_have_attribute("data-state", "on")
    await expect(page.get_by_test_id("alert-card")).to_have_count(0)
    before = await console.alarms()

    await console.send("radar-101", "fall")

    card = page.get_by_test_id("alert-card")
    await expect(card).to_have_count(1)
    await expect(card).to_have_attribute("data-state", "open")
    await expect(card.get_by_test_id("alert-rule")).to_have_text("Fall")
    await expect(card.get_by_test_id("alert-bed")).to_have_text("SR-E-101")
    await expect(card.get_by_test_id("alert-room")).to_have_text("Room 101")
    await expect(card.get_by_test_id("alert-zone")).to_have_text("East wing")
    await expect(card.get_by_test_id("alert-resident")).to_contain_text("Mary Jones")
    await expect(card.get_by_test_id("alert-resident")).to_contain_text("E-0001")
    await expect(card.get_by_test_id("alert-opened")).to_have_text(
        re.compile(r"^Opened \d\d:\d\d:\d\d$")
    )
    await expect(card.get_by_test_id("alert-ago")).to_have_text("just now")
    await expect(page.get_by_test_id("queue-empty")).to_be_hidden()
    await page.wait_for_function("n => window.carewatchConsole.alarmsSounded === n + 1", arg=before)
    alert_id = await card.get_attribute("data-alert-id")
    assert alert_id is not None and alert_id.isdigit()

    await card.get_by_test_id("acknowledge-button").click()
    await expect(card).to_have_attribute("data-state", "acknowledged")
    await expect(card.get_by_test_id("alert-acked")).to_have_text(
        "Night Nurse acknowledged just now on a console"
    )
    await expect(card.get_by_test_id("acknowledge-button")).to_have_count(0)
    acked = await console.api_alert(alert_id)
    assert acked["state"] == "acknowledged"
    assert acked["acknowledged_by"] == "nurse"
    assert acked["acknowledged_via"] == "console"

    await card.get_by_test_id("resolve-button").click()
    form = card.get_by_test_id("resolve-form")
    await expect(form).to_be_visible()
    # Resolving needs an outcome: submitting without one is refused in the page.
    await form.get_by_test_id("resolve-submit").click()
    await expect(card.get_by_test_id("alert-error")).to_have_text("Choose an outcome first.")
    assert (await console.api_alert(alert_id))["state"] == "acknowledged"

    await form.get_by_test_id("resolve-outcome").select_option("assisted_no_injury")
    await form.get_by_test_id("resolve-note").fill("Found on the floor by the bed, helped up.")
    await form.get_by_test_id("resolve-submit").click()

    await expect(page.get_by_test_id("alert-card")).to_have_count(0)
    await expect(page.get_by_test_id("queue-empty")).to_be_visible()
    resolved_item = page.locator(f'[data-testid="resolved-item"][data-alert-id="{alert_id}"]')
    await expect(resolved_item.get_by_test_id("resolved-outcome")).to_have_text(
        "Attended: no injury"
    )
    resolved = await console.api_alert(alert_id)
    assert resolved["state"] == "resolved"
    assert resolved["outcome"] == "assisted_no_injury"
    assert resolved["note"] == "Found on the floor by the bed, helped up."
    assert resolved["resolved_by"] == "nurse"


async def test_late_repeated_and_cleared_alerts_say_so(console: Console) -> None:
    page = console.page
    await sign_in(page)
    await expect(page.get_by_test_id("connection-state")).to_have_text("Live")

    # Replayed from the gateway's outbox after an outage: sensed four minutes ago.
    await console.send("radar-101", "fall", at=time.time() - 240, hist=True)
    card = console.card("SR-E-101", "Fall")
    await expect(card.get_by_test_id("alert-late")).to_contain_text("Late by 4 min")
    await expect(card.get_by_test_id("alert-count")).to_have_count(0)
    await expect(card.get_by_test_id("alert-cleared")).to_have_count(0)

    alarms = await console.alarms()
    await console.send("radar-101", "fall")
    await expect(card.get_by_test_id("alert-count")).to_have_text(
        re.compile(r"^Triggered 2 times · latest at \d\d:\d\d:\d\d$")
    )
    await page.wait_for_function("n => window.carewatchConsole.alarmsSounded === n + 1", arg=alarms)

    await console.send("radar-101", "fall", value=False)
    await expect(card.get_by_test_id("alert-cleared")).to_contain_text("Device reports cleared at")
    # Cleared is not resolved: the card stays open until a person deals with it.
    await expect(card).to_have_attribute("data-state", "open")
    await expect(page.get_by_test_id("alert-card")).to_have_count(1)


async def test_a_lost_stream_shows_the_banner_and_catches_up(console: Console) -> None:
    page = console.page
    # The page's clock runs on as ever; the test moves it past the board's staleness limit.
    await page.clock.install()
    async with TcpProxy("127.0.0.1", console.hub.web_port) as proxy:
        # The console talks to the hub through a link the test can break.
        await page.goto(f"http://127.0.0.1:{proxy.port}/")
        await sign_in(page)
        banner = page.get_by_test_id("connection-banner")
        state = page.get_by_test_id("connection-state")
        await expect(state).to_have_text("Live")
        await expect(banner).to_be_hidden()
        await expect(console.tile("SR-E-101")).to_have_attribute("data-state", "unknown")
        stale = page.get_by_test_id("board-stale")
        await expect(stale).to_be_hidden()

        await proxy.pause()
        proxy.cut()
        await expect(banner).to_be_visible()
        await expect(banner).to_have_text(LOST_BANNER)
        await expect(state).to_have_text("Reconnecting…")
        # The fall happens while the console cannot hear the hub.
        await console.send("radar-102", "fall")
        await console.wait_for_active_alerts(1)
        await expect(page.get_by_test_id("alert-card")).to_have_count(0)
        await expect(banner).to_be_visible()
        # Mary gets into bed while the console cannot hear: the board says its states are old.
        await console.send("radar-101", "presence", kind="reading")
        await page.clock.fast_forward(STALE_AFTER_S * 1000 + 1500)
        await expect(stale).to_be_visible()
        await expect(stale).to_contain_text("Cannot reach the hub")
        await expect(console.tile("SR-E-101")).to_have_attribute("data-state", "unknown")

        await proxy.resume()
        await expect(banner).to_be_hidden(timeout=15_000)
        await expect(state).to_have_text("Live")
        card = console.card("SR-E-102", "Fall")
        await expect(card).to_have_attribute("data-state", "open")
        await expect(card.get_by_test_id("alert-resident")).to_contain_text("Li Wei")
        # The board caught up too, without a reload.
        await expect(console.tile("SR-E-101")).to_have_attribute("data-state", "in_bed")
        await expect(console.tile("SR-E-102")).to_have_attribute("data-state", "alert")
        await expect(stale).to_be_hidden()


async def test_a_stopped_hub_shows_the_lost_banner(console: Console) -> None:
    page = console.page
    # The page's clock runs on as ever, and the test moves it past the board's staleness limit
    # instead of waiting that long.
    await page.clock.install()
    await sign_in(page)
    await expect(page.get_by_test_id("connection-state")).to_have_text("Live")
    await page.get_by_test_id("tab-handover").click()
    await expect(page.get_by_test_id("handover-page")).to_be_visible()
    await console.hub.stop()
    banner = page.get_by_test_id("connection-banner")
    await expect(banner).to_be_visible()
    await expect(banner).to_have_text(LOST_BANNER)
    await expect(page.get_by_test_id("connection-state")).to_have_text("Reconnecting…")
    # Losing the hub is an alarm too: its own tone (tests/hub/console/test_alarm_panel.py).
    await page.wait_for_function("window.carewatchSound.played.some((p) => p.pattern === 'lost')")
    await page.get_by_test_id("tab-board").click()
    await page.clock.fast_forward(STALE_AFTER_S * 1000 + 1500)
    await expect(page.get_by_test_id("board-stale")).to_be_visible()


async def test_after_a_reload_the_console_asks_for_sound(console: Console) -> None:
    page = console.page
    await sign_in(page)
    await expect(page.get_by_test_id("connection-state")).to_have_text("Live")
    await expect(page.get_by_test_id("sound-toggle")).to_have_attribute("data-state", "on")
    await page.reload()
    # Still signed in, but the browser will not play sound until someone taps: the whole
    # screen says so (tests/hub/console/test_alarm_panel.py follows the alarms behind it).
    overlay = page.get_by_test_id("arm-overlay")
    await expect(overlay).to_be_visible()
    await expect(page.get_by_test_id("arm-button")).to_have_text(
        "Tap anywhere to arm the alarm sound"
    )
    await overlay.click(position={"x": 10, "y": 10})
    await expect(overlay).to_be_hidden()
    toggle = page.get_by_test_id("sound-toggle")
    await expect(toggle).to_have_attribute("data-state", "on")
    await expect(toggle).to_have_text("Sound on — tap to test")


async def test_an_open_fall_above_an_acknowledged_call_and_the_bed_board(console: Console) -> None:
    page = console.page
    await sign_in(page)
    await expect(page.get_by_test_id("connection-state")).to_have_text("Live")

    # Earlier in the night: a smoke alarm in room 101 (a room device, no bed), a false alarm.
    await console.send("smoke-101", "smoke", kind="reading")
    smoke = console.card("Room 101", "Smoke alarm")
    await expect(smoke.get_by_test_id("alert-room")).to_have_text("Room 101")
    await smoke.get_by_test_id("resolve-button").click()
    await smoke.get_by_test_id("resolve-outcome").select_option("false_alarm")
    await smoke.get_by_test_id("resolve-note").fill("Burnt toast in the kitchenette.")
    await smoke.get_by_test_id("resolve-submit").click()
    await expect(smoke).to_have_count(0)
    await expect(page.get_by_test_id("resolved-item")).to_have_count(1)
    await expect(page.get_by_test_id("resolved-outcome")).to_have_text("False alarm")

    await console.send("button-101", "call_button")
    call = console.card("SR-E-101", "Call button")
    await call.get_by_test_id("acknowledge-button").click()
    await expect(call).to_have_attribute("data-state", "acknowledged")

    await console.send("radar-102", "fall")
    fall = console.card("SR-E-102", "Fall")
    await expect(fall).to_have_attribute("data-state", "open")

    # Unanswered first: the open fall (newer) is above the acknowledged call.
    cards = page.get_by_test_id("alert-card")
    await expect(cards).to_have_count(2)
    await expect(cards.nth(0).get_by_test_id("alert-rule")).to_have_text("Fall")
    await expect(cards.nth(1).get_by_test_id("alert-rule")).to_have_text("Call button")
    await expect(page.get_by_test_id("active-count")).to_have_text("2")
    await expect(fall.get_by_test_id("alert-escalation-step")).to_be_visible()

    # The board: Mary in bed for 40 minutes, Li Wei up since 5, the west bed empty.
    now = time.time()
    await console.send_items(
        [
            {"dev": "radar-101", "at": now - 2400, "reading": "presence", "value": True},
            {"dev": "radar-102", "at": now - 3000, "reading": "presence", "value": True},
            {"dev": "radar-102", "at": now - 300, "reading": "presence", "value": False},
        ]
    )
    await expect(console.tile("SR-E-101")).to_have_attribute("data-state", "alert")
    await expect(console.tile("SR-E-102")).to_have_attribute("data-state", "alert")
    await expect(console.tile("SR-W-201")).to_have_attribute("data-state", "empty")
    await call.get_by_test_id("resolve-button").click()
    await call.get_by_test_id("resolve-outcome").select_option("assisted_no_injury")
    await call.get_by_test_id("resolve-submit").click()
    await expect(console.tile("SR-E-101")).to_have_attribute("data-state", "in_bed")
    await expect(console.tile("SR-E-101").get_by_test_id("tile-since")).to_have_text("for 40 min")


async def test_the_bed_board_changes_live_and_leads_to_the_resident_chart(
    console: Console,
) -> None:
    page = console.page
    now = time.time()
    # Mary's night so far, replayed: vital signs every 5 minutes for the last 3 hours.
    await console.send_items(
        [
            item
            for k in range(36)
            for item in (
                {
                    "dev": "radar-101",
                    "at": now - 10800 + k * 300,
                    "reading": "heart_rate",
                    "value": 60 + k % 7,
                    "hist": True,
                },
                {
                    "dev": "radar-101",
                    "at": now - 10800 + k * 300,
                    "reading": "respiration_rate",
                    "value": 14 + k % 3,
                    "hist": True,
                },
            )
        ]
    )
    await sign_in(page)
    await expect(page.get_by_test_id("connection-state")).to_have_text("Live")
    mary = console.tile("SR-E-101")
    await expect(mary).to_have_attribute("data-state", "unknown")
    await expect(mary.get_by_test_id("tile-resident")).to_have_text("Mary Jones")
    await expect(console.tile("SR-W-201")).to_have_attribute("data-state", "empty")

    await console.send("radar-101", "presence", True, kind="reading")
    await expect(mary).to_have_attribute("data-state", "in_bed")
    await expect(mary.get_by_test_id("tile-state")).to_have_text("In bed")
    await expect(mary.get_by_test_id("tile-since")).to_have_text(re.compile(r"^for \d+ s$"))
    await console.send("radar-101", "presence", False, kind="reading")
    await expect(mary).to_have_attribute("data-state", "up")
    await expect(mary.get_by_test_id("tile-state")).to_have_text("Up")

    await console.send("radar-101", "fall")
    await expect(mary).to_have_attribute("data-state", "alert")
    await expect(mary.get_by_test_id("tile-alert")).to_have_text("Fall")
    card = console.card("SR-E-101", "Fall")
    await expect(card.get_by_test_id("alert-escalation-step")).to_contain_text("Escalation step 1")
    alert_id = await card.get_attribute("data-alert-id")
    assert alert_id is not None and console.hub.escalation is not None
    await console.hub.escalation.request_help(int(alert_id), "daughter", "push")
    await card.get_by_test_id("acknowledge-button").click()
    await expect(card).to_have_attribute("data-state", "acknowledged")
    await expect(card.get_by_test_id("alert-help")).to_have_text(
        re.compile(r"^Help requested by (daughter|Anne Jones)$")
    )

    await mary.get_by_test_id("tile-link").click()
    resident = page.get_by_test_id("resident-page")
    await expect(resident).to_be_visible()
    await expect(page.get_by_test_id("bed-board")).to_be_hidden()
    await expect(page.get_by_test_id("resident-name")).to_have_text("Mary Jones")
    heart = page.get_by_test_id("chart-heart")
    await expect(heart).to_have_attribute("data-points", re.compile(r"^3[5-7]$"))
    path = await heart.get_attribute("d")
    assert path is not None and path.startswith("M") and path.count("L") >= 30
    breath = page.get_by_test_id("chart-breath")
    assert (await breath.get_attribute("d") or "").count("L") >= 30
    entries = page.get_by_test_id("timeline-entry")
    await expect(entries.filter(has_text="Fall alert")).to_have_count(1)
    await expect(entries.filter(has_text="Acknowledged by Night Nurse (console)")).to_have_count(1)
    await expect(entries.filter(has_text="Help requested by Anne Jones")).to_have_count(1)
    # Back to the board by the link on an alert card, too.
    await page.get_by_test_id("resident-back").click()
    await expect(page.get_by_test_id("bed-board")).to_be_visible()
    await card.get_by_test_id("alert-resident-link").click()
    await expect(page.get_by_test_id("resident-name")).to_have_text("Mary Jones")


async def test_the_handover_lists_the_night_alerts(console: Console) -> None:
    page = console.page
    await sign_in(page)
    await expect(page.get_by_test_id("connection-state")).to_have_text("Live")
    await console.send("radar-101", "fall")
    fall = console.card("SR-E-101", "Fall")
    await fall.get_by_test_id("resolve-button").click()
    await fall.get_by_test_id("resolve-outcome").select_option("assisted_no_injury")
    await fall.get_by_test_id("resolve-note").fill("Helped back to bed.")
    await fall.get_by_test_id("resolve-submit").click()
    await expect(fall).to_have_count(0)
    await console.send("button-101", "call_button")
    await expect(console.card("SR-E-101", "Call button")).to_have_attribute("data-state", "open")

    await page.get_by_test_id("tab-handover").click()
    await expect(page.get_by_test_id("handover-page")).to_be_visible()
    await expect(page.get_by_test_id("handover-summary")).to_contain_text(
        "2 opened · 1 acknowledged · 1 resolved · 1 still open"
    )
    happened = page.get_by_test_id("handover-item")
    await expect(happened).to_have_count(2)
    done = happened.filter(has_text="Fall")
    await expect(done.get_by_test_id("handover-steps")).to_contain_text(
        "resolved by Night Nurse at"
    )
    await expect(done.get_by_test_id("handover-steps")).to_contain_text("Attended: no injury")
    await expect(done).to_contain_text("Helped back to bed.")
    still_open = page.get_by_test_id("handover-open-item")
    await expect(still_open).to_have_count(1)
    await expect(still_open).to_contain_text("Call button")
    # A later start leaves out what happened before it, but not what is still open.
    await page.get_by_test_id("handover-since").fill("2999-01-01T00:00")
    await page.get_by_test_id("handover-refresh").click()
    await expect(page.get_by_test_id("handover-summary")).to_contain_text("Cannot load")


def a_day_of_readings(now: float) -> list[dict[str, Any]]:
    """Mary's last 24 hours every 5 minutes: calmer at night, up twice in the night, up by day."""
    items: list[dict[str, Any]] = []
    for k in range(288):
        at = now - 86400 + k * 300
        hour = time.localtime(at).tm_hour
        asleep = hour >= 22 or hour < 7
        up_at_night = asleep and k % 48 in (20, 21)
        in_bed = asleep and not up_at_night
        items.append({"dev": "radar-101", "at": at, "reading": "presence", "value": in_bed})
        if in_bed:
            heart = 58 + 4 * math.sin(k / 9) + k % 3
            breath = 13 + 1.5 * math.sin(k / 13)
            items.append(
                {"dev": "radar-101", "at": at, "reading": "heart_rate", "value": round(heart)}
            )
            items.append(
                {
                    "dev": "radar-101",
                    "at": at,
                    "reading": "respiration_rate",
                    "value": round(breath),
                }
            )
    return [{**item, "hist": True} for item in items]


async def test_a_resident_page_shows_a_day_of_readings(console: Console) -> None:
    page = console.page
    items = a_day_of_readings(time.time())
    for start in range(0, len(items), 500):
        await console.send_items(items[start : start + 500])
    await sign_in(page)
    await expect(page.get_by_test_id("connection-state")).to_have_text("Live")
    await console.send("button-101", "call_button")
    call = console.card("SR-E-101", "Call button")
    await call.get_by_test_id("acknowledge-button").click()
    await call.get_by_test_id("resolve-button").click()
    await call.get_by_test_id("resolve-outcome").select_option("assisted_no_injury")
    await call.get_by_test_id("resolve-note").fill("Wanted a glass of water.")
    await call.get_by_test_id("resolve-submit").click()
    await expect(call).to_have_count(0)

    await console.tile("SR-E-101").get_by_test_id("tile-link").click()
    await expect(page.get_by_test_id("resident-name")).to_have_text("Mary Jones")
    heart = page.get_by_test_id("chart-heart")
    await expect(heart).not_to_have_attribute("data-points", "0")
    band = page.get_by_test_id("chart-svg").locator("rect.band")
    assert await band.count() > 50
    await expect(page.get_by_test_id("timeline-entry").first).to_be_visible()
