"""Limits on what a caller may send, checked before a route reads anything.

- Body size, per kind of route: small for the routes open without a login, large for CSV
  imports, moderate for the rest. Starlette's own limiter enforces it: a declared length over
  the limit is refused before a byte of the body is read, and a body without a declared length
  is counted as it arrives. Either way the answer is 413, and the hub never holds more than the
  limit in memory.
- Request rate, per caller: a signed-in caller (session cookie or API token) by their credential,
  anyone else by their address. The routes open without a login have a lower rate, per address.
  Over the rate the answer is 429 with Retry-After.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from typing import Final

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.datastructures import Headers
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from hub.config import RequestLimitSettings

log = logging.getLogger("carewatch.hub.limits")

# Open to anyone: the login itself and the notification actions (authenticated by the signed
# token the push carried). The health check is open too, but consoles poll it: it counts as an
# ordinary route of whoever calls it.
PUBLIC_PATHS: Final = frozenset({"/api/login", "/api/push/action"})
IMPORT_PREFIX: Final = "/api/registry/import/"
SESSION_COOKIE: Final = "carewatch_session"


class RequestLimits:
    """ASGI middleware: rate first (a refused caller costs nothing more), then body size."""

    def __init__(self, app: ASGIApp, settings: RequestLimitSettings) -> None:
        self._public_body = RequestBodyLimitMiddleware(app, settings.max_public_body_kib * 1024)
        self._import_body = RequestBodyLimitMiddleware(app, settings.max_import_body_kib * 1024)
        self._body = RequestBodyLimitMiddleware(app, settings.max_body_kib * 1024)
        self._app = app
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._public_rate = RateLimitItemPerMinute(settings.public_requests_per_minute)
        self._rate = RateLimitItemPerMinute(settings.requests_per_minute)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        path: str = scope["path"]
        public = path in PUBLIC_PATHS
        rate = self._public_rate if public else self._rate
        caller = _caller_key(scope, by_address=public)
        if not self._limiter.hit(rate, caller):
            await self._too_many(scope, send, rate, caller)
            return
        if public:
            await self._public_body(scope, receive, send)
        elif path.startswith(IMPORT_PREFIX):
            await self._import_body(scope, receive, send)
        else:
            await self._body(scope, receive, send)

    async def _too_many(self, scope: Scope, send: Send, rate: RateLimitItem, caller: str) -> None:
        reset_at = self._limiter.get_window_stats(rate, caller).reset_time
        retry_after = max(1, math.ceil(reset_at - time.time()))
        log.warning(
            "too many requests on %s from %s; refused for %d s",
            scope["path"][:200],
            _address(scope),
            retry_after,
        )
        detail = (
            f"Too many requests: at most {rate.amount} a minute here. Try again in {retry_after} s."
        )
        body = json.dumps({"detail": detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(retry_after).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _caller_key(scope: Scope, *, by_address: bool) -> str:
    """Who is asking: their credential if they show one, else their address.

    Keyed by credential, the consoles of a whole home behind one proxy do not share one rate.
    Only a digest of the credential is kept in memory.
    """
    if not by_address:
        headers = Headers(scope=scope)
        cookie = _cookie(headers, SESSION_COOKIE)
        # The signed cookie is "payload.timestamp.signature", re-signed as the session is used:
        # its payload (the session's id) is what stays the same.
        credential = headers.get("authorization") or (cookie.split(".", 1)[0] if cookie else None)
        if credential:
            return "credential:" + hashlib.sha256(credential.encode()).hexdigest()[:32]
    return "address:" + _address(scope)


def _cookie(headers: Headers, name: str) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"
