"""HTTP routes for Web Push: the public key, a caller's subscriptions, and notification actions.

Mounted by the hub next to the routes of `hub.api` (see `hub.service`). Any signed-in user may
subscribe their own browsers (family phones, staff phones). `POST /api/push/action` needs no
session: the service worker calls it from a notification's button, and the action token that
came with the push is the credential. It acts as the user it names with the user's grant as it
is when the button is pressed, not as it was when the push was sent.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from hub.access import Permission, Principal, not_found
from hub.alerts import AlertService
from hub.api import Caller
from hub.clock import Clock
from hub.push import CHANNEL, ActionClaim, PushError, PushService
from hub.store import AuditEntry, Store
from hub.users import UserStore

# A notification's buttons act on an alert as its family (their residents') or as staff.
ACTING: tuple[Permission, ...] = ("family", "alerts.act")


class HelpDesk(Protocol):
    """The escalation engine's "send someone": the family asks the service to go and see."""

    async def request_help(self, alert_id: int, by: str, channel: str) -> dict[str, Any]: ...


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
    action: Literal["acknowledge", "send_someone"]


def push_routes(
    push: PushService,
    *,
    store: Store,
    alerts: AlertService,
    helpdesk: HelpDesk,
    users: UserStore,
    clock: Clock,
) -> APIRouter:
    router = APIRouter()

    @router.get("/api/push/key")
    async def public_key(_: Caller) -> dict[str, str]:
        """The hub's VAPID public key, as `pushManager.subscribe({applicationServerKey})` wants."""
        return {"public_key": push.public_key}

    @router.get("/api/push/subscriptions")
    async def own_subscriptions(caller: Caller) -> dict[str, list[dict[str, Any]]]:
        listed = await push.subscriptions(caller.username)
        return {"subscriptions": [subscription.public() for subscription in listed]}

    @router.post("/api/push/subscriptions", status_code=201)
    async def subscribe(
        body: SubscriptionRequest, request: Request, caller: Caller
    ) -> dict[str, Any]:
        try:
            stored = await push.subscribe(
                caller.username,
                body.endpoint,
                body.keys.p256dh,
                body.keys.auth,
                request.headers.get("user-agent", ""),
            )
        except PushError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        return stored.public()

    @router.delete("/api/push/subscriptions")
    async def unsubscribe(body: UnsubscribeRequest, caller: Caller) -> dict[str, str]:
        if not await push.unsubscribe(caller.username, body.endpoint):
            raise HTTPException(404, "you have no push subscription at that endpoint")
        return {"endpoint": body.endpoint}

    async def acting_now(claim: ActionClaim) -> Principal:
        """The token's user as they are now, if they may still act on its alert: 403 for a
        disabled or removed user or a role that may not act, 404 (like a missing alert) for an
        alert outside their scope now (a family member who no longer follows the resident)."""
        user = await users.active_now(claim.username)
        if user is None:
            raise HTTPException(403, "the account this notification was sent to is not active")
        caller = Principal(user.username, user.name, user.grant, "push")
        if not any(caller.can(permission) for permission in ACTING):
            raise HTTPException(
                403, f"a {caller.role} may not do this (needs {' or '.join(ACTING)})"
            )
        alert = await store.alert(claim.alert_id)
        if alert is None or not caller.sees_alert(alert):
            raise not_found(f"alert {claim.alert_id}")
        return caller

    @router.post("/api/push/action")
    async def act(body: ActionRequest) -> dict[str, Any]:
        try:
            claim = push.tokens.read(body.token)
        except PushError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        await acting_now(claim)
        if body.action == "acknowledge":
            alert = await alerts.acknowledge(claim.alert_id, claim.username, CHANNEL)
            result: dict[str, Any] = {"alert_id": alert["id"], "state": alert["state"]}
        else:
            result = await helpdesk.request_help(claim.alert_id, claim.username, CHANNEL)
        async with store.transaction():
            detail = {"alert_id": claim.alert_id, "action": body.action}
            await store.insert_audit(
                [AuditEntry(clock.now(), claim.username, "push_action", CHANNEL, detail)]
            )
        return {"action": body.action, **result}

    return router
