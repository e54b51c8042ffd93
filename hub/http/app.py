"""The hub's HTTP side: JSON API, the live alert stream (server-sent events) and the console."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.middleware.sessions import SessionMiddleware

from hub.access.auth import Authenticator
from hub.access.permissions import Principal, authenticated, require
from hub.alerts.lifecycle import ACTIVE_STATES, OUTCOMES, AlertBus, AlertError, AlertService
from hub.config import RequestLimitSettings
from hub.console.presence import CONSOLE_ID, Consoles
from hub.console.presence_routes import owner_of
from hub.core.store import Store
from hub.http.params import RecordId
from hub.http.request_limits import RequestLimits
from hub.http.web_files import listed_file, web_file
from hub.registry.index import Placement, Registry
from hub.registry.labels import alert_place
from hub.registry.routes import install_registry_api
from hub.registry.service import RegistryService

KEEPALIVE_S = 15.0
# A live stream checks its caller's session this often, between alerts: an alert is sent
# without a query first (a sign-out on this hub stops the stream at once; an expiry, a disabled
# user or a revoked token within this time).
RECHECK_S = 5.0
ALERT_PAGE = 500  # alerts read at a time while filtering them for a caller
# hub/alerts/lifecycle.py records what the hub does by itself as done by "system".
SYSTEM_ACTOR = "system"
CONSOLE_FILES = frozenset({"common.js", "console.js", "console.css", "alarm.wav"})
STATE_FILTERS: dict[str, tuple[str, ...]] = {
    "active": ACTIVE_STATES,
    "open": ("open",),
    "acknowledged": ("acknowledged",),
    "resolved": ("resolved",),
    "all": ("open", "acknowledged", "resolved"),
}


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class AcknowledgeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Literal["console", "phone", "api"] = "console"


class ResolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: str
    note: str | None = Field(default=None, max_length=2000)
    channel: Literal["console", "phone", "api"] = "console"


Caller = Annotated[Principal, Depends(authenticated)]
AlertReader = Annotated[Principal, Depends(require("alerts.read"))]
AlertActor = Annotated[Principal, Depends(require("alerts.act"))]
DeviceReader = Annotated[Principal, Depends(require("devices.read"))]


def create_app(
    *,
    store: Store,
    alerts: AlertService,
    bus: AlertBus,
    auth: Authenticator,
    registry: Registry,
    registry_admin: RegistryService,
    secret_key: str,
    secure_cookies: bool,
    limits: RequestLimitSettings,
    health: Callable[[], dict[str, Any]],
    hide_alert: Callable[[dict[str, Any]], bool] | None = None,
    consoles: Consoles | None = None,
) -> FastAPI:
    """`hide_alert`: alerts kept off the staff list and stream (walk-test alerts);
    `consoles`: where a console's stream says it is connected (hub/console/presence.py)."""
    hidden = hide_alert or (lambda alert: False)
    app = FastAPI(title="carewatch hub", version="0.1.0", docs_url=None, redoc_url=None)
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret_key,
        session_cookie="carewatch_session",
        same_site="strict",
        https_only=secure_cookies,
        max_age=12 * 3600,
    )
    app.add_middleware(RequestLimits, settings=limits)  # outermost: before any body is read
    app.state.auth = auth
    install_registry_api(app, registry_admin)

    def sites(caller: Principal) -> list[dict[str, str]]:
        return [
            {"id": site.id, "name": site.name}
            for site in registry.sites.values()
            if caller.touches_site(site.id)
        ]

    def whoami(caller: Principal, csrf: str) -> dict[str, Any]:
        return {
            "user": caller.username,
            "name": caller.name,
            **caller.grant.model_dump(),
            "permissions": sorted(caller.permissions),
            "csrf_token": csrf,
            "sites": sites(caller),
        }

    def person_name(username: str) -> str:
        return "the hub" if username == SYSTEM_ACTOR else auth.users.name_of(username)

    def placed(alert: dict[str, Any]) -> dict[str, Any]:
        """The alert with where it happened in words (`place`, hub/registry/labels.py), and who
        answered it by name (`acknowledged_by_name`, `resolved_by_name`)."""
        names = {
            f"{field}_name": person_name(alert[field])
            for field in ("acknowledged_by", "resolved_by")
            if alert.get(field)
        }
        return {**alert, **names, "place": alert_place(registry.data, alert)}

    async def visible_alerts(
        caller: Principal, states: tuple[str, ...], limit: int
    ) -> list[dict[str, Any]]:
        """The first `limit` alerts the caller may see, read a page at a time: a nurse of one
        wing gets hers even behind many of other wings, without reading the whole history."""
        found: list[dict[str, Any]] = []
        page, offset = max(limit, ALERT_PAGE), 0
        while True:
            listed = await store.alerts(states, page, offset)
            found += caller.visible_alerts(alert for alert in listed if not hidden(alert))
            if len(found) >= limit or len(listed) < page:
                return [placed(alert) for alert in found[:limit]]
            offset += page

    async def visible_alert(alert_id: int, caller: Principal) -> dict[str, Any]:
        alert = await store.alert(alert_id)
        if alert is None or hidden(alert) or not caller.sees_alert(alert):
            raise HTTPException(404, f"no alert {alert_id}")
        return alert

    @app.exception_handler(AlertError)
    async def _alert_error(_: Request, exc: AlertError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.get("/", response_class=HTMLResponse)
    async def console() -> Response:
        return web_file("console.html")

    @app.get("/static/{name}")
    async def static(name: str) -> Response:
        return listed_file(name, CONSOLE_FILES)

    @app.get("/api/health")
    async def get_health() -> dict[str, Any]:
        """Open, for monitoring and for consoles checking the hub is there: counts only."""
        return health()

    @app.post("/api/login")
    async def login(body: LoginRequest, request: Request) -> dict[str, Any]:
        user = await auth.login(request, body.username, body.password)
        csrf = await auth.start_session(request, user)
        return whoami(Principal(user.username, user.name, user.grant), csrf)

    @app.post("/api/logout")
    async def logout(request: Request, caller: Caller) -> dict[str, str]:
        await auth.end_session(request)  # every copy of the cookie, not just this browser's
        await auth.record(caller.username, "logout", {})
        return {"user": caller.username}

    @app.get("/api/me")
    async def me(request: Request, caller: Caller) -> dict[str, Any]:
        return whoami(caller, str(request.session.get("csrf", "")))

    @app.get("/api/outcomes")
    async def outcomes(_: AlertReader) -> dict[str, str]:
        return OUTCOMES

    @app.get("/api/alerts")
    async def list_alerts(
        caller: AlertReader, state: str = "active", limit: int = 200
    ) -> dict[str, list[dict[str, Any]]]:
        if state not in STATE_FILTERS:
            raise HTTPException(422, f"state must be one of {sorted(STATE_FILTERS)}")
        if not 1 <= limit <= 1000:
            raise HTTPException(422, "limit must be between 1 and 1000")
        return {"alerts": await visible_alerts(caller, STATE_FILTERS[state], limit)}

    @app.get("/api/alerts/{alert_id}")
    async def get_alert(alert_id: RecordId, caller: AlertReader) -> dict[str, Any]:
        alert = await visible_alert(alert_id, caller)
        return {**placed(alert), "history": await store.audit_for_alert(alert_id)}

    @app.post("/api/alerts/{alert_id}/acknowledge")
    async def acknowledge(
        alert_id: RecordId, caller: AlertActor, body: AcknowledgeRequest | None = None
    ) -> dict[str, Any]:
        await visible_alert(alert_id, caller)
        channel = "api" if caller.via == "api" else (body or AcknowledgeRequest()).channel
        return placed(await alerts.acknowledge(alert_id, caller.username, channel))

    @app.post("/api/alerts/{alert_id}/resolve")
    async def resolve(
        alert_id: RecordId, body: ResolveRequest, caller: AlertActor
    ) -> dict[str, Any]:
        await visible_alert(alert_id, caller)
        channel = "api" if caller.via == "api" else body.channel
        return placed(
            await alerts.resolve(alert_id, caller.username, channel, body.outcome, body.note)
        )

    @app.get("/api/devices")
    async def list_devices(caller: DeviceReader) -> dict[str, list[dict[str, Any]]]:
        """The devices the caller may see, where they are, and their health as last reported."""
        health = await store.device_health()
        devices = [
            {**_device_view(place, caller), "health": health.get(place.device)}
            for place in registry.devices()
            if caller.sees_place(place.site, place.zone)
        ]
        return {"devices": devices}

    @app.get("/api/stream")
    async def stream(
        request: Request,
        caller: AlertReader,
        console: Annotated[str | None, Query(pattern=CONSOLE_ID)] = None,
        armed: bool = False,
    ) -> StreamingResponse:
        """The live alerts. A console page names itself (`console`) and says whether it can
        sound (`armed`): it counts as connected while this stream is open (console_watch.py)."""
        queue = bus.subscribe(
            caller.username, lambda alert: not hidden(alert) and caller.sees_alert(alert)
        )
        owner = owner_of(request, caller)

        async def events() -> AsyncIterator[str]:
            checked = quiet_since = time.monotonic()
            leave = None
            if console is not None and consoles is not None:
                leave = consoles.open(console, caller, owner, armed)
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
                    shown = json.dumps(placed(alert), separators=(",", ":"))
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

    return app


def _device_view(place: Placement, caller: Principal) -> dict[str, Any]:
    """Where a device is; who it watches only for those who may read health data."""
    view = asdict(place)
    if not caller.can("health.read"):
        view.update(resident_code=None, resident_name=None)
    return view
