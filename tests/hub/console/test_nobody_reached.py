"""The console says when nobody was reached, and never that someone was told unless the record
shows a delivery: real Chromium on a real hub, with no roster (nobody on duty)."""

from __future__ import annotations

from playwright.async_api import expect

from tests.conftest import NURSE
from tests.hub.console.test_browser import Console, console
from tests.support.browser import sign_in

__all__ = ["console"]  # the fixture, shared with the console's own browser tests


async def test_a_fall_that_reaches_nobody_is_a_banner_on_the_console_until_acknowledged(
    console: Console,
) -> None:
    page = console.page
    await sign_in(page)
    await expect(page.get_by_test_id("console")).to_be_visible()
    await console.send("radar-101", "fall")

    card = console.card("SR-E-101", "Fall")
    banner = page.get_by_test_id("nobody-banner")
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text("NOBODY REACHED")
    await expect(banner).to_contain_text("no one on duty in East wing")
    missed = card.get_by_test_id("alert-nobody-reached")
    await expect(missed).to_have_text("Step 1: nobody reached — no one on duty in East wing")
    # The fallback reached this console: the record says so, and so does the card.
    await expect(card.get_by_test_id("alert-escalation-step")).to_contain_text("Escalation step 1")
    (alert,) = await console.hub.alerts.records.page(("open",), 10)
    assert alert["nobody_reached_at"] is not None

    await card.get_by_role("button", name="Acknowledge").click()
    await expect(banner).to_be_hidden()
    acknowledged = await console.api_alert(str(alert["id"]))
    assert acknowledged["acknowledged_by"] == NURSE[0]
