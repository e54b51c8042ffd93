"""Shared fixtures: a real Mosquitto, a hub with a small registry, and a way to publish batches."""

from __future__ import annotations

import asyncio
import atexit
import itertools
import json
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Final

import aiomqtt
import pytest
from hypothesis import configuration

from contract.wire import data_topic
from hub.access.auth import hash_password
from hub.app import Hub
from hub.config import HubConfig
from hub.core.clock import Clock
from tests.support.hub_template import make_hub_template
from tests.support.mosquitto import MosquittoBroker, mosquitto
from tests.support.paths import REPO
from tests.support.postgres import PostgresServer, postgres

# Hypothesis keeps caches (Unicode tables, the constants of our sources) in .hypothesis of the
# working directory unless told otherwise; tests write only to temporary folders.
HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="carewatch-hypothesis-")
configuration.set_hypothesis_home_dir(HYPOTHESIS_HOME)
atexit.register(shutil.rmtree, HYPOTHESIS_HOME, ignore_errors=True)

NURSE = ("nurse", "night-shift-pw")
# More people of the small site, each with a role and scope (hub/access/permissions.py); tests log
# in as them.
ADMIN = ("admin", "admin-pw")
SUPERVISOR = ("supervisor", "supervisor-pw")
INSTALLER = ("installer", "installer-pw")
EAST_NURSE = ("east-nurse", "east-pw")  # staff of the east wing only
FAMILY = ("daughter", "family-pw")  # Mary Jones's (E-0001) daughter
PEOPLE: dict[str, dict[str, Any]] = {
    NURSE[0]: {"display_name": "Night Nurse", "role": "staff", "sites": ["*"]},
    ADMIN[0]: {"role": "admin"},
    SUPERVISOR[0]: {"role": "supervisor", "sites": ["sunrise"]},
    INSTALLER[0]: {"role": "installer", "sites": ["sunrise"]},
    EAST_NURSE[0]: {"role": "staff", "zones": ["sunrise/east"]},
    FAMILY[0]: {"display_name": "Anne Jones", "role": "family", "residents": ["E-0001"]},
}
PASSWORDS = dict((NURSE, ADMIN, SUPERVISOR, INSTALLER, EAST_NURSE, FAMILY))
_hashes: dict[str, str] = {}


def small_site_users() -> list[dict[str, Any]]:
    """The small site's people, with their password hashes (argon2 is slow: hashed once)."""
    for name, password in PASSWORDS.items():
        if name not in _hashes:
            _hashes[name] = hash_password(password)
    return [
        {"username": name, "password_hash": _hashes[name], **fields}
        for name, fields in PEOPLE.items()
    ]


SMALL_SITE: dict[str, Any] = {
    "id": "sunrise",
    "name": "Sunrise Care Home",
    "gateways": ["gw-east", "gw-west"],
    "zones": [
        {
            "id": "east",
            "name": "East wing",
            "rooms": [
                {
                    "id": "r101",
                    "name": "101",
                    "beds": [
                        {"code": "SR-E-101", "resident": {"code": "E-0001", "name": "Mary Jones"}}
                    ],
                },
                {
                    "id": "r102",
                    "name": "102",
                    "beds": [
                        {"code": "SR-E-102", "resident": {"code": "E-0002", "name": "Li Wei"}}
                    ],
                },
            ],
        },
        {
            "id": "west",
            "name": "West wing",
            "rooms": [{"id": "r201", "name": "201", "beds": [{"code": "SR-W-201"}]}],
        },
    ],
    "devices": [
        {"id": "radar-101", "gateway": "gw-east", "profile": "seeed-mr60fda1", "bed": "SR-E-101"},
        {"id": "radar-102", "gateway": "gw-east", "profile": "seeed-mr60fda1", "bed": "SR-E-102"},
        {
            "id": "button-101",
            "gateway": "gw-east",
            "profile": "shelly-blu-button1",
            "bed": "SR-E-101",
        },
        {"id": "smoke-101", "gateway": "gw-east", "profile": "bthome-smoke", "room": "r101"},
        {"id": "radar-201", "gateway": "gw-west", "profile": "seeed-mr60fda1", "bed": "SR-W-201"},
    ],
}


def hub_config(broker: MosquittoBroker, database: Path | str, /, **overrides: Any) -> HubConfig:
    raw: dict[str, Any] = {
        "broker": {"host": broker.host, "port": broker.port, "client_id": "carewatch-hub-test"},
        "database": str(database),
        "web": {"host": "127.0.0.1", "port": 0, "secret_key": "test-secret-" + "k" * 32},
        "users": small_site_users(),
        "sites": [SMALL_SITE],
    }
    raw.update(overrides)
    return HubConfig.model_validate(raw)


@pytest.fixture
def broker() -> Iterator[MosquittoBroker]:
    with mosquitto() as running:
        yield running


@pytest.fixture
def mosquitto_broker(broker: MosquittoBroker) -> MosquittoBroker:
    return broker


@pytest.fixture(name="mosquitto")
def mosquitto_fixture(broker: MosquittoBroker) -> MosquittoBroker:
    return broker


HubFactory = Callable[..., Awaitable[Hub]]


# The suites that prove the hub alike on both databases: every test in them that uses
# `hub_database` (as `hub_factory` does) runs on SQLite and on PostgreSQL.
BOTH_DATABASES: Final = (
    "tests/hub/core/",
    "tests/hub/ingest/",
    "tests/hub/watch/",
    "tests/hub/alerts/",
    "tests/hub/escalation/",
    "tests/hub/notify/test_push.py",
    "tests/hub/registry/",
    "tests/hub/telemetry/",
    "tests/system/test_end_to_end.py",
)


# The tests whose hub, on PostgreSQL, needs an EMPTY database (`postgres_url`) rather than a copy
# of the session's hub template (`hub_postgres_url`): the database layer and the migrations,
# which start from nothing or build an earlier shape of the hub's database first. Elsewhere, the
# marker `empty_database` does the same for one test.
EMPTY_DATABASES: Final = (
    "tests/hub/core/",
    "tests/hub/telemetry/test_first_layout.py",
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "empty_database: on PostgreSQL, the test's `hub_database` is an empty database, not a "
        "copy holding the hub's tables (a test that builds an earlier shape of it first)",
    )


def _relative_path(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "hub_database" not in metafunc.fixturenames:
        return
    if os.environ.get("CAREWATCH_TEST_DATABASE") == "postgresql":
        # Every hub of the suite on PostgreSQL (a check by hand; CI runs BOTH_DATABASES).
        metafunc.parametrize("hub_database", ["postgresql"], indirect=True)
        return
    path = _relative_path(metafunc.definition.path)
    if path.startswith(BOTH_DATABASES) and not metafunc.definition.get_closest_marker(
        "sqlite_only"
    ):
        metafunc.parametrize("hub_database", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def hub_database(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """The hub's database for this test: a SQLite file, or (in BOTH_DATABASES' second run) a
    database of its own on the session's PostgreSQL: a copy already holding the hub's tables
    (`hub_postgres_url`), or an empty one (`postgres_url`) for EMPTY_DATABASES and tests marked
    `empty_database`."""
    if getattr(request, "param", "sqlite") != "postgresql":
        return tmp_path / "hub.db"
    wants_empty = request.node.get_closest_marker("empty_database") is not None or (
        _relative_path(request.node.path).startswith(EMPTY_DATABASES)
    )
    return str(request.getfixturevalue("postgres_url" if wants_empty else "hub_postgres_url"))


@pytest.fixture
async def hub_factory(
    broker: MosquittoBroker, hub_database: Path | str
) -> AsyncIterator[HubFactory]:
    started: list[Hub] = []

    async def start(clock: Clock | None = None, **overrides: Any) -> Hub:
        config = hub_config(broker, hub_database, **overrides)
        hub = await Hub.start(config, clock)
        started.append(hub)
        await _wait(hub.mqtt.connected.wait(), "the hub did not connect to Mosquitto")
        return hub

    yield start
    for hub in started:
        await hub.stop()


PublishBatch = Callable[..., Awaitable[None]]


@pytest.fixture
def publish_batch(broker: MosquittoBroker) -> PublishBatch:
    async def publish(
        site: str,
        gateway: str,
        items: list[dict[str, Any]],
        seq: int,
        epoch: str = "0123abcd",
        bdseq: int = 1,
    ) -> None:
        body = {"epoch": epoch, "seq": seq, "bdseq": bdseq, "sent": time.time(), "items": items}
        async with aiomqtt.Client(broker.host, broker.port) as client:
            await client.publish(data_topic(site, gateway), json.dumps(body), qos=1)

    return publish


async def _wait(awaitable: Awaitable[Any], message: str, timeout: float = 10.0) -> Any:

    try:
        return await asyncio.wait_for(awaitable, timeout)
    except TimeoutError as exc:
        raise AssertionError(message) from exc


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL for the session (tests/support/postgres.py), as `nobody` under root."""
    with postgres() as server:
        yield server


_database_numbers = itertools.count(1)


def _database_name() -> str:
    return f"t_{next(_database_numbers)}_{os.getpid()}"


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the session's server, for this test alone; its URL."""
    return postgres_server.create_database(_database_name())


@pytest.fixture(scope="session")
def hub_postgres_template(postgres_server: PostgresServer) -> str:
    """The name of a database on the session's server holding the hub's tables at the newest
    schema version, and no rows (tests/support/hub_template.py): made once, copied per test."""
    return make_hub_template(postgres_server)


@pytest.fixture
def hub_postgres_url(postgres_server: PostgresServer, hub_postgres_template: str) -> str:
    """A database for this test alone, a copy of the hub template: a hub's store opens on it
    with no migration to run and every table there; its URL."""
    return postgres_server.create_database(_database_name(), template=hub_postgres_template)
