"""Web sessions kept on the hub: the cookie names a session, the `web_sessions` table says
whether it still lives.

The session cookie (Starlette's SessionMiddleware, signed with `web.secret_key`) holds a random
session id and the session's CSRF token, nothing else. The table keeps the SHA-256 of the id
(never the id itself), the user, the user's `session_gen` at sign-in, the client's address and
when the session began and was last used. So every copy of one cookie is the same session:

- signing out deletes the session's row, and every copy stops at once;
- a password reset, a change of role or scope, or disabling deletes every row of the user in
  the same transaction that raises their `session_gen` (`hub/access/users.py`), also when
  `carewatch users` makes the change from another process;
- a session unused for `IDLE_S`, or begun more than `MAX_AGE_S` ago, has ended.

The table is made by migration 2 (`hub/core/migrations.py`), which runs whenever the store is
opened, so `carewatch users` can end sessions on a database the hub has not opened since it
was upgraded; its SQL is in `hub/access/records.py`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, Final

from hub.access import records
from hub.core.clock import Clock
from hub.core.store import Store

IDLE_S: Final = 12 * 3600.0  # unused this long: ended (the cookie's own max_age, as before)
MAX_AGE_S: Final = 24 * 3600.0  # begun this long ago: ended however busy (sign in again)
TOUCH_S: Final = 60.0  # `last_seen` is written at most this often per session
ENDED_KEPT: Final = 10_000  # sessions ended here that a live stream can tell without a query


def session_digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class WebSession:
    digest: str
    username: str
    session_gen: int
    client: str
    created_at: float
    last_seen: float

    def ended(self, now: float) -> bool:
        return now - self.last_seen >= IDLE_S or now - self.created_at >= MAX_AGE_S


class Sessions:
    """The web sessions kept in the `web_sessions` table (`hub/access/records.py`)."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        # Sessions ended by this hub since it started, newest last: a live stream stops at once.
        self._ended_here: dict[str, None] = {}

    async def start(self, username: str, session_gen: int, client: str) -> str:
        """A new session for the user; its id (for the cookie only: just its digest is kept)."""
        session_id = secrets.token_urlsafe(32)
        now = self._clock.now()
        await records.start_session(
            self._store,
            (session_digest(session_id), username, session_gen, client[:100], now, now),
            idle_before=now - IDLE_S,
            begun_before=now - MAX_AGE_S,
        )
        return session_id

    async def find(self, session_id: str) -> WebSession | None:
        """The session while it lives; an idle or too old one is deleted and None."""
        digest = session_digest(session_id)
        row = await records.session(self._store, digest)
        if row is None:
            return None
        found = _session(row)
        now = self._clock.now()
        if found.ended(now):
            await self.end(session_id)
            return None
        if now - found.last_seen >= TOUCH_S:
            await records.touch_session(self._store, digest, now)
        return found

    def ended_here(self, session_id: str) -> bool:
        """True if this hub ended the session since it started (no database read)."""
        return session_digest(session_id) in self._ended_here

    async def end(self, session_id: str) -> bool:
        """End one session, every copy of its cookie; False when it had ended already."""
        digest = session_digest(session_id)
        self._ended_here[digest] = None
        if len(self._ended_here) > ENDED_KEPT:
            del self._ended_here[next(iter(self._ended_here))]
        return await records.delete_session(self._store, digest)


def _session(row: dict[str, Any]) -> WebSession:
    return WebSession(
        digest=row["id_sha256"],
        username=row["username"],
        session_gen=int(row["session_gen"]),
        client=row["client"],
        created_at=float(row["created_at"]),
        last_seen=float(row["last_seen"]),
    )
