"""The hub's MQTT connection: subscribe to every gateway, hand messages to ingest in order.

The hub keeps a persistent session (clean_session false, fixed client id) so the broker queues
QoS 1 batches while the hub restarts, and announces itself on a retained status topic with a
will, so gateways know whether anyone is listening.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl

import aiomqtt

from edge.wire import (
    DATA_SUBSCRIPTION,
    DEVICES_SUBSCRIPTION,
    HUB_STATUS_TOPIC,
    STATUS_SUBSCRIPTION,
)
from hub.clock import Clock
from hub.config import BrokerSettings
from hub.ingest import Ingest

log = logging.getLogger("carewatch.hub.mqtt")

RECONNECT_DELAYS_S = (0.5, 1.0, 2.0, 5.0)
MAX_BURST = 20  # messages stored per transaction at most; bounds the wait of the first


def _tls_context(settings: BrokerSettings) -> ssl.SSLContext | None:
    """TLS that verifies the broker's certificate and host name against `ca_file`."""
    if not settings.tls:
        return None
    return ssl.create_default_context(cafile=settings.ca_file)


def _hub_status(state: str, at: float | None) -> bytes:
    body: dict[str, object] = {"state": state}
    if at is not None:
        body["at"] = round(at, 3)
    return json.dumps(body, separators=(",", ":")).encode()


class MqttLink:
    def __init__(self, settings: BrokerSettings, ingest: Ingest, clock: Clock) -> None:
        self._settings = settings
        self._ingest = ingest
        self._clock = clock
        self._tls = _tls_context(settings)
        self.connected = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        attempt = 0
        while not stop.is_set():
            try:
                await self._session(stop)
                return
            except aiomqtt.MqttError as exc:
                if self.connected.is_set():
                    attempt = 0  # it was up: start again from the shortest delay
                self.connected.clear()
                delay = RECONNECT_DELAYS_S[min(attempt, len(RECONNECT_DELAYS_S) - 1)]
                attempt += 1
                log.warning(
                    "broker %s:%d unreachable (%s); retrying in %.1f s",
                    self._settings.host,
                    self._settings.port,
                    exc,
                    delay,
                )
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                except TimeoutError:
                    pass

    async def _session(self, stop: asyncio.Event) -> None:
        settings = self._settings
        will = aiomqtt.Will(HUB_STATUS_TOPIC, _hub_status("offline", None), qos=1, retain=True)
        async with aiomqtt.Client(
            settings.host,
            settings.port,
            username=settings.username,
            password=settings.password,
            identifier=settings.client_id,
            clean_session=False,
            keepalive=settings.keepalive,
            will=will,
            tls_context=self._tls,
        ) as client:
            await client.subscribe(DATA_SUBSCRIPTION, qos=1)
            await client.subscribe(STATUS_SUBSCRIPTION, qos=1)
            await client.subscribe(DEVICES_SUBSCRIPTION, qos=1)
            await client.publish(
                HUB_STATUS_TOPIC, _hub_status("online", self._clock.now()), qos=1, retain=True
            )
            self.connected.set()
            log.info("connected to broker %s:%d", settings.host, settings.port)
            await self._read_until(stop, client)
            await client.publish(
                HUB_STATUS_TOPIC, _hub_status("offline", self._clock.now()), qos=1, retain=True
            )
            self.connected.clear()

    async def _read_until(self, stop: asyncio.Event, client: aiomqtt.Client) -> None:
        """Read until `stop` is set; raises the reader's MqttError if the connection drops first."""
        reader = asyncio.create_task(self._read(client), name="hub-mqtt-reader")
        stopper = asyncio.create_task(stop.wait(), name="hub-mqtt-stop")
        try:
            await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Also when this task is cancelled: a reader left running would fail as the client
            # disconnects, with nobody to retrieve its "Disconnected during message iteration".
            reader.cancel()
            stopper.cancel()
            await asyncio.gather(reader, stopper, return_exceptions=True)
        if not stop.is_set():
            reader.result()

    async def _read(self, client: aiomqtt.Client) -> None:
        messages = client.messages
        async for first in messages:
            burst = [first]
            # Whatever else has already arrived is taken along, to be stored in one go.
            while len(messages) and len(burst) < MAX_BURST:
                burst.append(await anext(messages))
            try:
                await self._ingest.handle_many([_topic_and_payload(m) for m in burst])
            except Exception:
                # A message must never stop the hub from hearing the next one.
                log.exception("ingest failed on a burst of %d messages", len(burst))


def _topic_and_payload(message: aiomqtt.Message) -> tuple[str, bytes]:
    payload = message.payload
    if not isinstance(payload, bytes | bytearray):
        payload = str(payload).encode()
    return message.topic.value, bytes(payload)
