"""The installer's page on a phone (390 × 844) in Debian's Chromium, on a real hub and
Mosquitto: no sideways scrolling with a walk test running and results in, stopping with devices
not passed is asked first (and can be cancelled), past walk tests are listed with their reports,
sign-out works, someone who is not an installer is told so, and every state passes axe-core."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from playwright.async_api import Page, async_playwright, expect

from hub.app import Hub
from tests.conftest import INSTALLER, NURSE, HubFactory, PublishBatch
from tests.hub.commissioning.test_walktest import Gateway
from tests.hub.family.test_browser import PHONE
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, assert_accessible

STORAGE_KEY = "carewatch.installer.lastSeen"


@dataclass
class InstallerPhone:
    hub: Hub
    page: Page


@contextlib.asynccontextmanager
async def installer_phone(hub: Hub) -> AsyncIterator[InstallerPhone]:
    """Headless Chromium the size of a phone, at the hub's /installer."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context(
            viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
        )
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(f"{hub.url}/installer")
        try:
            yield InstallerPhone(hub, page)
        finally:
            await browser.close()
    assert errors == [], f"JavaScript errors on the installer page: {errors}"


@pytest.fixture
async def phone(hub_factory: HubFactory) -> AsyncIterator[InstallerPhone]:
    async with installer_phone(await hub_factory()) as running:
        yield running


async def log_in(page: Page) -> None:
    await page.get_by_test_id("login-user").fill(INSTALLER[0])
    await page.get_by_test_id("login-password").fill(INSTALLER[1])
    await page.get_by_test_id("login-submit").click()


async def assert_no_sideways_scroll(page: Page, what: str) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{what}: the page is {width} px wide on a 390 px phone"


async def test_a_walk_test_on_a_phone(phone: InstallerPhone, publish_batch: PublishBatch) -> None:
    page, hub = phone.page, phone.hub
    gateway = Gateway(publish_batch)
    await expect(page.get_by_test_id("login-form")).to_be_visible()
    await assert_accessible(page, "installer phone, signed out")
    await log_in(page)
    scope = page.get_by_test_id("scope")
    await expect(scope).to_have_value("sunrise")
    await expect(scope.locator("option").first).to_have_text("Sunrise Care Home — whole site")
    await expect(page.get_by_test_id("past-empty")).to_be_visible()
    await assert_no_sideways_scroll(page, "before the walk test")
    await assert_accessible(page, "installer phone, before the walk test")

    await page.get_by_test_id("start").click()
    rows = page.get_by_test_id("device-row")
    await expect(rows).to_have_count(5)  # every device of Sunrise Care Home
    button = page.locator('[data-testid="device-row"][data-device="button-101"]')
    await expect(button.get_by_test_id("device-name")).to_have_text("Call button in room 101")
    await gateway.send("button-101", "call_button", "press")
    await gateway.send("button-101", "battery", 87, kind="reading")
    await gateway.send("button-101", "rssi", -58, kind="reading")
    await expect(button).to_have_attribute("data-passed", "true")
    await expect(button.get_by_test_id("device-when")).to_contain_text("call button pressed")
    await expect(button).to_contain_text("-58 dBm")
    await expect(button).to_contain_text("87 %")
    await expect(page.get_by_test_id("progress")).to_have_text("1 of 5 devices passed")
    await assert_no_sideways_scroll(page, "a walk test running, results in")
    await assert_accessible(page, "installer phone, during a walk test")

    # Stopping with devices not passed is asked first; "Keep it running" changes nothing.
    await page.get_by_test_id("stop").click()
    confirm = page.get_by_test_id("stop-confirm")
    await expect(confirm).to_be_visible()
    await expect(confirm.get_by_test_id("stop-confirm-text")).to_have_text(
        "4 devices have not passed. Stop the walk test anyway?"
    )
    await assert_no_sideways_scroll(page, "asked before stopping")
    await assert_accessible(page, "installer phone, asked before stopping")
    await confirm.get_by_test_id("stop-confirm-no").click()
    await expect(confirm).to_be_hidden()
    await expect(page.get_by_test_id("state")).to_contain_text("running")
    walktests = await page.request.get(f"{hub.url}/api/walktests")
    (running,) = (await walktests.json())["walktests"]
    assert running["running"] is True

    await page.get_by_test_id("stop").click()
    await confirm.get_by_test_id("stop-confirm-yes").click()
    await expect(page.get_by_test_id("state")).to_contain_text(f"Walk test {running['id']} ended")
    past = page.get_by_test_id("past-test")
    await expect(past).to_have_count(1)
    await expect(past).to_contain_text("Sunrise Care Home")
    await expect(past).to_contain_text("1 of 5 devices passed")
    report = past.get_by_test_id("past-report")
    await expect(report).to_have_attribute("href", f"/api/walktests/{running['id']}/report.html")
    opened = await page.request.get(hub.url + str(await report.get_attribute("href")))
    assert opened.status == 200 and "NOT PASSED" in await opened.text()
    await assert_no_sideways_scroll(page, "the walk test ended")
    await assert_accessible(page, "installer phone, the walk test ended")
    assert await page.evaluate(f"localStorage.getItem('{STORAGE_KEY}') !== null")

    # Sign out: the sign-in form, and nothing of the walk test kept in this browser.
    await page.get_by_test_id("logout-button").click()
    await expect(page.get_by_test_id("login-form")).to_be_visible()
    await expect(page.get_by_test_id("walktest")).to_be_hidden()
    await expect(page.get_by_test_id("past")).to_be_hidden()
    assert await page.evaluate(f"localStorage.getItem('{STORAGE_KEY}')") is None
    me = await page.request.get(hub.url + "/api/me")
    assert me.status == 401
    await expect(page.get_by_test_id("current-user")).to_be_hidden()
    await expect(page.get_by_text(re.compile("Walk test \\d"))).to_have_count(0)

    # A nurse who opens the page is told it is not for her, not the hub's refusal.
    await page.get_by_test_id("login-user").fill(NURSE[0])
    await page.get_by_test_id("login-password").fill(NURSE[1])
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("not-installer")).to_contain_text(
        "Your account cannot run walk tests."
    )
    await expect(page.get_by_test_id("walktest")).to_be_hidden()
    await expect(page.get_by_test_id("login-error")).to_be_hidden()
    await assert_accessible(page, "installer phone, a nurse signed in")
