"""Who may see and do what, tried against a running hub with two sites (docs/access.md).

- Every /api route declares its permission with `require(...)`, or is listed here as open or as
  open to anyone signed in: a new route cannot forget access control.
- Every route refuses a caller without a login (401) and a role without the right (403), for a
  web session and for an API token alike.
- Another site's alert, another wing's alert and another family's resident are answered 404
  wherever they are addressed, left out of lists and kept off the live stream.
- Logins are rate-limited and audited; a password reset ends sessions; revoked tokens stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Final

import fastapi.routing
import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from hub.access.permissions import ROLE_PERMISSIONS, Grant, Permission, Role, authenticated
from hub.access.users import token_digest
from hub.app import Hub
from hub.registry.models import Bed, Resident
from tests.conftest import (
    ADMIN,
    EAST_NURSE,
    FAMILY,
    INSTALLER,
    NURSE,
    PEOPLE,
    SMALL_SITE,
    SUPERVISOR,
    HubFactory,
    PublishBatch,
)
from tests.support.clock import FakeClock
from tests.support.hub import fall
from tests.support.waiting import eventually

# Open to anyone: the monitoring health check (counts only), the login itself, and the
# notification actions, which authenticate by the signed token the push carried.
PUBLIC: Final = frozenset({"/api/health", "/api/login", "/api/push/action"})
# Open to anyone signed in, whatever their role: their own session and push subscriptions.
SIGNED_IN: Final = frozenset({"/api/me", "/api/logout", "/api/push/key", "/api/push/subscriptions"})

HARBOUR: Final[dict[str, Any]] = {
    "id": "harbour",
    "name": "Harbour House",
    "gateways": ["gw-harbour"],
    "zones": [
        {
            "id": "north",
            "name": "North wing",
            "rooms": [
                {
                    "id": "h1",
                    "name": "H1",
                    "beds": [
                        {"code": "HB-N-1", "resident": {"code": "E-0100", "name": "Tom Hale"}}
                    ],
                }
            ],
        }
    ],
    "devices": [
        {"id": "radar-h1", "gateway": "gw-harbour", "profile": "seeed-mr60fda1", "bed": "HB-N-1"}
    ],
}
# One token per person of the small site, acting with the same grant.
TOKENS: Final = {name: f"token-of-{name}" for name in PEOPLE}
# Sample values for path parameters; a refusal must come before the value is looked at.
SAMPLES: Final = {
    "alert_id": "1",
    "test_id": "1",
    "key": "sunrise",
    "code": "E-0001",
    "site": "sunrise",
    "what": "beds",
}
# Bodies that pass validation, for routes whose scope check comes after the body is read.
BODIES: Final[dict[str, dict[str, Any]]] = {
    "/api/alerts/{alert_id}/resolve": {"outcome": "false_alarm"},
}
ROLE_USERS: Final = (ADMIN, SUPERVISOR, NURSE, INSTALLER, FAMILY)


def token_config() -> list[dict[str, Any]]:
    tokens: list[dict[str, Any]] = []
    for name, fields in PEOPLE.items():
        grant = {key: value for key, value in fields.items() if key != "display_name"}
        tokens.append({"name": f"{name}-token", "sha256": token_digest(TOKENS[name]), **grant})
    return tokens


@pytest.fixture
async def hub(hub_factory: HubFactory) -> Hub:
    """The small site and Harbour House, with a token for each person."""
    return await hub_factory(sites=[SMALL_SITE, HARBOUR], tokens=token_config())


def app_of(hub: Hub) -> FastAPI:
    server = hub._server
    assert server is not None
    app = server.config.app
    assert isinstance(app, FastAPI)
    return app


# --- the routes and what they require --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Guarded:
    path: str
    methods: frozenset[str]
    permissions: frozenset[Permission] | None  # None: no require(...) dependency
    signed_in: bool  # depends on `authenticated` (any signed-in caller)


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def _flattened(app: FastAPI) -> Iterator[tuple[str, set[str], Dependant]]:
    """Every APIRoute's path, methods and dependencies, with those of included routers."""
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)
    if iterate is None:  # FastAPI before included routers were kept whole in app.routes
        for route in app.routes:
            if isinstance(route, APIRoute):
                yield route.path, set(route.methods or ()), route.dependant
        return
    for context in iterate(app.routes):
        if isinstance(context.original_route, APIRoute):
            yield context.path, context.methods, context.dependant


def api_routes(app: FastAPI) -> list[Guarded]:
    routes = []
    for path, methods, dependant in _flattened(app):
        if not path.startswith("/api/"):
            continue
        calls = list(_calls(dependant))
        required = [call.permissions for call in calls if hasattr(call, "permissions")]
        permissions = frozenset(p for group in required for p in group) if required else None
        signed_in = any(call is authenticated for call in calls)
        routes.append(Guarded(path, frozenset(methods), permissions, signed_in))
    return routes


def fill(path: str, **values: str) -> str:
    """The path with its parameters filled in from `values`, else from SAMPLES."""
    return re.sub(
        r"\{(\w+)(?::\w+)?\}", lambda m: values.get(m[1], SAMPLES.get(m[1], "sample")), path
    )


def role_of(user: tuple[str, str]) -> Role:
    role: Role = PEOPLE[user[0]]["role"]
    return role


async def test_every_api_route_declares_who_may_call_it(hub: Hub) -> None:
    routes = api_routes(app_of(hub))
    undeclared = [
        route.path
        for route in routes
        if route.permissions is None
        and route.path not in PUBLIC
        and not (route.signed_in and route.path in SIGNED_IN)
    ]
    assert undeclared == [], (
        "these /api routes need Depends(require(...)), or a place in PUBLIC or SIGNED_IN: "
        f"{sorted(set(undeclared))}"
    )
    paths = {route.path for route in routes}
    assert {"/api/alerts/{alert_id}", "/api/walktests", "/api/figures"} <= paths
    assert PUBLIC | SIGNED_IN <= paths  # the lists name real routes


# --- a role without the right, and no login ---------------------------------------------------


@contextlib.asynccontextmanager
async def clients(hub: Hub) -> AsyncIterator[dict[str, tuple[httpx.AsyncClient, dict[str, str]]]]:
    """A logged-in client per person, with the CSRF header their writes need."""
    async with contextlib.AsyncExitStack() as stack:
        logged_in = {}
        for user in (*ROLE_USERS, EAST_NURSE):
            client = await stack.enter_async_context(
                httpx.AsyncClient(base_url=hub.url, timeout=20)
            )
            answer = await client.post(
                "/api/login", json={"username": user[0], "password": user[1]}
            )
            assert answer.status_code == 200, answer.text
            logged_in[user[0]] = (client, {"X-CSRF-Token": answer.json()["csrf_token"]})
        yield logged_in


async def call(
    client: httpx.AsyncClient,
    method: str,
    template: str,
    headers: dict[str, str] | None = None,
    **values: str,
) -> httpx.Response:
    url = fill(template, **values)
    if method == "GET":
        return await client.request(method, url, headers=headers)
    return await client.request(method, url, headers=headers, json=BODIES.get(template, {}))


def said_plainly(answer: httpx.Response) -> bool:
    """A refusal is a sentence that says who may ("Only installers or administrators can run a
    walk test. …"): never a permission code ("walktest", "alerts.read") or "needs"."""
    detail = str(answer.json().get("detail", ""))
    codes = re.compile(r"\b[a-z]+\.[a-z]+\b|\bwalktest\b|\bprovision\b|\bneeds\b")
    return (
        detail.startswith("Only ")
        and detail.endswith("may not do this.")
        and not (codes.search(detail))
    )


async def test_every_route_refuses_no_login_and_a_role_without_its_permission(hub: Hub) -> None:
    routes = [r for r in api_routes(app_of(hub)) if r.permissions or r.path in SIGNED_IN]
    wrong: list[str] = []
    refused_roles: set[Role] = set()
    async with clients(hub) as people, httpx.AsyncClient(base_url=hub.url, timeout=20) as anon:
        for route in routes:
            for method in sorted(route.methods):
                answer = await call(anon, method, route.path)
                if answer.status_code != 401:
                    wrong.append(f"{method} {route.path} without login: {answer.status_code}")
                for user in ROLE_USERS:
                    role = role_of(user)
                    if route.permissions is None or ROLE_PERMISSIONS[role] & route.permissions:
                        continue
                    refused_roles.add(role)
                    client, csrf = people[user[0]]
                    by_token = {"Authorization": f"Bearer {TOKENS[user[0]]}"}
                    for how, answer in (
                        ("session", await call(client, method, route.path, csrf)),
                        ("token", await call(anon, method, route.path, by_token)),
                    ):
                        refused = answer.status_code == 403 and said_plainly(answer)
                        if not refused:
                            wrong.append(
                                f"{method} {route.path} as {role} ({how}): "
                                f"{answer.status_code} {answer.text[:80]}"
                            )
    assert wrong == []
    assert refused_roles == {"admin", "supervisor", "staff", "installer", "family"}


# --- another site's alert, another wing's alert ---------------------------------------------


async def raise_alert(
    hub: Hub, publish: PublishBatch, site: str, gateway: str, device: str, seq: int = 1
) -> int:
    """A fall through the real broker; the id of the alert it opens."""
    await publish(site, gateway, [fall(device)], seq=seq)

    async def opened() -> list[int]:
        return [
            a["id"] for a in await hub.alerts.records.page(("open",), 50) if a["device"] == device
        ]

    await eventually(opened)
    (alert_id,) = await opened()
    return alert_id


async def streamed(
    client: httpx.AsyncClient, headers: dict[str, str], ready: asyncio.Event, last: Any
) -> list[int]:
    """The ids of the alerts the live stream delivers, up to and including alert `await last`."""
    seen: list[int] = []
    async with client.stream("GET", "/api/stream", headers=headers) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("event: hello"):
                ready.set()
            elif line.startswith('data: {"'):
                alert_id = json.loads(line.removeprefix("data: "))["id"]
                if alert_id not in seen:
                    seen.append(alert_id)
                if alert_id == await last:
                    return seen
    return seen


async def test_another_sites_wings_or_familys_alert_is_missing_everywhere(
    hub: Hub, publish_batch: PublishBatch
) -> None:
    routes = [r for r in api_routes(app_of(hub)) if "{alert_id}" in r.path and r.permissions]
    assert {r.path for r in routes} >= {
        "/api/alerts/{alert_id}",
        "/api/alerts/{alert_id}/acknowledge",
        "/api/alerts/{alert_id}/resolve",
        "/api/alerts/{alert_id}/escalation",
    }
    async with clients(hub) as people, httpx.AsyncClient(base_url=hub.url, timeout=20) as anon:
        supervisor, supervisor_csrf = people[SUPERVISOR[0]]
        east_nurse, east_csrf = people[EAST_NURSE[0]]
        family, family_csrf = people[FAMILY[0]]
        token = {"Authorization": f"Bearer {TOKENS[SUPERVISOR[0]]}"}  # sunrise only, like them
        watchers = {
            "supervisor": (supervisor, {}),
            "token": (anon, token),
            "east nurse": (east_nurse, {}),
        }
        last: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        ready = {name: asyncio.Event() for name in watchers}
        streams = {
            name: asyncio.create_task(streamed(client, headers, ready[name], last))
            for name, (client, headers) in watchers.items()
        }
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in ready.values())), 10)
        # Mary's (east wing) alert comes last: a stream that delivered it was sent the others.
        harbour = await raise_alert(hub, publish_batch, "harbour", "gw-harbour", "radar-h1")
        west = await raise_alert(hub, publish_batch, "sunrise", "gw-west", "radar-201")
        li_wei = await raise_alert(hub, publish_batch, "sunrise", "gw-east", "radar-102")
        mary = await raise_alert(hub, publish_batch, "sunrise", "gw-east", "radar-101", seq=2)
        last.set_result(mary)
        seen = {name: await asyncio.wait_for(task, 10) for name, task in streams.items()}
        assert seen == {
            "supervisor": [west, li_wei, mary],
            "token": [west, li_wei, mary],
            "east nurse": [li_wei, mary],
        }

        wrong: list[str] = []
        for who, role, client, headers, hidden, own in (
            ("supervisor", role_of(SUPERVISOR), supervisor, supervisor_csrf, [harbour], west),
            ("sunrise token", role_of(SUPERVISOR), anon, token, [harbour], west),
            ("east nurse", role_of(EAST_NURSE), east_nurse, east_csrf, [west, harbour], mary),
            ("family", role_of(FAMILY), family, family_csrf, [li_wei, west, harbour], mary),
        ):
            for route in routes:
                if not route.permissions or not ROLE_PERMISSIONS[role] & route.permissions:
                    continue
                for method in sorted(route.methods):
                    for alert_id in hidden:
                        answer = await call(
                            client, method, route.path, headers, alert_id=str(alert_id)
                        )
                        if answer.status_code != 404:
                            wrong.append(f"{method} {route.path} as {who}: {answer.status_code}")
            if role == "family":
                continue
            for path in (f"/api/alerts/{own}", f"/api/alerts/{own}/escalation"):
                answer = await client.get(path, headers=headers)
                assert answer.status_code == 200, (who, path, answer.text)
            listed = await client.get("/api/alerts", headers=headers)
            ids = {alert["id"] for alert in listed.json()["alerts"]}
            assert own in ids and not ids & set(hidden), who
        assert wrong == []
        for alert_id in (harbour, west, li_wei):
            assert (await hub.alerts.records.get(alert_id) or {})["state"] == "open"


# --- another family's resident, another site's residents, places and devices ---------------

RESIDENT_BODIES: Final[dict[str, dict[str, Any]]] = {
    "/api/residents/{code}/admit": {"bed": "SR-W-201"},
    "/api/residents/{code}/transfer": {"bed": "SR-W-201"},
}


async def test_a_resident_out_of_scope_is_missing_wherever_residents_are_addressed(
    hub: Hub,
) -> None:
    routes = [r for r in api_routes(app_of(hub)) if "/residents/{" in r.path and r.permissions]
    assert {r.path for r in routes} >= {"/api/residents/{key}", "/api/residents/{code}/admit"}
    wrong: list[str] = []
    async with clients(hub) as people:
        for user, hidden in (
            (FAMILY, ["E-0002", "E-0100"]),
            (EAST_NURSE, ["E-0100"]),
            (SUPERVISOR, ["E-0100"]),
        ):
            client, csrf = people[user[0]]
            allowed = ROLE_PERMISSIONS[role_of(user)]
            for route in routes:
                if not (route.permissions and allowed & route.permissions):
                    continue
                for method in sorted(route.methods):
                    body = RESIDENT_BODIES.get(route.path, {})
                    for code in (*hidden, "E-0001"):
                        url = fill(route.path, key=code, code=code)
                        if method == "GET":
                            answer = await client.get(url)
                        elif code == "E-0001":
                            continue  # changing Mary's record is not what is tried here
                        else:
                            answer = await client.request(method, url, json=body, headers=csrf)
                        expected = 200 if code == "E-0001" else 404
                        if answer.status_code != expected:
                            who = f"{method} {url} as {user[0]}"
                            wrong.append(f"{who}: {answer.status_code} {answer.text[:80]}")
        assert wrong == []
        family, _ = people[FAMILY[0]]
        for path in ("/api/residents", "/api/beds", "/api/alerts", "/api/devices"):
            assert (await family.get(path)).status_code == 403, path
        listed = {
            user[0]: (await people[user[0]][0].get("/api/residents")).json()["residents"]
            for user in (ADMIN, SUPERVISOR, EAST_NURSE)
        }
        codes = {name: {r["code"] for r in residents} for name, residents in listed.items()}
        assert codes == {
            ADMIN[0]: {"E-0001", "E-0002", "E-0100"},
            SUPERVISOR[0]: {"E-0001", "E-0002"},
            EAST_NURSE[0]: {"E-0001", "E-0002"},
        }

        # Naming another site's bed or resident says no more than naming a missing one.
        supervisor, csrf = people[SUPERVISOR[0]]
        moved = await supervisor.post(
            "/api/residents/E-0002/transfer", json={"bed": "HB-N-1"}, headers=csrf
        )
        assert (moved.status_code, moved.json()["detail"]) == (404, "no bed with code 'HB-N-1'")
        rows = "code,name,bed\nE-0100,Someone Else,\nE-0777,New Person,HB-N-1\n"
        imported = await supervisor.post(
            "/api/registry/import/residents", content=rows, headers=csrf
        )
        assert imported.status_code == 422
        assert imported.json()["problems"] == [
            {"line": 2, "problem": "resident E-0100 is already in use"},
            {"line": 3, "problem": "no bed with code 'HB-N-1'"},
        ]
        assert "Tom Hale" not in imported.text
        assert hub.registry.data.find(Resident, ("E-0777",)) is None


async def test_an_installer_sees_their_sites_places_and_devices_but_no_resident(
    hub: Hub,
) -> None:
    async with clients(hub) as people:
        installer, csrf = people[INSTALLER[0]]
        assert (await installer.get("/api/residents")).status_code == 403
        assert (await installer.get("/api/residents/E-0001")).status_code == 403
        beds = (await installer.get("/api/beds")).json()["beds"]
        assert {bed["code"] for bed in beds} == {"SR-E-101", "SR-E-102", "SR-W-201"}
        bed = (await installer.get("/api/beds/SR-E-101")).json()
        assert "resident" not in bed and "history" not in bed and bed["devices"]
        assert "Mary" not in json.dumps(bed)
        devices = (await installer.get("/api/devices")).json()["devices"]
        assert "radar-h1" not in {d["device"] for d in devices} and devices
        assert all(d["resident_name"] is None for d in devices)
        device = (await installer.get("/api/devices/radar-101")).json()
        assert device["placement"]["resident_name"] is None
        sites = (await installer.get("/api/sites")).json()["sites"]
        assert [site["id"] for site in sites] == ["sunrise"]
        for path in (
            "/api/sites/harbour",
            "/api/zones/harbour/north",
            "/api/rooms/harbour/h1",
            "/api/beds/HB-N-1",
            "/api/gateways/harbour/gw-harbour",
            "/api/devices/radar-h1",
        ):
            assert (await installer.get(path)).status_code == 404, path

        # Changes: only in their site, and a new site only for those who see every site.
        harbour_bed = {"code": "HB-N-2", "site": "harbour", "room": "h1"}
        refused = await installer.post("/api/beds", json=harbour_bed, headers=csrf)
        assert refused.status_code == 404 and "harbour" in refused.json()["detail"]
        clash = await installer.post(
            "/api/beds", json={**harbour_bed, "code": "HB-N-1"}, headers=csrf
        )
        assert clash.status_code == 409 and "h1" not in clash.json()["detail"]
        new_site = await installer.post(
            "/api/sites", json={"id": "quay", "name": "Quay"}, headers=csrf
        )
        assert new_site.status_code == 404
        moved = await installer.patch(
            "/api/devices/radar-201", json={"bed": "HB-N-1"}, headers=csrf
        )
        assert moved.status_code == 404 and "harbour" not in moved.json()["detail"]
        beds_csv = "site,zone,room,bed\nharbour,north,h1,HB-N-3\nsunrise,west,r201,SR-W-202\n"
        imported = await installer.post("/api/registry/import/beds", content=beds_csv, headers=csrf)
        assert imported.status_code == 404
        residents_csv = "code,name\nE-0999,Someone New\n"
        residents = await installer.post(
            "/api/registry/import/residents", content=residents_csv, headers=csrf
        )
        assert residents.status_code == 403
        own = await installer.post(
            "/api/beds", json={"code": "SR-W-202", "site": "sunrise", "room": "r201"}, headers=csrf
        )
        assert own.status_code == 201, own.text  # the refused import made no SR-W-202
    assert hub.registry.data.find(Bed, ("HB-N-3",)) is None


async def test_provisioning_walk_tests_figures_and_rosters_stay_in_scope(
    hub: Hub, publish_batch: PublishBatch
) -> None:
    await raise_alert(hub, publish_batch, "harbour", "gw-harbour", "radar-h1")
    await raise_alert(hub, publish_batch, "sunrise", "gw-east", "radar-101")
    async with clients(hub) as people:
        installer, csrf = people[INSTALLER[0]]
        admin, admin_csrf = people[ADMIN[0]]
        gateway = {"site": "harbour", "gateway": "gw-new"}
        assert (
            await installer.post("/api/provision/gateways", json=gateway, headers=csrf)
        ).status_code == 404
        device = {
            "site": "harbour",
            "gateway": "gw-harbour",
            "id": "radar-h2",
            "profile": "seeed-mr60fda1",
            "port": "/dev/ttyUSB0",
            "bed": "HB-N-1",
        }
        placed = await installer.post("/api/provision/devices", json=device, headers=csrf)
        assert placed.status_code == 404
        assert (await installer.get("/api/labels/harbour.pdf")).status_code == 404
        assert (await installer.get("/api/labels/bed/HB-N-1.png")).status_code == 404
        assert (await installer.get("/api/labels/bed/SR-E-101.png")).status_code == 200

        walk = {"site": "harbour"}
        assert (await installer.post("/api/walktests", json=walk, headers=csrf)).status_code == 404
        started = await admin.post("/api/walktests", json=walk, headers=admin_csrf)
        assert started.status_code == 201, started.text
        test_id = started.json()["id"]
        assert started.json()["devices"][0]["resident_name"] == "Tom Hale"  # admins see it
        for path in ("", "/alerts", "/report.html", "/report.pdf", "/stream"):
            url = f"/api/walktests/{test_id}{path}"
            assert (await installer.get(url)).status_code == 404, url
        stop = f"/api/walktests/{test_id}/stop"
        assert (await installer.post(stop, headers=csrf)).status_code == 404
        assert (await installer.get("/api/walktests")).json()["walktests"] == []
        assert (await admin.post(stop, headers=admin_csrf)).status_code == 200
        own = await installer.post("/api/walktests", json={"site": "sunrise"}, headers=csrf)
        assert own.status_code == 201, own.text
        assert own.json()["devices"] and all(
            row["resident_name"] is None for row in own.json()["devices"]
        )
        report = await installer.get(f"/api/walktests/{own.json()['id']}/report.html")
        assert report.status_code == 200 and "Mary Jones" not in report.text

        supervisor, _ = people[SUPERVISOR[0]]
        assert (await supervisor.get("/api/figures?site=harbour")).status_code == 404
        theirs = (await supervisor.get("/api/figures")).json()["figures"]
        everyone = (await admin.get("/api/figures")).json()["figures"]
        assert {row["site"] for row in theirs if row["by"] == "site"} == {"sunrise"}
        assert {row["site"] for row in everyone if row["by"] == "site"} == {"sunrise", "harbour"}
        on_duty = "/api/roster/on-duty"
        assert (await supervisor.get(on_duty, params={"site": "harbour"})).status_code == 404
        assert (await supervisor.get(on_duty, params={"site": "sunrise"})).status_code == 200
        east_nurse, _ = people[EAST_NURSE[0]]
        west = {"site": "sunrise", "zone": "west"}
        assert (await east_nurse.get(on_duty, params=west)).status_code == 404
        east = {"site": "sunrise", "zone": "east"}
        assert (await east_nurse.get(on_duty, params=east)).status_code == 200


# --- logins, sessions and tokens --------------------------------------------------------------


async def audit_actions(hub: Hub, actor: str) -> list[str]:
    async with hub.store.db.execute(
        "SELECT action FROM audit WHERE actor = ? ORDER BY id", (actor,)
    ) as cur:
        return [row["action"] for row in await cur.fetchall()]


async def test_logins_are_limited_after_five_failures_and_audited(
    hub_factory: HubFactory,
) -> None:
    clock = FakeClock(time.time())
    hub = await hub_factory(clock=clock)
    wrong = {"username": NURSE[0], "password": "not-the-password"}
    right = {"username": NURSE[0], "password": NURSE[1]}
    async with httpx.AsyncClient(base_url=hub.url, timeout=20) as client:
        for _ in range(5):
            assert (await client.post("/api/login", json=wrong)).status_code == 401
        limited = await client.post("/api/login", json=wrong)
        assert limited.status_code == 429
        wait = int(limited.headers["Retry-After"])
        assert 0 < wait <= 901
        refused = await client.post("/api/login", json=right)
        assert refused.status_code == 429  # even the right password, until the window passes
        other = await client.post("/api/login", json={"username": ADMIN[0], "password": ADMIN[1]})
        assert other.status_code == 200  # the limit is per user name (and per address, at 20)
        clock.advance(wait)
        assert (await client.post("/api/login", json=right)).status_code == 200
    actions = await audit_actions(hub, NURSE[0])
    assert actions == ["login_failed"] * 5 + ["login_refused"] * 2 + ["login"]


async def test_a_password_reset_ends_the_users_sessions_and_revoked_tokens_stop(
    hub: Hub,
) -> None:
    users = hub.users
    assert users is not None
    grant = Grant(role="staff", sites=("sunrise",))
    now = time.time()
    await users.create(
        "carer", "first-password", grant, display_name="Day Carer", actor="admin", at=now
    )
    token = await users.issue_token("carer", "carer-phone", actor="admin", at=now)
    bearer = {"Authorization": f"Bearer {token}"}
    login = {"username": "carer", "password": "first-password"}
    async with (
        httpx.AsyncClient(base_url=hub.url, timeout=20) as client,
        httpx.AsyncClient(base_url=hub.url, timeout=20) as anon,
    ):
        assert (await client.post("/api/login", json=login)).status_code == 200
        assert (await client.get("/api/alerts")).status_code == 200
        assert (await anon.get("/api/alerts", headers=bearer)).status_code == 200
        assert (await anon.get("/api/figures", headers=bearer)).status_code == 403  # its grant

        await users.set_password("carer", "second-password", actor="admin", at=now + 1)
        assert (await client.get("/api/alerts")).status_code == 401
        assert (await client.post("/api/login", json=login)).status_code == 401
        again = {**login, "password": "second-password"}
        assert (await client.post("/api/login", json=again)).status_code == 200
        assert (await client.get("/api/alerts")).status_code == 200

        await users.revoke_token("carer-phone", actor="admin", at=now + 2)
        assert (await anon.get("/api/alerts", headers=bearer)).status_code == 401
        await users.set_disabled("carer", True, actor="admin", at=now + 3)
        assert (await client.get("/api/alerts")).status_code == 401
    assert {"password_reset", "token_revoked", "user_disabled"} <= set(
        await audit_actions(hub, "admin")
    )


async def test_a_wing_installer_changes_only_their_wing(hub: Hub) -> None:
    assert hub.users is not None
    await hub.users.create(
        "east-fitter",
        "east-fitter-pw",
        Grant(role="installer", zones=("sunrise/east",)),
        display_name=None,
        actor="admin",
        at=time.time(),
    )
    async with httpx.AsyncClient(base_url=hub.url, timeout=20) as fitter:
        login = {"username": "east-fitter", "password": "east-fitter-pw"}
        csrf = {"X-CSRF-Token": (await fitter.post("/api/login", json=login)).json()["csrf_token"]}
        rooms = (await fitter.get("/api/rooms")).json()["rooms"]
        assert {room["id"] for room in rooms} == {"r101", "r102"}
        west_room = {"site": "sunrise", "id": "r202", "name": "202", "zone": "west"}
        assert (await fitter.post("/api/rooms", json=west_room, headers=csrf)).status_code == 404
        east_room = {**west_room, "id": "r103", "name": "103", "zone": "east"}
        assert (await fitter.post("/api/rooms", json=east_room, headers=csrf)).status_code == 201
        # Moving a bed out of the wing, or a west bed in, is refused like a missing place.
        out = await fitter.patch("/api/beds/SR-E-102", json={"room": "r201"}, headers=csrf)
        assert out.status_code == 404
        into = await fitter.patch("/api/beds/SR-W-201", json={"room": "r103"}, headers=csrf)
        assert into.status_code == 404
        moved = await fitter.patch("/api/beds/SR-E-102", json={"room": "r103"}, headers=csrf)
        assert moved.status_code == 200, moved.text
        site = await fitter.patch("/api/sites/sunrise", json={"name": "Mine"}, headers=csrf)
        assert site.status_code == 404
        walk = await fitter.post("/api/walktests", json={"site": "sunrise"}, headers=csrf)
        assert walk.status_code == 404  # a walk test takes the whole site
    assert hub.registry.data.get(Bed, ("SR-E-102",)).room == "r103"
    assert hub.registry.sites["sunrise"].name == "Sunrise Care Home"
