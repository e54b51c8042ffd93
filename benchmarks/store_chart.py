"""The resident page's 24-hour and 7-day charts, from a store holding 30 days of 1,000 beds.

Times `hub.console.resident_history.chart(store, registry, code, (start, end), bucket_s)`, what
GET /api/residents/{code}/chart answers, for residents picked at random: the last 24 hours in
5-minute buckets (1-minute rollups) and the last 7 days in 60-minute buckets (1-hour rollups),
with the spans the route works out; `--charts` of each after a few not counted, p50/p99.

The store is what a hub at default retention holds after `--days` days of `--beds` beds (bed
BG-00000 with resident R-00000 and bed radar bg-radar-0, ..., as benchmarks/watch_common.py
names them): raw samples of the last `--raw-days`, 1-minute rollups of the last
`--minute-days`, 1-hour rollups of every day; the rollups counting every sample up to the last
`--tail-s` seconds, which a chart reads raw (as a hub's rollups run every 5 s).

The rate is not the fleet's (a heart and a breathing rate every 15 s, occupancy every 30 s:
300 million samples for 1,000 beds and 14 days, far too many to write): one heart_rate, one
respiration_rate and one occupancy per bed every `--every` seconds (default 300: 12 million
samples in 14 days). The rollups have as many rows as at the fleet's rate (a yes/no series has
a row every minute its state is known), so the charts read as many rows.

How it is built, for speed: the samples and the rollups of all but the last `--rolled-hours`
hours are written in bulk (SQLite: executemany on a connection of its own; PostgreSQL: COPY),
the rollups worked out with the hub's own functions (hub/telemetry/rollups.py: minute buckets
of each series; hours summed from their minutes as the hub's SQL does) from the same readings;
then the hub's upkeep
(`Maintenance.run_once()`) rolls up the last hours from the samples, and the last `--tail-s`
seconds are written through ingest's own write (`TelemetryRecords.save_batches`), not rolled
up. The hub never runs ANALYZE on SQLite, so neither does this; on PostgreSQL autovacuum would
have analysed the tables, so VACUUM ANALYZE runs once after the build.

`--keep PATH` keeps the SQLite store (and PATH.json, what it was built with) for the next run,
which skips the build when the parameters match; a PostgreSQL store is built every run (the
server this script starts is temporary).

    python benchmarks/store_chart.py --keep /var/tmp/chart-1000.db     # SQLite, 1,000 beds
    python benchmarks/store_chart.py --keep /var/tmp/chart-1000.db --database both
    python benchmarks/store_chart.py --beds 20 --days 3 --raw-days 2 --minute-days 2 --charts 20

Prints figures; asserts nothing (docs/architecture.md, Targets: 24-hour and 7-day vital-sign
chart for one bed ≤ 50 ms from a store holding 30 days of 1,000 beds).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Final, Protocol

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.store_disk import (
    HONEST_POSTGRES,
    SimClock,
    mb,
    postgres_table_bytes,
    sqlite_table_bytes,
)
from benchmarks.watch_common import BEDS_PER_GATEWAY, SITE, percentile, site_spec, store_size
from hub.console.resident_history import chart
from hub.core.store import Store, StoredItem
from hub.registry.index import Registry, SiteSpec
from hub.telemetry import records, rollups
from hub.telemetry.maintenance import Maintenance
from hub.telemetry.records import BOOLEAN, ROLLED_UP, WHOLE, BatchToSave, TelemetryRecords
from hub.telemetry.rollups import HOUR, LOOKBACK_S, MINUTE
from hub.telemetry.settings import DAY_S, RetentionSettings
from tests.support.postgres import postgres

NOW: Final = datetime(2026, 3, 2, 14, 7, 30, tzinfo=UTC).timestamp()  # the charts' "now"
NAMES: Final = ("heart_rate", "respiration_rate", "occupancy")
RECEIVED_AFTER_S: Final = 1.0
BUILD_VERSION: Final = 1  # of the cached store's layout, in PATH.json
CHARTS: Final = (("24 hours, 5-minute buckets", 24, 5), ("7 days, 60-minute buckets", 168, 60))
SAMPLE_COLUMNS: Final = "id, series, sensed_at, received_at, value, other, flags"
ROLLUP_COLUMNS: Final = "resolution, series, bucket, n, total, low, high, true_s, known_s"

Sample = tuple[int, int, float, float, float, None, int]
RollupRow = tuple[int, int, int, int, float, float | None, float | None, float | None, float | None]


@dataclass(frozen=True, slots=True)
class Plan:
    """What the store holds; kept beside a cached store to tell whether it can be reused."""

    beds: int
    days: int
    every: int
    raw_days: float
    minute_days: float
    rolled_hours: int
    tail_s: float
    now: float = NOW
    version: int = BUILD_VERSION

    @property
    def first_hour(self) -> int:
        return rollups.start_of(self.now - self.days * DAY_S, HOUR)

    @property
    def raw_since(self) -> float:
        """Samples received from then on are still kept raw."""
        return self.now - self.raw_days * DAY_S

    @property
    def minute_since(self) -> float:
        return self.now - self.minute_days * DAY_S

    @property
    def rolled_until(self) -> int:
        """Rollups are written in bulk before this hour; the upkeep does the rest."""
        return rollups.start_of(self.now - self.rolled_hours * HOUR, HOUR)

    @property
    def tail_since(self) -> float:
        return self.now - self.tail_s


def series_number(bed: int, name: int) -> int:
    return 3 * bed + name + 1


def device(bed: int) -> str:
    return f"bg-radar-{bed}"


def readings(
    plan: Plan, bed: int, name: int, since: float, until: float
) -> list[tuple[float, int]]:
    """The bed's readings `NAMES[name]` sensed in [since, until): (sensed_at, value)."""
    base = (bed * 37) % plan.every + name * plan.every / 3 + 0.25
    first = math.ceil((since - base) / plan.every)
    found = []
    for j in range(first, first + int((until - since) // plan.every) + 2):
        at = base + j * plan.every
        if at >= until:
            break
        if at >= since:
            found.append((at, value(bed, name, at, j)))
    return found


def value(bed: int, name: int, at: float, j: int) -> int:
    if name == 0:
        return 58 + (bed * 13 + j) % 25
    if name == 1:
        return 12 + (bed * 7 + j) % 8
    return int((int(at) // 1800 + bed) % 16 != 0)  # out of bed half an hour in eight


@dataclass(slots=True)
class Chunk:
    """One hour of the build: its samples (numbered) and the rollup rows it completes."""

    hour: int
    samples: list[Sample]
    rollup_rows: list[RollupRow]


def generate(plan: Plan) -> Iterator[Chunk]:
    """Hour by hour, oldest first, up to the tail: the samples still kept raw, and the rollups
    of the hours before `rolled_until` (minutes only where still kept)."""
    number = 0
    hour = plan.first_hour
    while hour < plan.tail_since:
        raw: list[tuple[float, int, int, int]] = []
        rows: list[RollupRow] = []
        for bed in range(plan.beds):
            for name in range(len(NAMES)):
                series = series_number(bed, name)
                points = readings(plan, bed, name, hour - LOOKBACK_S, hour + HOUR)
                for at, reading in points:
                    if hour <= at < plan.tail_since and at + RECEIVED_AFTER_S >= plan.raw_since:
                        raw.append((at, series, reading, BOOLEAN if name == 2 else WHOLE))
                if hour < plan.rolled_until:
                    rows += rollup_rows(plan, series, name, hour, points)
        raw.sort()
        samples = []
        for at, series, reading, flags in raw:
            number += 1
            samples.append((number, series, at, at + RECEIVED_AFTER_S, float(reading), None, flags))
        yield Chunk(hour, samples, rows)
        hour += HOUR


def rollup_rows(
    plan: Plan, series: int, name: int, hour: int, points: list[tuple[float, int]]
) -> list[RollupRow]:
    """The hour's minute rows (where still kept) and its hour row, as the hub works them out."""
    boolean = name == 2
    if boolean:
        minutes = list(range(hour, hour + HOUR, MINUTE))
    else:
        minutes = sorted({rollups.start_of(at, MINUTE) for at, _ in points if at >= hour})
    buckets = rollups.minute_buckets(
        [(at, float(v)) for at, v in points],
        minutes,
        boolean=boolean,
        name=NAMES[name],
        now=plan.now,
    )
    rows: list[RollupRow] = [
        (MINUTE, series, minute, *bucket.row())
        for minute, bucket in buckets.items()
        if not bucket.empty and minute >= plan.minute_since
    ]
    total = hour_of([bucket for bucket in buckets.values() if not bucket.empty])
    if not total.empty:
        rows.append((HOUR, series, hour, *total.row()))
    return rows


# --- writing the bulk ------------------------------------------------------------------------


class Sink(Protocol):
    def write(self, chunk: Chunk) -> None: ...

    def commit(self) -> None: ...

    def close(self) -> None: ...


class SqliteSink:
    def __init__(self, path: Path) -> None:
        self._connection = sqlite3.connect(path)
        self._connection.execute("PRAGMA synchronous=OFF")
        self._connection.execute("PRAGMA cache_size=-1000000")

    def write(self, chunk: Chunk) -> None:
        self._connection.executemany(
            f"INSERT INTO samples ({SAMPLE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", chunk.samples
        )
        self._connection.executemany(
            f"INSERT INTO rollups ({ROLLUP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            chunk.rollup_rows,
        )

    def commit(self) -> None:
        self._connection.commit()

    def close(self) -> None:
        self._connection.commit()
        self._connection.close()


class PostgresSink:
    def __init__(self, url: str) -> None:
        self._connection = psycopg.connect(url)

    def write(self, chunk: Chunk) -> None:
        with self._connection.cursor() as cursor:
            with cursor.copy(f"COPY samples ({SAMPLE_COLUMNS}) FROM STDIN") as copy:
                for sample in chunk.samples:
                    copy.write_row(sample)
            with cursor.copy(f"COPY rollups ({ROLLUP_COLUMNS}) FROM STDIN") as copy:
                for row in chunk.rollup_rows:
                    copy.write_row(row)

    def commit(self) -> None:
        self._connection.commit()

    def close(self) -> None:
        self._connection.commit()
        self._connection.close()


# --- building --------------------------------------------------------------------------------


def hour_of(minutes: list[rollups.Bucket]) -> rollups.Bucket:
    """An hour summed from its stored minutes, as the hub's SQL sums it (hub/telemetry/records.py,
    _roll_up_hour): counts and totals added, extremes of extremes, time in state added where
    known."""
    known = [minute for minute in minutes if minute.known_s is not None]
    return rollups.Bucket(
        n=sum(minute.n for minute in minutes),
        total=sum(minute.total for minute in minutes),
        low=min((m.low for m in minutes if m.low is not None), default=None),
        high=max((m.high for m in minutes if m.high is not None), default=None),
        true_s=sum(m.true_s or 0.0 for m in known) if known else None,
        known_s=sum(m.known_s or 0.0 for m in known) if known else None,
    )


async def prepare(target: Path | str, plan: Plan) -> None:
    """The hub's tables, the series, and on PostgreSQL a partition for every day of samples."""
    store = await Store.open(target)
    try:
        await TelemetryRecords(store).create()
        keys = [
            (series_number(bed, name), device(bed), NAMES[name])
            for bed in range(plan.beds)
            for name in range(len(NAMES))
        ]
        async with store.transaction() as db:
            await db.executemany("INSERT INTO series (id, device, name) VALUES (?, ?, ?)", keys)
        if store.db.dialect == "postgresql":
            day = rollups.start_of(plan.raw_since, int(DAY_S))
            while day < plan.now:
                await store.run(partial(records.make_day_partition, day=day))
                day += int(DAY_S)
    finally:
        await store.close()


async def finish(target: Path | str, plan: Plan, mark: int) -> None:
    """The roll-up mark after the bulk; the upkeep's pass; the tail through ingest's write."""
    store = await Store.open(target)
    try:
        if store.db.dialect == "postgresql":
            for table in ("samples", "series"):
                await store.db.execute_fetchall(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
        await store.run(partial(records.set_mark, name=ROLLED_UP, value=float(mark)))
        clock = SimClock(plan.tail_since)
        retention = RetentionSettings(raw_days=plan.raw_days, minute_days=plan.minute_days)
        done = await Maintenance(store, retention, clock).run_once()
        print(f"    the upkeep rolled up the last {done.rolled_up:,} samples", flush=True)
        await write_tail(TelemetryRecords(store), plan)
    finally:
        await store.close()


async def write_tail(telemetry: TelemetryRecords, plan: Plan) -> None:
    """The last seconds' readings through ingest's own write, one batch a gateway."""
    batches: list[BatchToSave] = []
    for first in range(0, plan.beds, BEDS_PER_GATEWAY):
        items = [
            StoredItem(
                device(bed),
                "reading",
                NAMES[name],
                bool(reading) if name == 2 else reading,
                at,
                at + RECEIVED_AFTER_S,
                False,
            )
            for bed in range(first, min(plan.beds, first + BEDS_PER_GATEWAY))
            for name in range(len(NAMES))
            for at, reading in readings(plan, bed, name, plan.tail_since, plan.now)
        ]
        gateway = f"bg-{first // BEDS_PER_GATEWAY:04d}"
        batches.append((SITE, gateway, "chart-epoch", len(items), items))
    await telemetry.save_batches(batches)


async def build(targets: list[Path | str], plan: Plan) -> None:
    began = time.perf_counter()
    print(f"  building the store{'s' if len(targets) > 1 else ''}: {plan}", flush=True)
    for target in targets:
        await prepare(target, plan)
    mark = await asyncio.to_thread(load_bulk, targets, plan)
    for target in targets:
        await finish(target, plan, mark)
        if isinstance(target, str):
            with psycopg.connect(target, autocommit=True) as connection:
                connection.execute("VACUUM ANALYZE")
    print(f"  built in {time.perf_counter() - began:,.0f} s", flush=True)


def load_bulk(targets: list[Path | str], plan: Plan) -> int:
    """Write the generated hours into every target; the last sample the bulk rollups count."""
    sinks: list[Sink] = [
        SqliteSink(target) if isinstance(target, Path) else PostgresSink(target)
        for target in targets
    ]
    mark = samples = rows = 0
    began = time.perf_counter()
    try:
        for chunk in generate(plan):
            for sink in sinks:
                sink.write(chunk)
            samples += len(chunk.samples)
            rows += len(chunk.rollup_rows)
            if chunk.hour < plan.rolled_until and chunk.samples:
                mark = chunk.samples[-1][0]
            if (chunk.hour + HOUR) % DAY_S == 0:
                for sink in sinks:
                    sink.commit()
                print(
                    f"    {samples:>12,} samples, {rows:>12,} rollup rows "
                    f"[{time.perf_counter() - began:,.0f} s]",
                    flush=True,
                )
    finally:
        for sink in sinks:
            sink.close()
    return mark


# --- timing ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timed:
    label: str
    milliseconds: list[float]
    points: int
    with_heart_rate: int


def span(hours: int, bucket_min: int) -> tuple[tuple[float, float], float]:
    """The route's span (hub/console/routes.py, get_chart): whole buckets up to now."""
    bucket_s = bucket_min * 60.0
    start = math.floor((NOW - hours * 3600) / bucket_s) * bucket_s
    end = math.floor(NOW / bucket_s) * bucket_s + bucket_s
    return (start, end), bucket_s


async def time_charts(target: Path | str, plan: Plan, args: argparse.Namespace) -> list[Timed]:
    registry = Registry.from_specs([SiteSpec.model_validate(site_spec(plan.beds))])
    rng = random.Random(args.seed)
    store = await Store.open(target)
    found = []
    try:
        for label, hours, bucket_min in CHARTS:
            window, bucket_s = span(hours, bucket_min)
            taken: list[float] = []
            last: dict[str, Any] = {}
            for i in range(args.warmup + args.charts):
                code = f"R-{rng.randrange(plan.beds):05d}"
                began = time.perf_counter()
                last = await chart(store, registry, code, window, bucket_s)
                if i >= args.warmup:
                    taken.append((time.perf_counter() - began) * 1000)
            points = last.get("points", [])
            heart = sum(1 for p in points if p["heart_rate"] is not None)
            found.append(Timed(label, taken, len(points), heart))
    finally:
        await store.close()
    return found


def report(backend: str, target: Path | str, plan: Plan, timed: list[Timed]) -> None:
    if isinstance(target, Path):
        tables = sqlite_table_bytes(target)
        size = f"{mb(store_size(target))} (file and WAL)"
    else:
        tables = postgres_table_bytes(target)
        size = f"{mb(tables['(database)'])} (pg_database_size)"
    print(
        f"\n  {backend}: store {size}; samples {mb(tables.get('samples', 0))}, "
        f"rollups {mb(tables.get('rollups', 0))}"
    )
    for t in timed:
        ordered = sorted(t.milliseconds)
        print(
            f"    {t.label:28} p50 {percentile(ordered, 50):6.1f} ms   "
            f"p99 {percentile(ordered, 99):6.1f} ms   max {ordered[-1]:6.1f} ms   "
            f"mean {statistics.fmean(ordered):6.1f} ms   ({len(ordered)} charts; the last: "
            f"{t.with_heart_rate}/{t.points} buckets with a heart rate)"
        )


# --- the run ---------------------------------------------------------------------------------


def cached(path: Path, plan: Plan) -> bool:
    meta = path.with_name(path.name + ".json")
    if not (path.exists() and meta.exists()):
        return False
    with contextlib.suppress(ValueError):
        return bool(json.loads(meta.read_text()) == asdict(plan))
    return False


def forget(path: Path) -> None:
    for stale in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", ".json"))):
        stale.unlink(missing_ok=True)


async def run(args: argparse.Namespace) -> None:
    plan = Plan(
        args.beds,
        args.days,
        args.every,
        args.raw_days,
        args.minute_days,
        args.rolled_hours,
        args.tail_s,
    )
    backends = ("sqlite", "postgresql") if args.database == "both" else (args.database,)
    workdir = Path(tempfile.mkdtemp(prefix="carewatch-store-chart-"))
    sqlite_path: Path = args.keep or workdir / "chart.db"
    print(
        f"store chart: {plan.beds:,} beds, {plan.days} days (raw {plan.raw_days:g}, minute "
        f"rollups {plan.minute_days:g}), {len(NAMES)} readings a bed every {plan.every} s; "
        f"{args.charts} charts of each kind after {args.warmup}"
    )
    try:
        with contextlib.ExitStack() as stack:
            targets: dict[str, Path | str] = {}
            to_build: list[Path | str] = []
            if "sqlite" in backends:
                targets["sqlite"] = sqlite_path
                if cached(sqlite_path, plan):
                    print(f"  SQLite store kept from an earlier run: {sqlite_path}")
                else:
                    forget(sqlite_path)
                    to_build.append(sqlite_path)
            if "postgresql" in backends:
                server = stack.enter_context(postgres(settings=HONEST_POSTGRES))
                targets["postgresql"] = server.create_database("carewatch_chart")
                to_build.append(targets["postgresql"])
            if to_build:
                await build(to_build, plan)
                if args.keep and args.keep in to_build:
                    args.keep.with_name(args.keep.name + ".json").write_text(
                        json.dumps(asdict(plan))
                    )
            for backend, target in targets.items():
                timed = await time_charts(target, plan, args)
                report(backend, target, plan, timed)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("\n  target (docs/architecture.md): p50 and p99 ≤ 50 ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--beds", type=int, default=1_000)
    parser.add_argument("--days", type=int, default=30, help="days of 1-hour rollups")
    parser.add_argument("--raw-days", type=float, default=14, help="days of raw samples")
    parser.add_argument("--minute-days", type=float, default=14, help="days of 1-minute rollups")
    parser.add_argument(
        "--every", type=int, default=300, help="s between a bed's readings of each kind"
    )
    parser.add_argument(
        "--rolled-hours", type=int, default=2, help="last hours rolled up by the hub's upkeep"
    )
    parser.add_argument("--tail-s", type=float, default=60.0, help="last seconds not rolled up")
    parser.add_argument("--charts", type=int, default=200, help="charts timed of each kind")
    parser.add_argument("--warmup", type=int, default=10, help="charts not counted, each kind")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep the SQLite store here, reuse it if there"
    )
    args = parser.parse_args()
    if not args.raw_days <= args.minute_days <= args.days:
        parser.error("--raw-days <= --minute-days <= --days, as the hub's retention keeps them")
    if not MINUTE <= args.every <= LOOKBACK_S:
        parser.error(f"--every must be between {MINUTE} and {LOOKBACK_S:.0f} s")
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
