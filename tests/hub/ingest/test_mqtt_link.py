"""The hub's MQTT link (hub/ingest/mqtt_link.py) against a real Mosquitto: however a session ends,
the task reading its messages is awaited, so asyncio never reports "Task exception was never
retrieved" for a reader that failed with "Disconnected during message iteration".

Each test runs a second MqttLink (its own client id) on the real ingest of a running hub.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from hub.app import Hub
from hub.core.clock import SystemClock
from hub.ingest.mqtt_link import MqttLink
from tests.conftest import HubFactory
from tests.support.mosquitto import MosquittoBroker

WAIT_S = 10.0  # a guard against hanging, not a measurement


@pytest.fixture
async def loop_reports() -> AsyncIterator[list[dict[str, Any]]]:
    """What asyncio reports to the loop's exception handler while the test runs."""
    loop = asyncio.get_running_loop()
    reports: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reports.append(context))
    yield reports
    loop.set_exception_handler(previous)


def never_retrieved(reports: list[dict[str, Any]]) -> list[str]:
    """The "exception was never retrieved" reports, once unreachable tasks have been collected."""
    gc.collect()
    return [
        f"{report['message']}: {report.get('exception')!r}"
        for report in reports
        if "never retrieved" in report["message"]
    ]


@pytest.fixture
async def hub(hub_factory: HubFactory) -> Hub:
    return await hub_factory()


def second_link(hub: Hub) -> MqttLink:
    settings = hub.config.broker.model_copy(update={"client_id": "carewatch-hub-link-test"})
    return MqttLink(settings, hub.ingest, SystemClock())


async def started(
    link: MqttLink, stop: asyncio.Event
) -> tuple[asyncio.Task[None], set[asyncio.Task[Any]]]:
    """The link's run task, once connected, and the reader tasks it made (found as new tasks)."""
    before = asyncio.all_tasks()
    task = asyncio.create_task(link.run(stop))
    await asyncio.wait_for(link.connected.wait(), WAIT_S)
    readers = {
        t
        for t in asyncio.all_tasks() - before
        if getattr(t.get_coro(), "__qualname__", "") == "MqttLink._read"
    }
    assert len(readers) == 1
    return task, readers


async def until_disconnected(link: MqttLink) -> None:
    async with asyncio.timeout(WAIT_S):
        while link.connected.is_set():  # noqa: ASYNC110 - the link has no "disconnected" event
            await asyncio.sleep(0.02)


@pytest.fixture
def broker_back(broker: MosquittoBroker) -> Iterator[MosquittoBroker]:
    """The broker, started again at the end if a test left it stopped."""
    yield broker
    if not broker.running:
        broker.start()


async def test_a_link_cancelled_while_reading_awaits_its_reader(
    hub: Hub, loop_reports: list[dict[str, Any]]
) -> None:
    # As when the hub's tasks are cancelled (a crash-like shutdown): the session is cancelled
    # while it waits on the reader, and the client disconnecting then fails the reader.
    link = second_link(hub)
    task, readers = await started(link, asyncio.Event())
    task.cancel()
    (outcome,) = await asyncio.gather(task, return_exceptions=True)
    assert isinstance(outcome, asyncio.CancelledError)
    await asyncio.wait(readers, timeout=WAIT_S)  # waits without retrieving anything
    assert all(reader.done() for reader in readers)
    del task, outcome, readers  # the cancellation's traceback holds the session's frame
    assert never_retrieved(loop_reports) == []


async def test_a_link_whose_broker_goes_away_reconnects_and_stops_cleanly(
    hub: Hub, broker_back: MosquittoBroker, loop_reports: list[dict[str, Any]]
) -> None:
    link = second_link(hub)
    stop = asyncio.Event()
    task, readers = await started(link, stop)
    broker_back.stop()  # the reader fails with "Disconnected during message iteration"
    await until_disconnected(link)
    assert all(reader.done() for reader in readers)
    broker_back.start()
    await asyncio.wait_for(link.connected.wait(), WAIT_S)
    stop.set()
    await asyncio.wait_for(task, WAIT_S)
    assert not link.connected.is_set()
    del task, readers
    assert never_retrieved(loop_reports) == []


async def test_a_link_stopped_while_its_broker_is_down_ends_without_a_stray_reader(
    hub: Hub, broker_back: MosquittoBroker, loop_reports: list[dict[str, Any]]
) -> None:
    link = second_link(hub)
    stop = asyncio.Event()
    task, readers = await started(link, stop)
    broker_back.stop()
    await until_disconnected(link)
    stop.set()  # during the reconnect delay
    await asyncio.wait_for(task, WAIT_S)
    assert task.done() and task.exception() is None
    del task, readers
    assert never_retrieved(loop_reports) == []
