"""Every page passes axe-core's WCAG 2.1 A and AA rules, in Debian's headless Chromium, on a real
hub and Mosquitto, in the states the staff and families see: signed out, and signed in with
alerts open, acknowledged and unanswered.

axe-core comes from the npm registry, pinned in scripts/setup-venv, which installs it into
.node/ (ignored by git). A missing or other version fails these tests, with how to install it;
they never skip. The scenes are the browser tests' own (their fixtures and helpers, imported).
"""

from __future__ import annotations

import re
import time

from playwright.async_api import async_playwright, expect

from tests.conftest import (
    EAST_NURSE,
    FAMILY,
    INSTALLER,
    NURSE,
    SUPERVISOR,
    HubFactory,
    PublishBatch,
)
from tests.hub.commissioning.test_walktest import Gateway
from tests.hub.console.test_browser import Console, a_day_of_readings, console
from tests.hub.escalation.test_roster_view import SISTER, a_roster_evening
from tests.hub.family.test_browser import (
    CARE_SERVICE_PHONE,
    FamilyPhone,
    phone,
    phone_browser,
    receiver,
)
from tests.hub.notify.test_staff_push import CALL, FALL, LADDER, LOOPBACK, PUSH, ROSTER, WATCH
from tests.hub.supervisor.test_browser import Browser, browser
from tests.support.browser import (
    AXE_VERSION,
    CHROMIUM,
    CHROMIUM_ARGS,
    assert_accessible,
    axe_script,
    sign_in,
)
from tests.support.webpush_receiver import PushReceiver

__all__ = ["browser", "console", "phone", "receiver"]  # fixtures of the pages' own browser tests


def test_the_pinned_axe_core_is_installed() -> None:
    """The setup's axe-core is where the tests look, at the pinned version (else: how to)."""
    assert re.fullmatch(r"\d+\.\d+\.\d+", AXE_VERSION)
    assert axe_script().stat().st_size > 100_000


async def test_the_staff_console_with_open_acknowledged_and_unreached_alerts(
    console: Console,
) -> None:
    page = console.page
    await expect(page.get_by_test_id("login-form")).to_be_visible()
    await assert_accessible(page, "console, signed out")
    await sign_in(page, (NURSE[0], "not-the-password"))
    await expect(page.get_by_test_id("login-error")).to_be_visible()
    await assert_accessible(page, "console, a wrong password")

    await sign_in(page)
    await expect(page.get_by_test_id("connection-state")).to_have_text("Live")
    await console.send("smoke-101", "smoke", kind="reading")
    smoke = console.card("Room 101", "Smoke alarm")
    await smoke.get_by_test_id("resolve-button").click()
    await smoke.get_by_test_id("resolve-outcome").select_option("false_alarm")
    await smoke.get_by_test_id("resolve-submit").click()
    await expect(page.get_by_test_id("resolved-item")).to_have_count(1)
    await console.send("button-101", "call_button")
    call = console.card("SR-E-101", "Call button")
    await call.get_by_test_id("acknowledge-button").click()
    await expect(call).to_have_attribute("data-state", "acknowledged")
    await console.send("radar-102", "fall")
    fall = console.card("SR-E-102", "Fall")
    await expect(fall).to_have_attribute("data-state", "open")
    # Nobody is on duty in the small site: the fall reached nobody, and the banner says so.
    await expect(page.get_by_test_id("nobody-banner")).to_be_visible()
    await expect(fall.get_by_test_id("alert-nobody-reached")).to_be_visible()
    await expect(fall.get_by_test_id("alert-escalation-step")).to_be_visible()
    await console.send("radar-101", "presence", kind="reading")
    await expect(console.tile("SR-E-101")).to_have_attribute("data-state", "alert")
    await assert_accessible(page, "console, signed in with alerts")

    # The resolve form, open on the acknowledged call.
    await call.get_by_test_id("resolve-button").click()
    await expect(call.get_by_test_id("resolve-form")).to_be_visible()
    await assert_accessible(page, "console, the resolve form")

    await page.get_by_test_id("tab-handover").click()
    await expect(page.get_by_test_id("handover-item")).to_have_count(3)
    await assert_accessible(page, "console, the handover")


async def test_the_resident_page(console: Console) -> None:
    page = console.page
    items = a_day_of_readings(time.time())
    for start in range(0, len(items), 500):
        await console.send_items(items[start : start + 500])
    await sign_in(page)
    await expect(page.get_by_test_id("connection-state")).to_have_text("Live")
    await console.send("button-101", "call_button")
    call = console.card("SR-E-101", "Call button")
    await call.get_by_test_id("acknowledge-button").click()
    await expect(call).to_have_attribute("data-state", "acknowledged")
    await console.tile("SR-E-101").get_by_test_id("tile-link").click()
    await expect(page.get_by_test_id("resident-name")).to_have_text("Mary Jones")
    await expect(page.get_by_test_id("chart-heart")).not_to_have_attribute("data-points", "0")
    await expect(page.get_by_test_id("timeline-entry").first).to_be_visible()
    await assert_accessible(page, "resident page")


async def test_the_supervisor_view(browser: Browser) -> None:
    page = browser.page
    await expect(page.get_by_test_id("login-form")).to_be_visible()
    await assert_accessible(page, "supervisor view, signed out")
    await sign_in(page, SUPERVISOR)
    await expect(page.get_by_test_id("figure-row")).to_have_count(5)
    await expect(page.get_by_test_id("overdue-item")).to_have_count(2)
    await expect(page.get_by_test_id("nobody-count")).to_have_text("2")
    await expect(page.get_by_test_id("gateways-offline")).to_contain_text("gw-west")
    await assert_accessible(page, "supervisor view")


async def test_the_roster_page(hub_factory: HubFactory) -> None:
    async with a_roster_evening(hub_factory) as hub, async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await chromium.new_context(
                viewport={"width": 1280, "height": 1400}, timezone_id="UTC"
            )
            page = await context.new_page()
            await page.goto(hub.url + "/roster")
            await expect(page.get_by_test_id("login-form")).to_be_visible()
            await assert_accessible(page, "roster page, signed out")
            await sign_in(page, SISTER)
            site = page.locator('[data-testid="roster-site"][data-site="sunrise"]')
            await expect(
                site.get_by_test_id("zones-now").locator('[data-zone="west"]')
            ).to_have_attribute("data-status", "unreachable")
            await expect(
                site.locator('[data-testid="person-row"][data-user="carer-night"]').get_by_test_id(
                    "person-reached"
                )
            ).to_have_text("NOTHING")
            await assert_accessible(page, "roster page")
        finally:
            await chromium.close()


async def test_the_family_app_with_alerts(phone: FamilyPhone) -> None:
    page = phone.page
    await phone.send({"dev": "radar-101", "reading": "occupancy", "value": True})
    await expect(page.get_by_test_id("login-form")).to_be_visible()
    await assert_accessible(page, "family app, signed out")
    await phone.log_in()
    card = page.get_by_test_id("resident-card")
    await expect(card.get_by_test_id("resident-state")).to_have_text("In bed")
    await page.get_by_test_id("push-enable").click()
    await expect(page.get_by_test_id("push-status")).to_contain_text("cannot receive push")

    fall = await phone.open_alert({"dev": "radar-101", "event": "fall", "value": True})
    async with phone.session(NURSE) as (client, csrf):
        acked = await client.post(f"/api/alerts/{fall}/acknowledge", headers={"X-CSRF-Token": csrf})
        assert acked.status_code == 200, acked.text
    call = await phone.open_alert({"dev": "button-101", "event": "call_button", "value": True})
    await page.reload()
    active = page.locator(f'[data-testid="active-alert"][data-alert-id="{fall}"]')
    await active.get_by_test_id("seen-button").click()
    await expect(active.get_by_test_id("family-answers")).to_have_text("Seen by Anne Jones")
    await expect(active.get_by_test_id("staff-response")).to_have_attribute(
        "data-kind", "acknowledged"
    )
    called = page.locator(f'[data-testid="active-alert"][data-alert-id="{call}"]')
    await called.get_by_test_id("send-someone-button").click()
    await expect(called.get_by_test_id("staff-response-text")).to_have_text(
        f"We could not reach anyone. Call the care service now: {CARE_SERVICE_PHONE}"
    )
    await expect(page.get_by_test_id("recent-alert")).to_have_count(2)
    await assert_accessible(page, "family app, signed in with alerts")


async def test_the_app_at_family_for_staff(
    hub_factory: HubFactory, publish_batch: PublishBatch, receiver: PushReceiver
) -> None:
    hub = await hub_factory(
        roster=ROSTER, escalation=LADDER, push=PUSH, outbound=LOOPBACK, watch=WATCH
    )
    async with phone_browser(hub, receiver, publish_batch) as staff_phone:
        page = staff_phone.page
        await sign_in(staff_phone.page, EAST_NURSE)
        await expect(page.get_by_test_id("staff-none")).to_be_visible()
        await assert_accessible(page, "the app for staff, no alerts")
        call = await staff_phone.open_alert(CALL)
        fall = await staff_phone.open_alert(FALL)
        await page.reload()
        called = page.locator(f'[data-testid="staff-alert"][data-alert-id="{call}"]')
        await called.get_by_test_id("going-button").click()
        await expect(called).to_have_attribute("data-state", "acknowledged")
        card = page.locator(f'[data-testid="staff-alert"][data-alert-id="{fall}"]')
        await expect(card.get_by_test_id("cant-button")).to_be_visible()
        await assert_accessible(page, "the app for staff, with alerts")
        # A relative's app is not for a nurse: the family part stays hidden.
        await expect(page.get_by_test_id("family-app")).to_be_hidden()
        assert FAMILY[0] not in await page.content()


async def test_the_installer_page_during_a_walk_test(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    hub = await hub_factory()
    gateway = Gateway(publish_batch)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await chromium.new_page(viewport={"width": 1000, "height": 720})
            await page.goto(f"{hub.url}/installer#bed=SR-E-101")
            await expect(page.get_by_test_id("login-submit")).to_be_visible()
            await assert_accessible(page, "installer page, signed out")
            await page.get_by_test_id("login-user").fill(INSTALLER[0])
            await page.get_by_test_id("login-password").fill(INSTALLER[1])
            await page.get_by_test_id("login-submit").click()
            await expect(page.get_by_test_id("bed-filter")).to_contain_text("SR-E-101")
            await assert_accessible(page, "installer page, before the walk test")
            await page.get_by_test_id("start").click()
            rows = page.get_by_test_id("device-row")
            await expect(rows).to_have_count(3)
            button = rows.filter(has_text="button-101")
            await gateway.send("button-101", "call_button", "press")
            await expect(button).to_have_attribute("data-passed", "true")
            await gateway.send("button-101", "battery", 87, kind="reading")
            await expect(button).to_contain_text("87 %")
            await assert_accessible(page, "installer page, during a walk test")
            await page.get_by_test_id("stop").click()
            await expect(page.get_by_test_id("stop-confirm")).to_be_visible()
            await assert_accessible(page, "installer page, asked before stopping")
            await page.get_by_test_id("stop-confirm-yes").click()
            await expect(page.get_by_test_id("state")).to_contain_text("ended")
        finally:
            await chromium.close()
