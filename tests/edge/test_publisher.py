"""edge.publisher against a real Mosquitto: batches, birth and death, outages, commands."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt

from contract.wire import HUB_STATUS_TOPIC, WireBatch, WireStatus, encode_command, encode_status
from edge.config import BrokerConfig
from edge.outbox import Outbox
from edge.publisher import Backoff, Publisher
from tests.support.mosquitto import MosquittoBroker, mosquitto
from tests.support.tcpproxy import TcpProxy
from tests.support.waiting import eventually

SITE, GATEWAY = "sunrise", "gw-east"
DATA = f"carewatch/v1/{SITE}/{GATEWAY}/data"
STATUS = f"carewatch/v1/{SITE}/{GATEWAY}/status"
CMD = f"carewatch/v1/{SITE}/{GATEWAY}/cmd"
FAST = Backoff(initial=0.05, maximum=0.2, jitter=0.0)


class Collector:
    """A subscriber (the 'hub' of these tests) that records what arrives, in order."""

    def __init__(self) -> None:
        self.data: list[WireBatch] = []
        self.status: list[tuple[WireStatus, bool]] = []  # (status, retained)
        self.changed = asyncio.Event()

    def record(self, message: aiomqtt.Message) -> None:
        payload = message.payload
        assert isinstance(payload, bytes)
        if message.topic.matches(DATA):
            self.data.append(WireBatch.model_validate_json(payload))
        elif message.topic.matches(STATUS):
            self.status.append((WireStatus.model_validate_json(payload), message.retain))
        self.changed.set()

    def items(self) -> list[tuple[int, dict[str, object]]]:
        """(seq, item as JSON) of every item received, in arrival order."""
        return [
            (batch.seq + i, item.model_dump(exclude_defaults=True))
            for batch in self.data
            for i, item in enumerate(batch.items)
        ]

    async def wait_for(self, condition: object, within: float = 10.0) -> None:
        assert callable(condition)
        deadline = time.monotonic() + within
        while not condition():
            self.changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out; data={self.items()} status={self.status}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)


@contextlib.asynccontextmanager
async def subscribed(broker: MosquittoBroker, collector: Collector) -> AsyncIterator[Collector]:
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.subscribe([(DATA, 1), (STATUS, 1)])

        async def listen() -> None:
            async for message in client.messages:
                collector.record(message)

        task = asyncio.create_task(listen())
        try:
            yield collector
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task


@contextlib.asynccontextmanager
async def publishing(
    tmp_path: Path, host: str, port: int, **kwargs: object
) -> AsyncIterator[tuple[Publisher, Outbox]]:
    outbox = await Outbox.open(tmp_path / "outbox.db")
    publisher = Publisher(
        BrokerConfig(host=host, port=port, keepalive=5),
        SITE,
        GATEWAY,
        outbox,
        "test-agent",
        backoff=FAST,
        connect_timeout=2.0,
        **kwargs,  # type: ignore[arg-type]
    )
    stop = asyncio.Event()
    task = asyncio.create_task(publisher.run(stop))
    try:
        yield publisher, outbox
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await outbox.close()


async def append(publisher: Publisher, outbox: Outbox, values: range) -> None:
    from contract.wire import Observation

    observations = [
        Observation("radar-b12", 1_700_000_000.0 + v, "reading", "heart_rate", v) for v in values
    ]
    await outbox.append(observations, historical=not publisher.live)
    publisher.notify()


async def retained_status(broker: MosquittoBroker) -> WireStatus:
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.subscribe(STATUS, qos=1)
        async with asyncio.timeout(5):
            async for message in client.messages:
                assert message.retain
                assert isinstance(message.payload, bytes)
                return WireStatus.model_validate_json(message.payload)
    raise AssertionError("no retained status")


async def test_batch_delivered_with_birth_and_clean_death(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    async with subscribed(broker, Collector()) as hub:
        async with publishing(tmp_path, broker.host, broker.port) as (publisher, outbox):
            await eventually(lambda: publisher.connected)
            sent = time.monotonic()
            await append(publisher, outbox, range(1, 4))
            await hub.wait_for(lambda: len(hub.items()) == 3)
            latency = time.monotonic() - sent
            assert latency < 0.5, f"append to delivery took {latency * 1000:.0f} ms"

            (batch,) = hub.data
            assert batch.epoch == outbox.epoch
            assert batch.seq == 1
            assert batch.bdseq == 1
            assert hub.items()[0] == (
                1,
                {"dev": "radar-b12", "at": 1_700_000_001.0, "reading": "heart_rate", "value": 1},
            )
            await eventually(lambda: outbox_empty(publisher))
            assert await outbox.pending() == 0  # acknowledged after the PUBACK

            birth = await retained_status(broker)
            assert (birth.state, birth.bdseq, birth.agent) == ("online", 1, "test-agent")
            assert birth.at is not None
        # clean stop: offline published explicitly, and it is what stays retained
        await hub.wait_for(lambda: hub.status[-1][0].state == "offline")
    assert hub.status[-1][0].bdseq == 1
    death = await retained_status(broker)
    assert (death.state, death.bdseq) == ("offline", 1)


def outbox_empty(publisher: Publisher) -> bool:
    return publisher.items_sent == 3


async def test_unclean_drop_delivers_death_then_rebirth(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    async with (
        subscribed(broker, Collector()) as hub,
        TcpProxy(broker.host, broker.port) as proxy,
        publishing(tmp_path, proxy.host, proxy.port) as (publisher, _),
    ):
        await hub.wait_for(lambda: [s.state for s, _ in hub.status] == ["online"])
        proxy.cut()  # the link dies: no DISCONNECT reaches the broker
        await hub.wait_for(lambda: len(hub.status) >= 3)
        states = [(s.state, s.bdseq) for s, _ in hub.status]
        assert states[:3] == [("online", 1), ("offline", 1), ("online", 2)]
        assert hub.status[1][0].at is None  # the will, registered at connect time
        await eventually(lambda: publisher.connected)
        birth = await retained_status(broker)
        assert (birth.state, birth.bdseq) == ("online", 2)


async def test_outage_backlog_arrives_once_in_order_marked_historical(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    hub = Collector()
    async with (
        TcpProxy(broker.host, broker.port) as proxy,
        publishing(tmp_path, proxy.host, proxy.port) as (publisher, outbox),
    ):
        async with subscribed(broker, hub):
            await eventually(lambda: publisher.connected)
            await append(publisher, outbox, range(1, 6))
            await hub.wait_for(lambda: len(hub.items()) == 5)
            await asyncio.to_thread(broker.stop)
        await eventually(lambda: not publisher.connected)
        await proxy.pause()  # so the agent cannot reconnect before the test's subscriber is back
        for start in range(6, 106, 10):
            await append(publisher, outbox, range(start, start + 10))
            await asyncio.sleep(0.02)
        assert await outbox.pending() == 100
        await asyncio.to_thread(broker.start)
        async with subscribed(broker, hub):
            await proxy.resume()
            await hub.wait_for(lambda: len(hub.items()) == 105)
            await eventually(lambda: publisher.live)
            await append(publisher, outbox, range(106, 108))
            await hub.wait_for(lambda: len(hub.items()) == 107)

    received = hub.items()
    assert [seq for seq, _ in received] == list(range(1, 108))  # once each, in order
    assert [item["value"] for _, item in received] == list(range(1, 108))
    assert not any(item.get("hist") for _, item in received[:5])
    assert all(item["hist"] is True for _, item in received[5:105])
    assert not any(item.get("hist") for _, item in received[105:])
    assert {batch.epoch for batch in hub.data} == {outbox.epoch}
    assert max(batch.bdseq for batch in hub.data) >= 2


async def test_rebirth_command_and_hub_status(tmp_path: Path, broker: MosquittoBroker) -> None:
    async with (
        subscribed(broker, Collector()) as hub,
        publishing(tmp_path, broker.host, broker.port) as (publisher, outbox),
        aiomqtt.Client(broker.host, broker.port) as hub_client,
    ):
        await hub.wait_for(lambda: len(hub.status) == 1)
        await hub_client.publish(CMD, encode_command("rebirth"), qos=1)
        await hub.wait_for(lambda: len(hub.status) == 2)
        assert [(s.state, s.bdseq) for s, _ in hub.status] == [("online", 1), ("online", 1)]

        # the hub goes offline: items are held in the outbox (store and forward) ...
        offline = encode_status("offline", 7, None, "hub")
        await hub_client.publish(HUB_STATUS_TOPIC, offline, qos=1, retain=True)
        await eventually(lambda: publisher.hub_online is False)
        assert not publisher.live
        await append(publisher, outbox, range(1, 3))
        await asyncio.sleep(0.3)
        assert hub.items() == []
        # ... and sent, with a fresh birth, when it is back
        online = encode_status("online", 8, time.time(), "hub")
        await hub_client.publish(HUB_STATUS_TOPIC, online, qos=1, retain=True)
        await hub.wait_for(lambda: len(hub.items()) == 2 and len(hub.status) == 3)
        assert all(item["hist"] is True for _, item in hub.items())
        assert hub.status[2][0].state == "online"
        await hub_client.publish(HUB_STATUS_TOPIC, b"", qos=1, retain=True)  # clear retained


async def test_unreachable_broker_keeps_items_until_it_appears(tmp_path: Path) -> None:
    with mosquitto() as broker:
        await asyncio.to_thread(broker.stop)
        async with publishing(tmp_path, broker.host, broker.port) as (publisher, outbox):
            await append(publisher, outbox, range(1, 4))
            await asyncio.sleep(0.3)
            assert not publisher.connected
            await asyncio.to_thread(broker.start)
            await eventually(lambda: publisher.items_sent == 3)
        # every failed attempt used a bdseq: it only ever grows
        assert json.loads((await retained_status(broker)).model_dump_json())["bdseq"] >= 2


async def test_stop_while_connecting_to_a_silent_broker_is_prompt(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts TCP (backlog) but never answers CONNECT
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        host, port = silent.getsockname()
        outbox = await Outbox.open(tmp_path / "outbox.db")
        publisher = Publisher(
            BrokerConfig(host=host, port=port), SITE, GATEWAY, outbox, "t", connect_timeout=30
        )
        stop = asyncio.Event()
        task = asyncio.create_task(publisher.run(stop))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        stop.set()
        await asyncio.wait_for(task, 5)
        assert time.monotonic() - started < 2
        assert not publisher.connected
        await outbox.close()
