"""Staff on their own phones: the app at /family by role, Web Push with "I'm going" / "I can't".

A real hub, Mosquitto, the local push service (tests/support/webpush_receiver.py) and, for the staff
member's phone, Debian's Chromium headless (the family app's browser helpers): headless
Chromium has no push service, so the hub pushes to a subscription the test registers for the
nurse at the local push service, which decrypts it, and the real message with its real token
is given to the app's service worker over the DevTools protocol.
"""

from __future__ import annotations

import copy
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from hub.access.permissions import Grant
from hub.app import Hub
from tests.conftest import (
    EAST_NURSE,
    FAMILY,
    NURSE,
    SMALL_SITE,
    HubFactory,
    PublishBatch,
    small_site_users,
)
from tests.hub.family.test_browser import (
    PRESS,
    SHOWN,
    confirmed_at,
    deliver_to_worker,
    phone_browser,
    subscribe_for,
)
from tests.support.browser import sign_in
from tests.support.waiting import eventually
from tests.support.webpush_receiver import Delivered, PushReceiver

# One shift all day and night (07:00 to 07:00): the east nurse covers the east wing, the
# night nurse the west wing and is the charge nurse.
ROSTER = {
    "sites": {
        "sunrise": {
            "shifts": [
                {
                    "name": "all day",
                    "start": "07:00",
                    "end": "07:00",
                    "charge_nurse": NURSE[0],
                    "assignments": [
                        {"user": EAST_NURSE[0], "zones": ["east"]},
                        {"user": NURSE[0], "zones": ["west"]},
                    ],
                }
            ]
        }
    }
}
# The zone's staff at once, the charge nurse after 5 minutes: a step that comes sooner came
# because someone declined.
LADDER = {
    "defaults": {
        "steps": [
            {"after_min": 0, "notify": "on_duty_zone"},
            {"after_min": 5, "notify": "charge_nurse"},
        ]
    }
}
PUSH = {"subject": "mailto:ops@example.org", "allowed_hosts": ["127.0.0.1"]}
LOOPBACK = {"allowed_hosts": ["127.0.0.1"]}  # the test push service, on loopback
WATCH = {"defaults": {"timezone": "UTC", "bed_exit": False, "inactivity": False}}
FALL = {"dev": "radar-101", "event": "fall", "value": True}  # Mary Jones, East wing
CALL = {"dev": "button-101", "event": "call_button", "value": True}
STAFF_BUTTONS = [["acknowledge", "I'm going"], ["decline", "I can't"]]


@pytest.fixture
async def receiver() -> AsyncIterator[PushReceiver]:
    async with PushReceiver() as running:
        yield running


async def pushed(receiver: PushReceiver, alert_id: int, sub_id: str) -> Delivered:
    """The push the hub sent for `alert_id` to the test subscription `sub_id`, decrypted."""

    def arrived() -> bool:
        return any(
            p.message["alert_id"] == alert_id and p.subscription == sub_id
            for p in receiver.delivered
        )

    await eventually(arrived)
    assert receiver.refused == []
    return next(
        p
        for p in receiver.delivered
        if p.message["alert_id"] == alert_id and p.subscription == sub_id
    )


def sub_id_of(subscription: dict[str, Any]) -> str:
    return str(subscription["endpoint"]).rsplit("/", 1)[1]


async def test_a_staff_phone_is_pushed_and_answers_im_going_and_i_cant(
    hub_factory: HubFactory, publish_batch: PublishBatch, receiver: PushReceiver
) -> None:
    hub = await hub_factory(
        roster=ROSTER, escalation=LADDER, push=PUSH, outbound=LOOPBACK, watch=WATCH
    )
    async with phone_browser(hub, receiver, publish_batch) as phone:
        page = phone.page
        await sign_in(phone.page, EAST_NURSE)
        # The same app, for staff: the alerts of her zones, not a relative's page.
        await expect(page.get_by_test_id("staff-app")).to_be_visible()
        await expect(page.get_by_test_id("family-app")).to_be_hidden()
        await expect(page.get_by_test_id("staff-none")).to_be_visible()
        assert await page.evaluate("window.carewatchFamily.role") == "staff"

        east_phone = await subscribe_for(phone, EAST_NURSE)
        charge_phone = await subscribe_for(phone, NURSE)  # the charge nurse's own phone

        # A fall in the East wing: the nurse on duty there gets it on her phone.
        fall = await phone.open_alert(FALL)
        push = await pushed(receiver, fall, sub_id_of(east_phone))
        assert push.message["actions"] == [
            {"action": "acknowledge", "title": "I'm going"},
            {"action": "decline", "title": "I can't"},
        ]
        assert push.urgency == "high"
        await deliver_to_worker(phone, push)
        (shown,) = await page.evaluate(SHOWN)
        assert (shown["title"], shown["actions"]) == ("Fall: Mary Jones", STAFF_BUTTONS)

        # The service worker confirmed the push: the phone is known to receive.
        async def confirmed() -> bool:
            return await confirmed_at(phone, EAST_NURSE, east_phone["endpoint"]) is not None

        await eventually(confirmed)
        assert hub.push is not None
        assert await hub.push.last_confirmed(EAST_NURSE[0]) is not None
        assert await hub.push.last_confirmed(NURSE[0]) is None  # nothing pushed to it yet

        card = page.locator(f'[data-testid="staff-alert"][data-alert-id="{fall}"]')
        await expect(card.get_by_test_id("staff-alert-title")).to_have_text("Fall")
        await expect(card.get_by_test_id("staff-alert-place")).to_contain_text("Mary Jones")
        await expect(card.get_by_test_id("cant-button")).to_be_visible()

        # "I can't" on the notification: recorded, and the charge nurse's step fires at once,
        # not 5 minutes after the fall.
        result = await page.evaluate(PRESS, [f"alert-{fall}", "decline"])
        assert (result["ok"], result["status"]) == (True, 200), result
        assert await page.evaluate(SHOWN) == []
        record = await phone.as_nurse(f"/api/alerts/{fall}/escalation")
        assert record["declined_by"] == ["east-nurse"]
        steps = [s for s in record["steps"] if s["phase"] == "escalate"]
        assert [s["n"] for s in steps] == [0, 1]
        alert = await phone.as_nurse(f"/api/alerts/{fall}")
        assert steps[1]["due_at"] < alert["opened_at"] + 5 * 60  # it did not wait its turn
        assert alert["state"] == "open"
        declined = [
            (h["actor"], h["channel"]) for h in alert["history"] if h["action"] == "declined"
        ]
        assert declined == [("east-nurse", "push")]
        charge = await pushed(receiver, fall, sub_id_of(charge_phone))
        assert charge.message["phase"] == "escalate"
        assert (await phone.as_nurse(f"/api/alerts/{fall}/escalation"))["reached"][-1]["user"] == (
            "nurse"
        )

        # The app shows it; she changes her mind and goes after all, from the app.
        await page.reload()
        await expect(card.get_by_test_id("staff-declined")).to_be_visible()
        await expect(card.get_by_test_id("cant-button")).to_have_count(0)
        await expect(card.get_by_test_id("staff-alert-status")).to_contain_text(
            "Can't go: east-nurse"
        )
        await card.get_by_test_id("going-button").click()
        await expect(card).to_have_attribute("data-state", "acknowledged")
        await expect(card.get_by_test_id("staff-alert-status")).to_contain_text("You are going")
        acked = await phone.as_nurse(f"/api/alerts/{fall}")
        assert (acked["acknowledged_by"], acked["acknowledged_via"]) == ("east-nurse", "phone")

        # A call button: "I'm going" straight from the notification.
        call = await phone.open_alert(CALL)
        push = await pushed(receiver, call, sub_id_of(east_phone))
        await deliver_to_worker(phone, push)
        result = await page.evaluate(PRESS, [f"alert-{call}", "acknowledge"])
        assert (result["ok"], result["status"]) == (True, 200), result
        going = await phone.as_nurse(f"/api/alerts/{call}")
        assert (going["state"], going["acknowledged_by"], going["acknowledged_via"]) == (
            "acknowledged",
            "east-nurse",
            "push",
        )
        called = page.locator(f'[data-testid="staff-alert"][data-alert-id="{call}"]')
        await expect(called).to_have_attribute("data-state", "acknowledged")
        await expect(called.get_by_test_id("going-button")).to_have_count(0)


async def test_a_disabled_or_out_of_scope_user_is_not_pushed(
    hub_factory: HubFactory, publish_batch: PublishBatch, receiver: PushReceiver
) -> None:
    # Every one of them named by the step, each with a phone subscribed; "leaver" is a
    # relative, one of Mary Jones's contacts, whose account was disabled.
    named = [NURSE[0], EAST_NURSE[0], "west-nurse", "installer", FAMILY[0], "li-son"]
    people = small_site_users()
    digest = next(u["password_hash"] for u in people if u["username"] == NURSE[0])
    people += [
        {"username": "west-nurse", "password_hash": digest, "role": "staff"}
        | {"zones": ["sunrise/west"]},
        {"username": "li-son", "password_hash": digest, "role": "family"}
        | {"residents": ["E-0002"]},
    ]
    site = copy.deepcopy(SMALL_SITE)
    mary = site["zones"][0]["rooms"][0]["beds"][0]["resident"]
    mary["contacts"] = [{"name": "Old Friend", "relation": "other", "user": "leaver"}]
    notify = [*(f"user:{u}" for u in named), "family_contacts"]
    hub = await hub_factory(
        users=people,
        sites=[site],
        escalation={"defaults": {"steps": [{"after_min": 0, "notify": notify}]}},
        push=PUSH,
        outbound=LOOPBACK,
        watch=WATCH,
    )
    assert hub.users is not None
    leaver = Grant(role="family", residents=("E-0001",))
    await hub.users.create(
        "leaver", "leaver-pw", leaver, display_name=None, actor="t", at=time.time()
    )
    named.append("leaver")
    assert hub.push is not None and hub.users is not None
    subscriptions: dict[str, str] = {}
    for username in named:
        sub_id, _, subscription = receiver.new_subscription()
        keys = subscription["keys"]
        await hub.push.subscribe(
            username, subscription["endpoint"], keys["p256dh"], keys["auth"], "test-phone"
        )
        subscriptions[sub_id] = username
    await hub.users.set_disabled("leaver", True, actor="test", at=time.time())

    await publish_batch("sunrise", "gw-east", [{**FALL, "at": time.time()}], seq=1)

    async def fall_attempts() -> list[dict[str, Any]]:
        async with hub.store.db.execute(
            "SELECT recipient, result, detail FROM notifications WHERE channel = 'push' "
            "AND phase = 'escalate' AND result != 'pending' ORDER BY recipient"
        ) as cur:
            return [dict(row) for row in await cur.fetchall()]

    async def settled() -> bool:
        return len(await fall_attempts()) == len(named)

    await eventually(settled)
    attempts = {row["recipient"]: (row["result"], row["detail"]) for row in await fall_attempts()}
    assert attempts == {
        NURSE[0]: ("delivered", "1 of 1 subscriptions"),
        EAST_NURSE[0]: ("delivered", "1 of 1 subscriptions"),
        FAMILY[0]: ("delivered", "1 of 1 subscriptions"),
        "west-nurse": ("failed", "not pushed: the alert is outside west-nurse's scope"),
        "Old Friend": ("failed", "not pushed: leaver is not an active user"),
        "installer": ("failed", "not pushed: an installer does not answer alerts"),
        "li-son": ("failed", "not pushed: the alert is outside li-son's scope"),
    }
    # Only the three who may answer it got anything at all, each with their own buttons.
    got = {subscriptions[p.subscription]: p.message["actions"] for p in receiver.delivered}
    assert sorted(got) == sorted([NURSE[0], EAST_NURSE[0], FAMILY[0]])
    assert [a["action"] for a in got[NURSE[0]]] == ["acknowledge", "decline"]
    assert [a["action"] for a in got[FAMILY[0]]] == ["seen", "send_someone"]


async def test_decline_from_the_api_is_for_staff_in_scope_and_open_alerts(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    hub = await hub_factory(roster=ROSTER, escalation=LADDER, watch=WATCH)
    await publish_batch("sunrise", "gw-east", [{**FALL, "at": time.time()}], seq=1)

    async def opened() -> bool:
        return bool(await hub.alerts.records.page(("open",), 10))

    await eventually(opened)
    (alert,) = await hub.alerts.records.page(("open",), 10)
    fall = int(alert["id"])
    path = f"/api/alerts/{fall}/decline"
    answers = {}
    for who in (FAMILY, ("installer", "installer-pw"), ("supervisor", "supervisor-pw")):
        answers[who[0]] = await post_as(hub, who, path)
    west = await staff_of_west_only(hub)
    answers["west"] = await post_as(hub, west, path)
    answers["missing"] = await post_as(hub, EAST_NURSE, "/api/alerts/999999/decline")
    assert {who: r.status_code for who, r in answers.items()} == {
        "daughter": 403,
        "installer": 403,
        "supervisor": 200,  # a supervisor of the site may say so too
        "west": 404,  # outside her zones: as if it did not exist
        "missing": 404,
    }
    mine = await post_as(hub, EAST_NURSE, path, {"channel": "phone"})
    assert mine.status_code == 200, mine.text
    assert mine.json()["declined_by"] == ["supervisor", "east-nurse"]
    history = await hub.store.audit.for_alert(fall)
    declined = [(h["actor"], h["channel"]) for h in history if h["action"] == "declined"]
    assert declined == [("supervisor", "console"), ("east-nurse", "phone")]
    assert hub.escalation is not None
    steps = (await hub.escalation.history(fall))["steps"]
    assert [s["n"] for s in steps if s["phase"] == "escalate"] == [0, 1, 2]  # one per decline

    acked = await post_as(hub, NURSE, f"/api/alerts/{fall}/acknowledge")
    assert acked.status_code == 200, acked.text
    late = await post_as(hub, EAST_NURSE, path)
    assert late.status_code == 409
    assert "only an open alert can be declined" in late.json()["detail"]


async def post_as(
    hub: Hub, who: tuple[str, str], path: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=hub.url) as client:
        login = await client.post("/api/login", json={"username": who[0], "password": who[1]})
        assert login.status_code == 200, login.text
        csrf = login.json()["csrf_token"]
        return await client.post(path, json=body, headers={"X-CSRF-Token": csrf})


async def staff_of_west_only(hub: Hub) -> tuple[str, str]:
    """A staff member whose zones are the West wing only."""
    assert hub.users is not None
    grant = Grant(role="staff", zones=("sunrise/west",))
    await hub.users.create(
        "west-nurse", "west-nurse-pw", grant, display_name=None, actor="t", at=time.time()
    )
    return ("west-nurse", "west-nurse-pw")
