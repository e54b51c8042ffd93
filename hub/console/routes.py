"""HTTP routes of the staff console beyond the alert queue: the bed board, a resident's timeline
and chart, and the shift handover, each filtered by the caller's scope.

In the hub's router list (`hub.app`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import Response

from hub.access.permissions import Principal, not_found, require, resident_visible
from hub.console.board import BedBoard
from hub.console.handover import DEFAULT_HOURS, handover, shift_start
from hub.console.resident_history import chart, timeline
from hub.core.clock import Clock
from hub.core.store import Store
from hub.escalation.figures import parse_when
from hub.escalation.roster import Roster
from hub.http.deps import CLOCK, HIDE_ALERT, part
from hub.http.web_files import listed_file
from hub.registry.index import Registry
from hub.registry.models import Resident
from hub.watch.bed_state import BedStates
from hub.watch.settings import WatchPolicy

HealthReader = Annotated[Principal, Depends(require("health.read"))]
AlertReader = Annotated[Principal, Depends(require("alerts.read"))]
MAX_HOURS: Final = 24 * 14
MAX_HANDOVER_S: Final = 31 * 86400.0
STATIC: Final = frozenset({"console_views.js", "console_board.css"})
HideAlert = Callable[[dict[str, Any]], bool]
Board = Annotated[BedBoard, Depends(part(BedBoard))]
Beds = Annotated[BedStates, Depends(part(BedStates))]
Clocks = Annotated[Clock, Depends(part(CLOCK))]
# Alerts kept off the staff console (walk-test alerts).
Hidden = Annotated[HideAlert, Depends(part(HIDE_ALERT))]
Policy = Annotated[WatchPolicy, Depends(part(WatchPolicy))]
Registries = Annotated[Registry, Depends(part(Registry))]
Rosters = Annotated[Roster, Depends(part(Roster))]
Stores = Annotated[Store, Depends(part(Store))]


router = APIRouter()


def shown_to(caller: Principal, hidden: HideAlert) -> HideAlert:
    return lambda alert: not alert["test"] and not hidden(alert) and caller.sees_alert(alert)


def check_site(caller: Principal, registry: Registry, site: str | None) -> None:
    if site is not None and (site not in registry.sites or not caller.touches_site(site)):
        raise not_found(f"site {site}")


def visible_resident(caller: Principal, registry: Registry, code: str) -> None:
    exists = registry.data.find(Resident, (code,)) is not None
    if not exists or not resident_visible(caller, registry, code):
        raise not_found(f"resident {code}")


@router.get("/static/console/{name}")
async def static(name: str) -> Response:
    return listed_file(name, STATIC)


@router.get("/api/board")
async def get_board(
    caller: HealthReader,
    board: Board,
    registry: Registries,
    clock: Clocks,
    site: str | None = None,
    zone: str | None = None,
) -> Response:
    """Bed tiles of the caller's sites and zones, optionally of one site or zone.

    Each zone's tiles come already encoded (hub/console/board.py): with every console asking
    every 3 s, encoding them per request would cost the hub more than working them out."""
    if zone is not None and site is None:
        raise HTTPException(422, "zone needs site")
    check_site(caller, registry, site)
    if site is not None and zone is not None and not caller.sees_place(site, zone):
        raise not_found(f"zone {zone}")
    now = clock.now()
    shown = await board.zones(now, caller.sees_place)
    zones = [{"site": z.site, "zone": z.zone, "name": z.name} for z in shown]
    beds = ",".join(
        z.json_items
        for z in shown
        if (site is None or z.site == site) and (zone is None or z.zone == zone)
    )
    head = json.dumps({"at": now, "zones": zones}, ensure_ascii=False, separators=(",", ":"))
    return Response(f'{head[:-1]},"beds":[{beds}]}}', media_type="application/json")


@router.get("/api/residents/{code}/timeline")
async def get_timeline(
    caller: HealthReader,
    code: str,
    store: Stores,
    beds: Beds,
    registry: Registries,
    clock: Clocks,
    hidden: Hidden,
    hours: float = 24,
) -> dict[str, Any]:
    visible_resident(caller, registry, code)
    now = clock.now()
    start = now - _hours(hours) * 3600
    return await timeline(store, beds, registry, code, start, now, shown_to(caller, hidden))


@router.get("/api/residents/{code}/chart")
async def get_chart(
    caller: HealthReader,
    code: str,
    store: Stores,
    registry: Registries,
    clock: Clocks,
    hours: float = 24,
    bucket_min: float = 5,
) -> dict[str, Any]:
    """Buckets of `bucket_min` minutes, aligned to the clock, covering the last `hours`."""
    visible_resident(caller, registry, code)
    if not 1 <= bucket_min <= 60:
        raise HTTPException(422, "bucket_min must be between 1 and 60")
    bucket_s = bucket_min * 60
    now = clock.now()
    start = math.floor((now - _hours(hours) * 3600) / bucket_s) * bucket_s
    end = math.floor(now / bucket_s) * bucket_s + bucket_s
    return await chart(store, registry, code, (start, end), bucket_s)


@router.get("/api/handover")
async def get_handover(
    caller: AlertReader,
    store: Stores,
    registry: Registries,
    roster: Rosters,
    policy: Policy,
    clock: Clocks,
    hidden: Hidden,
    site: str | None = None,
    since: str | None = None,
) -> dict[str, Any]:
    """Since `since` (ISO 8601, UTC without an offset); by default the start of the roster
    shift on duty at `site`, else the last 12 hours."""
    check_site(caller, registry, site)
    now = clock.now()
    shift = shift_start(roster, policy, site, now) if site is not None else None
    start = _since(since, now) if since else (shift[1] if shift else now - DEFAULT_HOURS * 3600)
    seen = shown_to(caller, hidden)
    report = await handover(
        store, start, now, lambda a: seen(a) and (site is None or a["site"] == site)
    )
    return {"site": site, "shift": shift[0] if shift and not since else None, **report}


def _hours(hours: float) -> float:
    if not 0 < hours <= MAX_HOURS:
        raise HTTPException(422, f"hours must be more than 0 and at most {MAX_HOURS}")
    return hours


def _since(text: str, now: float) -> float:
    try:
        since = parse_when(text)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    if not now - MAX_HANDOVER_S <= since < now:
        raise HTTPException(422, "since must be in the past, at most 31 days ago")
    return since
