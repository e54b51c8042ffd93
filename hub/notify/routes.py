"""HTTP routes for Web Push: the public key, a caller's subscriptions, and notification actions.

In the hub's router list (`hub.app`). Any signed-in user may
subscribe their own browsers (family phones, staff phones). `POST /api/push/action` needs no
session: the service worker calls it from a notification's button, and the action token that
came with the push is the credential. It acts as the user it names with the user's grant as it
is when the button is pressed, not as it was when the push was sent:

- staff (a role that acts on alerts): `acknowledge` ("I'm going", as that staff member) and
  `decline` ("I can't": the ladder moves to its next step at once);
- family: `seen` ("I've seen it", recorded, changes nothing else), `handling` ("I'm handling
  it", where the policy makes the family a responder) and `send_someone`. An `acknowledge`
  from a family member's notification (shown by an older version of the app) counts as
  `seen`: only staff acknowledge.

The service worker also confirms each push it receives with the same token (action
`received`): the subscription's `confirmed_at`, which the roster uses to tell a phone that
has stopped receiving.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, Protocol

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from hub.access.permissions import Permission, Principal, authenticated, not_found, refusal
from hub.access.users import UserStore
from hub.alerts.lifecycle import AlertService
from hub.alerts.records import AlertRecords
from hub.core.audit import AuditEntry, AuditLog
from hub.core.clock import Clock
from hub.core.store import Store
from hub.http.deps import CLOCK, Slot, part
from hub.notify.push import CHANNEL, ActionClaim, PushService

# A notification's buttons act on an alert as its family (their residents') or as staff.
ACTING: tuple[Permission, ...] = ("family", "alerts.act")


FAMILY_ACTIONS: Final = frozenset({"seen", "handling", "send_someone"})
STAFF_ACTIONS: Final = frozenset({"acknowledge", "decline"})
Action = Literal["acknowledge", "decline", "seen", "handling", "send_someone", "received"]


class HelpDesk(Protocol):
    """The escalation engine's "send someone": the family asks the service to go and see."""

    async def request_help(self, alert_id: int, by: str, channel: str) -> dict[str, Any]: ...


class Responses(HelpDesk, Protocol):
    """The escalation engine's answers to an alert (hub/escalation/engine.py): staff "I can't", the
    family's "I've seen it" and "I'm handling it", and "Send someone"."""

    async def decline(self, alert_id: int, by: str, channel: str) -> dict[str, Any]: ...

    async def family_seen(self, alert_id: int, by: str, channel: str) -> dict[str, Any]: ...

    async def family_handling(self, alert_id: int, by: str, channel: str) -> dict[str, Any]: ...


# The escalation engine, provided by the hub's wiring (hub/app.py).
RESPONSES: Slot[Responses] = Slot("responses")

Caller = Annotated[Principal, Depends(authenticated)]
Push = Annotated[PushService, Depends(part(PushService))]
Stores = Annotated[Store, Depends(part(Store))]


class SubscriptionKeys(BaseModel):
    model_config = ConfigDict(extra="forbid")

    p256dh: str = Field(min_length=1, max_length=200)  # 65 bytes, base64url: checked on use
    auth: str = Field(min_length=1, max_length=64)  # 16 bytes, base64url


class SubscriptionRequest(BaseModel):
    """The browser's `PushSubscription.toJSON()`."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str = Field(min_length=12, max_length=2048)
    expirationTime: float | None = None  # the browser's own name for it
    keys: SubscriptionKeys


class UnsubscribeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint: str = Field(min_length=1, max_length=2048)


class ActionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=1024)
    action: Action
    # Only with `received`, for a token that names no subscription: the browser's endpoint.
    endpoint: str | None = Field(default=None, min_length=1, max_length=2048)


router = APIRouter()


@router.get("/api/push/key")
async def public_key(_: Caller, push: Push) -> dict[str, str]:
    """The hub's VAPID public key, as `pushManager.subscribe({applicationServerKey})` wants."""
    return {"public_key": push.public_key}


@router.get("/api/push/subscriptions")
async def own_subscriptions(caller: Caller, push: Push) -> dict[str, list[dict[str, Any]]]:
    listed = await push.subscriptions(caller.username)
    return {"subscriptions": [subscription.public() for subscription in listed]}


@router.post("/api/push/subscriptions", status_code=201)
async def subscribe(
    body: SubscriptionRequest, request: Request, caller: Caller, push: Push
) -> dict[str, Any]:
    stored = await push.subscribe(
        caller.username,
        body.endpoint,
        body.keys.p256dh,
        body.keys.auth,
        request.headers.get("user-agent", ""),
    )
    return stored.public()


@router.delete("/api/push/subscriptions")
async def unsubscribe(body: UnsubscribeRequest, caller: Caller, push: Push) -> dict[str, str]:
    if not await push.unsubscribe(caller.username, body.endpoint):
        raise HTTPException(404, "you have no push subscription at that endpoint")
    return {"endpoint": body.endpoint}


async def acting_now(claim: ActionClaim, users: UserStore, records: AlertRecords) -> Principal:
    """The token's user as they are now, if they may still act on its alert: 403 for a
    disabled or removed user or a role that may not act, 404 (like a missing alert) for an
    alert outside their scope now (a family member who no longer follows the resident)."""
    user = await users.active_now(claim.username)
    if user is None:
        raise HTTPException(403, "the account this notification was sent to is not active")
    caller = Principal(user.username, user.name, user.grant, "push")
    if not any(caller.can(permission) for permission in ACTING):
        raise HTTPException(403, refusal(caller.role, ACTING, "answer this notification"))
    alert = await records.get(claim.alert_id)
    if alert is None or not caller.sees_alert(alert):
        raise not_found(f"alert {claim.alert_id}")
    return caller


@router.post("/api/push/action")
async def act(
    body: ActionRequest,
    push: Push,
    store: Stores,
    records: Annotated[AlertRecords, Depends(part(AlertRecords))],
    audit: Annotated[AuditLog, Depends(part(AuditLog))],
    alerts: Annotated[AlertService, Depends(part(AlertService))],
    helpdesk: Annotated[Responses, Depends(part(RESPONSES))],
    users: Annotated[UserStore, Depends(part(UserStore))],
    clock: Annotated[Clock, Depends(part(CLOCK))],
) -> dict[str, Any]:
    claim = push.tokens.read(body.token)
    if body.action == "received":  # the service worker's receipt, not a person's act
        confirmed = await push.confirm(claim, body.endpoint)
        return {"action": "received", "confirmed_at": confirmed.confirmed_at}
    caller = await acting_now(claim, users, records)
    action = body.action
    if caller.role == "family":
        if action == "acknowledge":
            action = "seen"  # an older notification's button: only staff acknowledge
        elif action not in FAMILY_ACTIONS:
            raise HTTPException(
                403,
                "A family member answers with I've seen it, I'm handling it or Send someone.",
            )
    elif action not in STAFF_ACTIONS:
        raise HTTPException(403, "Staff answer a notification with I'm going or I can't.")
    alert_id, who = claim.alert_id, claim.username
    result: dict[str, Any]
    if action == "acknowledge":
        alert = await alerts.acknowledge(alert_id, who, CHANNEL)
        result = {"alert_id": alert["id"], "state": alert["state"]}
    elif action == "decline":
        result = {"alert_id": alert_id, **await helpdesk.decline(alert_id, who, CHANNEL)}
    elif action == "seen":
        result = {"alert_id": alert_id, **await helpdesk.family_seen(alert_id, who, CHANNEL)}
    elif action == "handling":
        result = {
            "alert_id": alert_id,
            **await helpdesk.family_handling(alert_id, who, CHANNEL),
        }
    else:
        result = await helpdesk.request_help(alert_id, who, CHANNEL)
    async with store.transaction():
        detail = {"alert_id": alert_id, "action": action}
        await audit.record([AuditEntry(clock.now(), who, "push_action", CHANNEL, detail)])
    return {**result, "action": action}
