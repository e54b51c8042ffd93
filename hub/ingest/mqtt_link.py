"""The hub's MQTT connection: subscribe to every gateway, hand messages to ingest in order.

The hub keeps a persistent session (clean_session false, fixed client id) so the broker queues
QoS 1 batches while the hub restarts, and announces itself on a retained status topic with a
will, so gateways know whether anyone is listening.

Another client connecting with the hub's client id takes its session over: the broker drops
the hub, which reconnects and takes it back, and so on. The shipped broker configuration pins
client ids to user names, which rules this out (docs/mosquitto.md). Should it happen anyway,
the link counts the sessions the broker drops within `SHORT_SESSION_S` of accepting them, and
after `TAKEOVER_ALARM` within `TAKEOVER_WINDOW_S` logs an error and calls `on_takeover` (the
hub raises a `hub_takeover` trouble alert). MQTT 3.1.1 says nothing about why a connection
ends. MQTT 5's "Session taken over" (0x8E) would, but Mosquitto 2.0.11 (Debian 12) closes the
connection without it (2.0.15 added it), and the demo's embedded broker speaks only 3.1.1, so
the hub stays on 3.1.1.

Reading and handling are two tasks: the reader takes every message off the connection as soon
as it comes and puts it in `Arrivals`; the handler hands them to ingest in bursts, alarm lanes
first (docs/watch.md, "Alarms first"). So a fall is read, and taken in front, while ingest is
still busy with the telemetry that arrived before it. What was read when the session ends (the
broker went away, or the hub stops) is still handled: the broker counts it delivered.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final

import aiomqtt

from contract.wire import (
    DATA_SUBSCRIPTION,
    DEVICES_SUBSCRIPTION,
    HUB_STATUS_TOPIC,
    STATUS_SUBSCRIPTION,
)
from hub.core.clock import Clock
from hub.ingest.pipeline import Arrivals, Ingest
from hub.ingest.settings import BrokerSettings
from hub.watch.takeovers import Takeovers

log = logging.getLogger("carewatch.hub.mqtt")

RECONNECT_DELAYS_S = (0.5, 1.0, 2.0, 5.0)
# A session the broker drops within this many seconds of accepting it counts as taken over.
SHORT_SESSION_S: Final = 30.0
TAKEOVER_ALARM: Final = 3  # such drops ...
TAKEOVER_WINDOW_S: Final = 60.0  # ... within this many seconds raise the alarm


OnTakeover = Callable[[Takeovers], Awaitable[None]]


class TakeoverDetector:
    """Counts session drops; says when `limit` of them fell within `window_s` seconds.

    Times are the link's monotonic clock: real seconds, also when the hub runs on a simulated
    clock, because they measure the network.
    """

    def __init__(self, limit: int = TAKEOVER_ALARM, window_s: float = TAKEOVER_WINDOW_S) -> None:
        self.limit = limit
        self.window_s = window_s
        self._drops: deque[float] = deque()

    def dropped(self, at: float) -> int | None:
        """Record a drop at `at`; the number of drops in the window when the alarm is due.

        After an alarm the count starts again, so a takeover that goes on alarms again after
        `limit` more drops, not at every one.
        """
        self._drops.append(at)
        while self._drops and self._drops[0] <= at - self.window_s:
            self._drops.popleft()
        if len(self._drops) < self.limit:
            return None
        drops = len(self._drops)
        self._drops.clear()
        return drops


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
    def __init__(
        self,
        settings: BrokerSettings,
        ingest: Ingest,
        clock: Clock,
        on_takeover: OnTakeover | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._ingest = ingest
        self._clock = clock
        self._tls = _tls_context(settings)
        self._on_takeover = on_takeover
        self._monotonic = monotonic
        self.takeovers = TakeoverDetector()
        self._up_since: float | None = None  # when the broker accepted the session (monotonic)
        self.connected = asyncio.Event()
        self.connections = 0  # sessions the broker accepted since the link started

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
                await self._dropped()
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

    async def _dropped(self) -> None:
        """The connection failed: if the broker had accepted it only just before, count it."""
        up_since, self._up_since = self._up_since, None
        if up_since is None:
            return  # never connected: the broker is unreachable, or refused the hub
        now = self._monotonic()
        if now - up_since >= SHORT_SESSION_S:
            return
        drops = self.takeovers.dropped(now)
        if drops is None:
            return
        client_id = self._settings.client_id
        log.error(
            "the broker dropped the hub's session %d times within %.0f s, each soon after "
            "connecting: another client is probably connecting with the hub's client id %r. "
            "Pin client ids to user names on the broker (docs/mosquitto.md) and check who "
            "holds the hub's credentials",
            drops,
            self.takeovers.window_s,
            client_id,
        )
        if self._on_takeover is None:
            return
        report = Takeovers(drops, self.takeovers.window_s, self._clock.now(), client_id)
        try:
            await self._on_takeover(report)
        except Exception:
            log.exception("could not raise the hub takeover alert")

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
            self._up_since = self._monotonic()
            self.connections += 1
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
        """Read until `stop` is set; raises the reader's MqttError if the connection drops first.

        Either way, what was read is handled before this returns; only a cancellation cuts the
        handling short."""
        arrivals = Arrivals()
        reader = asyncio.create_task(self._read(client, arrivals), name="hub-mqtt-reader")
        handler = asyncio.create_task(self._handle(arrivals), name="hub-mqtt-handler")
        stopper = asyncio.create_task(stop.wait(), name="hub-mqtt-stop")
        handler_ended = False
        try:
            await asyncio.wait({reader, handler, stopper}, return_when=asyncio.FIRST_COMPLETED)
            handler_ended = handler.done()
        except asyncio.CancelledError:
            handler.cancel()
            raise
        finally:
            # Also when this task is cancelled: a reader left running would fail as the client
            # disconnects, with nobody to retrieve its "Disconnected during message iteration".
            reader.cancel()
            stopper.cancel()
            arrivals.close()
            await asyncio.gather(reader, stopper, handler, return_exceptions=True)
        if stop.is_set():
            return
        if handler_ended:
            # Only a bug ends the handler while the session lives: say so, and start again
            # rather than go on reading what nobody watches.
            log.error("the ingest handler stopped while the session was up; reconnecting")
            raise aiomqtt.MqttError("ingest handler stopped")
        reader.result()

    async def _read(self, client: aiomqtt.Client, arrivals: Arrivals) -> None:
        messages = client.messages
        async for message in messages:
            topic, payload = _topic_and_payload(message)
            arrivals.put(topic, payload, more=len(messages) > 0)

    async def _handle(self, arrivals: Arrivals) -> None:
        with arrivals.handled_here():
            while burst := await arrivals.next_burst():
                try:
                    await self._ingest.handle_many(burst)
                except Exception:
                    # A message must never stop the hub from hearing the next one.
                    log.exception("ingest failed on a burst of %d messages", len(burst))


def _topic_and_payload(message: aiomqtt.Message) -> tuple[str, bytes]:
    payload = message.payload
    if not isinstance(payload, bytes | bytearray):
        payload = str(payload).encode()
    return message.topic.value, bytes(payload)
