"""HTTP routes of the family app: its pages (a PWA) and the family API.

The app itself (`/family`), its manifest, its service worker (`/sw.js`, registered with the
scope `/family` so that it never controls the staff console) and its static files need no
login: they hold no data. Every `/api/family` route needs the `family` permission, and a
resident or alert outside the caller's residents is answered 404 like a missing one.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, Response

from hub.access import Principal, not_found, require
from hub.alerts import AlertService
from hub.api_params import RecordId
from hub.api_push import HelpDesk
from hub.clock import Clock
from hub.family import FamilyView, Names
from hub.registry import Registry
from hub.store import Store
from hub.web_files import listed_file, web_file

CHANNEL: Final = "family_app"
STATIC: Final = frozenset({"family.js", "family.css", "icon-192.png", "icon-512.png"})
# The app shell must not be kept stale by a browser cache: the service worker caches it.
NO_CACHE: Final = {"Cache-Control": "no-cache"}

Family = Annotated[Principal, Depends(require("family"))]


def family_routes(
    *,
    registry: Registry,
    store: Store,
    alerts: AlertService,
    helpdesk: HelpDesk,
    clock: Clock,
    names: Names,
) -> APIRouter:
    router = APIRouter()
    view = FamilyView(registry, store, clock, names)

    async def own_alert(alert_id: int, caller: Principal) -> None:
        alert = await store.alert(alert_id)
        if alert is None or not caller.sees_alert(alert):
            raise not_found(f"alert {alert_id}")

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
    async def overview(caller: Family) -> dict[str, Any]:
        """The caller's residents, each with state, recent alerts and contacts."""
        return {
            "user": caller.username,
            "name": caller.name,
            "residents": await view.residents(caller.grant.residents),
        }

    @router.get("/api/family/residents/{code}")
    async def resident(code: str, caller: Family) -> dict[str, Any]:
        found = await view.resident(code) if caller.sees_resident(code) else None
        if found is None:
            raise not_found(f"resident {code}")
        return found

    @router.post("/api/family/alerts/{alert_id}/acknowledge")
    async def acknowledge(alert_id: RecordId, caller: Family) -> dict[str, Any]:
        await own_alert(alert_id, caller)
        alert = await alerts.acknowledge(alert_id, caller.username, CHANNEL)
        return {"alert_id": alert["id"], "state": alert["state"]}

    @router.post("/api/family/alerts/{alert_id}/send-someone")
    async def send_someone(alert_id: RecordId, caller: Family) -> dict[str, Any]:
        await own_alert(alert_id, caller)
        summary = await helpdesk.request_help(alert_id, caller.username, CHANNEL)
        return {"alert_id": alert_id, "help_requested_by": summary.get("help_requested_by", [])}

    return router
