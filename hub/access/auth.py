"""Who is asking: password login into a session kept on the hub, or an API token.

Passwords are argon2id hashes (argon2-cffi). The signed session cookie names a session of the
`web_sessions` table (`hub/access/sessions.py`) and carries a CSRF token that every state-changing
request made with the cookie must echo in the X-CSRF-Token header. A session lives while its
row does: signing out deletes it (every copy of the cookie stops), and so does a password reset
or a change of role or scope (the user's `session_gen` moves on). Failed logins are limited per
user name and per client address.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import HTTPException, Request

from hub.access.permissions import Principal
from hub.access.sessions import Sessions
from hub.access.users import User, UserStore, hash_password, token_digest
from hub.core.audit import AuditEntry
from hub.core.clock import Clock
from hub.core.store import Store

__all__ = ["Authenticator", "LoginLimiter", "hash_password", "token_digest"]

log = logging.getLogger("carewatch.hub.auth")
_hasher = PasswordHasher()
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class LoginLimiter:
    """At most `per_user` failed logins per user name and `per_client` per address in `window_s`."""

    clock: Clock
    per_user: int = 5
    per_client: int = 20
    window_s: float = 900.0
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def retry_after(self, username: str, client: str) -> float:
        """Seconds until a login may be tried again; 0 when it may be tried now."""
        now = self.clock.now()
        waits = [
            self._wait(f"user:{username.lower()}", self.per_user, now),
            self._wait(f"client:{client}", self.per_client, now),
        ]
        return max(waits)

    def failed(self, username: str, client: str) -> None:
        now = self.clock.now()
        for key in (f"user:{username.lower()}", f"client:{client}"):
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, username: str) -> None:
        self._failures.pop(f"user:{username.lower()}", None)

    def _wait(self, key: str, limit: int, now: float) -> float:
        times = self._failures.get(key)
        if not times:
            return 0.0
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return 0.0
        return times[0] + self.window_s - now if len(times) >= limit else 0.0


class Authenticator:
    def __init__(self, users: UserStore, store: Store, clock: Clock) -> None:
        self.users = users
        self._store = store
        self._clock = clock
        self.limiter = LoginLimiter(clock)
        self.sessions = Sessions(store, clock)  # its table is made by `UserStore.open`
        # Verifying against a real hash for unknown users keeps login timing uniform.
        self._decoy_hash = _hasher.hash(secrets.token_hex(16))

    async def login(self, request: Request, username: str, password: str) -> User:
        """The user, or 401 (wrong name or password) or 429 (too many failures)."""
        client = request.client.host if request.client else "unknown"
        wait = self.limiter.retry_after(username, client)
        if wait > 0:
            await self.record(username, "login_refused", {"client": client, "reason": "limit"})
            raise HTTPException(
                429,
                f"too many failed logins; try again in {int(wait) + 1} s",
                headers={"Retry-After": str(int(wait) + 1)},
            )
        user = await self.users.active_now(username)
        digest = user.password_hash if user is not None else self._decoy_hash
        ok = await asyncio.to_thread(_verify, digest, password)
        if not ok or user is None:
            self.limiter.failed(username, client)
            await self.record(username, "login_failed", {"client": client})
            log.warning("failed login for %r from %s", username, client)
            raise HTTPException(401, "wrong user name or password")
        self.limiter.succeeded(username)
        await self.record(username, "login", {"client": client})
        return user

    async def record(self, actor: str, action: str, detail: dict[str, str]) -> None:
        """An entry in the audit log about signing in or out."""
        async with self._store.transaction():
            await self._store.audit.record(
                [AuditEntry(self._clock.now(), actor, action, "web", detail)]
            )

    async def _token_principal(self, header: str) -> Principal | None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        found = await self.users.token(token_digest(token.strip()))
        if found is None or found.revoked:
            return None
        if found.username is None:
            assert found.grant is not None
            return Principal(f"token:{found.name}", found.name, found.grant, "api")
        user = await self.users.active(found.username)
        if user is None:
            return None
        return Principal(user.username, user.name, user.grant, "api")

    async def principal(self, request: Request) -> Principal:
        """The caller, or 401; cookie callers must also pass the CSRF check on writes."""
        header = request.headers.get("authorization")
        if header:
            principal = await self._token_principal(header)
            if principal is None:
                raise HTTPException(401, "invalid or revoked API token")
            return principal
        user = await self._session_user(request)
        if user is None:
            request.session.clear()  # the browser forgets a cookie that names no session
            raise HTTPException(401, "log in first")
        if request.method not in SAFE_METHODS:
            expected = request.session.get("csrf", "")
            given = request.headers.get("x-csrf-token", "")
            if not (expected and hmac.compare_digest(str(expected), given)):
                raise HTTPException(403, "missing or wrong X-CSRF-Token header")
        return Principal(user.username, user.name, user.grant, "console")

    def ended_here(self, request: Request) -> bool:
        """True if the caller's session was ended by this hub (sign-out): no database read."""
        session_id = request.session.get("sid")
        return isinstance(session_id, str) and self.sessions.ended_here(session_id)

    async def still_signed_in(self, request: Request) -> bool:
        """Whether the caller of a long request (the live stream) may still be answered."""
        try:
            await self.principal(request)
        except HTTPException:
            return False
        return True

    async def start_session(self, request: Request, user: User) -> str:
        """A new session for `user` in the request's cookie (an older one of the cookie ends);
        its CSRF token."""
        old = request.session.get("sid")
        if isinstance(old, str):
            await self.sessions.end(old)
        request.session.clear()
        client = request.client.host if request.client else "unknown"
        session_id = await self.sessions.start(user.username, user.session_gen, client)
        csrf = secrets.token_urlsafe(32)
        request.session.update({"sid": session_id, "csrf": csrf})
        return csrf

    async def end_session(self, request: Request) -> None:
        """Sign out: the cookie's session ends on the hub, for every copy of the cookie."""
        session_id = request.session.get("sid")
        if isinstance(session_id, str):
            await self.sessions.end(session_id)
        request.session.clear()

    async def _session_user(self, request: Request) -> User | None:
        """The user of the cookie's session while it lives and the user is as they signed in."""
        session_id = request.session.get("sid")
        if not isinstance(session_id, str):
            return None  # no cookie, or one made before sessions were kept on the hub
        found = await self.sessions.find(session_id)
        if found is None:
            return None
        user = await self.users.active(found.username)
        if user is not None and user.session_gen < found.session_gen:
            user = await self.users.active_now(found.username)  # our read of users is behind
        if user is None or user.session_gen != found.session_gen:
            await self.sessions.end(session_id)
            return None
        return user


def _verify(digest: str, password: str) -> bool:
    try:
        return _hasher.verify(digest, password)
    except (VerificationError, InvalidHashError):
        return False
