"""What the tests send a hub and how they call it, as a gateway or a person would: a fall item,
a raw MQTT publish, a sign-in over the API, the alerts still open."""

from __future__ import annotations

import time
from typing import Any

import aiomqtt
import httpx

from hub.app import Hub
from tests.conftest import NURSE
from tests.support.mosquitto import MosquittoBroker


def fall(device: str, value: bool = True, **extra: Any) -> dict[str, Any]:
    return {"dev": device, "at": time.time(), "event": "fall", "value": value, **extra}


async def active_alerts(hub: Hub) -> list[dict[str, Any]]:
    return await hub.alerts.records.page(("open", "acknowledged"), 100)


async def publish_raw(broker: MosquittoBroker, topic: str, payload: bytes) -> None:
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.publish(topic, payload, qos=1)


async def login(client: httpx.AsyncClient, user: tuple[str, str] = NURSE) -> str:
    """Log `user` in (the night nurse by default); the CSRF token their writes need."""
    response = await client.post("/api/login", json={"username": user[0], "password": user[1]})
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])
