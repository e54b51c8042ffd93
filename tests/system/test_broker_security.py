"""The shipped Mosquitto configuration (deploy/mosquitto/) against a real Mosquitto.

Every broker here runs deploy/mosquitto/carewatch.conf itself, with only its paths and port
changed for the test (`shipped_config`), a password file made with mosquitto_passwd, and one
of the two shipped ACLs, over TLS with a throwaway CA generated here. The gateways are the real
edge publisher and the hub is the real hub, each with its own credentials.

What is proved:
- a gateway's batch reaches the hub over TLS and raises an alert; the hub's status and a
  command from the hub's user reach the gateway;
- a gateway cannot publish under another gateway's topics (nor as the hub), nor read another
  gateway's data: the broker drops it, while the same message sent with the right credentials
  does raise an alert, and a legitimate batch sent after the forged one arrives;
- a wrong password, a missing TLS layer, or a client that does not trust the carewatch CA
  cannot connect, and the edge publisher keeps retrying with a clear logged reason;
- the packet size limit lets the largest carewatch payload through.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import json
import logging
import os
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from contract.wire import (
    HUB_STATUS_TOPIC,
    MAX_PAYLOAD_BYTES,
    Observation,
    command_topic,
    data_topic,
    encode_batch,
    encode_command,
    status_topic,
)
from edge.config import BrokerConfig
from edge.outbox import Outbox
from edge.publisher import Backoff, Publisher
from hub.app import Hub
from hub.ingest.settings import BrokerSettings
from tests.conftest import hub_config
from tests.support.mosquitto import MosquittoBroker, mosquitto
from tests.support.paths import REPO
from tests.support.waiting import eventually

DEPLOY = REPO / "deploy" / "mosquitto"
MOSQUITTO_PASSWD = os.environ.get("CAREWATCH_MOSQUITTO_PASSWD", "/usr/bin/mosquitto_passwd")

SITE = "sunrise"
HUB = ("carewatch-hub", "hub-Secret-1")
EAST = ("sunrise/gw-east", "east-Secret-2")
WEST = ("sunrise/gw-west", "west-Secret-3")
# The shipped ACLs' read-only user for diagnostics. Client ids are pinned to user names, so an
# observer must not use the hub's credentials while the hub runs: it would take over its session.
MONITOR = ("carewatch-monitor", "monitor-Secret-4")
FAST = Backoff(initial=0.05, maximum=0.2, jitter=0.0)
ACLS = ["acl.example", "acl-pattern.example"]


# --- a throwaway CA and a broker certificate for 127.0.0.1 and localhost --------------------


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    server_cert: Path
    server_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "carewatch test"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_pki(directory: Path) -> Pki:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("carewatch test CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(directory / "ca.crt", directory / "broker.crt", directory / "broker.key")
    pki.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.server_cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    pki.server_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    pki.server_key.chmod(0o600)
    return pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


# --- the shipped configuration, adapted only in paths and port ---------------------------


def _mosquitto_passwd() -> str:
    if Path(MOSQUITTO_PASSWD).is_file():
        return MOSQUITTO_PASSWD
    found = shutil.which("mosquitto_passwd")
    if found is None:
        raise RuntimeError(
            f"mosquitto_passwd not found at {MOSQUITTO_PASSWD} or on PATH; install mosquitto "
            "(apt-get install mosquitto) — these tests need it"
        )
    return found


def make_password_file(path: Path, users: list[tuple[str, str]]) -> None:
    executable = _mosquitto_passwd()
    for index, (username, password) in enumerate(users):
        create = ["-c"] if index == 0 else []
        subprocess.run(
            [executable, "-b", *create, str(path), username, password],
            check=True,
            capture_output=True,
        )


SHIPPED_REQUIRED = {
    "listener",
    "cafile",
    "certfile",
    "keyfile",
    "allow_anonymous",
    "password_file",
    "acl_file",
    "persistence",
    "max_packet_size",
    "max_queued_messages",
}


def shipped_directives() -> dict[str, list[str]]:
    """carewatch.conf as {directive: [its arguments, one entry per occurrence]}."""
    directives: dict[str, list[str]] = {}
    for line in (DEPLOY / "carewatch.conf").read_text().splitlines():
        words = line.split(maxsplit=1)
        if words and not words[0].startswith("#"):
            directives.setdefault(words[0], []).append(words[1] if len(words) > 1 else "")
    return directives


def shipped_config(port: int, pki: Pki, password_file: Path, acl_file: Path, data: Path) -> str:
    """deploy/mosquitto/carewatch.conf with test paths and port; every other line as shipped.

    The lines Debian's main mosquitto.conf contributes (persistence_location, log_dest) are
    added, as that file is not used here.
    """
    paths = {
        "cafile": pki.ca_cert,
        "certfile": pki.server_cert,
        "keyfile": pki.server_key,
        "password_file": password_file,
        "acl_file": acl_file,
    }
    lines: list[str] = []
    for line in (DEPLOY / "carewatch.conf").read_text().splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "listener":
            assert words[1:] == ["8883"], line
            line = f"listener {port} 127.0.0.1"
        elif words[0] in paths:
            line = f"{words[0]} {paths[words[0]]}"
        lines.append(line)
    data.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        lines.append("user root")  # else it drops to "mosquitto", who cannot read tmp_path
    lines += [
        f"persistence_location {data}/",
        "log_dest stderr",
        "log_type all",  # includes "Denied PUBLISH", which the tests look for
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture
def acl_name() -> str:
    return "acl.example"


@pytest.fixture
def secure_broker(pki: Pki, tmp_path: Path, acl_name: str) -> Iterator[MosquittoBroker]:
    password_file = tmp_path / "carewatch.passwd"
    make_password_file(password_file, [HUB, EAST, WEST, MONITOR])
    data = tmp_path / "data"
    acl_file = DEPLOY / acl_name
    with mosquitto(
        config=lambda port: shipped_config(port, pki, password_file, acl_file, data)
    ) as broker:  # made for the port the helper picks, so it can move off a taken one
        yield broker


# --- clients --------------------------------------------------------------------------------


def trusting(pki: Pki) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki.ca_cert))


def client(
    broker: MosquittoBroker,
    pki: Pki,
    user: tuple[str, str],
    identifier: str,
    clean: bool = True,
) -> aiomqtt.Client:
    return aiomqtt.Client(
        broker.host,
        broker.port,
        username=user[0],
        password=user[1],
        identifier=identifier,
        clean_session=clean,
        tls_context=trusting(pki),
        timeout=5,
    )


def broker_settings(
    broker: MosquittoBroker, pki: Pki | None, user: tuple[str, str], tls: bool = True
) -> BrokerConfig:
    return BrokerConfig(
        host=broker.host,
        port=broker.port,
        username=user[0],
        password=user[1],
        tls=tls,
        ca_file=str(pki.ca_cert) if pki is not None else None,
        keepalive=5,
    )


@pytest.fixture
async def hub(secure_broker: MosquittoBroker, pki: Pki, tmp_path: Path) -> AsyncIterator[Hub]:
    settings = BrokerSettings(
        host=secure_broker.host,
        port=secure_broker.port,
        client_id="carewatch-hub-test",
        username=HUB[0],
        password=HUB[1],
        tls=True,
        ca_file=str(pki.ca_cert),
    )
    # hub_config's first parameter is named `broker`, so it cannot take broker= as an override
    config = hub_config(secure_broker, tmp_path / "hub.db").model_copy(update={"broker": settings})
    running = await Hub.start(config)
    try:
        await asyncio.wait_for(running.mqtt.connected.wait(), 10)
    except TimeoutError:
        await running.stop()
        raise AssertionError(f"the hub did not connect over TLS:\n{secure_broker.log()}") from None
    yield running
    await running.stop()


@contextlib.asynccontextmanager
async def gateway(
    tmp_path: Path, settings: BrokerConfig, gateway_id: str
) -> AsyncIterator[tuple[Publisher, Outbox, asyncio.Task[None]]]:
    """The real edge publisher for `gateway_id`, running until the block ends."""
    outbox = await Outbox.open(tmp_path / f"outbox-{gateway_id}.db")
    publisher = Publisher(
        settings, SITE, gateway_id, outbox, "test-agent", backoff=FAST, connect_timeout=2.0
    )
    stop = asyncio.Event()
    task = asyncio.create_task(publisher.run(stop))
    try:
        yield publisher, outbox, task
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await outbox.close()


def fall(device: str) -> dict[str, object]:
    return Observation(device, time.time(), "event", "fall", True).to_wire()


async def open_alerts(hub: Hub) -> list[dict[str, Any]]:
    return await hub.alerts.records.page(("open", "acknowledged"), 100)


async def alerts_for(hub: Hub, bed: str, within: float = 10.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + within
    while True:
        found = [a for a in await open_alerts(hub) if a["bed"] == bed]
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


# --- the shipped files ------------------------------------------------------------------------


def test_shipped_configuration_has_every_security_setting() -> None:
    directives = shipped_directives()
    assert SHIPPED_REQUIRED <= directives.keys()
    assert directives["listener"] == ["8883"]  # TLS only: there is no plain listener
    assert directives["allow_anonymous"] == ["false"]
    assert directives["persistence"] == ["true"]
    overhead = 4096  # fixed header, topic, packet id
    assert int(directives["max_packet_size"][0]) >= MAX_PAYLOAD_BYTES + overhead
    assert int(directives["max_queued_messages"][0]) >= 10_000


# --- the path that must work ------------------------------------------------------------------


@pytest.mark.parametrize("acl_name", ACLS)
async def test_gateway_over_tls_reaches_the_hub_and_raises_an_alert(
    secure_broker: MosquittoBroker, pki: Pki, hub: Hub, tmp_path: Path
) -> None:
    async with gateway(tmp_path, broker_settings(secure_broker, pki, EAST), "gw-east") as (
        publisher,
        outbox,
        _,
    ):
        await eventually(lambda: publisher.connected)
        await eventually(lambda: publisher.hub_online is True)  # read the hub's status

        await outbox.append(
            [Observation("radar-101", time.time(), "event", "fall", True)], historical=False
        )
        publisher.notify()
        (alert,) = await alerts_for(hub, "SR-E-101")
        assert (alert["rule"], alert["resident_name"]) == ("fall", "Mary Jones")
        assert alert["late_s"] is None
        assert await hub.ingest.records.gateway_status(SITE, "gw-east") is not None  # birth arrived


@pytest.mark.parametrize("acl_name", ACLS)
async def test_a_command_from_the_hubs_user_reaches_the_gateway(
    secure_broker: MosquittoBroker, pki: Pki, tmp_path: Path
) -> None:
    # No hub runs here: the command is sent with the hub's credentials, which (client ids
    # pinned to user names) a running hub would lose its session to.
    async with (
        client(secure_broker, pki, MONITOR, "observer") as observer,
        client(secure_broker, pki, HUB, "hub-commander") as commander,
        gateway(tmp_path, broker_settings(secure_broker, pki, EAST), "gw-east") as (
            publisher,
            _,
            _,
        ),
    ):
        await observer.subscribe(status_topic(SITE, "gw-east"), qos=1)
        await eventually(lambda: publisher.connected)
        # the gateway republishes its birth
        births = 0
        await commander.publish(command_topic(SITE, "gw-east"), encode_command("rebirth"), qos=1)
        async with asyncio.timeout(10):
            async for message in observer.messages:
                assert isinstance(message.payload, bytes)
                births += json.loads(message.payload)["state"] == "online"
                if births == 2:  # the retained one, then the rebirth
                    break


# --- what must not work -----------------------------------------------------------------------


@pytest.mark.parametrize("acl_name", ACLS)
async def test_a_gateway_cannot_publish_under_another_gateways_topic(
    secure_broker: MosquittoBroker, pki: Pki, hub: Hub
) -> None:
    west_fall = encode_batch("0123abcd", 1, 1, time.time(), [fall("radar-201")])
    async with client(secure_broker, pki, EAST, "east-forger") as east:
        # East's own credentials, West's topic and device: MQTT 3.1.1 cannot report the
        # denial, so the publish "succeeds" (PUBACK) and the broker drops the message.
        await east.publish(data_topic(SITE, "gw-west"), west_fall, qos=1)
        await east.publish(
            HUB_STATUS_TOPIC, b'{"state":"offline"}', qos=1, retain=True
        )  # nor may it pose as the hub (gateways would hold their data)
        # a legitimate batch after it, on the same connection, does arrive
        east_fall = encode_batch("4567cdef", 1, 1, time.time(), [fall("radar-101")])
        await east.publish(data_topic(SITE, "gw-east"), east_fall, qos=1)

    assert len(await alerts_for(hub, "SR-E-101")) == 1
    await asyncio.sleep(0.3)  # anything the broker had let through has arrived by now
    assert await alerts_for(hub, "SR-W-201", within=0) == []
    assert await hub.ingest.records.count_rows("events") == 1
    counters = hub.ingest.counters()
    assert counters["accepted"] == 1, counters
    assert not any(key.startswith("rejected") and n for key, n in counters.items()), counters
    denied = [  # the broker names the client by its user name: ids are pinned
        line
        for line in secure_broker.log().splitlines()
        if f"Denied PUBLISH from {EAST[0]}" in line
    ]
    assert any("'carewatch/v1/sunrise/gw-west/data'" in line for line in denied), denied
    assert any("'carewatch/v1/_hub/status'" in line for line in denied), denied

    async with client(secure_broker, pki, WEST, "west-reader") as west:
        await west.subscribe(HUB_STATUS_TOPIC, qos=1)
        async with asyncio.timeout(5):
            message = await anext(aiter(west.messages))
        assert isinstance(message.payload, bytes)
        assert json.loads(message.payload)["state"] == "online"  # still the hub's own status

        # control: the very same message with West's credentials is accepted and alerts
        await west.publish(data_topic(SITE, "gw-west"), west_fall, qos=1)
    (alert,) = await alerts_for(hub, "SR-W-201")
    assert alert["rule"] == "fall"


@pytest.mark.parametrize("acl_name", ACLS)
async def test_a_gateway_cannot_read_another_gateways_data(
    secure_broker: MosquittoBroker, pki: Pki
) -> None:
    received: list[str] = []
    async with (
        client(secure_broker, pki, EAST, "east-snooper") as east,
        client(secure_broker, pki, HUB, "hub-reader") as hub_reader,
        client(secure_broker, pki, WEST, "west") as west,
    ):
        await east.subscribe("carewatch/v1/#", qos=1)
        await east.subscribe(data_topic(SITE, "gw-west"), qos=1)
        await hub_reader.subscribe(data_topic(SITE, "gw-west"), qos=1)

        async def snoop() -> None:
            async for message in east.messages:
                received.append(message.topic.value)

        snooper = asyncio.create_task(snoop())
        await west.publish(data_topic(SITE, "gw-west"), b'{"secret":1}', qos=1)
        async with asyncio.timeout(5):
            message = await anext(aiter(hub_reader.messages))  # the hub does get it
        assert message.topic.value == data_topic(SITE, "gw-west")
        await asyncio.sleep(0.3)
        snooper.cancel()
    assert [t for t in received if t != HUB_STATUS_TOPIC] == []


async def _refused(
    caplog: pytest.LogCaptureFixture, tmp_path: Path, settings: BrokerConfig, reason: str
) -> None:
    """The publisher never connects, logs `reason` on every attempt, and keeps retrying."""
    caplog.set_level(logging.WARNING, logger="edge.publisher")
    async with gateway(tmp_path, settings, "gw-east") as (publisher, _, task):
        await eventually(
            lambda: sum(reason.lower() in r.getMessage().lower() for r in caplog.records) >= 3,
            within=15,
        )
        assert not publisher.connected
        assert not task.done()  # still retrying, not crashed
    warnings = [r for r in caplog.records if r.name == "edge.publisher"]
    assert all(r.levelno == logging.WARNING for r in warnings), [r.getMessage() for r in warnings]
    assert "unreachable" in warnings[0].getMessage()


async def test_a_wrong_password_is_refused_and_the_publisher_keeps_retrying(
    secure_broker: MosquittoBroker, pki: Pki, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(aiomqtt.MqttError, match=r"(?i)not authori[sz]ed"):
        async with client(secure_broker, pki, (EAST[0], "guessed"), "guesser"):
            pass
    with pytest.raises(aiomqtt.MqttError, match=r"(?i)not authori[sz]ed"):
        async with client(secure_broker, pki, ("nobody", EAST[1]), "nobody"):
            pass
    settings = broker_settings(secure_broker, pki, (EAST[0], "wrong-password"))
    await _refused(caplog, tmp_path, settings, "not authori")


async def test_plain_mqtt_is_refused(
    secure_broker: MosquittoBroker, pki: Pki, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(
            secure_broker.host, secure_broker.port, username=EAST[0], password=EAST[1], timeout=3
        ):
            pass
    settings = broker_settings(secure_broker, None, EAST, tls=False)
    await _refused(caplog, tmp_path, settings, "unreachable")
    assert "OpenSSL Error" in secure_broker.log() or "protocol error" in secure_broker.log()


async def test_a_client_without_the_carewatch_ca_refuses_the_broker(
    secure_broker: MosquittoBroker, pki: Pki, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(aiomqtt.MqttError, match="CERTIFICATE_VERIFY_FAILED"):
        async with aiomqtt.Client(
            secure_broker.host,
            secure_broker.port,
            username=EAST[0],
            password=EAST[1],
            tls_context=ssl.create_default_context(),  # the system's trust store only
            timeout=3,
        ):
            pass
    settings = broker_settings(secure_broker, None, EAST)  # tls on, no ca_file
    await _refused(caplog, tmp_path, settings, "CERTIFICATE_VERIFY_FAILED")


async def test_the_largest_carewatch_payload_passes_and_a_larger_packet_is_refused(
    secure_broker: MosquittoBroker, pki: Pki
) -> None:
    largest = b"x" * MAX_PAYLOAD_BYTES
    async with (
        client(secure_broker, pki, HUB, "hub-reader") as hub_reader,
        client(secure_broker, pki, EAST, "east") as east,
    ):
        await hub_reader.subscribe(data_topic(SITE, "gw-east"), qos=1)
        await east.publish(data_topic(SITE, "gw-east"), largest, qos=1)
        async with asyncio.timeout(5):
            message = await anext(aiter(hub_reader.messages))
        assert message.payload == largest

    limit = int(shipped_directives()["max_packet_size"][0])
    oversize = client(secure_broker, pki, EAST, "east-oversize")
    with contextlib.suppress(aiomqtt.MqttError):  # the broker hangs up mid-send
        async with oversize:
            await oversize.publish(data_topic(SITE, "gw-east"), b"x" * limit, qos=0, timeout=1)
    await eventually(
        lambda: f"{EAST[0]} disconnected due to oversize packet" in secure_broker.log()
    )
    # aiomqtt leaves the disconnection's exception unretrieved when the broker hangs up
    with contextlib.suppress(Exception):
        oversize._disconnected.exception()
