"""Secrets and small leaks: Apprise URLs, the audit of signing out, a scoped caller's alert list."""

from __future__ import annotations

import json

import httpx

from tests.conftest import ADMIN, EAST_NURSE, NURSE, SUPERVISOR, HubFactory, PublishBatch
from tests.support.hub import fall, login
from tests.support.waiting import eventually

SECRET_URL = "ntfys://anna:s3cret-pass@ntfy.example.org/jones-family"


async def test_apprise_urls_are_shown_only_to_those_who_may_change_them(
    hub_factory: HubFactory,
) -> None:
    hub = await hub_factory()
    contact = {"name": "Anna Jones", "relation": "family", "notify": [SECRET_URL]}
    async with httpx.AsyncClient(base_url=hub.url, timeout=20) as admin:
        csrf = await login(admin, ADMIN)
        changed = await admin.patch(
            "/api/residents/E-0001", json={"contacts": [contact]}, headers={"X-CSRF-Token": csrf}
        )
        assert changed.status_code == 200, changed.text
    views = {}
    for person in (SUPERVISOR, NURSE):
        async with httpx.AsyncClient(base_url=hub.url, timeout=20) as client:
            await login(client, person)
            views[person[0]] = (await client.get("/api/residents/E-0001")).json()

    assert views[SUPERVISOR[0]]["contacts"][0]["notify"] == [SECRET_URL]
    assert views[NURSE[0]]["contacts"][0]["notify"] == ["ntfys://…"]
    assert "s3cret" not in json.dumps(views[NURSE[0]])
    async with hub.store.db.execute(
        "SELECT detail FROM audit WHERE action = 'registry.resident.updated'"
    ) as cur:
        details = [row["detail"] for row in await cur.fetchall()]
    assert details, "the change of contacts is in the audit log"
    assert all("s3cret" not in detail for detail in details)
    assert json.loads(details[-1])["fields"]["contacts"][0]["notify"] == ["ntfys://…"]


async def test_signing_out_is_in_the_audit_log(hub_factory: HubFactory) -> None:
    hub = await hub_factory()
    async with httpx.AsyncClient(base_url=hub.url, timeout=20) as client:
        csrf = await login(client, NURSE)
        out = await client.post("/api/logout", headers={"X-CSRF-Token": csrf})
        assert out.status_code == 200
        assert (await client.get("/api/me")).status_code == 401
    async with hub.store.db.execute(
        "SELECT actor, action FROM audit WHERE action IN ('login', 'logout') ORDER BY id"
    ) as cur:
        rows = [tuple(row) for row in await cur.fetchall()]
    assert rows == [("nurse", "login"), ("nurse", "logout")]


async def test_a_scoped_nurse_gets_her_alerts_even_behind_many_of_another_wing(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    hub = await hub_factory()
    await publish_batch("sunrise", "gw-east", [fall("radar-101")], seq=1)
    await publish_batch("sunrise", "gw-west", [fall("radar-201")], seq=1)

    async def both_open() -> bool:
        return len(await hub.alerts.records.page(("open",), None)) == 2

    await eventually(both_open)
    async with httpx.AsyncClient(base_url=hub.url, timeout=20) as client:
        await login(client, EAST_NURSE)
        listed = (await client.get("/api/alerts", params={"limit": 1})).json()["alerts"]
    assert [alert["device"] for alert in listed] == ["radar-101"]
