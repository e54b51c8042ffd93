"""HTTP routes for staff on call: "I can't" on an alert.

Mounted by the hub next to the routes of `hub.http.app` (see `hub.app`). "I'm going" is the
ordinary acknowledgement (`POST /api/alerts/{id}/acknowledge`); "I can't" is
`POST /api/alerts/{id}/decline`: the escalation engine records it (audit `declined`) and fires
the next step of the ladder at once, leaving out the staff member who declined. The staff app
(`/family`, by role) and a notification's "I can't" button (`/api/push/action`) both end here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, Protocol

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict

from hub.access.permissions import Principal, not_found, require
from hub.core.store import Store
from hub.http.params import RecordId

AlertActor = Annotated[Principal, Depends(require("alerts.act"))]


class Declines(Protocol):
    """The escalation engine's "I can't" (hub/escalation/engine.py `Escalation.decline`)."""

    async def decline(self, alert_id: int, by: str, channel: str) -> dict[str, Any]: ...


class DeclineRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Literal["console", "phone", "api"] = "console"


def oncall_routes(
    escalation: Declines,
    *,
    store: Store,
    hide_alert: Callable[[dict[str, Any]], bool] | None = None,
) -> APIRouter:
    """`hide_alert`: alerts that are not staff's to answer (walk-test alerts): 404 here."""
    hidden = hide_alert or (lambda alert: False)
    router = APIRouter()

    @router.post("/api/alerts/{alert_id}/decline")
    async def decline(
        alert_id: RecordId, caller: AlertActor, body: DeclineRequest | None = None
    ) -> dict[str, Any]:
        """The caller cannot go: the next escalation step fires now. Answers the alert's
        escalation summary (`declined_by`, `reached`, ...); 409 if the alert is not open."""
        alert = await store.alert(alert_id)
        if alert is None or hidden(alert) or not caller.sees_alert(alert):
            raise not_found(f"alert {alert_id}")
        channel = "api" if caller.via == "api" else (body or DeclineRequest()).channel
        summary = await escalation.decline(alert_id, caller.username, channel)
        return {"alert_id": alert_id, **summary}

    return router
