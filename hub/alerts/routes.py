"""HTTP routes of the alert queue: list, read, acknowledge and resolve alerts, and the outcomes a
resolution may give. Each answers only alerts in the caller's scope, and never walk-test alerts
(those are the installer's, through the walk test's routes): anything else is answered 404.

The live stream of alerts is the console's (hub/console/presence_routes.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from hub.access.permissions import Principal, require
from hub.alerts.lifecycle import ACTIVE_STATES, OUTCOMES, AlertService
from hub.alerts.placed import placed
from hub.alerts.records import AlertRecords
from hub.core.audit import AuditLog
from hub.http.deps import HIDE_ALERT, NAME_OF, part
from hub.http.params import RecordId
from hub.registry.index import Registry

ALERT_PAGE = 500  # alerts read at a time while filtering them for a caller
STATE_FILTERS: dict[str, tuple[str, ...]] = {
    "active": ACTIVE_STATES,
    "open": ("open",),
    "acknowledged": ("acknowledged",),
    "resolved": ("resolved",),
    "all": ("open", "acknowledged", "resolved"),
}


class AcknowledgeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Literal["console", "phone", "api"] = "console"


class ResolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: str
    note: str | None = Field(default=None, max_length=2000)
    channel: Literal["console", "phone", "api"] = "console"


AlertReader = Annotated[Principal, Depends(require("alerts.read"))]
AlertActor = Annotated[Principal, Depends(require("alerts.act"))]
Alerts = Annotated[AlertService, Depends(part(AlertService))]
Records = Annotated[AlertRecords, Depends(part(AlertRecords))]
Audit = Annotated[AuditLog, Depends(part(AuditLog))]
Hidden = Annotated[Callable[[dict[str, Any]], bool], Depends(part(HIDE_ALERT))]


class Placing:
    """Places an alert in words (hub/alerts/placed.py) with the hub's registry and user names."""

    def __init__(
        self,
        registry: Annotated[Registry, Depends(part(Registry))],
        name_of: Annotated[Callable[[str], str], Depends(part(NAME_OF))],
    ) -> None:
        self._registry, self._name_of = registry, name_of

    def __call__(self, alert: dict[str, Any]) -> dict[str, Any]:
        return placed(alert, self._registry.data, self._name_of)


Placed = Annotated[Placing, Depends()]

router = APIRouter()


async def visible_alert(
    records: AlertRecords,
    hidden: Callable[[dict[str, Any]], bool],
    alert_id: int,
    caller: Principal,
) -> dict[str, Any]:
    alert = await records.get(alert_id)
    if alert is None or hidden(alert) or not caller.sees_alert(alert):
        raise HTTPException(404, f"no alert {alert_id}")
    return alert


@router.get("/api/outcomes")
async def outcomes(_: AlertReader) -> dict[str, str]:
    return OUTCOMES


@router.get("/api/alerts")
async def list_alerts(
    caller: AlertReader,
    records: Records,
    hidden: Hidden,
    place: Placed,
    state: str = "active",
    limit: int = 200,
) -> dict[str, list[dict[str, Any]]]:
    if state not in STATE_FILTERS:
        raise HTTPException(422, f"state must be one of {sorted(STATE_FILTERS)}")
    if not 1 <= limit <= 1000:
        raise HTTPException(422, "limit must be between 1 and 1000")
    found: list[dict[str, Any]] = []
    # A page at a time: a nurse of one wing gets hers even behind many of other wings, without
    # reading the whole history.
    page, offset = max(limit, ALERT_PAGE), 0
    while True:
        listed = await records.page(STATE_FILTERS[state], page, offset)
        found += caller.visible_alerts(alert for alert in listed if not hidden(alert))
        if len(found) >= limit or len(listed) < page:
            return {"alerts": [place(alert) for alert in found[:limit]]}
        offset += page


@router.get("/api/alerts/{alert_id}")
async def get_alert(
    alert_id: RecordId,
    caller: AlertReader,
    records: Records,
    audit: Audit,
    hidden: Hidden,
    place: Placed,
) -> dict[str, Any]:
    alert = await visible_alert(records, hidden, alert_id, caller)
    return {**place(alert), "history": await audit.for_alert(alert_id)}


@router.post("/api/alerts/{alert_id}/acknowledge")
async def acknowledge(
    alert_id: RecordId,
    caller: AlertActor,
    records: Records,
    alerts: Alerts,
    hidden: Hidden,
    place: Placed,
    body: AcknowledgeRequest | None = None,
) -> dict[str, Any]:
    await visible_alert(records, hidden, alert_id, caller)
    channel = "api" if caller.via == "api" else (body or AcknowledgeRequest()).channel
    return place(await alerts.acknowledge(alert_id, caller.username, channel))


@router.post("/api/alerts/{alert_id}/resolve")
async def resolve(
    alert_id: RecordId,
    body: ResolveRequest,
    caller: AlertActor,
    records: Records,
    alerts: Alerts,
    hidden: Hidden,
    place: Placed,
) -> dict[str, Any]:
    await visible_alert(records, hidden, alert_id, caller)
    channel = "api" if caller.via == "api" else body.channel
    return place(await alerts.resolve(alert_id, caller.username, channel, body.outcome, body.note))
