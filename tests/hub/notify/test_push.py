"""Web Push from a real hub to a real push service on loopback.

The test makes a subscription the way a browser does (its own P-256 keys and auth secret) and
gives it to the hub through the API. A fall published through Mosquitto opens an alert whose
first escalation step names the subscribed user; pywebpush sends it, and the receiver checks
the VAPID signature and decrypts the message (tests/support/webpush_receiver.py).
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from hub.access.auth import hash_password
from hub.app import Hub
from hub.notify.push import MAX_SUBSCRIPTIONS_PER_USER, ActionTokens, PushError
from tests.conftest import SMALL_SITE, HubFactory, PublishBatch
from tests.support.clock import FakeClock
from tests.support.waiting import eventually
from tests.support.webpush_receiver import BrowserKeys, PushReceiver

PASSWORD = "push-test-password"
SUBJECT = "mailto:ops@example.org"
EMERGENCY_TTL_S = 120
# The test push service runs on loopback: allowed explicitly, as an administrator would.
LOOPBACK = {"allowed_hosts": ["127.0.0.1"]}
FALL = {"dev": "radar-101", "event": "fall", "value": True}
CALL = {"dev": "button-101", "event": "call_button", "value": True}


def users() -> list[dict[str, Any]]:
    digest = hash_password(PASSWORD)
    return [
        {
            "username": "carer",
            "display_name": "Carer",
            "password_hash": digest,
            "role": "staff",
            "sites": ["*"],
        },
        {
            "username": "anna",
            "display_name": "Anna Jones",
            "password_hash": digest,
            "role": "family",
            "residents": ["E-0001"],
        },
    ]


@pytest.fixture
async def receiver() -> AsyncIterator[PushReceiver]:
    async with PushReceiver() as running:
        yield running


class Ward:
    """A hub whose every alert goes at once to the family user `anna`, and her phone."""

    def __init__(self, hub: Hub, publish: PublishBatch, receiver: PushReceiver) -> None:
        self.hub = hub
        self.receiver = receiver
        self._publish = publish
        self._seq = 0

    @contextlib.asynccontextmanager
    async def session(self, user: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
        """A client logged in as `user`, and its CSRF token."""
        async with httpx.AsyncClient(base_url=self.hub.url) as client:
            response = await client.post(
                "/api/login", json={"username": user, "password": PASSWORD}
            )
            assert response.status_code == 200, response.text
            yield client, str(response.json()["csrf_token"])

    async def subscribe(self, user: str = "anna") -> tuple[str, BrowserKeys, dict[str, Any]]:
        sub_id, keys, subscription = self.receiver.new_subscription()
        async with self.session(user) as (client, csrf):
            response = await client.post(
                "/api/push/subscriptions",
                json=subscription,
                headers={"X-CSRF-Token": csrf, "User-Agent": "test-phone/1.0"},
            )
        assert response.status_code == 201, response.text
        return sub_id, keys, subscription

    async def trigger(self, item: dict[str, Any]) -> int:
        """Publish one item from gw-east; the id of the alert it opens."""
        self._seq += 1
        before = {a["id"] for a in await self.hub.alerts.records.page(("open",), 100)}
        await self._publish("sunrise", "gw-east", [{**item, "at": time.time()}], seq=self._seq)

        async def opened() -> bool:
            return len(await self.hub.alerts.records.page(("open",), 100)) > len(before)

        await eventually(opened)
        (alert_id,) = {a["id"] for a in await self.hub.alerts.records.page(("open",), 100)} - before
        return int(alert_id)

    async def push_attempts(self, alert_id: int) -> list[dict[str, Any]]:
        """The alert's push attempts once delivered, from the hub's own escalation record."""

        async def settled() -> bool:
            async with self.hub.store.db.execute(
                "SELECT count(*) FROM notifications WHERE alert_id = ? AND channel = 'push' "
                "AND result != 'pending'",
                (alert_id,),
            ) as cur:
                row = await cur.fetchone()
            return row is not None and row[0] > 0

        await eventually(settled)
        async with self.session("carer") as (client, _):
            response = await client.get(f"/api/alerts/{alert_id}/escalation")
        assert response.status_code == 200, response.text
        steps = response.json()["steps"]
        return [a for step in steps for a in step["attempts"] if a["channel"] == "push"]

    async def subscriptions(self, user: str = "anna") -> list[dict[str, Any]]:
        async with self.session(user) as (client, _):
            response = await client.get("/api/push/subscriptions")
        assert response.status_code == 200, response.text
        return list(response.json()["subscriptions"])

    async def alert(self, alert_id: int) -> dict[str, Any]:
        async with self.session("carer") as (client, _):
            response = await client.get(f"/api/alerts/{alert_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())


@pytest.fixture
async def ward(
    hub_factory: HubFactory, publish_batch: PublishBatch, receiver: PushReceiver
) -> Ward:
    hub = await hub_factory(
        users=users(),
        escalation={"defaults": {"steps": [{"after_min": 0, "notify": "user:anna"}]}},
        push={
            "subject": SUBJECT,
            "emergency_ttl_s": EMERGENCY_TTL_S,
            "allowed_hosts": ["127.0.0.1", "fcm.googleapis.com", "*.notify.windows.com"],
        },
        outbound=LOOPBACK,
        watch={"defaults": {"timezone": "UTC"}},
    )
    return Ward(hub, publish_batch, receiver)


async def test_a_fall_reaches_the_subscribed_phone_signed_and_encrypted(ward: Ward) -> None:
    async with ward.session("anna") as (client, _):
        key = (await client.get("/api/push/key")).json()["public_key"]
    sub_id, _, subscription = await ward.subscribe()
    (listed,) = await ward.subscriptions()
    assert (listed["endpoint"], listed["user_agent"]) == (
        subscription["endpoint"],
        "test-phone/1.0",
    )
    assert "keys" not in listed and "p256dh" not in listed

    alert_id = await ward.trigger(FALL)
    await ward.receiver.wait(1)

    assert ward.receiver.refused == []
    (push,) = ward.receiver.delivered
    assert push.subscription == sub_id
    assert (push.urgency, push.ttl, push.topic) == ("high", EMERGENCY_TTL_S, f"alert-{alert_id}")
    assert push.vapid_key == key  # signed with the key browsers subscribe with
    assert push.claims["aud"] == ward.receiver.origin and push.claims["sub"] == SUBJECT
    message = push.message
    assert {k: message[k] for k in ("alert_id", "rule", "priority", "resident_name", "bed")} == {
        "alert_id": alert_id,
        "rule": "fall",
        "priority": "emergency",
        "resident_name": "Mary Jones",
        "bed": "SR-E-101",
    }
    assert message["title"] == "Fall: Mary Jones"
    assert message["body"].startswith("Alert: fall (emergency) Mary Jones")
    assert message["url"] == f"/family#alert={alert_id}"
    assert message["action_token"]
    assert push.size < 3072

    (attempt,) = await ward.push_attempts(alert_id)
    assert (attempt["recipient"], attempt["result"], attempt["detail"]) == (
        "anna",
        "delivered",
        "1 of 1 subscriptions",
    )
    (stored,) = await ward.subscriptions()
    assert (stored["last_result"], stored["failures"]) == ("201", 0)


async def test_a_call_button_is_urgent_and_a_gone_subscription_is_removed(ward: Ward) -> None:
    gone_id, _, _ = await ward.subscribe()
    kept_id, _, kept = await ward.subscribe()
    ward.receiver.answer_gone(gone_id)

    first = await ward.trigger(CALL)
    await ward.receiver.wait(2)
    (attempt,) = await ward.push_attempts(first)
    assert attempt["result"] == "delivered"
    assert attempt["detail"] == (
        "1 of 2 subscriptions; failed: 410; 1 expired subscription(s) removed"
    )
    assert [d.subscription for d in ward.receiver.delivered] == [kept_id]
    assert ward.receiver.delivered[0].urgency == "high"
    assert [s["endpoint"] for s in await ward.subscriptions()] == [kept["endpoint"]]

    ward.receiver.answer_gone(kept_id)
    second = await ward.trigger(FALL)
    await ward.receiver.wait(3)
    (attempt,) = await ward.push_attempts(second)
    assert (attempt["result"], attempt["detail"]) == (
        "failed",
        "0 of 1 subscriptions; failed: 410; 1 expired subscription(s) removed",
    )
    assert await ward.subscriptions() == []
    assert ward.hub.push is not None and not ward.hub.push.has_subscription("anna")
    assert ward.hub.push.counters()["removed_gone"] == 2


async def test_a_relatives_notification_answers_for_the_family_with_its_token(
    ward: Ward,
) -> None:
    await ward.subscribe()
    alert_id = await ward.trigger(FALL)
    await ward.receiver.wait(1)
    message = ward.receiver.delivered[0].message
    token = message["action_token"]
    # A care-home bed: the family is no responder, so no "I'm handling it".
    assert message["actions"] == [
        {"action": "seen", "title": "I've seen it"},
        {"action": "send_someone", "title": "Send someone"},
    ]

    async def press(phone: httpx.AsyncClient, token: str, action: str) -> httpx.Response:
        return await phone.post("/api/push/action", json={"token": token, "action": action})

    async with httpx.AsyncClient(base_url=ward.hub.url) as phone:  # no session: the token
        tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
        refused = await press(phone, tampered, "seen")
        assert refused.status_code == 403
        assert refused.json()["detail"] == "the action token is not valid"
        assert ward.hub.push is not None
        removed_user = ward.hub.push.tokens.issue(alert_id, "left-last-month")
        stale = await press(phone, removed_user, "seen")
        assert stale.status_code == 403
        assert stale.json()["detail"] == "the account this notification was sent to is not active"

        seen = await press(phone, token, "seen")
        assert seen.status_code == 200, seen.text
        assert (seen.json()["action"], seen.json()["alert_id"]) == ("seen", alert_id)
        assert seen.json()["family_seen_by"] == ["Anna Jones"]
        # An older notification's "Acknowledge": the relative has seen it, nothing more.
        old_button = await press(phone, token, "acknowledge")
        assert (old_button.status_code, old_button.json()["action"]) == (200, "seen")
        # Staff answers are not the family's; nor is "I'm handling it" on a care-home bed.
        declined = await press(phone, token, "decline")
        assert declined.status_code == 403
        assert "I've seen it" in declined.json()["detail"]
        handling = await press(phone, token, "handling")
        assert handling.status_code == 409

    alert = await ward.alert(alert_id)
    assert (alert["state"], alert["acknowledged_by"]) == ("open", None)  # staff still answer
    answers = [(h["action"], h["actor"], h["channel"]) for h in alert["history"]]
    assert ("family_seen", "anna", "push") in answers
    assert not [a for a in answers if a[0] in ("acknowledged", "declined", "family_handling")]
    async with ward.hub.store.db.execute(
        "SELECT actor, channel, detail FROM audit WHERE action = 'push_action' ORDER BY id"
    ) as cur:
        rows = [tuple(row) for row in await cur.fetchall()]
    detail = json.dumps({"alert_id": alert_id, "action": "seen"})
    assert rows == [("anna", "push", detail), ("anna", "push", detail)]


async def test_the_service_worker_confirms_a_push_on_its_subscription(ward: Ward) -> None:
    assert ward.hub.push is not None
    push = ward.hub.push
    _, _, phone_sub = await ward.subscribe()
    _, _, tablet_sub = await ward.subscribe()
    assert await push.last_confirmed("anna") is None
    assert [s["confirmed_at"] for s in await ward.subscriptions()] == [None, None]

    alert_id = await ward.trigger(FALL)
    await ward.receiver.wait(2)
    by_endpoint = {
        f"{ward.receiver.origin}/push/{d.subscription}": d.message for d in ward.receiver.delivered
    }
    # Each subscription's push carries its own token, naming that subscription.
    phone_token = by_endpoint[phone_sub["endpoint"]]["action_token"]
    assert phone_token != by_endpoint[tablet_sub["endpoint"]]["action_token"]
    claim = push.tokens.read(phone_token)
    assert (claim.alert_id, claim.username) == (alert_id, "anna")

    async with httpx.AsyncClient(base_url=ward.hub.url) as worker:  # no session: the token
        receipt = await worker.post(
            "/api/push/action", json={"token": phone_token, "action": "received"}
        )
        assert receipt.status_code == 200, receipt.text
        confirmed_at = receipt.json()["confirmed_at"]
        assert receipt.json()["action"] == "received"
        listed = {s["endpoint"]: s["confirmed_at"] for s in await ward.subscriptions()}
        assert listed == {phone_sub["endpoint"]: confirmed_at, tablet_sub["endpoint"]: None}
        assert await push.last_confirmed("anna") == confirmed_at

        # An older token names no subscription: the worker gives its endpoint, the user's own.
        old = push.tokens.issue(alert_id, "anna")
        nameless = await worker.post("/api/push/action", json={"token": old, "action": "received"})
        assert nameless.status_code == 422
        by_endpoint_receipt = await worker.post(
            "/api/push/action",
            json={"token": old, "action": "received", "endpoint": tablet_sub["endpoint"]},
        )
        assert by_endpoint_receipt.status_code == 200, by_endpoint_receipt.text
        carers = push.tokens.issue(alert_id, "carer")  # not the carer's subscription
        foreign = await worker.post(
            "/api/push/action",
            json={"token": carers, "action": "received", "endpoint": phone_sub["endpoint"]},
        )
        assert foreign.status_code == 404
        forged = await worker.post(
            "/api/push/action", json={"token": phone_token + "x", "action": "received"}
        )
        assert forged.status_code == 403
    assert all(s["confirmed_at"] for s in await ward.subscriptions())
    # A receipt is not an answer: the alert and the audit of answers are untouched.
    alert = await ward.alert(alert_id)
    assert alert["state"] == "open"
    assert "push_action" not in {h["action"] for h in alert["history"]}


async def test_subscriptions_the_hub_must_not_use_are_refused(ward: Ward) -> None:
    keys = BrowserKeys.new()
    good = keys.subscription(f"{ward.receiver.origin}/push/x")
    wrong_curve_point = "BA" + "A" * 85  # 65 bytes, 0x04 then zeros: not on P-256
    cases: dict[str, dict[str, Any]] = {
        "internal host": {**good, "endpoint": "https://10.0.0.5/admin"},
        "user info hiding the host": {**good, "endpoint": "https://fcm.googleapis.com@10.0.0.5/"},
        "http to a push service": {**good, "endpoint": "http://fcm.googleapis.com/fcm/send/x"},
        "http under a wildcard": {**good, "endpoint": "http://db5.notify.windows.com/w/?x"},
        "not a url": {**good, "endpoint": "https://127.0.0.1/push/a b"},
        "p256dh not base64url": {**good, "keys": {**good["keys"], "p256dh": "%" * 87}},
        "p256dh too short": {**good, "keys": {**good["keys"], "p256dh": good["keys"]["auth"]}},
        "p256dh off the curve": {**good, "keys": {**good["keys"], "p256dh": wrong_curve_point}},
        "auth too long": {**good, "keys": {**good["keys"], "auth": keys.p256dh}},
        "no keys": {"endpoint": good["endpoint"]},
        "unknown field": {**good, "extra": 1},
    }
    async with ward.session("anna") as (client, csrf):
        statuses = {
            name: (
                await client.post(
                    "/api/push/subscriptions", json=body, headers={"X-CSRF-Token": csrf}
                )
            ).status_code
            for name, body in cases.items()
        }
        internal = await client.post(
            "/api/push/subscriptions", json=cases["internal host"], headers={"X-CSRF-Token": csrf}
        )
        fine = await client.post(
            "/api/push/subscriptions", json=good, headers={"X-CSRF-Token": csrf}
        )
        windows = {**good, "endpoint": "https://db5.notify.windows.com/w/?token=abc"}
        under = await client.post(
            "/api/push/subscriptions", json=windows, headers={"X-CSRF-Token": csrf}
        )
    assert statuses == dict.fromkeys(cases, 422)
    assert "'10.0.0.5' is not allowed" in internal.json()["detail"]
    assert (fine.status_code, under.status_code) == (201, 201)
    assert {s["host"] for s in await ward.subscriptions()} == {
        "127.0.0.1",
        "db5.notify.windows.com",
    }

    async with httpx.AsyncClient(base_url=ward.hub.url) as stranger:
        assert (await stranger.post("/api/push/subscriptions", json=good)).status_code == 401
        assert (await stranger.get("/api/push/key")).status_code == 401


async def test_each_user_sees_and_removes_only_their_own_subscriptions(ward: Ward) -> None:
    _, _, phone = await ward.subscribe("anna")
    _, _, tablet = await ward.subscribe("carer")
    assert [s["endpoint"] for s in await ward.subscriptions("carer")] == [tablet["endpoint"]]

    async with ward.session("carer") as (client, csrf):
        other = await client.request(
            "DELETE",
            "/api/push/subscriptions",
            json={"endpoint": phone["endpoint"]},
            headers={"X-CSRF-Token": csrf},
        )
        own = await client.request(
            "DELETE",
            "/api/push/subscriptions",
            json={"endpoint": tablet["endpoint"]},
            headers={"X-CSRF-Token": csrf},
        )
    assert (other.status_code, own.status_code) == (404, 200)
    assert await ward.subscriptions("carer") == []
    assert [s["endpoint"] for s in await ward.subscriptions("anna")] == [phone["endpoint"]]
    async with ward.hub.store.db.execute(
        "SELECT actor, action FROM audit WHERE action LIKE 'push_%' ORDER BY id"
    ) as cur:
        rows = [tuple(row) for row in await cur.fetchall()]
    assert rows == [
        ("system", "push_keys_created"),
        ("anna", "push_subscribed"),
        ("carer", "push_subscribed"),
        ("carer", "push_unsubscribed"),
    ]


async def test_a_user_keeps_their_newest_browsers_only(ward: Ward) -> None:
    first, *_ = [await ward.subscribe("carer") for _ in range(MAX_SUBSCRIPTIONS_PER_USER)]
    _, _, again = first
    async with ward.session("carer") as (client, csrf):
        renewed = await client.post(  # the same browser again: it becomes the newest
            "/api/push/subscriptions", json=again, headers={"X-CSRF-Token": csrf}
        )
    assert renewed.status_code == 201, renewed.text
    _, _, newest = await ward.subscribe("carer")
    kept = [s["endpoint"] for s in await ward.subscriptions("carer")]
    assert len(kept) == MAX_SUBSCRIPTIONS_PER_USER
    assert again["endpoint"] in kept and newest["endpoint"] in kept


async def test_a_contact_with_an_account_is_pushed_and_can_ask_for_someone(
    hub_factory: HubFactory, publish_batch: PublishBatch, receiver: PushReceiver
) -> None:
    site = copy.deepcopy(SMALL_SITE)
    resident = site["zones"][0]["rooms"][0]["beds"][0]["resident"]
    resident["contacts"] = [{"name": "Anna Jones", "relation": "family", "user": "anna"}]
    hub = await hub_factory(
        users=users(),
        sites=[site],
        escalation={"defaults": {"steps": [{"after_min": 0, "notify": "family_contacts"}]}},
        push={"allowed_hosts": ["127.0.0.1"]},
        outbound=LOOPBACK,
        watch={"defaults": {"timezone": "UTC"}},
    )
    ward = Ward(hub, publish_batch, receiver)
    await ward.subscribe()
    alert_id = await ward.trigger(FALL)
    await ward.receiver.wait(1)
    (attempt,) = await ward.push_attempts(alert_id)
    assert (attempt["recipient_kind"], attempt["recipient"], attempt["result"]) == (
        "contact",
        "Anna Jones",
        "delivered",
    )

    token = ward.receiver.delivered[0].message["action_token"]
    async with httpx.AsyncClient(base_url=hub.url) as phone:
        asked = await phone.post(
            "/api/push/action", json={"token": token, "action": "send_someone"}
        )
    assert asked.status_code == 200, asked.text
    assert asked.json()["action"] == "send_someone"
    assert (await ward.alert(alert_id))["state"] == "open"  # staff still acknowledge it
    assert hub.escalation is not None
    steps = (await hub.escalation.history(alert_id))["steps"]
    # No roster here: the help step reaches nobody, and says so with a fallback at once.
    assert [step["phase"] for step in steps] == ["escalate", "help", "fallback"]
    assert asked.json()["nobody_reached"][0]["phase"] == "help"
    history = await hub.store.audit.for_alert(alert_id)
    asked_by = [(h["actor"], h["channel"]) for h in history if h["action"] == "help_requested"]
    assert asked_by == [("anna", "push")]


async def test_the_vapid_key_is_kept_across_restarts(
    hub_factory: HubFactory, receiver: PushReceiver
) -> None:
    settings = {"users": users(), "push": {"allowed_hosts": ["127.0.0.1"]}, "outbound": LOOPBACK}
    first = await hub_factory(**settings)
    assert first.push is not None
    key = first.push.public_key
    await first.stop()
    second = await hub_factory(**settings)
    assert second.push is not None and second.push.public_key == key
    assert second.push.subject == "mailto:push@carewatch.invalid"  # from the organisation


def test_action_tokens_expire_after_a_day_and_are_bound_to_their_key() -> None:
    clock = FakeClock(1_900_000_000.0)
    tokens = ActionTokens("k" * 40, clock)
    token = tokens.issue(7, "anna")
    claim = tokens.read(token)
    assert (claim.alert_id, claim.username) == (7, "anna")

    with pytest.raises(PushError, match="not valid") as other_key:
        ActionTokens("x" * 40, clock).read(token)
    assert other_key.value.status == 403
    clock.advance(24 * 3600 + 1)
    with pytest.raises(PushError, match="too old") as expired:
        tokens.read(token)
    assert expired.value.status == 403
