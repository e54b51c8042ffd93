"""The family app in a real browser (Debian's Chromium) on a real hub, Mosquitto and push service.

Headless Chromium has no push service, so `pushManager.subscribe` is refused: the app must say
so and keep working. The push itself is made by the hub for a subscription the test registers
for the same family user at a local push service (tests/support/webpush_receiver.py), which decrypts
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
from typing import Any

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, ViewportSize, async_playwright, expect

from hub.app import Hub
from tests.conftest import FAMILY, NURSE, HubFactory, PublishBatch
from tests.hub.family.test_family import site_with_contacts
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.waiting import eventually
from tests.support.webpush_receiver import Delivered, PushReceiver

PHONE: ViewportSize = {"width": 390, "height": 844}


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
        before = {a["id"] for a in await self.hub.alerts.records.page(("open",), 100)}
        await self.send(item)

        async def opened() -> bool:
            return len(await self.hub.alerts.records.page(("open",), 100)) > len(before)

        await eventually(opened)
        (alert_id,) = {a["id"] for a in await self.hub.alerts.records.page(("open",), 100)} - before
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


CARE_SERVICE_PHONE = "+44 20 7946 0999"


def home_site() -> dict[str, Any]:
    """The small site with Mary Jones's contacts and the care service's own number."""
    return {**site_with_contacts(), "phone": CARE_SERVICE_PHONE}


@contextlib.asynccontextmanager
async def phone_browser(
    hub: Hub, receiver: PushReceiver, publish_batch: PublishBatch
) -> AsyncIterator[FamilyPhone]:
    """Headless Chromium the size of a phone, at the hub's /family, notifications allowed."""
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
    assert errors == [], f"JavaScript errors in the app: {errors}"


async def family_hub(hub_factory: HubFactory, **policy: Any) -> Hub:
    """Every alert goes at once to Mary Jones's family contacts: the daughter's phones (push)."""
    return await hub_factory(
        sites=[home_site()],
        escalation={"defaults": {"steps": [{"after_min": 0, "notify": "family_contacts"}]}}
        | ({"sites": {"sunrise": policy}} if policy else {}),
        push={"subject": "mailto:ops@example.org", "allowed_hosts": ["127.0.0.1"]},
        outbound={"allowed_hosts": ["127.0.0.1"]},  # the test push service, on loopback
        watch={"defaults": {"timezone": "UTC", "bed_exit": False, "inactivity": False}},
    )


@pytest.fixture
async def phone(
    hub_factory: HubFactory, publish_batch: PublishBatch, receiver: PushReceiver
) -> AsyncIterator[FamilyPhone]:
    hub = await family_hub(hub_factory)
    async with phone_browser(hub, receiver, publish_batch) as running:
        yield running


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


async def subscribe_for(phone: FamilyPhone, who: tuple[str, str]) -> dict[str, Any]:
    """The phone as the hub sees it: a subscription of `who` at the local push service
    (headless Chromium has no push service of its own)."""
    _, _, subscription = phone.receiver.new_subscription()
    async with phone.session(who) as (client, csrf):
        stored = await client.post(
            "/api/push/subscriptions", json=subscription, headers={"X-CSRF-Token": csrf}
        )
        assert stored.status_code == 201, stored.text
    return subscription


async def deliver_to_worker(phone: FamilyPhone, push: Delivered) -> None:
    """The real decrypted message, given to the app's service worker as a push service would."""
    active = "navigator.serviceWorker.ready.then(r => Boolean(r.active))"
    assert await phone.page.evaluate(active)  # installed and activated: it takes pushes now
    cdp, registration = await registration_id(phone)
    await cdp.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": phone.hub.url, "registrationId": registration, "data": json.dumps(push.message)},
    )
    tag = f"alert-{push.message['alert_id']}"

    async def shown() -> bool:
        return any(n["tag"] == tag for n in await phone.page.evaluate(SHOWN))

    await eventually(shown)


async def confirmed_at(phone: FamilyPhone, who: tuple[str, str], endpoint: str) -> float | None:
    async with phone.session(who) as (client, _):
        listed = (await client.get("/api/push/subscriptions")).json()["subscriptions"]
    confirmed: float | None = next(s["confirmed_at"] for s in listed if s["endpoint"] == endpoint)
    return confirmed


async def test_family_app_push_answers_and_what_the_care_service_did(phone: FamilyPhone) -> None:
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
    await expect(card.get_by_test_id("resident-place")).to_contain_text("Sunrise Care Home")
    # The care service comes first among the contacts, with its own number to call.
    contacts = card.get_by_test_id("contacts").locator("li")
    await expect(contacts.first).to_have_attribute("data-testid", "care-service")
    await expect(contacts.first).to_contain_text("Sunrise Care Home · Care service")
    await expect(card.get_by_test_id("care-service-call")).to_have_attribute(
        "href", "tel:+442079460999"
    )
    await expect(card.get_by_test_id("contact-call").first).to_have_attribute(
        "href", "tel:+447700900123"
    )
    await expect(page.get_by_text("Li Wei")).to_have_count(0)
    await expect(page.get_by_test_id("family-user")).to_have_text("Anne Jones")
    await expect(page.get_by_test_id("staff-app")).to_be_hidden()

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

    subscription = await subscribe_for(phone, FAMILY)
    fall = await phone.open_alert({"dev": "radar-101", "event": "fall", "value": True})
    push = await pushed_to_daughter(phone, fall)
    assert push.message["title"] == "Fall: Mary Jones" and push.message["action_token"]
    await deliver_to_worker(phone, push)
    (shown,) = await page.evaluate(SHOWN)
    assert shown == {
        "title": "Fall: Mary Jones",
        "body": push.message["body"],
        "tag": f"alert-{fall}",
        "actions": [["seen", "I've seen it"], ["send_someone", "Send someone"]],
        "requireInteraction": True,
        "alert_id": fall,
    }

    # The worker confirmed the push to the hub, on the subscription it came to.
    async def confirmed() -> bool:
        return await confirmed_at(phone, FAMILY, subscription["endpoint"]) is not None

    await eventually(confirmed)

    # The worker told the open app, which shows the new alert without waiting for its poll,
    # and what the care service did: nothing yet that the record shows.
    active = page.get_by_test_id("active-alert")
    await expect(active).to_have_attribute("data-alert-id", str(fall))
    await expect(active.get_by_test_id("active-alert-rule")).to_have_text("Fall")
    response = active.get_by_test_id("staff-response")
    await expect(response).to_have_attribute("data-kind", "waiting")
    await expect(response).to_have_text("No answer from the care service yet.")
    await expect(active.get_by_test_id("handling-button")).to_have_count(0)  # a care-home bed

    # "I've seen it" on the notification: recorded, and nothing else changes for the staff.
    result = await page.evaluate(PRESS, [f"alert-{fall}", "seen"])
    assert (result["ok"], result["status"]) == (True, 200), result
    assert await page.evaluate(SHOWN) == []  # the notification closed itself
    seen = await phone.as_nurse(f"/api/alerts/{fall}")
    assert (seen["state"], seen["acknowledged_by"]) == ("open", None)
    answers = [(h["action"], h["actor"], h["channel"]) for h in seen["history"]]
    assert ("family_seen", "daughter", "push") in answers
    await expect(active.get_by_test_id("family-answers")).to_have_text("Seen by Anne Jones")
    await expect(active.get_by_test_id("seen-button")).to_be_disabled()
    await expect(active).to_have_attribute("data-state", "open")

    # A nurse acknowledges at the console: the app says who, and when.
    async with phone.session(NURSE) as (client, csrf):
        acked = await client.post(f"/api/alerts/{fall}/acknowledge", headers={"X-CSRF-Token": csrf})
        assert acked.status_code == 200, acked.text
    await page.reload()
    await expect(response).to_have_attribute("data-kind", "acknowledged")
    await expect(response).to_have_text(re.compile(r"^Acknowledged by Night Nurse at \d\d:\d\d$"))

    # A call button; the daughter asks for someone to be sent. Nobody is on duty in this
    # home: the app says so, with the care service's number, and never that someone is coming.
    call = await phone.open_alert({"dev": "button-101", "event": "call_button", "value": True})
    await page.reload()
    called = page.locator(f'[data-testid="active-alert"][data-alert-id="{call}"]')
    await expect(called.get_by_test_id("active-alert-rule")).to_have_text("Call button pressed")
    await called.get_by_test_id("send-someone-button").click()
    told = called.get_by_test_id("staff-response")
    await expect(told).to_have_attribute("data-kind", "nobody_reached")
    await expect(told.get_by_test_id("staff-response-text")).to_have_text(
        f"We could not reach anyone. Call the care service now: {CARE_SERVICE_PHONE}"
    )
    await expect(told.get_by_test_id("staff-response-call")).to_have_attribute(
        "href", "tel:+442079460999"
    )
    await expect(called.get_by_test_id("family-answers")).to_have_text(
        "Anne Jones asked for someone to be sent"
    )
    await expect(called.get_by_test_id("send-someone-button")).to_be_disabled()
    await expect(
        page.get_by_text(re.compile("asked to go|is coming|on (her|his|their) way"))
    ).to_have_count(0)
    escalation = await phone.as_nurse(f"/api/alerts/{call}/escalation")
    assert escalation["help_requested_by"] == ["Anne Jones"]
    assert [n["phase"] for n in escalation["nobody_reached"]] == ["help"]
    assert (await phone.as_nurse(f"/api/alerts/{call}"))["state"] == "open"
    recent = page.get_by_test_id("recent-alert")
    await expect(recent).to_have_count(2)


async def test_a_family_responder_can_say_they_are_handling_it(
    hub_factory: HubFactory, publish_batch: PublishBatch, receiver: PushReceiver
) -> None:
    hub = await family_hub(hub_factory, family_responder=True)
    async with phone_browser(hub, receiver, publish_batch) as phone:
        page = phone.page
        await phone.log_in()
        await expect(page.get_by_test_id("resident-card")).to_have_count(1)
        await subscribe_for(phone, FAMILY)
        fall = await phone.open_alert({"dev": "radar-101", "event": "fall", "value": True})
        push = await pushed_to_daughter(phone, fall)
        # The notification offers it first (browsers show the first two buttons).
        assert [a["action"] for a in push.message["actions"]] == [
            "handling",
            "send_someone",
            "seen",
        ]
        await deliver_to_worker(phone, push)
        (shown,) = await page.evaluate(SHOWN)
        assert shown["actions"][0] == ["handling", "I'm handling it"]

        active = page.get_by_test_id("active-alert")
        await expect(active).to_have_attribute("data-alert-id", str(fall))
        await active.get_by_test_id("handling-button").click()
        await expect(active.get_by_test_id("family-answers")).to_have_text(
            re.compile(r"^Anne Jones is handling it since \d\d:\d\d$")
        )
        await expect(active.get_by_test_id("handling-button")).to_have_count(0)
        history = await phone.as_nurse(f"/api/alerts/{fall}")
        assert (history["state"], history["acknowledged_by"]) == ("open", None)
        answered = [(h["action"], h["actor"]) for h in history["history"]]
        assert ("family_handling", "daughter") in answered
        escalation = await phone.as_nurse(f"/api/alerts/{fall}/escalation")
        assert escalation["family_handling"]["by"] == "Anne Jones"


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
