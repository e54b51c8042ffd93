"""Which consoles are connected and armed, and which zones they watch (hub/console/presence.py).

- `POST /api/consoles/armed` `{"console": id, "armed": bool}`: a console page says that its
  sound can (or can no longer) play. 204; 404 when no open stream of this session has the id
  (the page then reconnects its stream with `armed=` its state).
- `GET /api/consoles`: the consoles the caller may see (a supervisor or admin: every console
  that covers a zone of theirs; anyone else: their own) and every zone they see, staffed or
  not, with how many consoles watch it.
- `GET /api/stream?console=<id>&armed=0|1`: the live alerts the caller may see (server-sent
  events); a console page names itself and says whether it can sound, and counts as connected
  while its stream is open.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from hub.access.auth import Authenticator
from hub.access.permissions import Principal, require
from hub.access.sessions import session_digest
from hub.alerts.lifecycle import AlertBus
from hub.alerts.placed import placed
from hub.console.presence import CONSOLE_ID, Console, ConsoleWatch, ZoneWatch
from hub.http.deps import HIDE_ALERT, NAME_OF, part
from hub.http.streams import KEEPALIVE_S, RECHECK_S
from hub.registry.index import Registry

AlertReader = Annotated[Principal, Depends(require("alerts.read"))]
Watch = Annotated[ConsoleWatch, Depends(part(ConsoleWatch))]
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


router = APIRouter()


@router.post("/api/consoles/armed", status_code=204)
async def armed(
    body: ArmedRequest, request: Request, caller: AlertReader, watch: Watch
) -> Response:
    if not watch.consoles.arm(body.console, owner_of(request, caller), body.armed):
        raise HTTPException(404, "This console is not connected: reconnect its live stream")
    return Response(status_code=204)


@router.get("/api/consoles")
async def consoles(caller: AlertReader, watch: Watch) -> dict[str, Any]:
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


@router.get("/api/stream")
async def stream(
    request: Request,
    caller: AlertReader,
    bus: Annotated[AlertBus, Depends(part(AlertBus))],
    auth: Annotated[Authenticator, Depends(part(Authenticator))],
    watch: Watch,
    registry: Annotated[Registry, Depends(part(Registry))],
    name_of: Annotated[Callable[[str], str], Depends(part(NAME_OF))],
    hidden: Annotated[Callable[[dict[str, Any]], bool], Depends(part(HIDE_ALERT))],
    console: Annotated[str | None, Query(pattern=CONSOLE_ID)] = None,
    armed: bool = False,
) -> StreamingResponse:
    """The live alerts. A console page names itself (`console`) and says whether it can
    sound (`armed`): it counts as connected while this stream is open (hub/console/presence.py)."""
    queue = bus.subscribe(
        caller.username, lambda alert: not hidden(alert) and caller.sees_alert(alert)
    )
    owner = owner_of(request, caller)

    async def events() -> AsyncIterator[str]:
        checked = quiet_since = time.monotonic()
        leave = None
        if console is not None:
            leave = watch.consoles.open(console, caller, owner, armed)
        try:
            yield "retry: 2000\nevent: hello\ndata: {}\n\n"
            while not await request.is_disconnected():
                if time.monotonic() - checked >= RECHECK_S:
                    if not await auth.still_signed_in(request):
                        return  # the session ended (expired, user disabled, reset)
                    checked = time.monotonic()
                try:
                    alert = await asyncio.wait_for(queue.get(), RECHECK_S)
                except TimeoutError:
                    if time.monotonic() - quiet_since >= KEEPALIVE_S:
                        quiet_since = time.monotonic()
                        yield ": keepalive\n\n"
                    continue
                if alert is None or auth.ended_here(request):
                    return  # the hub stops, or the caller signed out
                if hidden(alert) or not caller.sees_alert(alert):
                    continue
                shown = json.dumps(placed(alert, registry.data, name_of), separators=(",", ":"))
                quiet_since = time.monotonic()
                yield f"event: alert\ndata: {shown}\n\n"
        finally:
            bus.unsubscribe(queue)
            if leave is not None:
                leave()  # synchronous: this runs when the stream is cancelled

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
