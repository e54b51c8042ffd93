"""HTTP routes for escalation and figures: an alert's escalation record, who is on duty, figures.

In the hub's router list (`hub.app`). An alert's escalation
needs `alerts.read` and the alert in the caller's scope; who is on duty needs `alerts.read` and
a site (or zone) the caller reaches; the figures need `figures.read` and cover only the sites
the caller sees whole. Anything outside the scope is answered 404, like a missing one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException

from hub.access.permissions import Principal, require
from hub.alerts.records import AlertRecords
from hub.core.clock import Clock
from hub.core.store import Store
from hub.escalation.engine import Escalation
from hub.escalation.figures import DEFAULT_PRIORITIES, document, load_timings, parse_when, period
from hub.escalation.roster import Roster
from hub.http.deps import CLOCK, part
from hub.http.params import RecordId

AlertReader = Annotated[Principal, Depends(require("alerts.read"))]
FiguresReader = Annotated[Principal, Depends(require("figures.read"))]
Escalations = Annotated[Escalation, Depends(part(Escalation))]
Rosters = Annotated[Roster, Depends(part(Roster))]
Stores = Annotated[Store, Depends(part(Store))]
Records = Annotated[AlertRecords, Depends(part(AlertRecords))]
Clocks = Annotated[Clock, Depends(part(CLOCK))]

router = APIRouter()


@router.get("/api/alerts/{alert_id}/escalation")
async def alert_escalation(
    alert_id: RecordId, caller: AlertReader, records: Records, escalation: Escalations
) -> dict[str, Any]:
    alert = await records.get(alert_id)
    # Walk-test alerts are the installer's, through the walk test's own routes.
    if alert is None or alert.get("test") or not caller.sees_alert(alert):
        raise HTTPException(404, f"no alert {alert_id}")
    return await escalation.history(alert_id)


@router.get("/api/roster/on-duty")
async def on_duty(
    site: str, caller: AlertReader, roster: Rosters, clock: Clocks, zone: str | None = None
) -> dict[str, Any]:
    if not caller.touches_site(site):
        raise HTTPException(404, f"no site {site!r}")
    if zone is not None and not caller.sees_place(site, zone):
        raise HTTPException(404, f"site {site!r} has no zone {zone!r}")
    now = clock.now()
    return {
        "site": site,
        "at": now,
        "shifts": [shift.name for shift in roster.shifts_at(site, now)],
        "staff": roster.on_duty(site, now, zone),
        "charge_nurses": roster.charge_nurses(site, now),
    }


@router.get("/api/figures")
async def figures(
    caller: FiguresReader,
    store: Stores,
    roster: Rosters,
    clock: Clocks,
    since: str | None = None,
    until: str | None = None,
    site: str | None = None,
    priority: str = ",".join(DEFAULT_PRIORITIES),
) -> dict[str, Any]:
    """Times are ISO 8601; without an offset they are UTC. Default: the last 30 days."""
    if site is not None and not caller.sees_site(site):
        raise HTTPException(404, f"no site {site!r}")
    now = clock.now()
    try:
        start, end = period(
            parse_when(since) if since else None, parse_when(until) if until else None, now
        )
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    priorities = [p.strip() for p in priority.split(",") if p.strip()]
    every = await load_timings(store.db, roster, start, end, site, priorities)
    timings = [timing for timing in every if caller.sees_site(timing.site)]
    return document(start, end, site, priorities, timings, now)
