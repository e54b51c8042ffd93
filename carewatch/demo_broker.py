"""The demo's embedded MQTT broker (amqtt), on loopback only. Production uses Mosquitto."""

from __future__ import annotations

import logging
from typing import Any

from amqtt.broker import Broker


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

    async def start(self) -> None:
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        await self._broker.start()

    async def stop(self) -> None:
        await self._broker.shutdown()
