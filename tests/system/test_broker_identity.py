"""Broker identities pinned: no credential can take over the hub's or another gateway's session.

Every broker here runs deploy/mosquitto/carewatch.conf (paths and port changed for the test, as
in test_broker_security.py) over TLS, with the password file and ACL that `carewatch provision`
generates for the small site's two gateways (plus the hub's password, added by hand as the
docs say). "plain" is the same configuration without `use_username_as_clientid`: what the
broker did before client ids were pinned, kept here to show what the pinning prevents.

The attacker is always a gateway with its own valid credentials (gw-east's) that connects
with somebody else's client id.

What is proved:
- with the hub's client id it does not disconnect the hub: the hub keeps its one session, its
  retained status stays "online", and a fall published meanwhile by another gateway alerts;
- with another gateway's client id it does not drop that gateway: its connection and birth
  stay, and no "gateway offline" alert opens;
- the hub's queued persistent session survives such an attempt while the hub is down (and,
  unpinned, the same attempt wipes it);
- unpinned, repeated takeovers of the hub's session raise a `hub_takeover` trouble alert
  (hub/ingest/mqtt_link.py) and an error in the log.

Waits are for conditions (with a timeout as a guard), never for a fixed time: where something
must NOT have happened, a later message through the same broker to the same hub is waited for
first, and the broker delivers in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiomqtt
import pytest
import yaml

from carewatch.cli import main as carewatch
from contract.wire import HUB_STATUS_TOPIC, Observation, data_topic, encode_batch
from edge.outbox import Outbox
from hub.app import Hub
from hub.config import HubConfig, load_hub_config
from hub.core.clock import SystemClock
from hub.ingest.mqtt_link import SHORT_SESSION_S, MqttLink, TakeoverDetector
from hub.watch.takeovers import Takeovers
from tests.conftest import SMALL_SITE, HubFactory
from tests.support.mosquitto import MosquittoBroker, mosquitto
from tests.support.waiting import eventually
from tests.system.test_broker_security import (
    DEPLOY,
    Pki,
    broker_settings,
    client,
    gateway,
    make_pki,
    shipped_config,
)

SITE = "sunrise"
HUB_USER = "carewatch-hub"
HUB_PASSWORD = "hub-Secret-1"
PIN = "use_username_as_clientid"
WAIT_S = 15.0  # a guard against hanging, not a measurement
Credentials = tuple[str, str]
T = TypeVar("T")


# --- the generated broker files ---------------------------------------------------------------


@dataclass(frozen=True)
class Generated:
    """What `carewatch provision` wrote for the small site, and the hub's configuration."""

    config_path: Path
    password_file: Path
    acl_file: Path
    east: Credentials
    west: Credentials


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def generated(tmp_path: Path, pki: Pki) -> Generated:
    """The small site's hub.yaml, then `carewatch provision gateway` for both its gateways."""
    mosquitto_dir = tmp_path / "mosquitto"
    raw: dict[str, Any] = {
        "database": str(tmp_path / "hub.db"),
        "web": {"host": "127.0.0.1", "port": 0, "secret_key": "test-secret-" + "k" * 32},
        # the real port is only known once the broker runs: hub_settings() sets it
        "broker": {
            "host": "127.0.0.1",
            "port": 8883,
            "username": HUB_USER,
            "password": HUB_PASSWORD,
            "client_id": HUB_USER,
            "tls": True,
            "ca_file": str(pki.ca_cert),
        },
        "provisioning": {
            "password_file": str(mosquitto_dir / "carewatch.passwd"),
            "acl_file": str(mosquitto_dir / "carewatch.acl"),
        },
        "sites": [SMALL_SITE],
    }
    config_path = tmp_path / "hub.yaml"
    config_path.write_text(yaml.safe_dump(raw))
    credentials: dict[str, Credentials] = {}
    for name in ("gw-east", "gw-west"):
        out = tmp_path / f"bundle-{name}"
        command = ["provision", "--config", str(config_path), "gateway", SITE, name]
        assert carewatch([*command, "--out", str(out)]) == 0
        # (read as YAML: its ca_file names where the CA goes on the gateway)
        broker = yaml.safe_load((out / "edge.yaml").read_text())["broker"]
        credentials[name] = (str(broker["username"]), str(broker["password"]))
    settings = load_hub_config(config_path).provisioning
    # the hub's own user: added once by hand (docs/provisioning.md)
    subprocess.run(
        ["mosquitto_passwd", "-b", str(settings.password_file), HUB_USER, HUB_PASSWORD],
        check=True,
        capture_output=True,
    )
    return Generated(
        config_path,
        settings.password_file,
        settings.acl_file,
        credentials["gw-east"],
        credentials["gw-west"],
    )


def broker_config(port: int, pki: Pki, files: Generated, data: Path, *, pinned: bool) -> str:
    """The shipped carewatch.conf with the generated files; unpinned: without the pin line."""
    config = shipped_config(port, pki, files.password_file, files.acl_file, data)
    if pinned:
        assert f"\n{PIN} true\n" in config
        return config
    return "".join(line for line in config.splitlines(keepends=True) if not line.startswith(PIN))


@contextlib.contextmanager
def running_broker(pki: Pki, files: Generated, tmp_path: Path, pinned: bool) -> Iterator[Any]:
    data = tmp_path / "broker-data"
    with mosquitto(config=lambda port: broker_config(port, pki, files, data, pinned=pinned)) as b:
        yield b


@pytest.fixture
def pinned_broker(pki: Pki, generated: Generated, tmp_path: Path) -> Iterator[MosquittoBroker]:
    with running_broker(pki, generated, tmp_path, pinned=True) as broker:
        yield broker


@pytest.fixture
def plain_broker(pki: Pki, generated: Generated, tmp_path: Path) -> Iterator[MosquittoBroker]:
    with running_broker(pki, generated, tmp_path, pinned=False) as broker:
        yield broker


# --- the hub and clients ----------------------------------------------------------------------


def hub_settings(files: Generated, broker: MosquittoBroker) -> HubConfig:
    config = load_hub_config(files.config_path)
    settings = config.broker.model_copy(update={"host": broker.host, "port": broker.port})
    return config.model_copy(update={"broker": settings})


@contextlib.asynccontextmanager
async def running_hub(files: Generated, broker: MosquittoBroker) -> AsyncIterator[Hub]:
    hub = await Hub.start(hub_settings(files, broker))
    try:
        try:
            await asyncio.wait_for(hub.mqtt.connected.wait(), WAIT_S)
        except TimeoutError:
            raise AssertionError(f"the hub did not connect:\n{broker.log()}") from None
        yield hub
    finally:
        await hub.stop()


def fall_batch(device: str, epoch: str, seq: int = 1) -> bytes:
    item = Observation(device, time.time(), "event", "fall", True).to_wire()
    return encode_batch(epoch, seq, 1, time.time(), [item])


async def alerts(hub: Hub, rule: str, **fields: Any) -> list[dict[str, Any]]:
    active = await hub.alerts.records.page(("open", "acknowledged"), 100)
    return [a for a in active if a["rule"] == rule and all(a[k] == v for k, v in fields.items())]


async def polled(fetch: Callable[[], Awaitable[T | None]], what: str) -> T:
    """What `fetch` returns once it returns something (not None, not empty)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        found = await fetch()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {WAIT_S} s")
        await asyncio.sleep(0.05)


async def alert_for(hub: Hub, rule: str, **fields: Any) -> dict[str, Any]:
    (alert,) = await polled(lambda: alerts(hub, rule, **fields), f"{rule} alert {fields}")
    return alert


async def retained_hub_status(broker: MosquittoBroker, pki: Pki, user: Credentials) -> str:
    async with client(broker, pki, user, "status-reader") as reader:
        await reader.subscribe(HUB_STATUS_TOPIC, qos=1)
        async with asyncio.timeout(WAIT_S):
            message = await anext(aiter(reader.messages))
    assert message.retain and isinstance(message.payload, bytes)
    return str(json.loads(message.payload)["state"])


def takeovers_logged(broker: MosquittoBroker) -> list[str]:
    """Mosquitto's line for a client id that connected while already connected."""
    return [line for line in broker.log().splitlines() if "already connected" in line]


def connections_as(broker: MosquittoBroker, client_id: str) -> int:
    as_id = re.compile(rf"New client connected from \S+ as {re.escape(client_id)} ")
    return sum(bool(as_id.search(line)) for line in broker.log().splitlines())


# --- the shipped configuration ---------------------------------------------------------------


def test_every_listener_of_the_shipped_configuration_pins_client_ids() -> None:
    listeners: list[list[str]] = []
    for line in (DEPLOY / "carewatch.conf").read_text().splitlines():
        words = line.lstrip("#").split()  # the optional loopback listener is commented out
        if words[:1] == ["listener"]:
            listeners.append([])
        elif listeners and words[:1] == [PIN]:
            listeners[-1].append(" ".join(words))
    assert len(listeners) == 2, listeners
    assert all(settings == [f"{PIN} true"] for settings in listeners), listeners


# --- a gateway with the hub's client id -------------------------------------------------------


async def test_a_gateway_with_the_hubs_client_id_does_not_disconnect_the_hub(
    pinned_broker: MosquittoBroker, pki: Pki, generated: Generated
) -> None:
    async with running_hub(generated, pinned_broker) as hub:
        assert hub.mqtt.connections == 1
        # gw-east's own credentials, the hub's client id, a clean session: unpinned, the
        # broker would drop the hub, send its will ("offline") and wipe its session
        async with (
            client(pinned_broker, pki, generated.east, HUB_USER) as attacker,
            client(pinned_broker, pki, generated.west, "west") as west,
        ):
            # meanwhile another gateway's fall reaches the hub
            await west.publish(
                data_topic(SITE, "gw-west"), fall_batch("radar-201", "1111aaaa"), qos=1
            )
            alert = await alert_for(hub, "fall", bed="SR-W-201")
            assert alert["device"] == "radar-201"
            own = fall_batch("radar-101", "2222bbbb")
            await attacker.publish(data_topic(SITE, "gw-east"), own, qos=1)
            await alert_for(hub, "fall", bed="SR-E-101")  # the attacker is just gw-east
            assert hub.mqtt.connected.is_set()
            assert hub.mqtt.connections == 1  # the hub never lost its session
        assert await retained_hub_status(pinned_broker, pki, generated.west) == "online"
        assert hub.mqtt.connections == 1
        assert await alerts(hub, "hub_takeover") == []
    assert takeovers_logged(pinned_broker) == []
    assert connections_as(pinned_broker, HUB_USER) == 1
    assert connections_as(pinned_broker, generated.east[0]) == 1  # the broker's id for it


# --- a gateway with another gateway's client id ---------------------------------------------


async def test_a_gateway_with_another_gateways_client_id_does_not_drop_it(
    pinned_broker: MosquittoBroker, pki: Pki, generated: Generated, tmp_path: Path
) -> None:
    west_settings = broker_settings(pinned_broker, pki, generated.west)
    async with (
        running_hub(generated, pinned_broker) as hub,
        gateway(tmp_path, west_settings, "gw-west") as (publisher, outbox, _),
    ):
        await eventually(lambda: publisher.connected and publisher.hub_online is True, WAIT_S)
        status = await polled(lambda: hub.ingest.records.gateway_status(SITE, "gw-west"), "birth")
        assert status[0] == "online"
        # gw-east's credentials with gw-west's client id: the one the agent uses now (its user
        # name) and the one it used before
        for identifier in (generated.west[0], "carewatch-edge-sunrise-gw-west"):
            async with client(pinned_broker, pki, generated.east, identifier):
                pass
        await _fall_from(publisher, outbox, "radar-201")
        # the fall came after the attempts: anything they caused has reached the hub by now
        await alert_for(hub, "fall", bed="SR-W-201")
        assert publisher.connected
        assert (
            await hub.ingest.records.gateway_status(SITE, "gw-west") == status
        )  # same birth, bdseq
        assert await alerts(hub, "gateway_offline") == []
    assert takeovers_logged(pinned_broker) == []
    assert connections_as(pinned_broker, generated.west[0]) == 1


async def _fall_from(publisher: Any, outbox: Outbox, device: str) -> None:
    await outbox.append([Observation(device, time.time(), "event", "fall", True)], False)
    publisher.notify()


# --- the hub's queued session while it is down --------------------------------------------


@pytest.mark.parametrize("pinned", [True, False], ids=["pinned", "plain"])
async def test_the_hubs_queued_session_survives_a_takeover_attempt_while_it_is_down(
    pki: Pki, generated: Generated, tmp_path: Path, pinned: bool
) -> None:
    with running_broker(pki, generated, tmp_path, pinned) as broker:
        async with running_hub(generated, broker):
            pass  # the hub's persistent session now exists, and the hub is stopped
        async with client(broker, pki, generated.west, "west") as west:
            batch = fall_batch("radar-201", "3333cccc")
            await west.publish(data_topic(SITE, "gw-west"), batch, qos=1)  # queued for the hub
        # gw-east's credentials, the hub's client id, a clean session
        async with client(broker, pki, generated.east, HUB_USER, clean=True):
            pass
        async with running_hub(generated, broker) as hub:
            if pinned:
                alert = await alert_for(hub, "fall", bed="SR-W-201")
                assert alert["device"] == "radar-201"
                return
            # unpinned, the attempt wiped the queue: a later fall arrives, the queued one not
            async with client(broker, pki, generated.east, "east") as east:
                later = fall_batch("radar-101", "4444dddd")
                await east.publish(data_topic(SITE, "gw-east"), later, qos=1)
            await alert_for(hub, "fall", bed="SR-E-101")
            assert await alerts(hub, "fall", bed="SR-W-201") == []


# --- the hub notices its session being taken over -------------------------------------------


async def test_repeated_takeovers_of_the_hubs_session_raise_a_trouble_alert(
    plain_broker: MosquittoBroker,
    pki: Pki,
    generated: Generated,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="carewatch.hub.mqtt")
    async with running_hub(generated, plain_broker) as hub:
        for attempt in range(1, 4):

            def back(sessions: int = attempt) -> bool:
                return hub.mqtt.connections == sessions and hub.mqtt.connected.is_set()

            # the hub is back (its reconnection took the session back from the attacker)
            await eventually(back, WAIT_S)
            assert await alerts(hub, "hub_takeover") == []
            async with client(plain_broker, pki, generated.east, HUB_USER):
                pass  # unpinned, this drops the hub
        alert = await alert_for(hub, "hub_takeover", subject=f"hub:{SITE}")
        assert (alert["priority"], alert["site"], alert["bed"]) == ("trouble", SITE, None)
        (opened,) = [
            e for e in await hub.store.audit.for_alert(alert["id"]) if e["action"] == "opened"
        ]
        assert opened["detail"]["drops"] == 3
        assert opened["detail"]["client_id"] == HUB_USER
        await eventually(lambda: hub.mqtt.connected.is_set(), WAIT_S)  # and it carries on
    assert len(takeovers_logged(plain_broker)) >= 3
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("dropped the hub's session 3 times" in m for m in errors), errors


async def test_only_sessions_dropped_soon_after_connecting_count_as_taken_over(
    hub_factory: HubFactory, broker: MosquittoBroker
) -> None:
    """A second link on the hub's ingest, on a plain anonymous broker, with its own client id
    and a monotonic clock the test moves: drops of sessions older than SHORT_SESSION_S (a
    broker restart, a network fault) never alarm; three quick ones do."""
    hub = await hub_factory()
    now = [1000.0]
    reports: list[Takeovers] = []

    async def report(takeovers: Takeovers) -> None:
        reports.append(takeovers)

    settings = hub.config.broker.model_copy(update={"client_id": "takeover-link-test"})
    link = MqttLink(settings, hub.ingest, SystemClock(), report, monotonic=lambda: now[0])
    stop = asyncio.Event()
    task = asyncio.create_task(link.run(stop))
    try:
        for sessions, age in enumerate([SHORT_SESSION_S + 1] * 3 + [0.0] * 3, start=1):
            await _until_sessions(link, sessions)
            now[0] += age
            async with aiomqtt.Client(broker.host, broker.port, identifier=settings.client_id):
                pass  # takes the link's session over
            if sessions == 4:  # the third long session's drop has been counted (or not)
                assert reports == []
        await eventually(lambda: bool(reports), WAIT_S)
        (alarm,) = reports
        assert (alarm.drops, alarm.client_id) == (3, "takeover-link-test")
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT_S)


async def _until_sessions(link: MqttLink, sessions: int) -> None:
    await eventually(lambda: link.connections == sessions and link.connected.is_set(), WAIT_S)


def test_the_takeover_detector_counts_drops_within_its_window() -> None:
    detector = TakeoverDetector(limit=3, window_s=60.0)
    # spread over more than a minute: never three within the window
    assert [detector.dropped(t) for t in (0.0, 40.0, 80.0, 120.0)] == [None] * 4
    assert detector.dropped(130.0) == 3  # 80, 120, 130
    # after an alarm the count starts again
    assert detector.dropped(131.0) is None
    assert detector.dropped(132.0) is None
    assert detector.dropped(133.0) == 3
