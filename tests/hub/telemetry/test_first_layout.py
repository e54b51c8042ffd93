"""Readings stored by an earlier main (the first layout: device, name and JSON value per row) move
into the compact layout in the background, every row kept, and are rolled up."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from hub.core.store import Store
from hub.telemetry.maintenance import Maintenance
from hub.telemetry.records import TelemetryRecords
from hub.telemetry.settings import RetentionSettings
from tests.support.clock import FakeClock
from tests.support.paths import DATA

BEFORE_FOLDERS = DATA / "hub-929223a.sql"
DUMPED_AT = 1796417222.0
COLUMNS = "id, device, name, value, sensed_at, received_at, historical"


def first_layout(path: Path, extra: int) -> list[tuple[object, ...]]:
    """An earlier main's database with `extra` more readings; every reading, values decoded."""
    with sqlite3.connect(path) as db:
        db.executescript(BEFORE_FOLDERS.read_text())
        top = db.execute("SELECT max(id) FROM readings").fetchone()[0]
        db.executemany(
            f"INSERT INTO readings ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (top + k, f"radar-{k % 3}", "heart_rate", str(50 + k % 30), t, t, 1)
                for k in range(1, extra + 1)
                for t in [DUMPED_AT - 3 * 86400 + k * 7]
            ],
        )
        rows = db.execute(f"SELECT {COLUMNS} FROM readings").fetchall()
    return sorted(decoded(row) for row in rows)


def decoded(row: tuple[object, ...]) -> tuple[object, ...]:
    return (*row[:3], json.loads(str(row[3])), *row[4:])


@pytest.mark.sqlite_only  # the database of an earlier main is a SQLite file
async def test_the_first_layouts_readings_move_over_every_one_kept(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    before = first_layout(path, extra=12_000)
    store = await Store.open(path)
    try:
        await TelemetryRecords(store).create()
        shown = await store.db.execute_fetchall(f"SELECT {COLUMNS} FROM readings")
        assert sorted(decoded(tuple(row)) for row in shown) == before  # shown while waiting
        settings = RetentionSettings(raw_days=3650, minute_days=3650, hour_days=3650)
        done = await Maintenance(
            store, settings.model_copy(update={"step_rows": 1000}), FakeClock(DUMPED_AT)
        ).run_once()
        assert done.moved == len(before) - 1  # the newest moved first, as the hub started
        assert not await store.db.has_table("readings_legacy")
        moved = await store.db.execute_fetchall(f"SELECT {COLUMNS} FROM readings")
        assert sorted(decoded(tuple(row)) for row in moved) == before
        counted = await store.db.execute_fetchall(
            "SELECT sum(n) FROM rollups WHERE resolution = 3600"
        )
        numbers = [row for row in before if isinstance(row[3], int | float)]
        assert counted[0][0] == len(numbers)
        # New readings are numbered after every moved one.
        highest = max(int(str(row[0])) for row in before)
        samples = await store.db.execute_fetchall("SELECT max(id) FROM samples")
        assert samples[0][0] == highest
    finally:
        await store.close()
