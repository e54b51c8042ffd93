"""HTTP routes of the supervisor view: its page (`/supervisor`), its data and its CSV exports.

Every route needs `figures.read` (admins and supervisors). A supervisor sees the sites of
their grant; asking for another site is answered 404, exactly like a site that does not exist.
In the hub's router list (`hub.app`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import HTMLResponse, Response

from hub.access.permissions import ALL_SITES, Principal, not_found, require
from hub.core.clock import Clock
from hub.escalation.figures import parse_when, period
from hub.http.deps import CLOCK, part
from hub.http.web_files import listed_file, web_file
from hub.registry.index import Registry
from hub.supervisor.overview import EXPORTS, Sources, overview, to_csv

PAGE_FILES: Final = frozenset({"supervisor.js", "supervisor.css"})
FiguresReader = Annotated[Principal, Depends(require("figures.read"))]
Data = Annotated[Sources, Depends(part(Sources))]
Clocks = Annotated[Clock, Depends(part(CLOCK))]


def scope(caller: Principal, registry: Registry, site: str | None) -> frozenset[str] | None:
    """The sites to answer about (None: every site); 404 for a site outside the caller's reach."""
    if site is not None:
        if site not in registry.sites or not caller.sees_site(site):
            raise not_found(f"site {site!r}")
        return frozenset({site})
    if caller.all_sites:
        return None
    return frozenset(s for s in caller.grant.sites if s != ALL_SITES)


def window(since: str | None, until: str | None, now: float) -> tuple[float, float]:
    """The period asked for (ISO 8601, UTC without an offset); 422 if it is not one."""
    try:
        return period(
            parse_when(since) if since else None, parse_when(until) if until else None, now
        )
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


router = APIRouter()


@router.get("/supervisor", response_class=HTMLResponse)
async def page() -> Response:
    return web_file("supervisor.html")


@router.get("/supervisor/{name}")
async def page_file(name: str) -> Response:
    return listed_file(name, PAGE_FILES)


async def document(
    sources: Sources,
    clock: Clock,
    caller: Principal,
    site: str | None,
    since: str | None,
    until: str | None,
) -> dict[str, Any]:
    sites = scope(caller, sources.registry, site)
    now = clock.now()
    start, end = window(since, until, now)
    return await overview(sources, sites, since=start, until=end, now=now)


@router.get("/api/supervisor")
async def supervisor(
    caller: FiguresReader,
    sources: Data,
    clock: Clocks,
    site: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> dict[str, Any]:
    """Figures, open and overdue alerts, device trouble and beds by type for the caller."""
    return await document(sources, clock, caller, site, since, until)


@router.get("/api/supervisor/export/{what}.csv")
async def export(
    what: str,
    caller: FiguresReader,
    sources: Data,
    clock: Clocks,
    site: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> Response:
    """One part of the view as CSV: figures, alerts (open and acknowledged) or devices."""
    if what not in EXPORTS:
        raise HTTPException(404, f"no export {what!r}; exports: {', '.join(EXPORTS)}")
    key, columns = EXPORTS[what]
    view = await document(sources, clock, caller, site, since, until)
    day = datetime.fromtimestamp(view["generated_at"], UTC).strftime("%Y%m%d-%H%M")
    name = f"carewatch-{what}-{site or 'all'}-{day}.csv"
    return Response(
        to_csv(view[key], columns),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
