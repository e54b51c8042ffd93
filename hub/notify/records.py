"""The Web Push tables and all their SQL: push_vapid (the hub's key pair) and
push_subscriptions (the browsers' subscriptions, and how their last push went).

Only `hub/notify/push.py` writes them; a change that is audited is written with its audit
entry in one transaction, the caller's (`Store.transaction()`), so those writes take its
connection.
"""

from __future__ import annotations

from typing import Any, Final

from hub.core.database import Database
from hub.core.store import Store

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS push_vapid (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    private_pem TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS push_subscriptions (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL,
    endpoint TEXT NOT NULL UNIQUE,
    p256dh TEXT NOT NULL,
    auth TEXT NOT NULL,
    user_agent TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    last_result TEXT,
    last_at REAL,
    failures INTEGER NOT NULL DEFAULT 0,
    confirmed_at REAL
);
CREATE INDEX IF NOT EXISTS push_subscriptions_user ON push_subscriptions (username, id);
"""
SUBSCRIPTION_COLUMNS: Final = (
    "id, username, endpoint, p256dh, auth, user_agent, created_at, last_result, last_at, "
    "failures, confirmed_at"
)


async def create(store: Store) -> None:
    await store.add_schema(SCHEMA)


# --- the key pair ---------------------------------------------------------------------------


async def vapid_pem(store: Store) -> str | None:
    """The hub's private key (PEM), or None before it was made."""
    async with store.db.execute("SELECT private_pem FROM push_vapid WHERE id = 1") as cur:
        row = await cur.fetchone()
    return None if row is None else str(row["private_pem"])


async def put_vapid(db: Database, private_pem: str, public_key: str, at: float) -> int:
    """In the caller's transaction: keep a new key pair and drop every subscription (browsers
    bound theirs to the old key); how many were dropped."""
    await db.execute(
        "INSERT INTO push_vapid (id, private_pem, public_key, created_at) VALUES (1, ?, ?, ?)",
        (private_pem, public_key, at),
    )
    cur = await db.execute("DELETE FROM push_subscriptions")
    return cur.rowcount


# --- subscriptions: reads -------------------------------------------------------------------


async def subscription_counts(store: Store) -> dict[str, int]:
    """How many subscriptions each user has (users with none left out)."""
    async with store.db.execute(
        "SELECT username, count(*) AS n FROM push_subscriptions GROUP BY username"
    ) as cur:
        return {row["username"]: row["n"] for row in await cur.fetchall()}


async def subscriptions(
    store: Store,
    *,
    username: str | None = None,
    endpoint: str | None = None,
    subscription_id: int | None = None,
) -> list[dict[str, Any]]:
    """The subscriptions that match every filter given, oldest first."""
    where, args = _filter(username, endpoint, subscription_id)
    async with store.db.execute(
        f"SELECT {SUBSCRIPTION_COLUMNS} FROM push_subscriptions WHERE {where} ORDER BY id", args
    ) as cur:
        return [dict(row) for row in await cur.fetchall()]


async def last_confirmed(store: Store, username: str) -> float | None:
    async with store.db.execute(
        "SELECT max(confirmed_at) FROM push_subscriptions WHERE username = ?", (username,)
    ) as cur:
        row = await cur.fetchone()
    return float(row[0]) if row is not None and row[0] is not None else None


# --- subscriptions: writes ------------------------------------------------------------------


async def phones_of(store: Store, username: str) -> list[tuple[Any, ...]]:
    """Each of the user's subscriptions, oldest first: (created_at, last_result, last_at,
    failures, confirmed_at); none on a hub whose push service never made its tables."""
    if not await store.db.has_table("push_subscriptions"):
        return []
    async with store.db.execute(
        "SELECT created_at, last_result, last_at, failures, confirmed_at "
        "FROM push_subscriptions WHERE username = ? ORDER BY id",
        (username,),
    ) as cur:
        return [tuple(row) for row in await cur.fetchall()]


async def put_subscription(db: Database, values: tuple[Any, ...], keep: int) -> list[int]:
    """In the caller's transaction: a browser's subscription (username, endpoint, p256dh, auth,
    user_agent, created_at), the same endpoint moved to the user, its results cleared; then the
    user's oldest beyond `keep` deleted. The ids of those deleted."""
    username = values[0]
    await db.execute(
        "INSERT INTO push_subscriptions (username, endpoint, p256dh, auth, user_agent, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (endpoint) DO UPDATE SET "
        "username = excluded.username, p256dh = excluded.p256dh, auth = excluded.auth, "
        "user_agent = excluded.user_agent, created_at = excluded.created_at, "
        "last_result = NULL, last_at = NULL, failures = 0",
        values,
    )
    newest_first = await db.execute_fetchall(
        "SELECT id FROM push_subscriptions WHERE username = ? ORDER BY created_at DESC, id DESC",
        (username,),
    )
    dropped = [int(row[0]) for row in newest_first[keep:]]
    await db.executemany(
        "DELETE FROM push_subscriptions WHERE id = ?", [(row_id,) for row_id in dropped]
    )
    return dropped


async def delete_users_subscription(db: Database, username: str, endpoint: str) -> bool:
    """In the caller's transaction; False when the user has none at that endpoint."""
    cur = await db.execute(
        "DELETE FROM push_subscriptions WHERE username = ? AND endpoint = ?",
        (username, endpoint),
    )
    return cur.rowcount == 1


async def confirm(
    store: Store,
    at: float,
    username: str,
    *,
    subscription_id: int | None = None,
    endpoint: str | None = None,
) -> bool:
    """Note that the user's subscription (by id, or at `endpoint`) received a push; False when
    there is no such subscription."""
    where, args = _filter(username, endpoint, subscription_id)
    async with store.transaction() as db:
        cur = await db.execute(
            f"UPDATE push_subscriptions SET confirmed_at = ? WHERE {where}", (at, *args)
        )
        return cur.rowcount == 1


async def note_result(
    store: Store, subscription_id: int, result: str, at: float, accepted: bool
) -> None:
    """A push's result on its subscription: an accepted one clears its failures."""
    async with store.transaction() as db:
        await db.execute(
            "UPDATE push_subscriptions SET last_result = ?, last_at = ?, failures = "
            "CASE WHEN ? = 1 THEN 0 ELSE failures + 1 END WHERE id = ?",
            (result, at, accepted, subscription_id),
        )


async def delete_subscription(store: Store, subscription_id: int) -> None:
    async with store.transaction() as db:
        await db.execute("DELETE FROM push_subscriptions WHERE id = ?", (subscription_id,))


def _filter(
    username: str | None, endpoint: str | None, subscription_id: int | None
) -> tuple[str, tuple[Any, ...]]:
    """The WHERE clause for the filters given (at least one)."""
    filters = {"id": subscription_id, "endpoint": endpoint, "username": username}
    given = {column: value for column, value in filters.items() if value is not None}
    return " AND ".join(f"{column} = ?" for column in given), tuple(given.values())
