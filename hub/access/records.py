"""The access tables' SQL that others read: users' display names.

`hub/access/users.py` and `hub/access/sessions.py` keep the SQL of the users, api_tokens and
web_sessions tables they alone write.
"""

from __future__ import annotations

from collections.abc import Iterable

from hub.core.store import Store


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
