"""The staff console as an alarm panel, in Debian's Chromium on a real hub and Mosquitto: never
silent (the overlay that arms the sound, and a kiosk that arms itself), the order of the queue
and its urgency steps, a tone and an icon per kind of alarm, the smoke evacuation banner on every
view, and a start while the hub cannot be reached. Sound is observed through
`window.carewatchSound.played`, the page's record of the patterns it actually scheduled on its
AudioContext; every state visited passes axe-core."""

from __future__ import annotations

import re
import time
from typing import Any

from playwright.async_api import Locator, Page, expect

from hub.alerts.lifecycle import Priority, Trigger
from hub.app import Hub
from tests.conftest import NURSE
from tests.hub.console.test_browser import Console, console
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, assert_accessible, sign_in
from tests.support.tcpproxy import TcpProxy

__all__ = ["console"]  # the fixture, shared with the console's own browser tests

OFFLINE_BANNER = "No contact with the hub — new alerts are not reaching this screen."


async def played(page: Page) -> list[dict[str, Any]]:
    """The patterns the page has played, oldest first: {pattern, level, reason}."""
    return list(await page.evaluate("window.carewatchSound.played"))


async def wait_played(page: Page, **wanted: Any) -> None:
    """Until the page has played a pattern with these fields."""
    await page.wait_for_function(
        """(wanted) => window.carewatchSound.played.some(
             (p) => Object.entries(wanted).every(([k, v]) => p[k] === v))""",
        arg=wanted,
    )


async def assert_in_view(page: Page, card: Locator) -> None:
    """The card's name and its Acknowledge button are on screen, under the page's header (which
    stays at the top), not scrolled away or hidden behind it."""
    header = await page.get_by_test_id("page-head").bounding_box()
    viewport = page.viewport_size
    assert header is not None and viewport is not None
    for part in (card.get_by_test_id("alert-rule"), card.get_by_test_id("acknowledge-button")):
        box = await part.bounding_box()
        assert box is not None
        assert header["y"] + header["height"] <= box["y"], (header, box)
        assert box["y"] + box["height"] <= viewport["height"], (viewport, box)


async def raise_alert(hub: Hub, rule: str, priority: Priority, device: str) -> None:
    """An alert of a rule whose sensors take minutes or a night to trip (a door at night, vital
    signs, out of bed, a long stay), opened through the hub's alert service as its rules do."""
    place = hub.registry.placement(device)
    assert place is not None
    now = time.time()
    await hub.alerts.trigger(
        Trigger(rule, priority, place.site, place.subject, now, now, placement=place)
    )


async def test_after_a_reload_the_overlay_lights_up_and_the_first_tap_plays_the_alarm(
    console: Console,
) -> None:
    page = console.page
    await sign_in(page)
    await expect(page.get_by_test_id("connection-state")).to_have_text("Live")
    await console.send("radar-101", "fall")
    await expect(console.card("SR-E-101", "Fall")).to_have_attribute("data-state", "open")

    # A tablet that reloads itself at night: signed in, but it may not play sound yet.
    await page.reload()
    overlay = page.get_by_role("alertdialog", name="Tap anywhere to arm the alarm sound")
    await expect(overlay).to_be_visible()
    await expect(overlay).to_have_attribute("data-alarm", "alarm")  # the screen lights up
    waiting = page.get_by_test_id("arm-waiting")
    await expect(waiting).to_have_text(
        "1 alarm is waiting: Fall — SR-E-101. Tap to hear it and see the queue."
    )
    await expect(page.get_by_test_id("arm-button")).to_be_focused()
    # Nothing behind it can be reached, by mouse or keyboard.
    assert await page.evaluate("document.querySelector('main').inert")
    assert await page.evaluate("document.querySelector('header').inert")

    # A call arrives before anyone taps: the overlay counts it; nothing could sound.
    await console.send("button-101", "call_button")
    await expect(waiting).to_contain_text("2 alarms are waiting: Fall — SR-E-101; Call button")
    assert await played(page) == []
    assert await page.evaluate("window.carewatchConsole.alarmsMissed") >= 1
    await assert_accessible(page, "console, the overlay with two alarms waiting")

    # The first key press arms the sound and plays the longest-waiting alarm at once.
    await page.keyboard.press("Enter")
    await expect(overlay).to_be_hidden()
    await wait_played(page, pattern="fall", reason="armed")
    await expect(page.get_by_test_id("sound-toggle")).to_have_text("Sound on — tap to test")
    # The hub knows this console is watching (Contract A).
    response = await page.request.get(f"{console.hub.url}/api/consoles")
    assert response.ok, await response.text()
    consoles = (await response.json())["consoles"]
    assert any(c["armed"] and c["user"] == NURSE[0] for c in consoles), consoles

    # A kiosk whose browser may play sound from the start arms itself: no overlay.
    browser = page.context.browser
    assert browser is not None
    kiosk = await browser.browser_type.launch(
        executable_path=CHROMIUM,
        args=[*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"],
    )
    try:
        station = await (await kiosk.new_context()).new_page()
        await station.goto(console.hub.url + "/")
        await sign_in(station)
        await expect(station.get_by_test_id("connection-state")).to_have_text("Live")
        await station.reload()
        await expect(station.get_by_test_id("alert-card")).to_have_count(2)
        await expect(station.get_by_test_id("arm-overlay")).to_be_hidden()
        assert await station.evaluate("window.carewatchConsole.soundState") == "on"
    finally:
        await kiosk.close()


async def test_the_queue_in_order_with_its_urgency_steps_kinds_and_the_smoke_banner(
    console: Console,
) -> None:
    page, hub = console.page, console.hub
    await page.set_viewport_size({"width": 1024, "height": 768})  # the tablet
    await page.clock.install()
    await sign_in(page)
    await expect(page.get_by_test_id("connection-state")).to_have_text("Live")

    # The night so far, oldest first: each alarm sounds its own pattern as it arrives.
    await console.send("radar-102", "fall")
    fall = console.card("SR-E-102", "Fall")
    await expect(fall).to_have_attribute("data-state", "open")
    await console.send("button-101", "call_button")
    call = console.card("SR-E-101", "Call button")
    await call.get_by_test_id("acknowledge-button").click()
    await expect(call).to_have_attribute("data-state", "acknowledged")
    await console.send("smoke-101", "smoke", kind="reading")
    await console.send("radar-101", "tamper")
    await console.wait_for_active_alerts(4)
    await raise_alert(hub, "prolonged_stay", "routine", "radar-102")
    await raise_alert(hub, "door_at_night", "emergency", "smoke-101")
    await raise_alert(hub, "vital_signs", "emergency", "radar-101")
    await raise_alert(hub, "bed_exit", "emergency", "radar-101")

    # Unanswered first (emergency, routine, trouble), the longest-waiting on top; then the
    # acknowledged call, saying who is on the way.
    order = [
        ("Fall", "fall"),
        ("Smoke alarm", "evacuation"),
        ("Door opened at night", "door"),
        ("Vital signs", "vitals"),
        ("Not back in bed", "bed_exit"),
        ("Long stay in the bathroom", "general"),
        ("Device tampered with", "trouble"),
        ("Call button", "call"),
    ]
    cards = page.get_by_test_id("alert-card")
    await expect(cards.get_by_test_id("alert-rule")).to_have_text([word for word, _ in order])
    for n, (_, kind) in enumerate(order):  # an icon beside every word
        await expect(cards.nth(n).get_by_test_id("alert-icon")).to_have_attribute("data-kind", kind)
    await expect(cards.nth(6)).to_have_attribute("data-priority", "trouble")
    await expect(call.get_by_test_id("alert-acked")).to_have_text(
        "Night Nurse acknowledged just now on a console"
    )
    await assert_in_view(page, fall)
    patterns = {p["pattern"] for p in await played(page) if p["reason"] == "new"}
    assert patterns >= {"fall", "call", "evacuation", "trouble", "general", "door", "vitals"}
    await wait_played(page, pattern="bed_exit", reason="new")

    # The header and the screen's edge flash for the unanswered alarms.
    body = page.locator("body")
    await expect(body).to_have_attribute("data-alarm", "new")
    await expect(page.get_by_test_id("alarm-state")).to_have_text("6 ALARMS WAITING")
    await expect(fall.get_by_test_id("alert-state")).to_have_text("NEW")

    # Smoke: the evacuation banner over every view of the site.
    smoke_banner = page.get_by_test_id("smoke-banner")
    await expect(smoke_banner).to_contain_text("FIRE ALARM — EVACUATION")
    await expect(smoke_banner).to_contain_text("Sunrise Care Home")
    await expect(smoke_banner).to_be_in_viewport()
    await assert_accessible(page, "console, every kind of alarm and the smoke banner")
    await page.get_by_test_id("tab-handover").click()
    await expect(page.get_by_test_id("handover-page")).to_be_visible()
    await expect(smoke_banner).to_be_in_viewport()
    await page.get_by_test_id("tab-board").click()
    await console.tile("SR-E-101").get_by_test_id("tile-link").click()
    await expect(page.get_by_test_id("resident-name")).to_have_text("Mary Jones")
    await expect(smoke_banner).to_be_in_viewport()
    await assert_in_view(page, fall)

    # A minute unanswered: the card, the header and the tone step up.
    await page.clock.fast_forward(61_000)
    await expect(fall.get_by_test_id("alert-state")).to_have_text("Waiting 1 min")
    await expect(fall).to_have_attribute("data-urgency", "waiting")
    await expect(body).to_have_attribute("data-alarm", "waiting")
    await expect(page.get_by_test_id("alarm-state")).to_have_text(
        "6 ALARMS WAITING · waiting 1 min"
    )
    await wait_played(page, level=1)
    # Three minutes: overdue.
    await page.clock.fast_forward(120_000)
    await expect(fall.get_by_test_id("alert-state")).to_have_text("OVERDUE 3 min")
    await expect(body).to_have_attribute("data-alarm", "overdue")
    await wait_played(page, level=2)
    await expect(call.get_by_test_id("alert-state")).to_have_text("ACKNOWLEDGED")
    await expect(cards.nth(6).get_by_test_id("alert-state")).to_have_text("NEW")  # trouble
    await assert_accessible(page, "console, overdue alarms")

    # Acknowledged, the smoke banner goes; with every alarm acknowledged the flashing stops.
    await console.card("Room 101", "Smoke alarm").get_by_test_id("acknowledge-button").click()
    await expect(smoke_banner).to_be_hidden()
    summary = page.get_by_test_id("queue-summary")
    for waiting in range(5, 0, -1):
        await expect(summary).to_have_text(re.compile(f"^{waiting + 1} waiting"))
        await cards.nth(0).get_by_test_id("acknowledge-button").click()
    await expect(summary).to_have_text("1 waiting · 7 being handled")
    await expect(cards.nth(0).get_by_test_id("alert-rule")).to_have_text("Device tampered with")
    await expect(body).to_have_attribute("data-alarm", "trouble")
    await expect(page.get_by_test_id("alarm-state")).to_be_hidden()


async def test_losing_the_hub_sounds_and_a_start_without_it_shows_the_last_alerts(
    console: Console,
) -> None:
    page = console.page
    async with TcpProxy("127.0.0.1", console.hub.web_port) as proxy:
        # The console talks to the hub through a link the test can break.
        await page.goto(f"http://127.0.0.1:{proxy.port}/")
        await sign_in(page)
        await expect(page.get_by_test_id("connection-state")).to_have_text("Live")
        await console.send("radar-101", "fall")
        fall = console.card("SR-E-101", "Fall")
        await expect(fall).to_have_attribute("data-state", "open")
        await page.evaluate("navigator.serviceWorker.ready")  # the shell is kept for a start

        await proxy.pause()
        proxy.cut()
        banner = page.get_by_test_id("connection-banner")
        await expect(banner).to_be_visible()
        await wait_played(page, pattern="lost")

        # Reloaded while the hub cannot be reached: the last known alerts, read-only.
        await page.reload()
        await expect(page.get_by_test_id("arm-overlay")).to_be_visible()
        await expect(page.get_by_test_id("arm-waiting")).to_contain_text(OFFLINE_BANNER)
        await expect(banner).to_have_text(OFFLINE_BANNER)
        await expect(fall).to_have_attribute("data-state", "open")
        await expect(fall.get_by_test_id("alert-offline")).to_have_text(
            "Not available while the hub is unreachable"
        )
        await expect(fall.get_by_role("button", name="Acknowledge")).to_be_disabled()
        await expect(page.get_by_test_id("queue-summary")).to_contain_text("As last known at")
        await assert_accessible(page, "console, started without the hub, before the tap")
        await page.get_by_test_id("arm-button").click()
        await expect(page.get_by_test_id("arm-overlay")).to_be_hidden()
        await wait_played(page, pattern="lost", reason="lost")
        await wait_played(page, pattern="fall", reason="armed")
        await assert_accessible(page, "console, started without the hub")

        # The hub is back: the console goes live by itself.
        await proxy.resume()
        await expect(page.get_by_test_id("connection-state")).to_have_text("Live", timeout=15_000)
        await expect(banner).to_be_hidden()
        await expect(fall.get_by_test_id("acknowledge-button")).to_be_enabled()
        await expect(fall.get_by_test_id("alert-offline")).to_have_count(0)
