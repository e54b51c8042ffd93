"""The whole path: a fall frame written into the radar's serial port reaches the console.

pseudo-terminal → edge agent (MicRadar decoder, outbox, publisher) → Mosquitto → hub (ingest,
rules, alerts) → API and live stream; then a nurse acknowledges and resolves it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from edge.agent import EdgeAgent
from edge.config import EdgeConfig
from simulators.ble_air import BLEAirSender
from simulators.bthome import button_press
from simulators.mr60fda1 import MR60FDA1Simulator
from tests.conftest import HubFactory
from tests.hub.alerts.test_api import read_stream_events
from tests.support.hub import login
from tests.support.mosquitto import MosquittoBroker

BUTTON_ADDRESS = "B4:35:22:F5:3D:A4"


@pytest.fixture
async def radar() -> AsyncIterator[MR60FDA1Simulator]:
    simulator = MR60FDA1Simulator()
    yield simulator
    simulator.close()


@pytest.fixture
async def east_gateway(
    broker: MosquittoBroker, tmp_path: Path, radar: MR60FDA1Simulator
) -> AsyncIterator[EdgeAgent]:
    config = EdgeConfig.model_validate(
        {
            "site": "sunrise",
            "gateway": "gw-east",
            "broker": {"host": broker.host, "port": broker.port},
            "outbox": {"path": str(tmp_path / "outbox.db")},
            "ble": {"backend": "simulated", "socket": str(tmp_path / "air.sock")},
            "devices": [
                {"id": "radar-101", "profile": "seeed-mr60fda1", "port": radar.port},
                {"id": "button-101", "profile": "shelly-blu-button1", "address": BUTTON_ADDRESS},
            ],
        }
    )
    agent = EdgeAgent(config)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    yield agent
    stop.set()
    await asyncio.wait_for(task, 15)


async def test_fall_frame_reaches_the_console_and_is_closed_by_a_nurse(
    hub_factory: HubFactory, east_gateway: EdgeAgent, radar: MR60FDA1Simulator
) -> None:
    hub = await hub_factory()
    async with httpx.AsyncClient(base_url=hub.url, timeout=30) as client:
        csrf = await login(client)
        ready = asyncio.Event()
        stream = asyncio.create_task(read_stream_events(client, 1, ready))
        await asyncio.wait_for(ready.wait(), 10)

        # Garbage and a corrupted frame on the line first: the good frame must still get through.
        radar.send(b"\x00\xff\x53\x59\x83")
        radar.send(bytes.fromhex("5359830100010133 5443"))
        radar.send("present")
        radar.send("fall")

        ((name, live),) = await asyncio.wait_for(stream, 20)
        assert name == "alert"
        assert (live["rule"], live["state"], live["bed"]) == ("fall", "open", "SR-E-101")
        assert live["resident_name"] == "Mary Jones"

        listed = (await client.get("/api/alerts")).json()["alerts"]
        assert [a["id"] for a in listed] == [live["id"]]

        acked = await client.post(
            f"/api/alerts/{live['id']}/acknowledge", headers={"X-CSRF-Token": csrf}
        )
        assert acked.json()["state"] == "acknowledged"
        resolved = await client.post(
            f"/api/alerts/{live['id']}/resolve",
            json={"outcome": "assisted_no_injury"},
            headers={"X-CSRF-Token": csrf},
        )
        assert resolved.json()["state"] == "resolved"
        assert resolved.json()["resolved_by"] == "nurse"
        assert resolved.json()["resolved_by_name"] == resolved.json()["acknowledged_by_name"]
        assert resolved.json()["resolved_by_name"] not in ("nurse", None)  # a name, not the login
    assert hub.ingest.counters()["accepted"] >= 2
    assert (
        sum(
            east_gateway.counters().get(k, 0)
            for k in east_gateway.counters()
            if "bad_checksum" in k
        )
        == 1
    )


async def test_call_button_advert_raises_a_call_alert(
    hub_factory: HubFactory, east_gateway: EdgeAgent, tmp_path: Path
) -> None:
    hub = await hub_factory()
    async with httpx.AsyncClient(base_url=hub.url, timeout=30) as client:
        await login(client)
        ready = asyncio.Event()
        stream = asyncio.create_task(read_stream_events(client, 1, ready))
        await asyncio.wait_for(ready.wait(), 10)
        with BLEAirSender(tmp_path / "air.sock") as air:
            for _ in range(20):  # the agent binds its socket as it starts
                try:
                    air.send(BUTTON_ADDRESS, button_press(packet_id=3, battery=88))
                    break
                except (FileNotFoundError, ConnectionRefusedError):
                    await asyncio.sleep(0.2)
        ((_, alert),) = await asyncio.wait_for(stream, 20)
    assert (alert["rule"], alert["bed"], alert["resident_name"]) == (
        "call_button",
        "SR-E-101",
        "Mary Jones",
    )
