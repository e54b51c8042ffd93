"""Retention with an injected clock: 60 days of a few beds' readings, the upkeep running as the
days pass. Raw samples older than the setting are gone, the rollups remain and say exactly what
the raw samples said, and events and the audit log are untouched (on SQLite and PostgreSQL)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.core.audit import AuditEntry
from hub.core.store import Store, StoredItem
from hub.telemetry import records
from hub.telemetry.maintenance import Maintenance
from hub.telemetry.records import TelemetryRecords
from hub.telemetry.settings import DAY_S, RetentionSettings
from tests.support.clock import FakeClock

START = 1_790_000_000.0 // DAY_S * DAY_S  # a UTC midnight
DAYS = 60
DEVICES = ("radar-101", "radar-102", "radar-201")
SETTINGS = RetentionSettings(raw_days=14, minute_days=20, hour_days=45)
Key = tuple[str, str, int]  # device, name, bucket


def a_day(day: int) -> list[StoredItem]:
    """Every hour a heart rate (whole numbers, so sums are exact); every two hours the bed's
    occupancy, in and out by turns."""
    items = []
    for device_no, device in enumerate(DEVICES):
        for slot in range(24):
            at = START + day * DAY_S + slot * 3600 + device_no
            rate = 50 + (slot * 7 + day * 3 + device_no) % 40
            items.append(StoredItem(device, "reading", "heart_rate", rate, at, at, False))
            if slot % 2 == 0:
                in_bed = (slot // 2) % 2 == 0
                items.append(StoredItem(device, "reading", "occupancy", in_bed, at, at, False))
    return items


@pytest.fixture
async def store(hub_database: Path | str) -> AsyncIterator[Store]:
    opened = await Store.open(hub_database)
    await TelemetryRecords(opened).create()
    yield opened
    await opened.close()


async def test_sixty_days_keep_raw_readings_for_the_setting_and_exact_rollups(
    store: Store,
) -> None:
    clock = FakeClock(START)
    telemetry = TelemetryRecords(store)
    upkeep = Maintenance(store, SETTINGS, clock)
    fall = StoredItem("radar-101", "event", "fall", True, START + 100, START + 100, False)
    async with store.transaction():
        await store.audit.record([AuditEntry(START, "nurse", "acknowledged", "console", {})], 7)
    written: list[StoredItem] = []
    for day in range(DAYS):
        clock.advance(START + day * DAY_S - clock.now())
        await upkeep.run_once()
        items = a_day(day) + ([fall] if day == 0 else [])
        await telemetry.save_batches([("sunrise", "gw-east", "e", day, items)])
        written += [item for item in items if item.kind == "reading"]
    clock.advance(START + DAYS * DAY_S - clock.now())
    last = await upkeep.run_once()
    now = clock.now()

    raw = await store.db.execute_fetchall("SELECT received_at FROM samples")
    kept = [i for i in written if i.received_at >= now - SETTINGS.raw_days * DAY_S]
    assert len(raw) == len(kept) and min(r[0] for r in raw) >= now - SETTINGS.raw_days * DAY_S
    minutes_since = now - SETTINGS.minute_days * DAY_S
    hours_since = now - SETTINGS.hour_days * DAY_S
    assert await rollups_of(store, 60) == expected(written, 60, minutes_since)
    assert await rollups_of(store, 3600) == expected(written, 3600, hours_since)
    # The events and the audit log are records: the time series' retention never touches them.
    assert await telemetry.count_rows("events") == 1
    assert len(await store.audit.for_alert(7)) == 1
    assert last.rollups_pruned
    if store.db.dialect == "postgresql":
        days = await store.run(records.day_partitions)
        assert days and min(days) >= now - (SETTINGS.raw_days + 1) * DAY_S, sorted(days)
        assert last.partitions_dropped >= 1 or len(days) <= SETTINGS.raw_days + 4
        default = await store.db.execute_fetchall("SELECT count(*) FROM samples_default")
        assert default[0][0] == 0  # every day had its partition before its readings came


async def test_an_hour_in_and_out_of_bed_by_halves_is_half_an_hour_in_bed(store: Store) -> None:
    clock = FakeClock(START + 2 * DAY_S)
    telemetry = TelemetryRecords(store)
    # As the edge sends it: the value when it changes, and again every minute (edge/repeats.py).
    items = [
        StoredItem("radar-101", "reading", "occupancy", (m // 30) % 2 == 0, at, at, False)
        for m in range(2 * 24 * 60)
        for at in [START + m * 60 + 7]
    ]
    await telemetry.save_batches([("sunrise", "gw-east", "e", 1, items)])
    await Maintenance(store, SETTINGS, clock).run_once()
    rows = await store.db.execute_fetchall(
        "SELECT bucket, true_s, known_s FROM rollups JOIN series ON series.id = rollups.series "
        "WHERE resolution = 3600 AND device = 'radar-101' AND name = 'occupancy' ORDER BY bucket"
    )
    # In at :00 for 30 minutes, out for 30, in again: every hour is half in bed, and known all
    # through but for the first 7 s (the first reading, at 00:00:07).
    hours = {int(row[0]): (row[1], row[2]) for row in rows}
    assert hours == {
        int(START) + h * 3600: (1800.0, 3593.0 if h == 0 else 3600.0) for h in range(48)
    }


async def test_a_late_reading_is_counted_in_its_bucket_when_it_arrives(store: Store) -> None:
    clock = FakeClock(START + DAY_S)
    telemetry = TelemetryRecords(store)
    upkeep = Maintenance(store, SETTINGS, clock)
    await telemetry.save_batches([("sunrise", "gw-east", "e", 1, a_day(0))])
    await upkeep.roll_up()
    late = StoredItem("radar-101", "reading", "heart_rate", 200, START + 5, clock.now(), True)
    await telemetry.save_batches([("sunrise", "gw-east", "e", 2, [late])])
    await upkeep.roll_up()
    assert (await rollups_of(store, 60))[("radar-101", "heart_rate", int(START))][0] == 1
    clock.advance(60)  # a sample is rolled up once the minute it was received in is over
    await upkeep.roll_up()
    assert (await rollups_of(store, 60))[("radar-101", "heart_rate", int(START))] == (
        2,
        50.0 + 200.0,
        50.0,
        200.0,
    )


async def rollups_of(store: Store, resolution: int) -> dict[Key, tuple[int, float, float, float]]:
    rows = await store.db.execute_fetchall(
        "SELECT device, name, bucket, n, total, low, high FROM rollups "
        "JOIN series ON series.id = rollups.series WHERE resolution = ? AND n > 0",
        (resolution,),
    )
    return {
        (str(r[0]), str(r[1]), int(r[2])): (int(r[3]), float(r[4]), float(r[5]), float(r[6]))
        for r in rows
    }


def expected(
    items: list[StoredItem], size: int, since: float
) -> dict[Key, tuple[int, float, float, float]]:
    """The rollups worked out here from what was written: count, sum, lowest, highest."""
    values: defaultdict[Key, list[float]] = defaultdict(list)
    for item in items:
        bucket = int(item.sensed_at // size * size)
        if bucket >= since:
            assert isinstance(item.value, int)  # a bool is an int: True counts 1
            values[(item.device, item.name, bucket)].append(float(item.value))
    return {key: (len(v), sum(v), min(v), max(v)) for key, v in values.items()}
