"""HTTP routes for escalation and figures: an alert's escalation record, who is on duty, figures.

Mounted by the hub next to the routes of `hub.api` (see `hub.service`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from hub.api import Caller
from hub.escalation import Escalation
from hub.figures import DEFAULT_PRIORITIES, parse_when, period, report


def escalation_routes(escalation: Escalation) -> APIRouter:
    store, roster, clock = escalation.store, escalation.roster, escalation.clock
    router = APIRouter()

    @router.get("/api/alerts/{alert_id}/escalation")
    async def alert_escalation(alert_id: int, _: Caller) -> dict[str, Any]:
        if await store.alert(alert_id) is None:
            raise HTTPException(404, f"no alert {alert_id}")
        return await escalation.history(alert_id)

    @router.get("/api/roster/on-duty")
    async def on_duty(site: str, _: Caller, zone: str | None = None) -> dict[str, Any]:
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
        _: Caller,
        since: str | None = None,
        until: str | None = None,
        site: str | None = None,
        priority: str = ",".join(DEFAULT_PRIORITIES),
    ) -> dict[str, Any]:
        """Times are ISO 8601; without an offset they are UTC. Default: the last 30 days."""
        now = clock.now()
        try:
            start, end = period(
                parse_when(since) if since else None, parse_when(until) if until else None, now
            )
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        priorities = [p.strip() for p in priority.split(",") if p.strip()]
        return await report(
            store.db, roster, since=start, until=end, now=now, site=site, priorities=priorities
        )

    return router
