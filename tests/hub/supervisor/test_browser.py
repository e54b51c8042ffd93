"""The supervisor view in a real browser (Debian's Chromium), a real hub and Mosquitto."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright, expect

from tests.conftest import NURSE, SUPERVISOR, HubFactory, PublishBatch
from tests.hub.supervisor.test_supervisor import Record, start_record
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, sign_in
from tests.support.mosquitto import MosquittoBroker


@dataclass
class Browser:
    record: Record
    page: Page


@pytest.fixture
async def browser(
    hub_factory: HubFactory, publish_batch: PublishBatch, broker: MosquittoBroker
) -> AsyncIterator[Browser]:
    async with (
        start_record(hub_factory, publish_batch, broker) as record,
        async_playwright() as playwright,
    ):
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await chromium.new_context(
            viewport={"width": 1280, "height": 1500}, timezone_id="UTC", accept_downloads=True
        )
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(record.hub.url + "/supervisor")
        try:
            yield Browser(record, page)
        finally:
            await chromium.close()
    assert errors == [], f"JavaScript errors in the supervisor view: {errors}"


async def test_the_supervisor_sees_figures_overdue_alerts_and_downloads_csv(
    browser: Browser,
) -> None:
    page, ids = browser.page, browser.record.ids
    await expect(page.get_by_test_id("login-form")).to_be_visible()
    await sign_in(page, SUPERVISOR)
    await expect(page.get_by_test_id("supervisor")).to_be_visible()

    rows = page.get_by_test_id("figure-row")
    # total, site, zones east and west, shift night
    await expect(rows).to_have_count(5)
    east = page.locator('[data-testid="figure-row"][data-by="zone"][data-group="east"]')
    await expect(east.locator("td").nth(2)).to_have_text("East wing")
    await expect(east.get_by_test_id("share-60")).to_have_text("50.0 %")
    await expect(east.get_by_test_id("share-60")).to_have_class("num below")
    total = page.locator('[data-testid="figure-row"][data-by="total"]')
    await expect(total.locator("td").nth(3)).to_have_text("5")

    overdue = page.get_by_test_id("overdue-item")
    await expect(overdue).to_have_count(2)
    await expect(page.get_by_test_id("overdue-count")).to_have_text("2")
    fall = page.locator(f'[data-testid="overdue-item"][data-alert-id="{ids["C"]}"]')
    await expect(fall.get_by_test_id("overdue-rule")).to_have_text("Fall")
    await expect(fall.get_by_test_id("overdue-where")).to_have_text(
        "East wing · Room 102 · SR-E-102"
    )
    await expect(fall.get_by_test_id("overdue-late")).to_have_text(
        "not acknowledged — 1 min 40 s overdue"
    )
    acked = page.locator(f'[data-testid="overdue-item"][data-alert-id="{ids["E"]}"]')
    await expect(acked.get_by_test_id("overdue-late")).to_contain_text(
        "acknowledged by Night Nurse"
    )
    # The record's alerts; the hub's own "No console watching" trouble alerts come and go with
    # the consoles of the staffed zones (hub/console/presence.py) and are not this record's.
    rows = page.get_by_test_id("alert-row").filter(has_not_text="No console watching")
    await expect(rows).to_have_count(6)
    await expect(overdue.and_(page.locator(f'[data-alert-id="{ids["D"]}"]'))).to_have_count(0)
    await expect(page.get_by_test_id("tile-overdue").locator(".tile-n")).to_have_text("2")
    await expect(page.get_by_test_id("tile-offline").locator(".tile-n")).to_have_text("2")
    button = page.locator('[data-testid="device-row"][data-device="button-101"]')
    await expect(button).to_contain_text("12 % (below 20 %)")
    await expect(page.get_by_test_id("gateways-offline")).to_contain_text("gw-west")
    await expect(page.get_by_test_id("beds-row")).to_have_count(1)  # Harbour is not hers

    # The west wing's alerts reached nobody: counted per zone and shift, listed with the reason.
    await expect(page.get_by_test_id("tile-nobody").locator(".tile-n")).to_have_text("2")
    await expect(page.get_by_test_id("nobody-count")).to_have_text("2")
    await expect(page.get_by_test_id("nobody-groups")).to_have_text("West wing: 2 · night shift: 2")
    unreached = page.locator(f'[data-testid="nobody-item"][data-alert-id="{ids["B"]}"]')
    await expect(unreached.get_by_test_id("nobody-where")).to_have_text(
        "West wing · Room 201 · SR-W-201"
    )
    await expect(unreached.get_by_test_id("nobody-reason")).to_contain_text("nobody reached: ")
    await expect(unreached.get_by_test_id("nobody-shift")).to_contain_text(
        "night shift · opened 2026-11-22 03:00:30 · acknowledged by Night Nurse after 2 min"
    )
    west = page.locator('[data-testid="figure-row"][data-by="zone"][data-group="west"]')
    await expect(west.get_by_test_id("nobody-reached")).to_have_text("2")
    await expect(east.get_by_test_id("nobody-reached")).to_have_text("0")

    async with page.expect_download() as info:
        await page.get_by_test_id("export-figures").click()
    download = await info.value
    assert download.suggested_filename.startswith("carewatch-figures-all-")
    text = await asyncio.to_thread(Path(await download.path()).read_text)
    table = list(csv.DictReader(io.StringIO(text)))
    assert [(r["by"], r["group"]) for r in table] == [
        ("total", ""),
        ("site", ""),
        ("zone", "east"),
        ("zone", "west"),
        ("shift", "night"),
    ]
    assert table[0]["alerts"] == "5" and table[2]["ack_within_60s"] == "0.5"


async def test_staff_are_told_the_view_is_not_theirs(browser: Browser) -> None:
    page = browser.page
    await sign_in(page, NURSE)
    await expect(page.get_by_test_id("view-error")).to_have_text(
        "Your role cannot see the supervisor view."
    )
    await expect(page.get_by_test_id("supervisor")).to_be_hidden()
    await expect(page.get_by_test_id("figure-row")).to_have_count(0)
