"""HTTP routes of the family app: its pages (a PWA) and the family API.

The app itself (`/family`), its manifest, its service worker (`/sw.js`, registered with the
scope `/family` so that it never controls the staff console) and its static files need no
login: they hold no data. Every `/api/family` route needs the `family` permission, and a
resident or alert outside the caller's residents is answered 404 like a missing one.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Protocol

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, Response

from hub.access.permissions import Principal, not_found, require
from hub.alerts.records import AlertRecords
from hub.family.view import FamilyView
from hub.http.deps import Slot, part
from hub.http.params import RecordId
from hub.http.web_files import listed_file, web_file

CHANNEL: Final = "family_app"
STATIC: Final = frozenset({"family.js", "family.css", "icon-192.png", "icon-512.png"})
# The app shell must not be kept stale by a browser cache: the service worker caches it.
NO_CACHE: Final = {"Cache-Control": "no-cache"}

Family = Annotated[Principal, Depends(require("family"))]


class FamilyDesk(Protocol):
    """The escalation engine's side of a family's answers (hub/escalation/engine.py)."""

    async def request_help(self, alert_id: int, by: str, channel: str) -> dict[str, Any]: ...
    async def family_seen(self, alert_id: int, by: str, channel: str) -> dict[str, Any]: ...
    async def family_handling(self, alert_id: int, by: str, channel: str) -> dict[str, Any]: ...
    def family_may_handle(self, alert: dict[str, Any]) -> bool: ...


# The escalation engine, provided by the hub's wiring (hub/app.py).
HELPDESK: Slot[FamilyDesk] = Slot("family_desk")
Desk = Annotated[FamilyDesk, Depends(part(HELPDESK))]
View = Annotated[FamilyView, Depends(part(FamilyView))]
Records = Annotated[AlertRecords, Depends(part(AlertRecords))]


router = APIRouter()


async def own_alert(records: AlertRecords, alert_id: int, caller: Principal) -> dict[str, Any]:
    alert = await records.get(alert_id)
    if alert is None or not caller.sees_alert(alert):
        raise not_found(f"alert {alert_id}")
    return alert


async def answer(view: FamilyView, alert: dict[str, Any]) -> dict[str, Any]:
    """The alert as the family app shows it now: the staff's response, the family's."""
    found = await view.resident(alert["resident_code"]) if alert["resident_code"] else None
    shown = next(
        (a for a in (found or {}).get("recent_alerts", []) if a["id"] == alert["id"]), None
    )
    if shown is None:
        raise not_found(f"alert {alert['id']}")
    return {"alert_id": alert["id"], **shown}


@router.get("/family", response_class=HTMLResponse)
async def app_page() -> Response:
    return web_file("family.html", NO_CACHE)


@router.get("/family.webmanifest")
async def manifest() -> Response:
    return web_file("family.webmanifest", NO_CACHE)


@router.get("/sw.js")
async def service_worker() -> Response:
    return web_file("sw.js", NO_CACHE)


@router.get("/family/static/{name}")
async def static(name: str) -> Response:
    return listed_file(name, STATIC, NO_CACHE)


@router.get("/api/family")
async def overview(caller: Family, view: View) -> dict[str, Any]:
    """The caller's residents, each with state, recent alerts and contacts."""
    return {
        "user": caller.username,
        "name": caller.name,
        "residents": await view.residents(caller.grant.residents),
    }


@router.get("/api/family/residents/{code}")
async def resident(code: str, caller: Family, view: View) -> dict[str, Any]:
    found = await view.resident(code) if caller.sees_resident(code) else None
    if found is None:
        raise not_found(f"resident {code}")
    return found


@router.post("/api/family/alerts/{alert_id}/seen")
async def seen(
    alert_id: RecordId, caller: Family, records: Records, view: View, helpdesk: Desk
) -> dict[str, Any]:
    """ "I've seen it": recorded and shown to staff; the alert stays as it is."""
    alert = await own_alert(records, alert_id, caller)
    await helpdesk.family_seen(alert_id, caller.username, CHANNEL)
    return await answer(view, alert)


@router.post("/api/family/alerts/{alert_id}/handling")
async def handling(
    alert_id: RecordId, caller: Family, records: Records, view: View, helpdesk: Desk
) -> dict[str, Any]:
    """ "I'm handling it", where the bed's policy makes the family a responder (else 409)."""
    alert = await own_alert(records, alert_id, caller)
    await helpdesk.family_handling(alert_id, caller.username, CHANNEL)
    return await answer(view, alert)


@router.post("/api/family/alerts/{alert_id}/send-someone")
async def send_someone(
    alert_id: RecordId, caller: Family, records: Records, view: View, helpdesk: Desk
) -> dict[str, Any]:
    """Tell the staff on duty now; the answer says what the record shows came of it."""
    alert = await own_alert(records, alert_id, caller)
    await helpdesk.request_help(alert_id, caller.username, CHANNEL)
    return await answer(view, alert)
