"""HTTP routes for walk tests, their live progress and commissioning reports, the installer's
page (`/installer`) and the staff pages' service worker (`/staff-sw.js`). In the hub's router
list (`hub.app`).

The `/api/walktests` routes need the `walktest` permission (installers, admins) and a walk test
of a site the caller sees whole: a walk test turns every alert of its site or gateway into a
test alert. Another site's walk test is answered 404, like a missing one. Callers who may not
read health data (installers) get the checklist, the test alerts and the report without
residents' names.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict

from hub.access.permissions import Principal, require
from hub.commissioning.report import CommissioningReport, build_report, render_html, render_pdf
from hub.commissioning.walktest import WalkTests
from hub.http.deps import part
from hub.http.params import RecordId
from hub.http.streams import KEEPALIVE_S
from hub.http.web_files import listed_file, web_file

INSTALLER_FILES: Final = frozenset({"installer.js", "installer.css"})
# The pages' shells must not be kept stale by a browser cache: the service worker caches them.
NO_CACHE: Final = {"Cache-Control": "no-cache"}
Tester = Annotated[Principal, Depends(require("walktest"))]
Tests = Annotated[WalkTests, Depends(part(WalkTests))]
RESIDENT_FIELDS: Final = ("resident_code", "resident_name")
ListView = Literal["full", "summary"]


class StartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: str
    gateway: str | None = None


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def without_residents(caller: Principal, status: dict[str, Any]) -> dict[str, Any]:
    """A walk test's status, without who is in the beds for those who may not know it."""
    if caller.can("health.read"):
        return status
    devices = [{**row, "resident_name": None} for row in status["devices"]]
    return {**status, "devices": devices}


def _report_for(caller: Principal, report: CommissioningReport) -> CommissioningReport:
    if caller.can("health.read"):
        return report
    return replace(report, rows=[replace(row, resident="—") for row in report.rows])


router = APIRouter()


def reachable(tests: WalkTests, test_id: int, caller: Principal) -> None:
    """Go on only if the walk test exists and the caller sees its whole site."""
    test = tests.get(test_id)
    if not caller.sees_site(test.site):
        raise HTTPException(404, f"There is no walk test {test_id}.")


async def status_for(tests: WalkTests, test_id: int, caller: Principal) -> dict[str, Any]:
    return without_residents(caller, await tests.status(test_id))


@router.get("/installer", response_class=HTMLResponse)
async def installer_page() -> Response:
    return web_file("installer.html", NO_CACHE)


@router.get("/installer/{name}")
async def installer_file(name: str) -> Response:
    return listed_file(name, INSTALLER_FILES, NO_CACHE)


# The staff pages' service worker: it keeps the console's and this page's shells for a
# start while the hub cannot be reached (docs/walktest.md, docs/console.md). Served here,
# beside the installer page it keeps, at the root so that its scope is the whole site; it
# holds no data and needs no login, as the family app's /sw.js.
@router.get("/staff-sw.js")
async def staff_service_worker() -> Response:
    return web_file("staff-sw.js", NO_CACHE)


@router.get("/api/walktests")
async def list_tests(caller: Tester, tests: Tests, view: ListView = "full") -> dict[str, Any]:
    """The latest 50, newest first: each with its checklist, or with `view=summary` only
    how many devices passed (the installer's list of past walk tests, on a phone)."""
    seen = [test for test in tests.all() if caller.sees_site(test.site)][:50]
    if view == "summary":
        return {"walktests": [await tests.summary(test.id) for test in seen]}
    return {"walktests": [await status_for(tests, test.id, caller) for test in seen]}


@router.post("/api/walktests", status_code=201)
async def start(body: StartRequest, caller: Tester, tests: Tests) -> dict[str, Any]:
    if not caller.sees_site(body.site):
        raise HTTPException(404, f"There is no site {body.site}.")
    test = await tests.start(body.site, body.gateway, caller.username)
    return await status_for(tests, test.id, caller)


@router.get("/api/walktests/{test_id}")
async def status(test_id: RecordId, caller: Tester, tests: Tests) -> dict[str, Any]:
    reachable(tests, test_id, caller)
    return await status_for(tests, test_id, caller)


@router.post("/api/walktests/{test_id}/stop")
async def stop(test_id: RecordId, caller: Tester, tests: Tests) -> dict[str, Any]:
    reachable(tests, test_id, caller)
    await tests.stop(test_id, caller.username)
    return await status_for(tests, test_id, caller)


@router.get("/api/walktests/{test_id}/alerts")
async def test_alerts(test_id: RecordId, caller: Tester, tests: Tests) -> dict[str, Any]:
    """The walk test's own (test) alerts: for the installer, not the staff console."""
    reachable(tests, test_id, caller)
    listed = await tests.alerts(test_id)
    if not caller.can("health.read"):
        listed = [{**alert, **dict.fromkeys(RESIDENT_FIELDS)} for alert in listed]
    return {"alerts": listed}


@router.get("/api/walktests/{test_id}/stream")
async def stream(
    test_id: RecordId, request: Request, caller: Tester, tests: Tests
) -> StreamingResponse:
    reachable(tests, test_id, caller)
    first = await status_for(tests, test_id, caller)
    return StreamingResponse(
        _progress(tests, test_id, first, request, caller),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def report_for(tests: WalkTests, test_id: int, caller: Principal) -> CommissioningReport:
    reachable(tests, test_id, caller)
    return _report_for(caller, await build_report(tests, test_id))


@router.get("/api/walktests/{test_id}/report.html", response_class=HTMLResponse)
async def report_html(test_id: RecordId, caller: Tester, tests: Tests) -> HTMLResponse:
    return HTMLResponse(render_html(await report_for(tests, test_id, caller)))


@router.get("/api/walktests/{test_id}/report.pdf")
async def report_pdf(test_id: RecordId, caller: Tester, tests: Tests) -> Response:
    report = await report_for(tests, test_id, caller)
    name = f"commissioning-{test_id}.pdf"
    return Response(
        render_pdf(report),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )


async def _progress(
    tests: WalkTests, test_id: int, first: dict[str, Any], request: Request, caller: Principal
) -> AsyncIterator[str]:
    """The walk test's status now, then again after every change, until it ends."""
    queue = tests.progress.subscribe()
    try:
        yield "retry: 2000\n" + _sse("walktest", first)
        while not await request.is_disconnected():
            try:
                update = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                yield ": keepalive\n\n"
                continue
            if update is None:
                return
            if update["id"] == test_id:
                yield _sse("walktest", without_residents(caller, update))
    finally:
        tests.progress.unsubscribe(queue)
