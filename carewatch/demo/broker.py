"""The demo's embedded MQTT broker (amqtt), on loopback only. Production uses Mosquitto."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from amqtt.broker import Broker

if TYPE_CHECKING:
    from _collections_abc import dict_items


class _Snapshots(dict[str, Any]):
    """The broker's subscription table, iterated over a copy.

    amqtt 0.12 walks `Broker._subscriptions` with awaits inside the loop (retained messages
    for a client that connects, a broadcast to subscribers), so a client that subscribes or
    leaves meanwhile fails the walk with "dictionary changed size during iteration": the
    connecting gateway is dropped and retries, or a message is not delivered. The demo starts
    four gateways and the hub at once, which hits it. Walking a copy is what the loops meant.
    """

    def __iter__(self) -> Iterator[str]:
        return iter(list(super().keys()))

    def items(self) -> dict_items[str, Any]:
        return dict(super().items()).items()


class EmbeddedBroker:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        config: dict[str, Any] = {
            "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }
        self._broker = Broker(config)
        self._broker._subscriptions = _Snapshots(self._broker._subscriptions)

    async def start(self) -> None:
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        await self._broker.start()

    async def stop(self) -> None:
        await self._broker.shutdown()


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


async def start_embedded_broker() -> EmbeddedBroker:
    """An embedded MQTT broker on a free loopback port (the demo and `carewatch sim scenario`)."""
    broker = EmbeddedBroker("127.0.0.1", _free_port("127.0.0.1"))
    await broker.start()
    return broker
