"""Which consoles are connected and armed, and which zones they watch (hub/console/presence.py).

- `POST /api/consoles/armed` `{"console": id, "armed": bool}`: a console page says that its
  sound can (or can no longer) play. 204; 404 when no open stream of this session has the id
  (the page then reconnects its stream with `armed=` its state).
- `GET /api/consoles`: the consoles the caller may see (a supervisor or admin: every console
  that covers a zone of theirs; anyone else: their own) and every zone they see, staffed or
  not, with how many consoles watch it.

The stream itself (`GET /api/stream?console=<id>&armed=0|1`) is in hub/http/app.py.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from hub.access.permissions import Principal, require
from hub.access.sessions import session_digest
from hub.console.presence import CONSOLE_ID, Console, ConsoleWatch, ZoneWatch

AlertReader = Annotated[Principal, Depends(require("alerts.read"))]
# Who may see every console of their sites, not only their own.
OVERSEERS = frozenset({"admin", "supervisor"})


class ArmedRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    console: str = Field(pattern=CONSOLE_ID)
    armed: bool


def owner_of(request: Request, caller: Principal) -> str:
    """What a console belongs to: the session of the cookie (never its id itself), or the
    API token."""
    session_id = request.session.get("sid")
    if isinstance(session_id, str):
        return f"session:{session_digest(session_id)}"
    return f"{caller.via}:{caller.username}"


def console_presence_routes(watch: ConsoleWatch) -> APIRouter:
    router = APIRouter()

    @router.post("/api/consoles/armed", status_code=204)
    async def armed(body: ArmedRequest, request: Request, caller: AlertReader) -> Response:
        if not watch.consoles.arm(body.console, owner_of(request, caller), body.armed):
            raise HTTPException(404, "This console is not connected: reconnect its live stream")
        return Response(status_code=204)

    @router.get("/api/consoles")
    async def consoles(caller: AlertReader) -> dict[str, Any]:
        zones = [z for z in watch.zones(watch.clock.now()) if caller.sees_place(z.site, z.zone.id)]
        shown = [c for c in watch.consoles.listed() if _shown(caller, c, zones)]
        return {
            "consoles": [_console(caller, c, zones, watch) for c in shown],
            "zones": [
                {
                    "site": z.site,
                    "zone": z.zone.id,
                    "zone_name": z.zone.name,
                    "staffed": z.staffed,
                    "watched_by": z.watched_by,
                }
                for z in zones
            ],
        }

    return router


def _shown(caller: Principal, console: Console, zones: list[ZoneWatch]) -> bool:
    if console.principal.username == caller.username:
        return True
    return caller.role in OVERSEERS and any(console.covers(z.site, z.zone.id) for z in zones)


def _console(
    caller: Principal, console: Console, zones: list[ZoneWatch], watch: ConsoleWatch
) -> dict[str, Any]:
    """A console as the caller may see it: only the sites and zones the caller sees too."""
    return {
        "console": console.id,
        "user": console.principal.username,
        "user_name": console.principal.name,
        "armed": console.armed,
        "since": console.since,
        "sites": [
            site
            for site in sorted(watch.registry.sites)
            if caller.touches_site(site) and console.principal.touches_site(site)
        ],
        "zones": [
            {"site": z.site, "zone": z.zone.id, "zone_name": z.zone.name}
            for z in zones
            if console.covers(z.site, z.zone.id)
        ],
    }
