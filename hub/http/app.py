"""The hub's web app: made from the router list and the parts the wiring place gives it
(hub/app.py), with the session, the request limits, the one mapping of domain errors, the
health check and the console's files."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, Response
from starlette.middleware.sessions import SessionMiddleware

from hub.access.auth import Authenticator
from hub.config import RequestLimitSettings
from hub.http.deps import Parts
from hub.http.errors import answer_domain_errors
from hub.http.request_limits import RequestLimits
from hub.http.web_files import listed_file, web_file

CONSOLE_FILES = frozenset({"common.js", "console.js", "console.css", "alarm.wav"})


def create_app(
    *,
    routers: Iterable[APIRouter],
    parts: Parts,
    auth: Authenticator,
    secret_key: str,
    secure_cookies: bool,
    limits: RequestLimitSettings,
    health: Callable[[], dict[str, Any]],
) -> FastAPI:
    """`parts`: what the routes ask for (hub/http/deps.py), by class or slot; `auth`: who
    calls (hub/access/permissions.py reads it from the app)."""
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
    parts.provide(app)
    answer_domain_errors(app)

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

    for router in routers:
        app.include_router(router)
    return app
