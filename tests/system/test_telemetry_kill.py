"""Kill -9 the hub while its upkeep prunes old readings, and while it moves the first layout's
readings: started again, it finishes the work, and nothing is lost or counted twice.

The hub runs as `carewatch hub --config` in its own process (tests/system/test_hub_kill.py), with
steps of 100 rows, so that the work takes hundreds of steps and the kill lands in the middle of
it; the test checks that it did.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from hub.core.store import Store, StoredItem
from hub.telemetry.records import TelemetryRecords
from hub.telemetry.settings import DAY_S
from tests.hub.telemetry.test_first_layout import COLUMNS, decoded, first_layout
from tests.support.mosquitto import MosquittoBroker, free_port
from tests.system.test_hub_kill import HubProcess, hub_yaml, until

# As many as keep the work going for hundreds of steps: PostgreSQL's steps are slower.
OLD_READINGS = {"sqlite": 40_000, "postgresql": 12_000}
NEW_READINGS = 1_000
OLD_EVENTS = 10
DEVICES = 20
SMALL_STEPS = {"rollup_every_s": 0.5, "every_s": 0.5, "step_rows": 100}


def configured(broker: MosquittoBroker, tmp_path: Path, database: Path | str) -> HubProcess:
    web_port = free_port()
    path = hub_yaml(broker, tmp_path, web_port)
    config = yaml.safe_load(path.read_text())
    config["database"] = str(database)
    config["retention"] = {"raw_days": 14, "minute_days": 30, **SMALL_STEPS}
    path.write_text(yaml.safe_dump(config))
    return HubProcess(path, web_port)


def query(database: Path | str, sql: str) -> list[tuple[Any, ...]]:
    """A reading of the database from outside the hub, as a person at a SQL prompt would."""
    if isinstance(database, Path):
        with sqlite3.connect(database, timeout=10) as connection:
            return connection.execute(sql).fetchall()
    with psycopg.connect(database) as connection:
        return [tuple(row) for row in connection.execute(sql).fetchall()]


def old_items(now: float, count: int) -> list[StoredItem]:
    """Heart rates received 20 days ago (whole numbers, so the sums are exact), and events."""
    received = now - 20 * DAY_S
    readings = [
        StoredItem(
            f"radar-{k % DEVICES}",
            "reading",
            "heart_rate",
            50 + k % 37,
            received - count + k,
            received,
            False,
        )
        for k in range(count)
    ]
    events = [
        StoredItem("radar-0", "event", "fall", True, received + k, received + k, False)
        for k in range(OLD_EVENTS)
    ]
    return readings + events


def new_items(now: float) -> list[StoredItem]:
    return [
        StoredItem(f"radar-{k % DEVICES}", "reading", "heart_rate", 70, now - k, now, False)
        for k in range(NEW_READINGS)
    ]


async def fill(database: Path | str, items: list[StoredItem]) -> None:
    store = await Store.open(database)
    try:
        telemetry = TelemetryRecords(store)
        await telemetry.create()
        for first in range(0, len(items), 5_000):
            await telemetry.save_batches(
                [("sunrise", "gw-east", "e", first, items[first:][:5_000])]
            )
    finally:
        await store.close()


def kill_when(hub: HubProcess, started: Callable[[], bool]) -> None:
    hub.start()
    until(started, 60)
    hub.kill()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_prune_killed_midway_is_finished_at_the_next_start(
    backend: str, broker: MosquittoBroker, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    database: Path | str = (
        tmp_path / "hub.db" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    )
    now = time.time()
    count = OLD_READINGS[backend]
    old = old_items(now, count)
    asyncio.run(fill(database, old + new_items(now)))
    cutoff = now - 14 * DAY_S
    count_old = f"SELECT count(*) FROM samples WHERE received_at < {cutoff}"
    hub = configured(broker, tmp_path, database)

    def pruning() -> bool:
        return 0 < int(query(database, count_old)[0][0]) < count

    try:
        kill_when(hub, pruning)
        left = query(database, count_old)[0][0]
        assert 0 < left < count, "the kill did not land in the middle of the prune"
        hub.start()
        until(lambda: query(database, count_old)[0][0] == 0, 120)
    finally:
        hub.kill()

    assert query(database, "SELECT count(*) FROM samples")[0][0] == NEW_READINGS
    values = [float(item.value) for item in old if item.kind == "reading"]  # type: ignore[arg-type]
    for resolution in (60, 3600):
        (counted,) = query(
            database,
            "SELECT sum(n), sum(total), min(low), max(high) FROM rollups "
            f"WHERE resolution = {resolution} AND bucket < {cutoff}",
        )
        exact = (len(values), sum(values), min(values), max(values))
        assert tuple(float(x) for x in counted) == exact, resolution
    assert query(database, "SELECT count(*) FROM events")[0][0] == OLD_EVENTS


@pytest.mark.sqlite_only  # the first layout is an earlier main's SQLite file
def test_a_move_of_the_first_layout_killed_midway_is_finished_at_the_next_start(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    database = tmp_path / "hub.db"
    before = first_layout(database, extra=40_000)
    hub = configured(broker, tmp_path, database)
    hub_config = yaml.safe_load(hub._config.read_text())
    hub_config["retention"] = {
        "raw_days": 3650,
        "minute_days": 3650,
        "hour_days": 3650,
        **SMALL_STEPS,
    }
    hub._config.write_text(yaml.safe_dump(hub_config))

    def moved() -> int:
        return int(query(database, "SELECT count(*) FROM samples")[0][0])

    try:
        kill_when(hub, lambda: 0 < moved() < len(before) - 1000)
        assert 0 < moved() < len(before), "the kill did not land in the middle of the move"
        assert query(database, "SELECT count(*) FROM readings_legacy")[0][0] > 0
        hub.start()
        until(
            lambda: (
                not query(database, "SELECT name FROM sqlite_master WHERE name = 'readings_legacy'")
            ),
            120,
        )
    finally:
        hub.kill()

    shown = query(database, f"SELECT {COLUMNS} FROM readings")
    assert sorted(decoded(tuple(row)) for row in shown) == before
