"""Walk tests: the simulated walk test through real Mosquitto, hub and edge agent, the report,
test alerts kept from the staff console, and the installer's page in a real browser."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import async_playwright, expect

from carewatch.commands.walktest import WalkOutcome, save_report, summary, walk, walk_scenario
from hub.app import Hub
from hub.commissioning.report import build_report, render_pdf
from hub.core.clock import ScaledClock
from simulators.scenario_world import ScenarioWorld
from tests.conftest import ADMIN, INSTALLER, SUPERVISOR, HubFactory, PublishBatch
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.hub import login
from tests.support.mosquitto import MosquittoBroker

ALL_STATES = ("open", "acknowledged", "resolved")
WALKED = {"bed-radar", "fall-radar", "bathroom-radar", "call-button", "smoke-detector", "exit-door"}


@dataclass
class Walked:
    hub: Hub
    outcome: WalkOutcome


@pytest.fixture
async def simulated(
    hub_factory: HubFactory, broker: MosquittoBroker, tmp_path: Path
) -> AsyncIterator[Any]:
    """Run a simulated walk test (optionally with silent devices); the hub and the outcome."""
    worlds: list[ScenarioWorld] = []

    async def run(silent: frozenset[str] = frozenset()) -> Walked:
        scenario = walk_scenario("Walk-test home", speed=60)
        clock = ScaledClock(scenario.start_at, scenario.speed, held=True)
        world = ScenarioWorld(scenario, tmp_path)
        worlds.append(world)
        hub = await hub_factory(clock=clock, sites=[world.site()], watch=world.watch())
        outcome = await walk(
            world, hub, (broker.host, broker.port), clock, installer="ian", silent=silent
        )
        return Walked(hub, outcome)

    yield run
    for world in worlds:
        world.close()


def pdf_text(data: bytes) -> bytes:
    """The PDF's bytes with every Flate stream inflated, to search its text."""
    parts = [data]
    for chunk in data.split(b"stream")[1:]:
        body = chunk.split(b"endstream")[0].strip(b"\r\n")
        try:
            parts.append(zlib.decompress(body))
        except zlib.error:
            continue
    return b"\n".join(parts)


async def test_a_simulated_walk_test_passes_every_device_and_reports_it(
    simulated: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    walked: Walked = await simulated()
    hub, outcome = walked.hub, walked.outcome
    assert outcome.silent == []
    status = outcome.status
    assert {row["device"] for row in status["devices"]} == WALKED
    assert (status["passed"], status["total"], status["started_by"]) == (6, 6, "ian")
    assert status["ended_at"] is not None
    button = next(row for row in status["devices"] if row["device"] == "call-button")
    assert (button["trigger"], button["rssi"], button["battery"]) == ("call_button", -60, 90)
    assert summary(outcome) == 0
    assert "All devices passed." in capsys.readouterr().out

    # the results are durable
    assert hub.walktests is not None
    async with hub.store.db.execute(
        "SELECT device, passed_at FROM walktest_results WHERE test_id = ?", (outcome.test_id,)
    ) as cur:
        rows = {row["device"]: row["passed_at"] for row in await cur.fetchall()}
    assert set(rows) == WALKED and all(rows.values())

    html_path, pdf_path = await save_report(hub.walktests, outcome.test_id, tmp_path / "report")
    html = html_path.read_text()
    for row in status["devices"]:
        assert f'data-device="{row["device"]}"' in html
    assert html.count(" at 20") == 6 and "NOT PASSED" not in html
    assert "Installed and tested by</dt><dd>ian" in html and "gw-sim" in html
    assert pdf_path.read_bytes().startswith(b"%PDF")
    text = pdf_text(pdf_path.read_bytes())
    plain = render_pdf(await build_report(hub.walktests, outcome.test_id), compress=False)
    for device in WALKED:
        assert device.encode() in text
        assert device.encode() in plain

    # every alert of the walk test is a test alert, and none is left open
    alerts = await hub.alerts.records.page(ALL_STATES, None)
    during = [a for a in alerts if a["opened_at"] <= status["ended_at"]]
    assert {a["rule"] for a in during} >= {"fall", "call_button", "smoke"}
    assert all(a["test"] == 1 and a["state"] == "resolved" for a in during)
    async with httpx.AsyncClient(base_url=hub.url) as client:
        await login(client, ADMIN)  # the walk-test home is not the installer's site
        report = await client.get(f"/api/walktests/{outcome.test_id}/report.pdf")
        assert report.headers["content-type"] == "application/pdf"
        listed = (await client.get("/api/alerts", params={"state": "all"})).json()["alerts"]
        assert not {a["id"] for a in listed} & {a["id"] for a in during}
        own = (await client.get(f"/api/walktests/{outcome.test_id}/alerts")).json()["alerts"]
        assert {a["id"] for a in own} == {a["id"] for a in during}


async def test_a_walk_test_with_a_silent_device_fails_and_names_it(
    simulated: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    walked: Walked = await simulated(frozenset({"call-button"}))
    assert [row["device"] for row in walked.outcome.silent] == ["call-button"]
    assert walked.outcome.status["passed"] == 5
    assert summary(walked.outcome) == 1
    assert "FAILED: silent: call-button" in capsys.readouterr().out


class Gateway:
    """Items from sunrise/gw-east, each batch with the next sequence number."""

    def __init__(self, publish_batch: PublishBatch) -> None:
        self._publish = publish_batch
        self._seq = itertools.count(1)

    async def send(self, dev: str, name: str, value: Any = True, kind: str = "event") -> None:
        item = {"dev": dev, "at": time.time(), kind: name, "value": value}
        await self._publish("sunrise", "gw-east", [item], seq=next(self._seq))


async def staff_stream(client: httpx.AsyncClient, ready: asyncio.Event) -> list[dict[str, Any]]:
    """Alerts on the staff console's live stream, until the first non-test one."""
    alerts: list[dict[str, Any]] = []
    async with client.stream("GET", "/api/stream") as response:
        async for line in response.aiter_lines():
            if line.startswith("event: hello"):
                ready.set()
            elif line.startswith('data: {"'):
                alerts.append(json.loads(line.removeprefix("data: ")))
                if not alerts[-1]["test"]:
                    return alerts
    return alerts


async def eventually_passed(client: httpx.AsyncClient, test_id: int, device: str) -> None:
    deadline = time.monotonic() + 10
    while True:
        status = (await client.get(f"/api/walktests/{test_id}")).json()
        if any(r["device"] == device and r["passed_at"] for r in status["devices"]):
            return
        assert time.monotonic() < deadline, f"{device} never passed"
        await asyncio.sleep(0.05)


async def test_walk_test_alerts_stay_off_the_staff_console_and_the_figures(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    hub = await hub_factory()
    gateway = Gateway(publish_batch)
    async with (
        httpx.AsyncClient(base_url=hub.url, timeout=20) as client,
        httpx.AsyncClient(base_url=hub.url, timeout=20) as staff,
        httpx.AsyncClient(base_url=hub.url, timeout=20) as supervisor,
    ):
        headers = {"X-CSRF-Token": await login(client, INSTALLER)}
        await login(staff)
        await login(supervisor, SUPERVISOR)
        started = await client.post(
            "/api/walktests", json={"site": "sunrise", "gateway": "gw-east"}, headers=headers
        )
        assert started.status_code == 201, started.text
        test_id = started.json()["id"]
        assert started.json()["total"] == 4  # gw-east's devices, not gw-west's
        clash = await client.post("/api/walktests", json={"site": "sunrise"}, headers=headers)
        assert clash.status_code == 409
        ready = asyncio.Event()
        stream = asyncio.create_task(staff_stream(staff, ready))
        await asyncio.wait_for(ready.wait(), 10)

        await gateway.send("button-101", "call_button", "press")
        await eventually_passed(client, test_id, "button-101")
        (alert,) = (await client.get(f"/api/walktests/{test_id}/alerts")).json()["alerts"]
        assert (alert["rule"], alert["test"]) == ("call_button", 1)
        assert alert["resident_name"] is None  # an installer sees no health data
        assert (await staff.get("/api/alerts")).json()["alerts"] == []
        figures = (await supervisor.get("/api/figures")).json()
        assert "call_button" not in json.dumps(figures)

        stopped = await client.post(f"/api/walktests/{test_id}/stop", headers=headers)
        assert stopped.json()["running"] is False and stopped.json()["passed"] == 1
        listed = await client.get("/api/walktests", params={"view": "summary"})
        (summary,) = listed.json()["walktests"]
        assert (summary["id"], summary["passed"], summary["total"]) == (test_id, 1, 4)
        assert summary["scope_name"] == "Sunrise Care Home, gateway East wing"
        assert "devices" not in summary
        # the staff pages' service worker, open and never kept stale by the browser's cache
        worker = await staff.get("/staff-sw.js")
        assert worker.headers["content-type"].startswith("text/javascript")
        assert worker.headers["cache-control"] == "no-cache" and '"/installer"' in worker.text
        assert (await hub.alerts.records.get(alert["id"]) or {})["state"] == "resolved"
        await gateway.send("button-101", "call_button", "press")  # a real call again
        seen = await asyncio.wait_for(stream, 10)
    assert [(a["rule"], a["test"]) for a in seen] == [("call_button", 0)]
    assert seen[0]["id"] != alert["id"]


async def test_the_installer_page_ticks_a_device_off_live(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    hub = await hub_factory()
    gateway = Gateway(publish_batch)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1000, "height": 720})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(f"{hub.url}/installer#bed=SR-E-101")
        await page.get_by_test_id("login-user").fill(INSTALLER[0])
        await page.get_by_test_id("login-password").fill(INSTALLER[1])
        await page.get_by_test_id("login-submit").click()
        await expect(page.get_by_test_id("scope")).to_have_value("sunrise")
        await expect(page.get_by_test_id("bed-filter")).to_contain_text("SR-E-101")
        await page.get_by_test_id("start").click()
        rows = page.get_by_test_id("device-row")
        await expect(rows).to_have_count(3)  # the bed's devices: radar, button, its room's smoke
        button = rows.filter(has_text="button-101")
        await expect(button).to_have_attribute("data-passed", "false")
        await page.evaluate("window.installerMarker = 1")  # gone if the page reloads

        await gateway.send("button-101", "call_button", "press")
        await expect(button).to_have_attribute("data-passed", "true")
        await gateway.send("button-101", "battery", 87, kind="reading")
        await gateway.send("button-101", "rssi", -58, kind="reading")
        await expect(button).to_contain_text("-58 dBm")
        await expect(button).to_contain_text("87 %")
        await expect(button.get_by_test_id("device-when")).not_to_have_text("")
        await expect(page.get_by_test_id("progress")).to_contain_text("1 of 3")
        assert await page.evaluate("window.installerMarker") == 1

        await page.get_by_test_id("stop").click()  # two devices have not passed: asked first
        await page.get_by_test_id("stop-confirm-yes").click()
        await expect(page.get_by_test_id("state")).to_contain_text("ended")
        await browser.close()
    assert errors == []
