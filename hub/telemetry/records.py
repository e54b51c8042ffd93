"""The telemetry tables and all their SQL: readings, events, device_state, gateway_sequence,
gateway_status, device_health.

Only ingest writes them (`save_batches`, `set_gateway_status`, `save_device_health`); the others
read. A batch's readings and events, the live state and the gateway's sequence mark are written
in one transaction with the store's batch companions (the timers) in one call to the database
thread: this is the hub's hottest write path.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from hub.core.database import SyncConnection
from hub.core.store import Statement, Store, StoredItem
from hub.telemetry import rollups
from hub.telemetry.settings import DAY_S

# Readings are kept compactly: a series (device, name) is a number, a value a REAL (a bool as
# 1/0, flagged), and the time index holds the series number instead of two strings. About half
# the bytes of the first layout (docs/database.md, "Sizing"). The view `readings` shows them as
# they were first stored (device, name, JSON value), for reports and a person at a SQL prompt.
SERIES_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    name TEXT NOT NULL,
    UNIQUE (device, name)
);
"""
SAMPLES_SQLITE: Final = """
CREATE TABLE IF NOT EXISTS samples (
    id INTEGER PRIMARY KEY,
    series INTEGER NOT NULL,
    sensed_at REAL NOT NULL,
    received_at REAL NOT NULL,
    value REAL,
    other TEXT,
    flags INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS samples_series_time ON samples (series, sensed_at);
"""
# On PostgreSQL the samples are partitioned by day of receipt: retention drops whole days
# (hub/telemetry/maintenance.py makes each day's partition ahead of time; the default
# partition takes what arrives outside them). The columns are ordered and sized to leave no
# padding, and ids, which grow with the order of receipt, need only a BRIN index.
SAMPLES_POSTGRESQL: Final = """
CREATE TABLE IF NOT EXISTS samples (
    id BIGSERIAL,
    sensed_at DOUBLE PRECISION NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    value DOUBLE PRECISION,
    series INT NOT NULL,
    flags SMALLINT NOT NULL,
    other TEXT
) PARTITION BY RANGE (received_at);
CREATE INDEX IF NOT EXISTS samples_series_time ON samples (series, sensed_at);
CREATE INDEX IF NOT EXISTS samples_id ON samples USING brin (id);
CREATE TABLE IF NOT EXISTS samples_default PARTITION OF samples DEFAULT;
"""
Item = TypeVar("Item")
# flags of a sample
HISTORICAL: Final = 1
BOOLEAN: Final = 2
WHOLE: Final = 4  # an integer, given back as one
# Values in one statement's IN (...): well within either database's limit on parameters.
CHUNK: Final = 500
WINDOWS_PER_QUERY: Final = 250
READINGS_VIEW: Final = """
CREATE VIEW readings AS
SELECT samples.id AS id, series.device AS device, series.name AS name,
    CASE WHEN samples.other IS NOT NULL THEN samples.other
        WHEN samples.flags & 2 = 2 THEN
            CASE WHEN samples.value != 0 THEN 'true' ELSE 'false' END
        WHEN samples.flags & 4 = 4 THEN CAST(CAST(samples.value AS BIGINT) AS TEXT)
        ELSE CAST(samples.value AS TEXT) END AS value,
    samples.sensed_at AS sensed_at, samples.received_at AS received_at,
    samples.flags & 1 AS historical
FROM samples JOIN series ON series.id = samples.series
"""
# Readings as the first layout kept them, renamed by migration 6 and moved into `samples` in the
# background (hub/telemetry/maintenance.py); the view shows them too until they are all moved.
LEGACY: Final = "readings_legacy"
LEGACY_IN_VIEW: Final = (
    f"\nUNION ALL SELECT id, device, name, value, sensed_at, received_at, historical FROM {LEGACY}"
)
SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    sensed_at REAL NOT NULL,
    received_at REAL NOT NULL,
    historical INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_device_time ON events (device, sensed_at);
CREATE TABLE IF NOT EXISTS device_state (
    device TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    sensed_at REAL NOT NULL,
    PRIMARY KEY (device, name)
);
CREATE TABLE IF NOT EXISTS gateway_sequence (
    site TEXT NOT NULL,
    gateway TEXT NOT NULL,
    epoch TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    PRIMARY KEY (site, gateway)
);
CREATE TABLE IF NOT EXISTS gateway_status (
    site TEXT NOT NULL,
    gateway TEXT NOT NULL,
    state TEXT NOT NULL,
    bdseq INTEGER NOT NULL,
    changed_at REAL NOT NULL,
    PRIMARY KEY (site, gateway)
);
CREATE TABLE IF NOT EXISTS device_health (
    device TEXT PRIMARY KEY,
    online INTEGER NOT NULL,
    last_seen REAL,
    battery REAL,
    rssi INTEGER,
    reported_at REAL NOT NULL
);
"""

INSERT_SAMPLE: Final = (
    "INSERT INTO samples (series, sensed_at, received_at, value, other, flags) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
INSERT_EVENT: Final = (
    "INSERT INTO events (device, name, value, sensed_at, received_at, historical) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
UPSERT_DEVICE_STATE: Final = (
    "INSERT INTO device_state (device, name, value, sensed_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (device, name) DO UPDATE SET value = excluded.value, "
    "sensed_at = excluded.sensed_at WHERE excluded.sensed_at >= device_state.sensed_at"
)
UPSERT_SEQUENCE: Final = (
    "INSERT INTO gateway_sequence (site, gateway, epoch, last_seq) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (site, gateway) DO UPDATE SET epoch = excluded.epoch, "
    "last_seq = excluded.last_seq"
)
UPSERT_GATEWAY_STATUS: Final = (
    "INSERT INTO gateway_status (site, gateway, state, bdseq, changed_at) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (site, gateway) DO UPDATE SET "
    "state = excluded.state, bdseq = excluded.bdseq, changed_at = excluded.changed_at"
)
UPSERT_DEVICE_HEALTH: Final = (
    "INSERT INTO device_health (device, online, last_seen, battery, rssi, "
    "reported_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (device) DO UPDATE SET "
    "online = excluded.online, last_seen = excluded.last_seen, "
    "battery = excluded.battery, rssi = excluded.rssi, "
    "reported_at = excluded.reported_at "
    "WHERE excluded.reported_at >= device_health.reported_at"
)
# Each device's last occupancy or presence since a time, when it was last heard and since when
# it has had that value (within the window).
PRESENCE_SINCE: Final = """
WITH recent AS (
    SELECT device, name, value, sensed_at FROM readings
    WHERE name IN ('occupancy', 'presence') AND sensed_at >= ?
),
last AS (
    SELECT device, name, value, sensed_at AS at FROM (
        SELECT device, name, value, sensed_at, row_number() OVER (
            PARTITION BY device, name ORDER BY sensed_at DESC
        ) AS newest FROM recent
    ) ranked WHERE newest = 1
),
flip AS (
    SELECT l.device, l.name, l.value, l.at,
        (SELECT max(r.sensed_at) FROM recent r
         WHERE r.device = l.device AND r.name = l.name AND r.value != l.value) AS other_at
    FROM last l
)
SELECT f.device, f.name, f.value, f.at, f.other_at,
    (SELECT min(r.sensed_at) FROM recent r
     WHERE r.device = f.device AND r.name = f.name
       AND r.sensed_at > coalesce(f.other_at, -1)) AS changed_at
FROM flip f
"""
COUNTED: Final = frozenset({"readings", "events"})
NO_LIMIT: Final = 2**62

# site, gateway, outbox epoch, last sequence number, items
BatchToSave = tuple[str, str, str, int, Iterable[StoredItem]]


@dataclass(frozen=True, slots=True)
class DeviceHealth:
    device: str
    online: bool
    last_seen: float | None
    battery: float | None
    rssi: int | None
    reported_at: float


class TelemetryRecords:
    """The telemetry tables on the hub's store.

    Its writer (ingest) and readers (walk tests, bed states, supervisor) share the tables that
    `create` makes once, as the hub starts (hub/app.py).
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._series: dict[tuple[str, str], int] = {}

    async def create(self) -> None:
        """Make the tables and the `readings` view (the hub does, as it starts)."""
        db = self._store.db
        postgres = db.dialect == "postgresql"
        await self._store.add_schema(SERIES_SCHEMA)
        await self._store.add_schema(SAMPLES_POSTGRESQL if postgres else SAMPLES_SQLITE)
        await self._store.add_schema(SCHEMA)
        await self._store.add_schema(ROLLUPS_SCHEMA)
        legacy = await db.has_table(LEGACY)
        if legacy:
            await self._store.run(_numbers_after_legacy)
        view = READINGS_VIEW + (LEGACY_IN_VIEW if legacy else "")
        async with self._store.transaction() as db:
            await db.execute("DROP VIEW IF EXISTS readings")
            await db.execute(view)

    async def has_legacy(self) -> bool:
        """Whether readings of the first layout are still waiting to be moved."""
        return await self._store.db.has_table(LEGACY)

    async def sequence_mark(self, site: str, gateway: str) -> tuple[str, int] | None:
        """The gateway's outbox epoch and the last sequence number stored of it."""
        async with self._store.db.execute(
            "SELECT epoch, last_seq FROM gateway_sequence WHERE site = ? AND gateway = ?",
            (site, gateway),
        ) as cur:
            row = await cur.fetchone()
        return (str(row["epoch"]), int(row["last_seq"])) if row else None

    async def save_batches(self, batches: list[BatchToSave]) -> None:
        """Store several gateways' batches, their marks and the store's companions' pending
        changes in one transaction."""
        batches = [(*batch[:4], list(batch[4])) for batch in batches]
        await self._know_series(
            {(i.device, i.name) for *_, items in batches for i in items if i.kind == "reading"}
        )
        series = self._series
        samples: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
        live: dict[tuple[str, str], tuple[Any, ...]] = {}
        marks: list[tuple[str, str, str, int]] = []
        for site, gateway, epoch, last_seq, items in batches:
            marks.append((site, gateway, epoch, last_seq))
            for item in items:
                value = _json_value(item.value)
                if item.kind != "reading":
                    events.append(
                        (
                            item.device,
                            item.name,
                            value,
                            item.sensed_at,
                            item.received_at,
                            int(item.historical),
                        )
                    )
                    continue
                number, other, flags = sample_value(item.value)
                samples.append(
                    (
                        series[(item.device, item.name)],
                        item.sensed_at,
                        item.received_at,
                        number,
                        other,
                        flags | (HISTORICAL if item.historical else 0),
                    )
                )
                # a replay too, unless something newer is known (the newest of the batch only:
                # one row a series lets PostgreSQL take the upsert in one statement)
                known = live.get((item.device, item.name))
                if known is None or item.sensed_at >= known[3]:
                    live[(item.device, item.name)] = (item.device, item.name, value, item.sensed_at)
        statements: list[Statement] = [
            (INSERT_SAMPLE, samples),
            (INSERT_EVENT, events),
            (UPSERT_DEVICE_STATE, list(live.values())),
            (UPSERT_SEQUENCE, marks),
        ]
        await self._store.save_batch(statements)

    async def _know_series(self, keys: set[tuple[str, str]]) -> None:
        """Number the series not numbered yet (in a short transaction of their own)."""
        unknown = keys - self._series.keys()
        if unknown:
            self._series.update(await self._store.run(lambda c: series_numbers(c, unknown)))

    async def chart_rows(
        self,
        devices: Sequence[str],
        names: Sequence[str],
        resolution: int,
        since: float,
        until: float,
    ) -> tuple[list[tuple[str, int, int, float]], list[tuple[str, float, object]]]:
        """For a chart of those series over [since, until): the `resolution` rollups with
        buckets starting in it, (name, bucket, n, total) summed over the devices; and the raw
        readings the rollups do not count yet, (name, sensed_at, value). Read in one call to the
        database thread, so that no roll-up falls between the two."""
        if not devices:
            return [], []
        return await self._store.db.call(
            _chart_rows, list(devices), list(names), resolution, since, until
        )

    async def device_state(self, device: str, name: str) -> object | None:
        """The device's latest value of `name`, or None."""
        async with self._store.db.execute(
            "SELECT value FROM device_state WHERE device = ? AND name = ?", (device, name)
        ) as cur:
            row = await cur.fetchone()
        return json.loads(row["value"]) if row else None

    async def presence_since(self, since: float) -> list[dict[str, Any]]:
        """Each device's last occupancy and presence readings sensed since `since`: device,
        name, value (JSON), at (last heard), changed_at (since when it has had that value)."""
        async with self._store.db.execute(PRESENCE_SINCE, (since,)) as cur:
            return [dict(row) for row in await cur.fetchall()]

    async def latest(self, name: str) -> dict[str, tuple[object, float]]:
        """Every device's latest value of `name` and when it was sensed, by device id."""
        async with self._store.db.execute(
            "SELECT device, value, sensed_at FROM device_state WHERE name = ?", (name,)
        ) as cur:
            rows = await cur.fetchall()
        return {str(device): (json.loads(value), float(at)) for device, value, at in rows}

    async def offline_gateways(self) -> dict[tuple[str, str], float]:
        """When each gateway whose session is offline went so, by (site, gateway)."""
        async with self._store.db.execute(
            "SELECT site, gateway, changed_at FROM gateway_status WHERE state = 'offline'"
        ) as cur:
            return {
                (str(row["site"]), str(row["gateway"])): float(row["changed_at"])
                for row in await cur.fetchall()
            }

    async def count_rows(self, table: str) -> int:
        """How many readings or events are stored."""
        if table not in COUNTED:
            raise ValueError(f"no table {table!r}")
        async with self._store.db.execute(f"SELECT count(*) FROM {table}") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def gateway_status(self, site: str, gateway: str) -> tuple[str, int] | None:
        """The gateway's last session state and its birth/death sequence number."""
        async with self._store.db.execute(
            "SELECT state, bdseq FROM gateway_status WHERE site = ? AND gateway = ?",
            (site, gateway),
        ) as cur:
            row = await cur.fetchone()
        return (str(row["state"]), int(row["bdseq"])) if row else None

    async def set_gateway_status(
        self, site: str, gateway: str, state: str, bdseq: int, at: float
    ) -> None:
        async with self._store.transaction() as db:
            await db.execute(UPSERT_GATEWAY_STATUS, (site, gateway, state, bdseq, at))

    async def save_device_health(self, reports: Iterable[DeviceHealth]) -> None:
        """Keep each device's newest report; an older one arriving late changes nothing."""
        async with self._store.transaction() as db:
            await db.executemany(
                UPSERT_DEVICE_HEALTH,
                [
                    (h.device, int(h.online), h.last_seen, h.battery, h.rssi, h.reported_at)
                    for h in reports
                ],
            )

    async def device_health(self) -> dict[str, dict[str, Any]]:
        """Every device's latest health report, by device id."""
        async with self._store.db.execute(
            "SELECT device, online, last_seen, battery, rssi, reported_at FROM device_health"
        ) as cur:
            rows = await cur.fetchall()
        return {str(row["device"]): {**dict(row), "online": bool(row["online"])} for row in rows}


def _chart_rows(
    connection: SyncConnection,
    devices: list[str],
    names: list[str],
    resolution: int,
    since: float,
    until: float,
) -> tuple[list[tuple[str, int, int, float]], list[tuple[str, float, object]]]:
    these = f"series.device IN ({_marks(devices)}) AND series.name IN ({_marks(names)})"
    rolled = connection.execute(
        "SELECT series.name, rollups.bucket, sum(rollups.n), sum(rollups.total) "
        f"FROM rollups JOIN series ON series.id = rollups.series WHERE {these} "
        "AND rollups.resolution = ? AND rollups.bucket >= ? AND rollups.bucket < ? "
        "GROUP BY series.name, rollups.bucket",
        (*devices, *names, resolution, since, until),
    ).fetchall()
    # Read by id (few samples lie above the mark), not by the series' time index: the unary plus
    # keeps SQLite from using the index on those columns.
    fresh = connection.execute(
        "SELECT series.name, samples.sensed_at, samples.value, samples.other, samples.flags "
        "FROM samples JOIN series ON series.id = +samples.series WHERE samples.id > ? "
        f"AND {these} AND +samples.sensed_at >= ? AND +samples.sensed_at < ?",
        (int(mark(connection, ROLLED_UP)), *devices, *names, since, until),
    ).fetchall()
    return (
        [(str(r[0]), int(r[1]), int(r[2]), float(r[3])) for r in rolled],
        [(str(r[0]), float(r[1]), reading_value(r[2], r[3], int(r[4]))) for r in fresh],
    )


def series_numbers(
    connection: SyncConnection, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """On the database thread: each (device, name)'s series number, made if new. Set-based:
    a hub starting on thousands of beds meets tens of thousands of series in its first seconds."""
    wanted = sorted(set(keys))
    connection.executemany(
        "INSERT INTO series (device, name) VALUES (?, ?) ON CONFLICT (device, name) DO NOTHING",
        wanted,
    )
    numbers: dict[tuple[str, str], int] = {}
    devices = sorted({device for device, _ in wanted})
    for first in range(0, len(devices), CHUNK):
        chunk = devices[first : first + CHUNK]
        rows = connection.execute(
            f"SELECT device, name, id FROM series WHERE device IN ({_marks(chunk)})", chunk
        ).fetchall()
        numbers.update(((str(row[0]), str(row[1])), int(row[2])) for row in rows)
    return {key: numbers[key] for key in wanted}


def sample_value(value: object) -> tuple[float | None, str | None, int]:
    """A reading's value as a sample stores it: (number, other value as JSON, flags)."""
    if isinstance(value, bool):
        return (1.0 if value else 0.0), None, BOOLEAN
    if isinstance(value, int) and abs(value) <= 2**53:
        return float(value), None, WHOLE
    if isinstance(value, float) and math.isfinite(value):
        return value, None, 0
    return None, json.dumps(value), 0


def reading_value(number: float | None, other: str | None, flags: int) -> object:
    """`sample_value` undone."""
    if other is not None or number is None:
        return json.loads(other) if other is not None else None
    if flags & BOOLEAN:
        return number != 0
    return int(number) if flags & WHOLE else number


def _numbers_after_legacy(connection: SyncConnection) -> None:
    """Samples stored from now on are numbered after every reading of the first layout, which
    keep their numbers as they move (SQLite numbers a row after the highest present: the highest
    moves first; PostgreSQL's sequence is set)."""
    top = connection.execute(f"SELECT max(id) FROM {LEGACY}").fetchone()
    if top is None or top[0] is None:
        return
    if isinstance(connection, sqlite3.Connection):
        move_legacy(connection, int(top[0]) - 1, None)
    else:
        connection.execute(
            "SELECT setval(pg_get_serial_sequence('samples', 'id'), "
            "greatest(?, (SELECT coalesce(max(id), 1) FROM samples)))",
            (int(top[0]),),
        )


def move_legacy(
    connection: SyncConnection, after: int, limit: int | None
) -> list[tuple[int, float]]:
    """On the database thread: move readings of the first layout with ids above `after` (at most
    `limit` of them) into `samples`, keeping their ids; the (series, sensed_at) moved."""
    rows = connection.execute(
        "SELECT id, device, name, value, sensed_at, received_at, historical "
        f"FROM {LEGACY} WHERE id > ? ORDER BY id LIMIT ?",
        (after, NO_LIMIT if limit is None else limit),
    ).fetchall()
    if not rows:
        return []
    numbers = series_numbers(connection, {(row[1], row[2]) for row in rows})
    samples = []
    for row_id, device, name, text, sensed_at, received_at, historical in rows:
        number, other, flags = sample_value(_loaded(text))
        series = numbers[(device, name)]
        flags |= HISTORICAL if historical else 0
        samples.append((row_id, series, sensed_at, received_at, number, other, flags))
    connection.executemany(
        "INSERT INTO samples (id, series, sensed_at, received_at, value, other, flags) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        samples,
    )
    connection.execute(f"DELETE FROM {LEGACY} WHERE id > ? AND id <= ?", (after, int(rows[-1][0])))
    return [(sample[1], sample[2]) for sample in samples]


def drop_legacy(connection: SyncConnection) -> None:
    """On the database thread: the first layout's table, empty now, out of the view and gone
    (in one transaction: a reader never finds the view missing)."""
    connection.execute("DROP VIEW IF EXISTS readings")
    connection.execute(f"DROP TABLE IF EXISTS {LEGACY}")
    connection.execute(READINGS_VIEW)


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


def _loaded(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text  # kept as it was, as a JSON string


def _json_value(value: object) -> str:
    """`json.dumps(value)`, without its general machinery for the scalars readings carry."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float) and math.isfinite(value):
        return float.__repr__(value)
    return json.dumps(value)


# --- rollups and retention (hub/telemetry/maintenance.py runs them, a small step at a time) ---

ROLLUPS_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS rollups (
    resolution INTEGER NOT NULL,
    series INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    n INTEGER NOT NULL,
    total REAL NOT NULL,
    low REAL,
    high REAL,
    true_s REAL,
    known_s REAL,
    PRIMARY KEY (resolution, series, bucket)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS telemetry_marks (
    name TEXT PRIMARY KEY,
    value REAL NOT NULL
);
"""
UPSERT_ROLLUP: Final = (
    "INSERT INTO rollups (resolution, series, bucket, n, total, low, high, true_s, known_s) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (resolution, series, bucket) DO UPDATE SET "
    "n = excluded.n, total = excluded.total, low = excluded.low, high = excluded.high, "
    "true_s = excluded.true_s, known_s = excluded.known_s"
)
# The mark: the rollups count exactly the samples with ids up to it; a chart adds the samples
# above it (TelemetryRecords.unrolled), so it is exact while the rollups catch up.
ROLLED_UP: Final = "rolled_up"
PARTITION: Final = re.compile(r"^samples_d(\d{8})$")


def mark(connection: SyncConnection, name: str) -> float:
    row = connection.execute("SELECT value FROM telemetry_marks WHERE name = ?", (name,)).fetchone()
    return float(row[0]) if row else 0.0


def set_mark(connection: SyncConnection, name: str, value: float) -> None:
    connection.execute(
        "INSERT INTO telemetry_marks (name, value) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (name, value),
    )


def roll_up_next(connection: SyncConnection, limit: int, now: float) -> int:
    """On the database thread: roll up the next `limit` samples not rolled up yet, of those
    received before this minute; how many. (A minute is worked out once its readings are in,
    not again at every roll-up while they come; the charts read the newest raw meanwhile.)"""
    after = int(mark(connection, ROLLED_UP))
    this_minute = rollups.start_of(now, rollups.MINUTE)
    rows = connection.execute(
        "SELECT id, series, sensed_at, received_at FROM samples WHERE id > ? ORDER BY id LIMIT ?",
        (after, limit),
    ).fetchall()
    # Samples are numbered in the order they were received: the first of this minute ends it.
    rows = list(itertools.takewhile(lambda row: row[3] < this_minute, rows))
    if rows:
        up_to = int(rows[-1][0])
        roll_up(connection, [(int(r[1]), float(r[2])) for r in rows], now, up_to)
        set_mark(connection, ROLLED_UP, float(up_to))
    return len(rows)


def roll_up(
    connection: SyncConnection, touched: Iterable[tuple[int, float]], now: float, up_to: int
) -> None:
    """On the database thread: work out again every minute and hour these (series, sensed_at)
    fall in, from the raw samples numbered up to `up_to` (hub/telemetry/rollups.py).

    Set-based, so that a step costs a few statements whatever the number of series it touches
    and however far apart in time its readings are (a gateway's replayed backlog): the points of
    every window of touched minutes are read in one query, every minute is written in one batch,
    and the hours are summed from their minutes in one statement."""
    minutes: dict[int, set[int]] = {}
    for series, sensed_at in touched:
        if math.isfinite(sensed_at):
            minutes.setdefault(series, set()).add(rollups.start_of(sensed_at, rollups.MINUTE))
    windows = [(series, run) for series, wanted in minutes.items() for run in rollups.runs(wanted)]
    names = _series_names(connection, minutes)
    found = _points_of(connection, windows, up_to)
    rows: list[tuple[Any, ...]] = []
    hours: set[tuple[int, int]] = set()
    for (series, run), (points, boolean) in zip(windows, found, strict=True):
        computed = rollups.held_minutes(run, points) if boolean else run
        done = rollups.minute_buckets(
            points, computed, boolean=boolean, name=names.get(series, ""), now=now
        )
        rows.extend((rollups.MINUTE, series, m, *b.row()) for m, b in done.items() if not b.empty)
        hours.update((series, rollups.start_of(minute, rollups.HOUR)) for minute in computed)
    connection.executemany(UPSERT_ROLLUP, rows)
    _roll_up_hours(connection, sorted(hours))


def _series_names(connection: SyncConnection, series: Iterable[int]) -> dict[int, str]:
    names: dict[int, str] = {}
    for chunk in _chunks(list(series)):
        query = f"SELECT id, name FROM series WHERE id IN ({_marks(chunk)})"
        rows = connection.execute(query, chunk)
        names.update((int(row[0]), str(row[1])) for row in rows.fetchall())
    return names


def _chunks(items: Sequence[Item], size: int = CHUNK) -> Iterator[Sequence[Item]]:
    for first in range(0, len(items), size):
        yield items[first : first + size]


def _points_of(
    connection: SyncConnection, windows: Sequence[tuple[int, list[int]]], up_to: int
) -> list[tuple[list[rollups.Point], bool]]:
    """For each (series, run of minutes): the series' points from LOOKBACK_S before the run to
    LOOKBACK_S after it, numbered up to `up_to`, and whether it is a yes/no series. (A yes/no
    reading before the run tells the state at its start; the next one after it ends the last
    state.)"""
    found: list[tuple[list[rollups.Point], bool]] = [([], False) for _ in windows]
    for first in range(0, len(windows), WINDOWS_PER_QUERY):
        chunk = windows[first : first + WINDOWS_PER_QUERY]
        bounds = [
            (
                first + i,
                series,
                run[0] - rollups.LOOKBACK_S,
                run[-1] + rollups.MINUTE + rollups.LOOKBACK_S,
            )
            for i, (series, run) in enumerate(chunk)
        ]
        rows = connection.execute(
            f"WITH w (i, series, low, high) AS (VALUES {', '.join(['(?, ?, ?, ?)'] * len(chunk))}) "
            "SELECT w.i, s.sensed_at, s.value, s.flags FROM w JOIN samples s "
            "ON s.series = w.series AND s.sensed_at >= w.low AND s.sensed_at < w.high "
            "WHERE s.id <= ? ORDER BY w.i, s.sensed_at",
            (*itertools.chain.from_iterable(bounds), up_to),
        ).fetchall()
        for index, group in itertools.groupby(rows, key=lambda row: int(row[0])):
            readings = list(group)
            boolean = any(int(row[3]) & BOOLEAN for row in readings)
            found[index] = ([_point(row[1:3]) for row in readings], boolean)
    return found


def _roll_up_hours(connection: SyncConnection, hours: Sequence[tuple[int, int]]) -> None:
    """Sum each (series, hour)'s minutes into the hour's rollup."""
    for chunk in _chunks(hours, WINDOWS_PER_QUERY):
        connection.execute(
            f"WITH h (series, hour) AS (VALUES {', '.join(['(?, ?)'] * len(chunk))}) "
            "INSERT INTO rollups "
            "(resolution, series, bucket, n, total, low, high, true_s, known_s) "
            f"SELECT {rollups.HOUR}, h.series, h.hour, sum(r.n), sum(r.total), min(r.low), "
            "max(r.high), sum(r.true_s), sum(r.known_s) FROM h JOIN rollups r "
            f"ON r.resolution = {rollups.MINUTE} AND r.series = h.series "
            f"AND r.bucket >= h.hour AND r.bucket < h.hour + {rollups.HOUR} "
            "WHERE true GROUP BY h.series, h.hour "
            "ON CONFLICT (resolution, series, bucket) DO UPDATE SET "
            "n = excluded.n, total = excluded.total, low = excluded.low, high = excluded.high, "
            "true_s = excluded.true_s, known_s = excluded.known_s",
            list(itertools.chain.from_iterable(chunk)),
        )


def _point(row: Any) -> rollups.Point:
    return float(row[0]), None if row[1] is None else float(row[1])


def prune_samples(connection: SyncConnection, received_before: float, limit: int) -> int:
    """On the database thread: delete up to `limit` of the oldest samples received before
    `received_before` and already rolled up; how many. Samples are numbered in the order they
    were received, so the old ones are the lowest numbers: the step reads one range of ids."""
    low = connection.execute("SELECT min(id) FROM samples").fetchone()
    if low is None or low[0] is None:
        return 0
    cursor = connection.execute(
        "DELETE FROM samples WHERE id >= ? AND id < ? AND id <= ? AND received_at < ?",
        (int(low[0]), int(low[0]) + limit, int(mark(connection, ROLLED_UP)), received_before),
    )
    return cursor.rowcount


def prune_rollups(
    connection: SyncConnection, resolution: int, before: float, after_series: int, limit: int
) -> int | None:
    """On the database thread: delete `resolution` rollups older than `before` for the next
    `limit` series numbered above `after_series` (one index range each); the last series done,
    or None when every series has been."""
    series = [
        int(row[0])
        for row in connection.execute(
            "SELECT id FROM series WHERE id > ? ORDER BY id LIMIT ?", (after_series, limit)
        ).fetchall()
    ]
    connection.executemany(
        "DELETE FROM rollups WHERE resolution = ? AND series = ? AND bucket < ?",
        [(resolution, number, before) for number in series],
    )
    return series[-1] if series else None


def day_partitions(connection: SyncConnection) -> dict[int, str]:
    """PostgreSQL: the samples' day partitions, by the day's start (UTC)."""
    rows = connection.execute(
        "SELECT child.relname FROM pg_inherits "
        "JOIN pg_class parent ON parent.oid = pg_inherits.inhparent "
        "JOIN pg_class child ON child.oid = pg_inherits.inhrelid "
        "WHERE parent.relname = 'samples'"
    ).fetchall()
    found = {}
    for (name,) in rows:
        matched = PARTITION.match(str(name))
        if matched:
            day = datetime.strptime(matched.group(1), "%Y%m%d").replace(tzinfo=UTC)
            found[int(day.timestamp())] = str(name)
    return found


def make_day_partition(connection: SyncConnection, day: int) -> bool:
    """PostgreSQL: the partition for the day starting at `day`, unless the default partition
    already holds samples of that day (they stay there, and go by `prune_default`)."""
    taken = connection.execute(
        "SELECT 1 FROM samples_default WHERE received_at >= ? AND received_at < ? LIMIT 1",
        (day, day + DAY_S),
    ).fetchone()
    if taken is not None:
        return False
    name = "samples_d" + datetime.fromtimestamp(day, UTC).strftime("%Y%m%d")
    connection.execute(
        f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF samples "
        f"FOR VALUES FROM ({day}) TO ({day + int(DAY_S)})"
    )
    return True


def drop_day_partition(connection: SyncConnection, name: str) -> bool:
    """PostgreSQL: drop a day's partition if every sample in it is rolled up."""
    top = connection.execute(f"SELECT max(id) FROM {name}").fetchone()
    if top is not None and top[0] is not None and top[0] > mark(connection, ROLLED_UP):
        return False
    connection.execute(f"DROP TABLE {name}")
    return True


def prune_default(connection: SyncConnection, received_before: float, limit: int) -> int:
    """PostgreSQL: delete up to `limit` old, rolled-up samples from the default partition."""
    cursor = connection.execute(
        "DELETE FROM samples_default WHERE id IN (SELECT id FROM samples_default "
        "WHERE received_at < ? AND id <= ? LIMIT ?)",
        (received_before, int(mark(connection, ROLLED_UP)), limit),
    )
    return cursor.rowcount
