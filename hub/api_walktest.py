"""HTTP routes for walk tests, their live progress and commissioning reports, and the installer's
page (`/installer`). Mounted by the hub next to the routes of `hub.api` (see `hub.service`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable
from importlib.resources import files
from typing import Any, Final, TypeVar

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict

from hub.api import KEEPALIVE_S, Caller
from hub.commissioning_report import build_report, render_html, render_pdf
from hub.walktest import WalkTestError, WalkTests

T = TypeVar("T")
INSTALLER_FILES: Final = {"installer.js": "text/javascript", "installer.css": "text/css"}


class StartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: str
    gateway: str | None = None


async def _answer(call: Awaitable[T]) -> T:
    """The call's result, or its WalkTestError as an HTTP error."""
    try:
        return await call
    except WalkTestError as exc:
        raise HTTPException(exc.status, str(exc)) from None


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def walktest_routes(tests: WalkTests) -> APIRouter:
    router = APIRouter()

    @router.get("/installer", response_class=HTMLResponse)
    async def installer_page() -> HTMLResponse:
        return HTMLResponse(files("hub").joinpath("web", "installer.html").read_text())

    @router.get("/installer/{name}")
    async def installer_file(name: str) -> Response:
        if name not in INSTALLER_FILES:
            raise HTTPException(404, "not found")
        data = files("hub").joinpath("web", name).read_bytes()
        return Response(data, media_type=INSTALLER_FILES[name])

    @router.get("/api/walktests")
    async def list_tests(_: Caller) -> dict[str, Any]:
        return {"walktests": [await tests.status(test.id) for test in tests.all()[:50]]}

    @router.post("/api/walktests", status_code=201)
    async def start(body: StartRequest, caller: Caller) -> dict[str, Any]:
        test = await _answer(tests.start(body.site, body.gateway, caller.username))
        return await tests.status(test.id)

    @router.get("/api/walktests/{test_id}")
    async def status(test_id: int, _: Caller) -> dict[str, Any]:
        return await _answer(tests.status(test_id))

    @router.post("/api/walktests/{test_id}/stop")
    async def stop(test_id: int, caller: Caller) -> dict[str, Any]:
        await _answer(tests.stop(test_id, caller.username))
        return await tests.status(test_id)

    @router.get("/api/walktests/{test_id}/alerts")
    async def test_alerts(test_id: int, _: Caller) -> dict[str, Any]:
        """The walk test's own (test) alerts: for the installer, not the staff console."""
        return {"alerts": await _answer(tests.alerts(test_id))}

    @router.get("/api/walktests/{test_id}/stream")
    async def stream(test_id: int, request: Request, _: Caller) -> StreamingResponse:
        first = await _answer(tests.status(test_id))
        return StreamingResponse(
            _progress(tests, test_id, first, request),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @router.get("/api/walktests/{test_id}/report.html", response_class=HTMLResponse)
    async def report_html(test_id: int, _: Caller) -> HTMLResponse:
        return HTMLResponse(render_html(await _answer(build_report(tests, test_id))))

    @router.get("/api/walktests/{test_id}/report.pdf")
    async def report_pdf(test_id: int, _: Caller) -> Response:
        report = await _answer(build_report(tests, test_id))
        name = f"commissioning-{test_id}.pdf"
        return Response(
            render_pdf(report),
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="{name}"'},
        )

    return router


async def _progress(
    tests: WalkTests, test_id: int, first: dict[str, Any], request: Request
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
                yield _sse("walktest", update)
    finally:
        tests.progress.unsubscribe(queue)
