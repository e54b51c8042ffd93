"""The fleet simulator against a real Mosquitto and a real hub with the fleet's own registry."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import yaml

from hub.app import Hub
from hub.registry.csv_import import import_csv
from hub.registry.data import RegistryData
from simulators.fleet import (
    Fleet,
    FleetOptions,
    plan_fleet,
    registry_csvs,
    site_spec,
    write_registry,
)
from tests.conftest import HubFactory
from tests.support.mosquitto import MosquittoBroker, free_port
from tests.support.paths import REPO


async def _until(check: Callable[[], Awaitable[bool]], message: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        await asyncio.sleep(0.1)


def test_registry_files_describe_every_bed_and_device(tmp_path: Path) -> None:
    plan = plan_fleet(45, 20)
    assert [len(g.beds) for g in plan.gateways] == [20, 20, 5]
    paths = write_registry(plan, tmp_path)
    assert [p.name for p in paths] == ["sites.yaml", "beds.csv", "residents.csv", "devices.csv"]
    site = yaml.safe_load(paths[0].read_text())["sites"][0]
    assert site["gateways"] == ["gw-0000", "gw-0001", "gw-0002"]
    assert len(site["devices"]) == 45 * 4
    devices = list(csv.DictReader(io.StringIO(paths[3].read_text())))
    assert {d["id"] for d in devices} == {d["id"] for d in site["devices"]}


def test_registry_csvs_import_cleanly() -> None:
    data = RegistryData()
    for what, text in registry_csvs(plan_fleet(30, 10)).items():
        changes = import_csv(data, what, text, 1.0)
        assert changes, what


async def test_small_fleet_is_accepted_by_the_hub(
    broker: MosquittoBroker, hub_factory: HubFactory
) -> None:
    plan = plan_fleet(60, 20)
    hub: Hub = await hub_factory(sites=[site_spec(plan)])
    fleet = Fleet(plan, FleetOptions(broker.host, broker.port, events_per_hour=0, seed=1))
    stop = asyncio.Event()
    running = asyncio.create_task(fleet.run(stop))
    await _until(lambda: _accepted(hub, 100), "the hub did not accept the fleet's readings")
    fleet.inject("call", 42)
    fleet.inject("fall", 7)
    await _until(lambda: _alerts_for(hub, {"call_button", "fall"}), "no call or fall alert")
    stop.set()
    await asyncio.wait_for(running, 15)

    counters = hub.ingest.counters()
    assert not {k: n for k, n in counters.items() if k.startswith("rejected_")}, counters
    assert counters["accepted"] == fleet.stats.items
    alerts = {a["rule"]: a for a in await hub.alerts.records.page(("open", "acknowledged"), None)}
    assert alerts["call_button"]["bed"] == "FL-00042"
    assert alerts["fall"]["room"] == "r-00007"

    # A clean stop: each gateway says it is offline; those messages reach the hub in turn.
    async def all_offline() -> bool:
        statuses = [await hub.ingest.records.gateway_status("fleet", g.id) for g in plan.gateways]
        return all(s is not None and s[0] == "offline" for s in statuses)

    await _until(all_offline, "not every gateway of the stopped fleet is stored as offline")
    health = await hub.ingest.records.device_health()
    assert len(health) == 60 * 4


async def test_gateways_are_online_while_the_fleet_runs(
    broker: MosquittoBroker, hub_factory: HubFactory
) -> None:
    plan = plan_fleet(40, 20)
    hub = await hub_factory(sites=[site_spec(plan)])
    fleet = Fleet(plan, FleetOptions(broker.host, broker.port, events_per_hour=0))
    stop = asyncio.Event()
    running = asyncio.create_task(fleet.run(stop))

    async def online() -> bool:
        states = [await hub.ingest.records.gateway_status("fleet", g.id) for g in plan.gateways]
        return all(s is not None and s[0] == "online" for s in states)

    await _until(online, "the fleet's gateways did not come online at the hub")
    stop.set()
    await asyncio.wait_for(running, 15)


def test_cli_prints_progress_and_exits_0_at_duration(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    result = _cli(
        "--beds", "60", "--port", str(broker.port), "--duration", "3.5",
        "--progress-every", "1", "--events-per-hour", "3600", "--registry-out", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("registry for 60 beds written")
    assert any("fleet: 60 beds, 3 gateways" in line for line in lines)
    progress = [line for line in lines if "batches" in line and "connected yes" in line]
    assert len(progress) >= 2, result.stdout
    assert lines[-1].startswith("stopped:")
    assert (tmp_path / "sites.yaml").is_file()


def test_cli_names_an_unreachable_broker_and_fails() -> None:
    port = free_port()
    result = _cli("--beds", "20", "--port", str(port), "--duration", "2")
    assert result.returncode == 1
    assert f"cannot reach the MQTT broker at 127.0.0.1:{port}" in result.stderr
    assert "--host and --port" in result.stderr


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "carewatch.cli", "sim", "fleet", *args]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, cwd=REPO)


async def _accepted(hub: Hub, at_least: int) -> bool:
    return hub.ingest.accepted >= at_least


async def _alerts_for(hub: Hub, rules: set[str]) -> bool:
    return rules <= {
        a["rule"] for a in await hub.alerts.records.page(("open", "acknowledged"), None)
    }
