"""The family app in a real browser (Debian's Chromium) on a real hub, Mosquitto and push service.

Headless Chromium has no push service, so `pushManager.subscribe` is refused: the app must say
so and keep working. The push itself is made by the hub for a subscription the test registers
for the same family user at a local push service (tests/webpush_receiver.py), which decrypts
it; the decrypted message, with its real action token, is then delivered to the app's service
worker through the DevTools protocol (`ServiceWorker.deliverPushMessage`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, async_playwright, expect

from hub.service import Hub
from tests.conftest import FAMILY, NURSE, HubFactory, PublishBatch
from tests.test_console_browser import CHROMIUM, CHROMIUM_ARGS
from tests.test_family import site_with_contacts
from tests.test_hub_ingest import eventually
from tests.webpush_receiver import Delivered, PushReceiver

SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "screenshots" / "family.png"
PHONE = {"width": 390, "height": 844}


@dataclass
class FamilyPhone:
    hub: Hub
    context: BrowserContext
    page: Page
    receiver: PushReceiver
    publish_batch: PublishBatch
    seq: int = 0

    async def send(self, item: dict[str, Any]) -> None:
        self.seq += 1
        await self.publish_batch("sunrise", "gw-east", [{"at": time.time(), **item}], seq=self.seq)

    async def open_alert(self, item: dict[str, Any]) -> int:
        before = {a["id"] for a in await self.hub.store.alerts(("open",), 100)}
        await self.send(item)

        async def opened() -> bool:
            return len(await self.hub.store.alerts(("open",), 100)) > len(before)

        await eventually(opened)
        (alert_id,) = {a["id"] for a in await self.hub.store.alerts(("open",), 100)} - before
        return int(alert_id)

    @contextlib.asynccontextmanager
    async def session(self, who: tuple[str, str]) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
        async with httpx.AsyncClient(base_url=self.hub.url) as client:
            response = await client.post(
                "/api/login", json={"username": who[0], "password": who[1]}
            )
            assert response.status_code == 200, response.text
            yield client, str(response.json()["csrf_token"])

    async def as_nurse(self, path: str) -> dict[str, Any]:
        async with self.session(NURSE) as (client, _):
            response = await client.get(path)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def log_in(self) -> None:
        await self.page.get_by_test_id("login-username").fill(FAMILY[0])
        await self.page.get_by_test_id("login-password").fill(FAMILY[1])
        await self.page.get_by_test_id("login-submit").click()


@pytest.fixture
async def receiver() -> AsyncIterator[PushReceiver]:
    async with PushReceiver() as running:
        yield running


@pytest.fixture
async def phone(
    hub_factory: HubFactory, publish_batch: PublishBatch, receiver: PushReceiver
) -> AsyncIterator[FamilyPhone]:
    hub = await hub_factory(
        sites=[site_with_contacts()],
        # Every alert goes at once to the daughter's phones (push), as a family bed's would.
        escalation={"defaults": {"steps": [{"after_min": 0, "notify": "user:daughter"}]}},
        push={"subject": "mailto:ops@example.org", "allowed_hosts": ["127.0.0.1"]},
        outbound={"allowed_hosts": ["127.0.0.1"]},  # the test push service, on loopback
        watch={"defaults": {"timezone": "UTC", "bed_exit": False, "inactivity": False}},
    )
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context(
            viewport=PHONE,
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            timezone_id="Europe/London",
        )
        await context.grant_permissions(["notifications"], origin=hub.url)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(hub.url + "/family")
        try:
            yield FamilyPhone(hub, context, page, receiver, publish_batch)
        finally:
            await browser.close()
    assert errors == [], f"JavaScript errors in the family app: {errors}"


async def registration_id(phone: FamilyPhone) -> tuple[Any, str]:
    """A DevTools session on the page and the id of the app's service worker registration."""
    cdp = await phone.context.new_cdp_session(phone.page)
    found: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def registrations(event: dict[str, Any]) -> None:
        for registration in event["registrations"]:
            scope = registration["scopeURL"]
            if scope == f"{phone.hub.url}/family" and not registration["isDeleted"]:
                if not found.done():
                    found.set_result(registration["registrationId"])

    cdp.on("ServiceWorker.workerRegistrationUpdated", registrations)
    await cdp.send("ServiceWorker.enable")
    return cdp, await asyncio.wait_for(found, 10)


async def pushed_to_daughter(phone: FamilyPhone, alert_id: int) -> Delivered:
    """The push the hub sent for `alert_id` to the daughter's test subscription, decrypted."""

    def arrived() -> bool:
        return any(p.message["alert_id"] == alert_id for p in phone.receiver.delivered)

    await eventually(arrived)
    assert phone.receiver.refused == []
    return next(p for p in phone.receiver.delivered if p.message["alert_id"] == alert_id)


SHOWN = """async () => {
  const registration = await navigator.serviceWorker.ready;
  const shown = await registration.getNotifications();
  return shown.map((n) => ({
    title: n.title, body: n.body, tag: n.tag, actions: n.actions.map((a) => [a.action, a.title]),
    requireInteraction: n.requireInteraction, alert_id: n.data && n.data.alert_id,
  }));
}"""

# The service worker's own notificationclick handler, run for a shown notification's button:
# headless Chromium has no notification centre in which to press it.
PRESS = """async ([tag, action]) => {
  const registration = await navigator.serviceWorker.ready;
  const channel = new MessageChannel();
  const answer = new Promise((resolve) => { channel.port1.onmessage = (e) => resolve(e.data); });
  registration.active.postMessage({type: "notification-action", tag, action}, [channel.port2]);
  return answer;
}"""


async def test_family_app_push_acknowledge_and_send_someone(phone: FamilyPhone) -> None:
    page = phone.page
    await phone.send({"dev": "radar-101", "reading": "occupancy", "value": True})
    await phone.send({"dev": "radar-102", "reading": "occupancy", "value": False})
    await expect(page.get_by_test_id("login-form")).to_be_visible()
    await phone.log_in()

    # Mary Jones, in bed; never Li Wei, who is another family's.
    card = page.get_by_test_id("resident-card")
    await expect(card).to_have_count(1)
    await expect(card.get_by_test_id("resident-name")).to_have_text("Mary Jones")
    await expect(card.get_by_test_id("resident-state")).to_have_text("In bed")
    await expect(card.get_by_test_id("resident-since")).to_have_text(
        re.compile(r"^since \d\d:\d\d \(.+\)$")
    )
    await expect(card.get_by_test_id("resident-place")).to_have_text("Room 101, Sunrise Care Home")
    await expect(card.get_by_test_id("contact-call").first).to_have_attribute(
        "href", "tel:+447700900123"
    )
    await expect(page.get_by_text("Li Wei")).to_have_count(0)
    await expect(page.get_by_test_id("family-user")).to_have_text("Anne Jones")

    # The service worker is registered and active, for the app's scope only.
    scope = await page.evaluate(
        "navigator.serviceWorker.ready.then(r => r.active ? r.scope : null)"
    )
    assert scope == f"{phone.hub.url}/family"

    # This browser has no push service: the app says so plainly, and goes on working.
    await page.get_by_test_id("push-enable").click()
    await expect(page.get_by_test_id("push-status")).to_contain_text(
        "This browser cannot receive push alerts"
    )
    assert await page.evaluate("window.carewatchFamily.push") == "unsupported"
    await expect(card.get_by_test_id("resident-state")).to_have_text("In bed")

    # The daughter's phone as the hub sees it: a subscription at the local push service.
    _, _, subscription = phone.receiver.new_subscription()
    async with phone.session(FAMILY) as (client, csrf):
        stored = await client.post(
            "/api/push/subscriptions", json=subscription, headers={"X-CSRF-Token": csrf}
        )
        assert stored.status_code == 201, stored.text

    fall = await phone.open_alert({"dev": "radar-101", "event": "fall", "value": True})
    push = await pushed_to_daughter(phone, fall)
    assert push.message["title"] == "Fall: Mary Jones" and push.message["action_token"]

    cdp, registration = await registration_id(phone)
    await cdp.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": phone.hub.url, "registrationId": registration, "data": json.dumps(push.message)},
    )
    await page.wait_for_function(
        "navigator.serviceWorker.ready.then(r => r.getNotifications()).then(n => n.length === 1)"
    )
    (shown,) = await page.evaluate(SHOWN)
    assert shown == {
        "title": "Fall: Mary Jones",
        "body": push.message["body"],
        "tag": f"alert-{fall}",
        "actions": [["acknowledge", "Acknowledge"], ["send_someone", "Send someone"]],
        "requireInteraction": True,
        "alert_id": fall,
    }
    # The worker told the open app, which shows the new alert without waiting for its poll.
    active = page.get_by_test_id("active-alert")
    await expect(active).to_have_attribute("data-alert-id", str(fall))
    await expect(active.get_by_test_id("active-alert-rule")).to_have_text("Fall")

    # "Acknowledge" on the notification reaches the hub with the push's own token.
    result = await page.evaluate(PRESS, [f"alert-{fall}", "acknowledge"])
    assert (result["ok"], result["status"]) == (True, 200), result
    acked = await phone.as_nurse(f"/api/alerts/{fall}")
    assert (acked["state"], acked["acknowledged_by"], acked["acknowledged_via"]) == (
        "acknowledged",
        "daughter",
        "push",
    )
    assert await page.evaluate(SHOWN) == []  # the notification closed itself
    await expect(active).to_have_attribute("data-state", "acknowledged")
    await expect(active.get_by_test_id("active-alert-status")).to_contain_text(
        "Acknowledged by Anne Jones from a notification"
    )

    # A call button; the daughter asks for someone to be sent, from the app.
    call = await phone.open_alert({"dev": "button-101", "event": "call_button", "value": True})
    await page.reload()
    called = page.locator(f'[data-testid="active-alert"][data-alert-id="{call}"]')
    await expect(called.get_by_test_id("active-alert-rule")).to_have_text("Call button pressed")
    await called.get_by_test_id("send-someone-button").click()
    await expect(called.get_by_test_id("active-alert-status")).to_contain_text(
        "Someone was asked to go (Anne Jones)"
    )
    await expect(called.get_by_test_id("send-someone-button")).to_be_disabled()
    escalation = await phone.as_nurse(f"/api/alerts/{call}/escalation")
    assert escalation["help_requested_by"] == ["Anne Jones"]
    assert (await phone.as_nurse(f"/api/alerts/{call}"))["state"] == "open"
    recent = page.get_by_test_id("recent-alert")
    await expect(recent).to_have_count(2)

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(SCREENSHOT), full_page=False)


async def test_the_manifest_makes_the_app_installable(phone: FamilyPhone) -> None:
    page = phone.page
    href = await page.get_attribute('link[rel="manifest"]', "href")
    response = await page.request.get(phone.hub.url + str(href))
    assert response.headers["content-type"] == "application/manifest+json"
    manifest = await response.json()
    assert manifest["start_url"] == "/family" and manifest["display"] == "standalone"
    for icon in manifest["icons"]:
        image = await page.request.get(phone.hub.url + icon["src"])
        assert (image.status, image.headers["content-type"]) == (200, "image/png")

    await phone.log_in()
    await expect(page.get_by_test_id("resident-card")).to_have_count(1)
    # Another family's resident, asked for by hand from the same browser: not found.
    other = await page.request.get(phone.hub.url + "/api/family/residents/E-0002")
    assert other.status == 404
