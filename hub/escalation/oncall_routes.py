"""HTTP routes for staff on call: "I can't" on an alert.

In the hub's router list (`hub.app`). "I'm going" is the
ordinary acknowledgement (`POST /api/alerts/{id}/acknowledge`); "I can't" is
`POST /api/alerts/{id}/decline`: the escalation engine records it (audit `declined`) and fires
the next step of the ladder at once, leaving out the staff member who declined. The staff app
(`/family`, by role) and a notification's "I can't" button (`/api/push/action`) both end here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict

from hub.access.permissions import Principal, not_found, require
from hub.alerts.records import AlertRecords
from hub.escalation.engine import Escalation
from hub.http.deps import HIDE_ALERT, part
from hub.http.params import RecordId

AlertActor = Annotated[Principal, Depends(require("alerts.act"))]
Escalations = Annotated[Escalation, Depends(part(Escalation))]
Records = Annotated[AlertRecords, Depends(part(AlertRecords))]
# Alerts that are not staff's to answer (walk-test alerts): 404 here.
Hidden = Annotated[Callable[[dict[str, Any]], bool], Depends(part(HIDE_ALERT))]


class DeclineRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Literal["console", "phone", "api"] = "console"


router = APIRouter()


@router.post("/api/alerts/{alert_id}/decline")
async def decline(
    alert_id: RecordId,
    caller: AlertActor,
    records: Records,
    escalation: Escalations,
    hidden: Hidden,
    body: DeclineRequest | None = None,
) -> dict[str, Any]:
    """The caller cannot go: the next escalation step fires now. Answers the alert's
    escalation summary (`declined_by`, `reached`, ...); 409 if the alert is not open."""
    alert = await records.get(alert_id)
    if alert is None or hidden(alert) or not caller.sees_alert(alert):
        raise not_found(f"alert {alert_id}")
    channel = "api" if caller.via == "api" else (body or DeclineRequest()).channel
    summary = await escalation.decline(alert_id, caller.username, channel)
    return {"alert_id": alert_id, **summary}
