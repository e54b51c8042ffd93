"""Sessions kept on the hub, and notification action tokens checked against the user as they are.

A real hub (and Mosquitto) is started with the small site; people sign in over HTTP with httpx.
A "copy" of a session cookie is its value replayed from another client, as someone who lifted
it from a shared computer would. Changes to users are made through a second connection to the
hub's database, exactly as `carewatch users` makes them while the hub runs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiosqlite
import httpx
from itsdangerous import TimestampSigner

from hub.access.permissions import Grant
from hub.access.sessions import IDLE_S, MAX_AGE_S
from hub.access.users import UserStore
from hub.app import Hub
from hub.core.store import Store
from tests.conftest import NURSE, HubFactory, PublishBatch
from tests.hub.access.test_permissions import raise_alert
from tests.support.clock import FakeClock

COOKIE = "carewatch_session"
CARER = ("carer", "first-password")


@contextlib.asynccontextmanager
async def signed_in(hub: Hub, who: tuple[str, str]) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A client (a browser) signed in as `who`, and its CSRF token."""
    async with httpx.AsyncClient(base_url=hub.url, timeout=20) as client:
        response = await client.post("/api/login", json={"username": who[0], "password": who[1]})
        assert response.status_code == 200, response.text
        yield client, str(response.json()["csrf_token"])


def cookie_of(client: httpx.AsyncClient) -> str:
    value = client.cookies.get(COOKIE)
    assert value, "the client holds no session cookie"
    return value


async def replay(hub: Hub, cookie: str, method: str, path: str, csrf: str = "") -> int:
    """A request from another client carrying a copy of a session cookie: its status."""
    headers = {"Cookie": f"{COOKIE}={cookie}"}
    if csrf:
        headers["X-CSRF-Token"] = csrf
    async with httpx.AsyncClient(base_url=hub.url, timeout=20) as other:
        return (await other.request(method, path, headers=headers)).status_code


async def read_and_ack(hub: Hub, cookie: str, csrf: str, alert_id: int) -> tuple[int, int]:
    """What a copy of `cookie` gets when it reads an alert and when it acknowledges it."""
    read = await replay(hub, cookie, "GET", f"/api/alerts/{alert_id}")
    ack = await replay(hub, cookie, "POST", f"/api/alerts/{alert_id}/acknowledge", csrf)
    return read, ack


@contextlib.asynccontextmanager
async def cli_users(hub: Hub) -> AsyncIterator[UserStore]:
    """The hub's users through a connection of their own, as `carewatch users` opens them."""
    store = await Store.open(hub.config.database)
    try:
        yield await UserStore.open(store)
    finally:
        await store.close()


async def stream_alert_ids(hub: Hub, cookie: str, ready: asyncio.Event) -> tuple[int, list[int]]:
    """Follow the live stream with a copy of `cookie` until the hub ends it: status and ids."""
    seen: list[int] = []
    headers = {"Cookie": f"{COOKIE}={cookie}"}
    async with (
        httpx.AsyncClient(base_url=hub.url, timeout=30) as other,
        other.stream("GET", "/api/stream", headers=headers) as response,
    ):
        async for line in response.aiter_lines():
            if line.startswith("event: hello"):
                ready.set()
            elif line.startswith('data: {"'):
                seen.append(int(json.loads(line.removeprefix("data: "))["id"]))
        return response.status_code, seen


# --- signing out ------------------------------------------------------------------------------


async def test_signing_out_ends_that_session_for_every_copy_of_its_cookie_and_no_other(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    hub = await hub_factory()
    alert_id = await raise_alert(hub, publish_batch, "sunrise", "gw-east", "radar-101")
    async with (
        signed_in(hub, NURSE) as (ward, csrf),
        signed_in(hub, NURSE) as (office, office_csrf),
    ):
        copied = cookie_of(ward)
        assert await replay(hub, copied, "GET", f"/api/alerts/{alert_id}") == 200
        ready = asyncio.Event()
        streaming = asyncio.create_task(stream_alert_ids(hub, copied, ready))
        await asyncio.wait_for(ready.wait(), 20)

        out = await ward.post("/api/logout", headers={"X-CSRF-Token": csrf})
        assert out.status_code == 200, out.text

        assert await read_and_ack(hub, copied, csrf, alert_id) == (401, 401)
        assert await replay(hub, copied, "GET", "/api/me") == 401
        assert await replay(hub, copied, "POST", "/api/logout", csrf) == 401
        assert (await ward.get("/api/alerts")).status_code == 401
        # A stream opened with the copy before the sign-out ends without the next alert.
        await raise_alert(hub, publish_batch, "sunrise", "gw-east", "radar-102", seq=2)
        status, streamed = await asyncio.wait_for(streaming, 20)
        assert (status, streamed) == (200, [])

        # The same nurse on another computer is still signed in, and acts.
        assert (await office.get(f"/api/alerts/{alert_id}")).status_code == 200
        acked = await office.post(
            f"/api/alerts/{alert_id}/acknowledge", headers={"X-CSRF-Token": office_csrf}
        )
        assert acked.status_code == 200, acked.text
        assert acked.json()["acknowledged_by"] == NURSE[0]

        # Signing in again makes a new session; the copy of the old one stays refused.
        async with signed_in(hub, NURSE) as (again, _):
            assert (await again.get("/api/alerts")).status_code == 200
        assert await replay(hub, copied, "GET", "/api/alerts") == 401
    async with hub.store.db.execute(
        "SELECT action FROM audit WHERE actor = ? AND action IN ('login', 'logout') ORDER BY id",
        (NURSE[0],),
    ) as cur:
        actions = [row["action"] for row in await cur.fetchall()]
    assert actions == ["login", "login", "logout", "login"]


# --- changes to the user ----------------------------------------------------------------------


async def test_a_password_reset_scope_change_or_disabling_ends_every_copy_at_once(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    hub = await hub_factory()
    east = await raise_alert(hub, publish_batch, "sunrise", "gw-east", "radar-101")
    west = await raise_alert(hub, publish_batch, "sunrise", "gw-west", "radar-201")
    password = CARER[1]

    async def ended_at_once(change: Callable[[], Awaitable[None]]) -> None:
        """Two browsers and a copied cookie of the carer work; after `change` none does."""
        async with (
            signed_in(hub, (CARER[0], password)) as (first, csrf),
            signed_in(hub, (CARER[0], password)) as (second, second_csrf),
        ):
            copied = cookie_of(first)
            assert await replay(hub, copied, "GET", f"/api/alerts/{east}") == 200
            assert (await second.get(f"/api/alerts/{east}")).status_code == 200
            await change()
            # No waiting: the very next request of every copy is refused.
            assert await read_and_ack(hub, copied, csrf, east) == (401, 401)
            assert await read_and_ack(hub, cookie_of(second), second_csrf, east) == (401, 401)
            assert (await first.get("/api/alerts")).status_code == 401
        assert (await nurse.get(f"/api/alerts/{east}")).status_code == 200  # others unaffected

    assert hub.users is not None
    at = time.time()
    grant = Grant(role="staff", sites=("sunrise",))
    await hub.users.create(CARER[0], password, grant, display_name="Day Carer", actor="t", at=at)
    async with cli_users(hub) as users, signed_in(hub, NURSE) as (nurse, _):
        await ended_at_once(lambda: users.set_password(CARER[0], "second-pass", actor="t", at=at))
        password = "second-pass"
        wing = Grant(role="staff", zones=("sunrise/east",))
        await ended_at_once(lambda: users.set_grant(CARER[0], wing, actor="t", at=at))
        async with signed_in(hub, (CARER[0], password)) as (east_carer, _):  # the new scope
            assert (await east_carer.get(f"/api/alerts/{west}")).status_code == 404
        await ended_at_once(lambda: users.set_disabled(CARER[0], True, actor="t", at=at))

        login = {"username": CARER[0], "password": password}
        assert (await nurse.post("/api/login", json=login)).status_code == 401
        async with hub.store.db.execute(
            "SELECT count(*) FROM web_sessions WHERE username = ?", (CARER[0],)
        ) as cur:
            row = await cur.fetchone()
        assert row is not None and row[0] == 0


async def test_sessions_end_after_twelve_idle_hours_or_a_day_after_signing_in(
    hub_factory: HubFactory,
) -> None:
    clock = FakeClock(time.time())
    hub = await hub_factory(clock=clock)
    async with signed_in(hub, NURSE) as (busy, _), signed_in(hub, NURSE) as (idle, _):
        clock.advance(IDLE_S - 60)
        assert (await busy.get("/api/alerts")).status_code == 200
        clock.advance(120)
        assert (await idle.get("/api/alerts")).status_code == 401  # unused for 12 hours
        used = IDLE_S + 60
        while used + IDLE_S / 2 < MAX_AGE_S:  # in use every 6 hours: alive for a day
            clock.advance(IDLE_S / 2)
            used += IDLE_S / 2
            assert (await busy.get("/api/alerts")).status_code == 200
        clock.advance(MAX_AGE_S - used)
        assert (await busy.get("/api/alerts")).status_code == 401  # a day after signing in


async def test_a_database_from_before_hub_sessions_opens_and_old_cookies_sign_in_again(
    hub_factory: HubFactory,
) -> None:
    first = await hub_factory()
    database, secret = first.config.database, first.config.web.secret_key
    await first.stop()
    async with aiosqlite.connect(database) as db:  # as the previous version left it
        await db.execute("DROP TABLE IF EXISTS web_sessions")
        await db.execute("PRAGMA user_version = 0")  # before numbered migrations
        await db.commit()
    # A cookie as the previous version made it: the user and their session_gen, signed.
    session = base64.b64encode(json.dumps({"user": NURSE[0], "csrf": "c", "gen": 0}).encode())
    old_cookie = TimestampSigner(secret).sign(session).decode()

    hub = await hub_factory()
    assert await replay(hub, old_cookie, "GET", "/api/me") == 401
    async with signed_in(hub, NURSE) as (client, _):
        assert (await client.get("/api/alerts")).status_code == 200


# --- notification action tokens ---------------------------------------------------------------


async def test_a_notification_token_acts_only_as_the_user_is_now(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    hub = await hub_factory()
    assert hub.users is not None and hub.push is not None
    users, tokens = hub.users, hub.push.tokens
    both = Grant(role="family", residents=("E-0001", "E-0002"))
    await users.create("anna", "anna-password", both, display_name=None, actor="t", at=time.time())
    mary = await raise_alert(hub, publish_batch, "sunrise", "gw-east", "radar-101")
    li = await raise_alert(hub, publish_batch, "sunrise", "gw-east", "radar-102", seq=2)
    # What pushes to Anna carried (each push names its alert and her).
    mary_token, li_token = tokens.issue(mary, "anna"), tokens.issue(li, "anna")

    async def press(token: str, action: str) -> httpx.Response:
        async with httpx.AsyncClient(base_url=hub.url, timeout=20) as phone:  # no session
            return await phone.post("/api/push/action", json={"token": token, "action": action})

    only_li = Grant(role="family", residents=("E-0002",))
    await users.set_grant("anna", only_li, actor="t", at=time.time())  # stopped following Mary
    for action in ("acknowledge", "send_someone"):
        refused = await press(mary_token, action)
        assert (refused.status_code, refused.json()) == (404, {"detail": f"no alert {mary}"})
    missing = await press(tokens.issue(999_999, "anna"), "acknowledge")
    assert (missing.status_code, missing.json()) == (404, {"detail": "no alert 999999"})
    mary_now = await hub.alerts.records.get(mary)
    assert mary_now is not None and mary_now["state"] == "open"
    assert "help_requested" not in {h["action"] for h in await hub.store.audit.for_alert(mary)}

    asked = await press(li_token, "send_someone")  # still in scope: still works
    assert asked.status_code == 200, asked.text

    installer = Grant(role="installer", sites=("sunrise",))
    await users.set_grant("anna", installer, actor="t", at=time.time())
    wrong_role = await press(li_token, "acknowledge")
    assert wrong_role.status_code == 403
    assert "may not do this" in wrong_role.json()["detail"]

    await users.set_grant("anna", only_li, actor="t", at=time.time())
    await users.set_disabled("anna", True, actor="t", at=time.time())
    disabled = await press(li_token, "acknowledge")
    assert disabled.status_code == 403
    assert disabled.json()["detail"] == "the account this notification was sent to is not active"

    await users.set_disabled("anna", False, actor="t", at=time.time())
    done = await press(li_token, "seen")
    assert done.status_code == 200, done.text
    li_now = await hub.alerts.records.get(li)
    assert li_now is not None
    # A relative's answer is recorded as theirs and acknowledges nothing for the staff.
    assert (li_now["state"], li_now["acknowledged_by"]) == ("open", None)
    seen = [(h["action"], h["actor"]) for h in await hub.store.audit.for_alert(li)]
    assert ("family_seen", "anna") in seen
