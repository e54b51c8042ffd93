"""The access tables and all their SQL: users, api_tokens and web_sessions.

Only the access folder writes them: `hub/access/users.py` the users and tokens, with their audit
entries in one transaction (the writes here take the caller's connection), and
`hub/access/sessions.py` the web sessions. The web_sessions table is made by migration 2
(`hub/core/migrations.py`), so `carewatch users` can end sessions on a database the hub has not
opened since it was upgraded. Others read users' display names (`people_names`) and who is
family (`family_users`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, Literal

from hub.core.database import Database
from hub.core.store import Store

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    display_name TEXT,
    grant_json TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    source TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    session_gen INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS api_tokens (
    name TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL UNIQUE,
    username TEXT,
    grant_json TEXT,
    source TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
);
"""
# What a change to a user made with `carewatch users` may set (each ends their sessions).
UserColumn = Literal["password_hash", "grant_json", "disabled"]


async def create(store: Store) -> None:
    await store.add_schema(SCHEMA)


# --- users and tokens: reads ------------------------------------------------------------------


async def users(store: Store) -> list[dict[str, Any]]:
    async with store.db.execute("SELECT * FROM users") as cur:
        return [dict(row) for row in await cur.fetchall()]


async def tokens(store: Store) -> list[dict[str, Any]]:
    async with store.db.execute("SELECT * FROM api_tokens") as cur:
        return [dict(row) for row in await cur.fetchall()]


async def people_names(store: Store, usernames: Iterable[str]) -> dict[str, str]:
    """The display names of users (a user without one, or no such user: their user name);
    "system" is left out: what the hub did itself is said without a person."""
    wanted = sorted({name for name in usernames if name and name != "system"})
    if not wanted:
        return {}
    marks = ", ".join("?" for _ in wanted)
    async with store.db.execute(
        f"SELECT username, display_name FROM users WHERE username IN ({marks})", wanted
    ) as cur:
        found = {str(r["username"]): r["display_name"] for r in await cur.fetchall()}
    return {name: str(found.get(name) or name) for name in wanted}


async def family_users(db: Database) -> set[str]:
    """The hub users whose role is family (none when the users table is not there)."""
    if not await db.has_table("users"):
        return set()
    async with db.execute(
        "SELECT username FROM users WHERE json_extract(grant_json, '$.role') = 'family'"
    ) as cur:
        return {str(row[0]) for row in await cur.fetchall()}


# --- users and tokens: writes, in the caller's transaction ------------------------------------


async def put_config_user(db: Database, values: tuple[Any, ...]) -> None:
    """A user of the config file (username, display_name, grant_json, password_hash,
    created_at, updated_at), made or updated; a new grant or password, or enabling, moves their
    `session_gen` on."""
    await db.execute(
        "INSERT INTO users (username, display_name, grant_json, password_hash, "
        "source, disabled, session_gen, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, 'config', 0, 0, ?, ?) ON CONFLICT (username) DO UPDATE "
        "SET display_name = excluded.display_name, grant_json = excluded.grant_json, "
        "password_hash = excluded.password_hash, disabled = 0, "
        "session_gen = users.session_gen + CASE WHEN users.grant_json != excluded.grant_json "
        "OR users.password_hash != excluded.password_hash OR users.disabled != 0 "
        "THEN 1 ELSE 0 END, "
        "updated_at = excluded.updated_at",
        values,
    )


async def disable_users(db: Database, usernames: Iterable[str], at: float) -> None:
    await db.executemany(
        "UPDATE users SET disabled = 1, session_gen = session_gen + 1, updated_at = ? "
        "WHERE username = ?",
        [(at, name) for name in usernames],
    )


async def replace_config_tokens(db: Database, rows: Iterable[tuple[str, str, str, float]]) -> None:
    """The config file's tokens (name, sha256, grant_json, created_at) in place of the old."""
    await db.execute("DELETE FROM api_tokens WHERE source = 'config'")
    await db.executemany(
        "INSERT INTO api_tokens (name, sha256, username, grant_json, source, created_at) "
        "VALUES (?, ?, NULL, ?, 'config', ?)",
        rows,
    )


async def insert_user(db: Database, values: tuple[Any, ...]) -> None:
    """A new user (username, display_name, grant_json, password_hash, source, created_at,
    updated_at)."""
    await db.execute(
        "INSERT INTO users (username, display_name, grant_json, password_hash, source, "
        "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        values,
    )


async def change_user(
    db: Database, username: str, column: UserColumn, value: Any, at: float
) -> None:
    """Set one column of the user and move their `session_gen` on."""
    await db.execute(
        f"UPDATE users SET {column} = ?, session_gen = session_gen + 1, updated_at = ? "
        "WHERE username = ?",
        (value, at, username),
    )


async def insert_token(db: Database, name: str, digest: str, username: str, at: float) -> None:
    await db.execute(
        "INSERT INTO api_tokens (name, sha256, username, source, created_at) "
        "VALUES (?, ?, ?, 'cli', ?)",
        (name, digest, username, at),
    )


async def revoke_token(db: Database, name: str, at: float) -> None:
    await db.execute("UPDATE api_tokens SET revoked_at = ? WHERE name = ?", (at, name))


async def end_stale_sessions(db: Database, username: str | None = None) -> None:
    """Delete the web sessions of users who are gone or disabled or whose `session_gen` moved
    on (of one user, or of all); a cookie naming one is refused from its next request."""
    whose, args = ("username = ? AND ", (username,)) if username is not None else ("", ())
    await db.execute(
        f"DELETE FROM web_sessions WHERE {whose}NOT EXISTS ("
        "SELECT 1 FROM users WHERE users.username = web_sessions.username "
        "AND users.session_gen = web_sessions.session_gen AND users.disabled = 0)",
        args,
    )


# --- web sessions -----------------------------------------------------------------------------


async def start_session(
    store: Store, values: tuple[Any, ...], idle_before: float, begun_before: float
) -> None:
    """A new session (id_sha256, username, session_gen, client, created_at, last_seen), after
    deleting the ended ones nobody came back with (unused since `idle_before`, or begun by
    `begun_before`), in one transaction."""
    async with store.transaction() as db:
        await db.execute(
            "DELETE FROM web_sessions WHERE last_seen <= ? OR created_at <= ?",
            (idle_before, begun_before),
        )
        await db.execute(
            "INSERT INTO web_sessions (id_sha256, username, session_gen, client, created_at, "
            "last_seen) VALUES (?, ?, ?, ?, ?, ?)",
            values,
        )


async def session(store: Store, digest: str) -> dict[str, Any] | None:
    async with store.db.execute("SELECT * FROM web_sessions WHERE id_sha256 = ?", (digest,)) as cur:
        row = await cur.fetchone()
    return None if row is None else dict(row)


async def touch_session(store: Store, digest: str, at: float) -> None:
    async with store.transaction() as db:
        await db.execute("UPDATE web_sessions SET last_seen = ? WHERE id_sha256 = ?", (at, digest))


async def delete_session(store: Store, digest: str) -> bool:
    """False when there was no such session."""
    async with store.transaction() as db:
        cur = await db.execute("DELETE FROM web_sessions WHERE id_sha256 = ?", (digest,))
        return cur.rowcount > 0
