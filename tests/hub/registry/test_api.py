"""The registry in a running hub: API over real HTTP, alerts through real Mosquitto, the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from hub.access.auth import token_digest
from hub.app import Hub
from hub.registry.models import Resident
from tests.conftest import ADMIN, SMALL_SITE, HubFactory, PublishBatch
from tests.support.hub import active_alerts, fall, login
from tests.support.waiting import eventually

TOKEN = "registry-test-token"


@contextlib.asynccontextmanager
async def session(hub: Hub) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """An admin's logged-in client and the CSRF header its writes need."""
    async with httpx.AsyncClient(base_url=hub.url, timeout=20) as client:
        yield client, {"X-CSRF-Token": await login(client, ADMIN)}


async def registry_audit(hub: Hub, seed: bool = False) -> list[dict[str, Any]]:
    """The registry's audit records, without the seeding record unless `seed`."""
    unless_seed = "" if seed else " AND action != 'registry.seeded'"
    async with hub.store.db.execute(
        "SELECT actor, action, channel, alert_id, detail FROM audit "
        f"WHERE action LIKE 'registry.%'{unless_seed} ORDER BY id"
    ) as cur:
        rows = await cur.fetchall()
    return [{**dict(row), "detail": json.loads(row["detail"])} for row in rows]


async def test_an_alert_names_the_resident_bound_when_the_item_was_sensed(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    hub = await hub_factory()
    async with session(hub) as (client, csrf):
        transfer_at = time.time() - 60
        await client.post(
            "/api/residents", json={"code": "E-0003", "name": "Ann Brown"}, headers=csrf
        )
        moved = await client.post(
            "/api/residents/E-0001/transfer",
            json={"bed": "SR-W-201", "at": transfer_at},
            headers=csrf,
        )
        assert moved.status_code == 200, moved.text
        admitted = await client.post(
            "/api/residents/E-0003/admit", json={"bed": "SR-E-101"}, headers=csrf
        )
        assert admitted.status_code == 200, admitted.text
    before = fall("radar-101", at=transfer_at - 30)  # sensed in Mary's time, arriving late
    after = {"dev": "button-101", "at": time.time(), "event": "call_button", "value": "press"}
    await publish_batch("sunrise", "gw-east", [before, after], seq=1)

    async def both_open() -> bool:
        return len(await active_alerts(hub)) == 2

    await eventually(both_open)
    named = {a["rule"]: (a["bed"], a["resident_code"]) for a in await active_alerts(hub)}
    assert named == {"fall": ("SR-E-101", "E-0001"), "call_button": ("SR-E-101", "E-0003")}


async def test_one_resident_per_bed_and_discharge_frees_the_bed(hub_factory: HubFactory) -> None:
    hub = await hub_factory()
    async with session(hub) as (client, csrf):
        await client.post(
            "/api/residents", json={"code": "E-0003", "name": "Ann Brown"}, headers=csrf
        )
        taken = await client.post(
            "/api/residents/E-0003/admit", json={"bed": "SR-E-101"}, headers=csrf
        )
        assert taken.status_code == 409
        assert "bed SR-E-101 is occupied by Mary Jones (E-0001)" in taken.json()["detail"]
        unknown = await client.post(
            "/api/residents/E-0003/admit", json={"bed": "SR-X-404"}, headers=csrf
        )
        assert (unknown.status_code, unknown.json()["detail"]) == (
            404,
            "no bed with code 'SR-X-404'",
        )
        out = await client.post("/api/residents/E-0001/discharge", headers=csrf)
        assert out.status_code == 200
        assert out.json()["binding"] is None
        assert out.json()["history"][-1]["end_reason"] == "discharge"
        admitted = await client.post(
            "/api/residents/E-0003/admit", json={"bed": "SR-E-101"}, headers=csrf
        )
        assert admitted.status_code == 200, admitted.text
        bed = (await client.get("/api/beds/SR-E-101")).json()
    assert bed["resident"]["resident"] == "E-0003"
    assert bed["resident"]["resident_name"] == "Ann Brown"
    assert [(h["resident"], h["start_reason"], h["end_reason"]) for h in bed["history"]] == [
        ("E-0001", "config", "discharge"),
        ("E-0003", "admission", None),
    ]
    assert sorted(bed["devices"]) == ["button-101", "radar-101"]
    placement = hub.registry.placement("radar-101")
    assert placement is not None and placement.resident_name == "Ann Brown"


MEMORY = {"site": "sunrise", "zone": "memory"}
DOOR = {"site": "sunrise", "gateway": "gw-west", "profile": "bthome-smoke"}
RADAR = {"id": "radar-9", "site": "sunrise", "gateway": "gw-east", "profile": "seeed-mr60fda1"}


async def test_records_are_created_updated_and_refused_with_reasons(
    hub_factory: HubFactory,
) -> None:
    hub = await hub_factory()
    async with session(hub) as (client, csrf):
        for path, body in (
            ("/api/zones", {"site": "sunrise", "id": "memory", "name": "Memory care"}),
            ("/api/rooms", {**MEMORY, "id": "exit-n", "name": "North exit", "kind": "exit"}),
            ("/api/rooms", {**MEMORY, "id": "r301", "name": "301"}),
            ("/api/beds", {"code": "SR-M-301", "site": "sunrise", "room": "r301"}),
            ("/api/devices", {**DOOR, "id": "door-n", "room": "exit-n", "role": "exit_door"}),
        ):
            created = await client.post(path, json=body, headers=csrf)
            assert created.status_code == 201, (path, created.text)
        refusals = {
            "duplicate bed": ("/api/beds", {"code": "SR-E-101", "site": "sunrise", "room": "r301"}),
            "duplicate elder": ("/api/residents", {"code": "E-0002", "name": "Someone Else"}),
            "unknown bed": ("/api/devices", {**RADAR, "bed": "SR-Q-1"}),
            "both": ("/api/devices", {**RADAR, "bed": "SR-M-301", "room": "r301"}),
            "profile": ("/api/devices", {**RADAR, "profile": "acme-9000", "bed": "SR-M-301"}),
            "zone kind": (
                "/api/zones",
                {"site": "sunrise", "id": "z9", "name": "Z", "kind": "spa"},
            ),
        }
        answers = {}
        for name, (path, body) in refusals.items():
            answer = await client.post(path, json=body, headers=csrf)
            answers[name] = (answer.status_code, answer.json()["detail"])
        changed = await client.patch(
            "/api/residents/E-0002",
            json={
                "care_level": "partly_dependent",
                "flags": ["wander_risk"],
                "contacts": [
                    {"name": "Wei Li", "relation": "family", "phone": "+86 138 0000 0000"}
                ],
            },
            headers=csrf,
        )
        bad_level = await client.patch(
            "/api/residents/E-0002", json={"care_level": "sometimes"}, headers=csrf
        )
        renamed = await client.patch(
            "/api/zones/sunrise/memory", json={"kind": "dementia"}, headers=csrf
        )
        no_csrf = await client.patch("/api/sites/sunrise", json={"name": "X"})
        listed = (await client.get("/api/rooms?site=sunrise")).json()["rooms"]
    assert answers["duplicate bed"][0] == 409
    assert "bed code 'SR-E-101' is already used" in answers["duplicate bed"][1]
    assert answers["duplicate elder"] == (409, "elder code 'E-0002' is already used by Li Wei")
    assert answers["unknown bed"] == (404, "device radar-9: no bed with code 'SR-Q-1'")
    assert answers["both"][0] == 422 and "bound to both bed" in answers["both"][1]
    assert answers["profile"][0] == 422
    assert "unknown device model 'acme-9000'" in answers["profile"][1]
    assert answers["zone kind"][0] == 422 and answers["zone kind"][1].startswith("kind:")
    assert changed.status_code == 200, changed.text
    assert changed.json()["care_level"] == "partly_dependent"
    assert changed.json()["binding"]["bed"] == "SR-E-102"
    assert bad_level.status_code == 422 and "care_level" in bad_level.json()["detail"]
    assert renamed.json()["kind"] == "dementia"
    assert no_csrf.status_code == 403
    assert {room["id"] for room in listed} == {"r101", "r102", "r201", "exit-n", "r301"}
    door = hub.registry.placement("door-n")
    assert door is not None
    assert (door.role, door.room_kind, door.zone_kind) == ("exit_door", "exit", "dementia")
    audit = await registry_audit(hub)
    assert all(
        (row["actor"], row["channel"], row["alert_id"]) == (ADMIN[0], "console", None)
        for row in audit
    )
    actions = [row["action"] for row in audit]
    assert actions.count("registry.room.created") == 2
    assert "registry.resident.updated" in actions and "registry.zone.updated" in actions
    assert len(actions) == 7  # five creations, two updates; refusals leave no record


def write_csv(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


GOOD_BEDS = [
    "site,zone,zone_name,zone_kind,room,room_kind,bed",
    "sunrise,family,Family beds,family,home-ng,bedroom,FB-NG",
    "sunrise,family,,,home-ode,bedroom,FB-ODE",
]
GOOD_RESIDENTS = [
    "code,name,care_level,flags,bed,contact1_name,contact1_relation,contact1_phone",
    "E-0301,Grace Ng,fully_dependent,living_alone;no_carer,FB-NG,Alan Ng,family,+44 20 7946 0001",
    "E-0302,Obi Ode,partly_dependent,,FB-ODE,Dr Shah,family_doctor,+44 20 7946 0002",
]
GOOD_DEVICES = [
    "id,site,gateway,profile,bed,room,role",
    "radar-ng,sunrise,gw-home-ng,seeed-mr60fda1,FB-NG,,",
    "radar-ode,sunrise,gw-home-ode,seeed-mr60fda1,FB-ODE,,",
]


async def test_a_good_csv_imports_all_and_the_hub_watches_the_new_beds_at_once(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    hub = await hub_factory()
    async with session(hub) as (client, csrf):
        for what, lines in (
            ("beds", GOOD_BEDS),
            ("residents", GOOD_RESIDENTS),
            ("devices", GOOD_DEVICES),
        ):
            imported = await client.post(
                f"/api/registry/import/{what}",
                content="\n".join(lines),
                headers={**csrf, "Content-Type": "text/csv"},
            )
            assert imported.status_code == 200, imported.text
        counts = imported.json()["imported"]
        residents = (await client.get("/api/residents")).json()["residents"]
    assert counts == {"created": {"gateway": 2, "device": 2}}
    grace = next(r for r in residents if r["code"] == "E-0301")
    assert grace["flags"] == ["living_alone", "no_carer"]
    assert grace["binding"]["bed"] == "FB-NG"
    await publish_batch("sunrise", "gw-home-ng", [fall("radar-ng")], seq=1)

    async def opened() -> bool:
        return len(await active_alerts(hub)) == 1

    await eventually(opened)
    (alert,) = await active_alerts(hub)
    assert (alert["bed"], alert["resident_name"], alert["zone_name"]) == (
        "FB-NG",
        "Grace Ng",
        "Family beds",
    )
    audit = await registry_audit(hub)
    assert sum(row["action"] == "registry.binding.started" for row in audit) == 2
    assert {row["channel"] for row in audit} == {"console"}
    # The watch supervises what was just added, without a restart.
    assert hub.timers.pending("device_silent", "radar-ng") is not None
    assert hub.timers.pending("gateway_silent", "sunrise/gw-home-ng") is not None


async def test_a_csv_with_bad_rows_over_the_api_reports_each_row_and_imports_none(
    hub_factory: HubFactory,
) -> None:
    hub = await hub_factory()
    lines = [
        GOOD_RESIDENTS[0],
        "E-0310,Good Row,self_care,,SR-W-201,,,",
        "E-0301,Bed Not Yet Imported,,,FB-NG,,,",
        "E-0302,Bad Level,often,,,,,",
        "E-0001,Duplicate Code,,,,,,",
        "E-0303,No Such Bed,,,FB-NOPE,,,",
        "E-0304,Bad Flag,,lonely,,,,",
    ]
    async with session(hub) as (client, csrf):
        refused = await client.post(
            "/api/registry/import/residents",
            content="\n".join(lines),
            headers={**csrf, "Content-Type": "text/csv"},
        )
    assert refused.status_code == 422
    problems = {p["line"]: p["problem"] for p in refused.json()["problems"]}
    assert sorted(problems) == [3, 4, 5, 6, 7]
    assert "no bed with code 'FB-NG'" in problems[3]
    assert "care_level" in problems[4]
    assert "already used by Mary Jones" in problems[5]
    assert "no bed with code 'FB-NOPE'" in problems[6]
    assert "flags" in problems[7]
    assert [r.code for r in hub.registry.data.all(Resident)] == ["E-0001", "E-0002"]
    assert hub.registry.data.occupant("SR-W-201") is None
    assert await registry_audit(hub) == []


async def test_config_seeds_the_registry_once_then_the_database_rules(
    hub_factory: HubFactory, caplog: pytest.LogCaptureFixture
) -> None:
    hub = await hub_factory()
    async with session(hub) as (client, csrf):
        await client.patch("/api/sites/sunrise", json={"name": "Sunrise House"}, headers=csrf)
        await client.post("/api/residents/E-0002/discharge", headers=csrf)
    seeded = await registry_audit(hub, seed=True)
    assert seeded[0]["action"] == "registry.seeded"
    assert seeded[0]["detail"]["bed"] == 3
    await hub.stop()
    caplog.set_level(logging.INFO, logger="carewatch.hub.registry")
    again = await hub_factory()  # same database, same config with its sites:
    assert "the configuration's sites: list is ignored" in caplog.text
    assert again.registry.sites["sunrise"].name == "Sunrise House"
    placement = again.registry.placement("radar-102")
    assert placement is not None and placement.resident_code is None
    actions = [row["action"] for row in await registry_audit(again, seed=True)]
    assert actions.count("registry.seeded") == 1
    await again.stop()
    without_sites = await hub_factory(sites=None)
    assert without_sites.registry.bed_count() == 3


async def test_the_api_needs_a_login(hub_factory: HubFactory) -> None:
    hub = await hub_factory()
    async with httpx.AsyncClient(base_url=hub.url) as client:
        assert (await client.get("/api/beds")).status_code == 401
        assert (await client.post("/api/residents/E-0001/discharge")).status_code == 401


def carewatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "carewatch.cli", "registry", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def hub_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "hub.yaml"
    document = {
        "database": str(tmp_path / "cli.db"),
        "web": {"secret_key": "s" * 40},
        "sites": [SMALL_SITE],
    }
    path.write_text(yaml.safe_dump(document))
    return path


def test_cli_imports_lists_admits_and_refuses_bad_rows(tmp_path: Path) -> None:
    config = str(hub_yaml(tmp_path))
    bad = write_csv(tmp_path, "residents.csv", [*GOOD_RESIDENTS, "E-0001,Dup,,,,,,"])
    refused = carewatch("--config", config, "import", str(bad))
    assert refused.returncode == 1
    assert f"{bad}: line 2: " in refused.stderr and "no bed with code 'FB-NG'" in refused.stderr
    assert f"{bad}: line 4: " in refused.stderr and "already used by Mary Jones" in refused.stderr
    assert "nothing was imported" in refused.stderr
    beds = write_csv(tmp_path, "beds.csv", GOOD_BEDS)
    assert carewatch("--config", config, "import", str(beds)).returncode == 0
    good = write_csv(tmp_path, "residents-2024.csv", GOOD_RESIDENTS)
    done = carewatch("--config", config, "import", str(good))
    assert done.returncode == 0, done.stderr
    assert "created 2 resident(s)" in done.stdout
    moved = carewatch("--config", config, "transfer", "E-0301", "SR-W-201")
    assert moved.returncode == 0, moved.stderr
    occupied = carewatch("--config", config, "transfer", "E-0302", "SR-E-101")
    assert occupied.returncode == 1
    assert "bed SR-E-101 is occupied by Mary Jones (E-0001)" in occupied.stderr
    listed = carewatch("--config", config, "list", "beds", "--site", "sunrise")
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert rows[0] == ["code", "site", "room", "resident"]
    assert ["SR-W-201", "sunrise", "r201", "E-0301 (Grace Ng)"] in rows
    assert ["FB-NG", "sunrise", "home-ng", ""] in rows


async def test_cli_with_url_and_token_changes_the_running_hub(
    hub_factory: HubFactory, tmp_path: Path
) -> None:
    hub = await hub_factory(
        tokens=[
            {
                "name": "office",
                "sha256": token_digest(TOKEN),
                "role": "admin",
            }
        ]
    )
    beds = write_csv(tmp_path, "beds.csv", GOOD_BEDS)
    imported = await cli_in_thread("--url", hub.url, "--token", TOKEN, "import", str(beds))
    assert imported.returncode == 0, imported.stderr
    admitted = await cli_in_thread(
        "--url", hub.url, "--token", TOKEN, "transfer", "E-0002", "FB-NG"
    )
    assert admitted.returncode == 0, admitted.stderr
    placement = hub.registry.placement("radar-102")
    assert placement is not None and placement.resident_code is None
    wrong = await cli_in_thread("--url", hub.url, "--token", "nope", "list", "sites")
    assert wrong.returncode == 2 and "refused the token" in wrong.stderr
    audit = await registry_audit(hub)
    assert {row["actor"] for row in audit} >= {"token:office"}
    assert {row["channel"] for row in audit} == {"api"}


async def cli_in_thread(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI blocks on HTTP while this event loop serves the hub: run it in a thread."""
    return await asyncio.to_thread(carewatch, *args)
