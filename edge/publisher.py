"""The MQTT publisher: drains the durable outbox to the broker, with birth and death.

Per connection:

1. take the next `bdseq` from the outbox and connect with a retained will
   `{"state":"offline","bdseq":N}` on the gateway's status topic;
2. publish the retained birth `{"state":"online","bdseq":N,"at":…}` (QoS 1);
3. subscribe to the gateway's command topic (`{"cmd":"rebirth"}` republishes the birth) and to
   the hub's retained status (a hub coming back online gets a fresh birth too);
4. drain the outbox: one batch at a time, QoS 1, acknowledged in the outbox only after PUBACK.
   `notify()` wakes the drainer at once, so a new item leaves within milliseconds.
   While the hub's retained status says "offline", items are held in the outbox (store and
   forward, as Sparkplug edge nodes do for their primary host) and sent once it is back.
   Once a hub has been heard, each new connection also waits until its status is heard again
   (at once if the broker kept it retained; else when the hub reconnects and republishes it).
5. publish the retained device health report (QoS 1) after every birth and rebirth, whenever
   `report_devices()` is called (a device went online or offline), and at least every
   `devices_report_s`. The report is built when it is sent, so a report is never stale and a
   disconnected gateway sends just the current one on its next connection.

If the broker goes away, nothing is lost: unacknowledged items stay in the outbox and are sent
again on the next connection (the hub de-duplicates on `seq`). Reconnects back off
exponentially with jitter. On a clean stop the offline status is published explicitly, because
a clean DISCONNECT discards the will.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiomqtt

from contract.wire import (
    HUB_STATUS_TOPIC,
    MAX_ITEMS_PER_BATCH,
    command_topic,
    data_topic,
    devices_topic,
    encode_batch,
    encode_status,
    status_topic,
)
from edge.config import BrokerConfig
from edge.logs import context_logger
from edge.outbox import Outbox

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: `initial`, doubling up to `maximum`, each with ±`jitter` spread."""

    initial: float = 0.5
    maximum: float = 30.0
    jitter: float = 0.2

    def delay(self, attempt: int) -> float:
        base: float = min(self.maximum, self.initial * 2.0 ** min(attempt, 30))
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)


class Publisher:
    """Keeps one MQTT connection for a gateway and drains its outbox through it."""

    def __init__(
        self,
        broker: BrokerConfig,
        site: str,
        gateway: str,
        outbox: Outbox,
        agent: str,
        *,
        clock: Clock = time.time,
        backoff: Backoff | None = None,
        batch_size: int = MAX_ITEMS_PER_BATCH,
        publish_timeout: float = 15.0,
        connect_timeout: float = 10.0,
        hold_while_hub_offline: bool = True,
        devices_report: Callable[[], bytes] | None = None,
        devices_report_s: float = 300.0,
    ) -> None:
        self._broker = broker
        self._site = site
        self._gateway = gateway
        self._outbox = outbox
        self._agent = agent
        self._clock = clock
        self._backoff = backoff or Backoff()
        self._batch_size = min(batch_size, MAX_ITEMS_PER_BATCH)
        self._publish_timeout = publish_timeout
        self._connect_timeout = connect_timeout
        self._hold_while_hub_offline = hold_while_hub_offline
        self._wake = asyncio.Event()
        self._connected = False
        self._session_up = False  # this connection got as far as its birth
        self._stopping = False
        self._connecting = False
        self._hub_state: str | None = None
        self._hub_heard = False  # the hub's status arrived on this connection
        self._bdseq = 0
        self._tls = _tls_context(broker)
        self.status_topic = status_topic(site, gateway)
        self.data_topic = data_topic(site, gateway)
        self.command_topic = command_topic(site, gateway)
        self.devices_topic = devices_topic(site, gateway)
        self._devices_report = devices_report
        self._devices_report_s = devices_report_s
        self._devices_due = asyncio.Event()
        self.reports_sent = 0
        self.batches_sent = 0
        self.items_sent = 0
        self._log = context_logger(__name__, site=site, gateway=gateway)

    @property
    def connected(self) -> bool:
        """True while a connection is up and its birth has been published."""
        return self._connected

    @property
    def hub_online(self) -> bool | None:
        """The hub's last retained status: True, False, or None if not heard."""
        return None if self._hub_state is None else self._hub_state == "online"

    @property
    def live(self) -> bool:
        """True if an item appended now goes straight to a listening hub (not backlog)."""
        return self._connected and not self._holding()

    def _holding(self) -> bool:
        """Hold while the hub is offline; and, once a hub has been heard, after each reconnect
        until it is heard again: a restarted broker may have lost the hub's subscriptions, and
        a batch published before the hub resubscribes would reach no one."""
        if not self._hold_while_hub_offline:
            return False
        unconfirmed = self._hub_state is not None and not self._hub_heard
        return self._hub_state == "offline" or unconfirmed

    def notify(self) -> None:
        """Something was appended to the outbox: wake the drainer."""
        self._wake.set()

    def report_devices(self) -> None:
        """Device health changed: publish a fresh report now, or on the next connection."""
        self._devices_due.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, publish, reconnect on failure, until `stop` is set."""
        attempt = 0
        self._stopping = False
        while not stop.is_set():
            try:
                await self._session_or_stop(stop)
                return
            except aiomqtt.MqttError as exc:
                was_up, self._session_up = self._session_up, False
                attempt = 0 if was_up else attempt + 1
                delay = self._backoff.delay(attempt)
                self._log.warning(
                    "broker %s:%d %s: %s; retrying in %.1f s",
                    self._broker.host,
                    self._broker.port,
                    "connection lost" if was_up else "unreachable",
                    exc,
                    delay,
                )
            except Exception:
                self._session_up = False
                attempt += 1
                delay = self._backoff.delay(attempt)
                self._log.exception("publisher failed; restarting in %.1f s", delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    # --- one connection ---------------------------------------------------------------------

    async def _session_or_stop(self, stop: asyncio.Event) -> None:
        """A session; a stop while still connecting (a black-holed network) ends it at once."""
        session = asyncio.create_task(self._session(stop))
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([session, stopper], return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            session.cancel()
            raise
        finally:
            stopper.cancel()
        if not session.done() and self._connecting:
            session.cancel()
            await asyncio.wait([session])
            self._log.info("stopped while connecting to the broker")
            return
        await session

    async def _session(self, stop: asyncio.Event) -> None:
        self._bdseq = await self._outbox.next_bdseq()
        client = self._client(self._bdseq)
        self._connecting = True
        try:
            async with client:
                self._connecting = False
                await self._connected_session(client, stop)
        finally:
            self._connecting = False

    async def _connected_session(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        """Birth, subscriptions, then serve until stopped; death on a clean stop."""
        await self._publish_birth(client)
        self._session_up = True
        self._hub_heard = False
        await client.subscribe([(self.command_topic, 1), (HUB_STATUS_TOPIC, 1)])
        self._connected = True
        self._log.info(
            "connected to broker %s:%d bdseq=%d epoch=%s",
            self._broker.host,
            self._broker.port,
            self._bdseq,
            self._outbox.epoch,
        )
        try:
            await self._serve(client, stop)
        finally:
            self._connected = False
        await self._publish_death(client)

    async def _serve(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        """Run listener and drainer until `stop` (returns) or a failure (raises)."""
        stopper = asyncio.create_task(stop.wait())
        drainer = asyncio.create_task(self._drain(client))
        workers = [asyncio.create_task(self._listen(client)), drainer]
        if self._devices_report is not None:
            workers.append(asyncio.create_task(self._report(client, self._devices_report)))
        try:
            done, _ = await asyncio.wait([stopper, *workers], return_when=asyncio.FIRST_COMPLETED)
            if stopper in done and not drainer.done():
                await self._let_batch_finish(drainer)
        finally:
            for task in (stopper, *workers):
                task.cancel()
            await asyncio.gather(stopper, *workers, return_exceptions=True)
        for task in workers:
            if task in done and not task.cancelled():
                raise task.exception() or aiomqtt.MqttError("message stream ended")

    async def _let_batch_finish(self, drainer: asyncio.Task[None]) -> None:
        """On stop, let a batch in flight get its PUBACK, so a restart does not resend it."""
        self._stopping = True
        self._wake.set()
        await asyncio.wait([drainer], timeout=min(self._publish_timeout, 5.0))

    def _client(self, bdseq: int) -> aiomqtt.Client:
        death = encode_status("offline", bdseq, None, self._agent)
        broker = self._broker
        return aiomqtt.Client(
            broker.host,
            broker.port,
            username=broker.username,
            password=broker.password,
            # The broker user name when there is one: a broker that pins client ids to user
            # names (docs/mosquitto.md) uses it anyway, and the logs then show one name.
            identifier=broker.username or f"carewatch-edge-{self._site}-{self._gateway}",
            clean_session=True,
            keepalive=broker.keepalive,
            will=aiomqtt.Will(self.status_topic, death, qos=1, retain=True),
            tls_context=self._tls,
            timeout=self._connect_timeout,  # also bounds SUBSCRIBE and DISCONNECT
        )

    async def _publish_birth(self, client: aiomqtt.Client) -> None:
        birth = encode_status("online", self._bdseq, self._clock(), self._agent)
        await client.publish(
            self.status_topic, birth, qos=1, retain=True, timeout=self._publish_timeout
        )
        self._devices_due.set()  # every birth is followed by the device report

    async def _report(self, client: aiomqtt.Client, build: Callable[[], bytes]) -> None:
        """Publish the device report when due, and at least every `devices_report_s`."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._devices_due.wait(), self._devices_report_s)
            self._devices_due.clear()
            await client.publish(
                self.devices_topic, build(), qos=1, retain=True, timeout=self._publish_timeout
            )
            self.reports_sent += 1

    async def _publish_death(self, client: aiomqtt.Client) -> None:
        death = encode_status("offline", self._bdseq, self._clock(), self._agent)
        try:
            await client.publish(self.status_topic, death, qos=1, retain=True, timeout=5)
            self._log.info("published offline status bdseq=%d; disconnecting", self._bdseq)
        except aiomqtt.MqttError as exc:
            self._log.warning("could not publish offline status: %s", exc)

    # --- draining ---------------------------------------------------------------------------

    async def _drain(self, client: aiomqtt.Client) -> None:
        while not self._stopping:
            self._wake.clear()  # before reading, so an append during the read is not missed
            if self._holding():
                await self._wake.wait()  # store and forward until the hub is back
                continue
            first, items = await self._outbox.next_batch(self._batch_size)
            if not items:
                await self._wake.wait()
                continue
            payload = encode_batch(self._outbox.epoch, first, self._bdseq, self._clock(), items)
            await client.publish(self.data_topic, payload, qos=1, timeout=self._publish_timeout)
            await self._outbox.acknowledge(first + len(items) - 1)
            self.batches_sent += 1
            self.items_sent += len(items)
            self._log.debug("published seq %d..%d", first, first + len(items) - 1)

    # --- listening --------------------------------------------------------------------------

    async def _listen(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = _json_object(message.payload)
            if message.topic.matches(HUB_STATUS_TOPIC):
                await self._on_hub_status(client, payload)
            elif message.topic.matches(self.command_topic):
                if message.retain:
                    self._log.info("ignoring a retained (stale) command: %s", payload)
                    continue
                await self._on_command(client, payload)

    async def _on_command(self, client: aiomqtt.Client, payload: dict[str, object] | None) -> None:
        command = payload.get("cmd") if payload else None
        if command == "rebirth":
            self._log.info("hub asked for rebirth; republishing birth bdseq=%d", self._bdseq)
            await self._publish_birth(client)
        else:
            self._log.warning("ignoring unsupported command %r", command)

    async def _on_hub_status(
        self, client: aiomqtt.Client, payload: dict[str, object] | None
    ) -> None:
        state = payload.get("state") if payload else None
        if state not in ("online", "offline"):
            self._log.warning("unreadable hub status %r", payload)
            return
        previous, self._hub_state = self._hub_state, str(state)
        self._hub_heard = True
        if state == "online":
            self._log.info("hub is online and listening")
        else:
            held = "holding items in the outbox" if self._hold_while_hub_offline else "sending"
            self._log.warning("hub is offline; %s until it is back", held)
        self._wake.set()
        if state == "online" and previous == "offline":
            self._log.info("hub came back; republishing birth bdseq=%d", self._bdseq)
            await self._publish_birth(client)


def _json_object(payload: object) -> dict[str, object] | None:
    if not isinstance(payload, bytes | bytearray | str):
        return None
    try:
        value = json.loads(payload)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _tls_context(broker: BrokerConfig) -> ssl.SSLContext | None:
    if not broker.tls:
        return None
    return ssl.create_default_context(cafile=broker.ca_file)
