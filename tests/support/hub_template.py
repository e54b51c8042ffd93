"""A PostgreSQL database holding the hub's tables, made once a session and copied for each test.

Making the hub's schema in a fresh PostgreSQL database (`Store.open`: the audit log and every
migration; then each folder's tables as the hub makes them at start) takes about ten times as
long as on SQLite. The session makes it once, in a template database, and each test that opens
a hub's store gets a copy (`CREATE DATABASE ... TEMPLATE`):

    from tests.support.hub_template import make_hub_template

    name = make_hub_template(server)                   # once: "hub_template", connections refused
    url = server.create_database("t_1", template=name)  # per test: the tables, no rows

A copy is what a hub that has started once on an empty database leaves, less its rows and the
day partitions of the samples (those depend on the hub's clock): at the newest schema version,
so the migrations find nothing to do, and every table there, so each `CREATE ... IF NOT EXISTS`
does nothing. A table that a folder adds and `make_hub_tables` misses still comes: the hub makes it
as it starts (tests/support/test_hub_template.py checks that nothing is missed).

A test that builds an older shape of the hub's database first (an upgrade, a migration) needs an
empty database instead: the fixture `postgres_url` (tests/conftest.py).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Final

from hub.access import records as access_records
from hub.alerts.records import AlertRecords
from hub.commissioning.records import WalkTestRecords
from hub.core.clock import SystemClock
from hub.core.store import Store
from hub.core.timers import Timers
from hub.escalation.records import EscalationRecords
from hub.notify import records as notify_records
from hub.registry.records import RegistryRecords
from hub.telemetry.records import TelemetryRecords
from tests.support.postgres import PostgresServer

TEMPLATE: Final = "hub_template"


async def make_hub_tables(store: Store) -> None:
    """Every table, index and view the hub makes as it starts (hub/app.py `Hub.start`), in its
    order; none of the rows it writes, nor the samples' day partitions.

    The provisioning table is left out as the hub leaves it: made at the first provisioning."""
    await TelemetryRecords(store).create()
    await access_records.create(store)
    await RegistryRecords.open(store)
    await AlertRecords(store).create()
    await Timers(store, SystemClock()).load()
    await WalkTestRecords(store).create()
    await notify_records.create(store)
    await EscalationRecords(store).create()


async def make_hub_schema(url: str) -> None:
    """Open the hub's store on `url` (every migration runs) and make the hub's tables."""
    store = await Store.open(url)
    try:
        await make_hub_tables(store)
    finally:
        await store.close()


def make_hub_template(server: PostgresServer, name: str = TEMPLATE) -> str:
    """Make database `name` on `server` with the hub's schema, as a template nobody may connect
    to; its name, for `server.create_database(..., template=name)`."""
    url = server.create_database(name)
    # In a thread of its own: the caller may be inside a running event loop (an async fixture).
    with ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(asyncio.run, make_hub_schema(url)).result()
    server.make_template(name)
    return name
