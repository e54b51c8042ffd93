"""The telemetry tables and all their SQL: readings, events, device_state, gateway_sequence,
gateway_status, device_health.

Only ingest writes them (`save_batches`, `set_gateway_status`, `save_device_health`); the others
read. A batch's readings and events, the live state and the gateway's sequence mark are written
in one transaction with the store's batch companions (the timers) in one call to the database
thread: this is the hub's hottest write path.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from hub.core.store import Statement, Store, StoredItem

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    sensed_at REAL NOT NULL,
    received_at REAL NOT NULL,
    historical INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS readings_device_time ON readings (device, name, sensed_at);
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

INSERT_READING: Final = (
    "INSERT INTO readings (device, name, value, sensed_at, received_at, historical) "
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

    async def create(self) -> None:
        """Make the tables (the hub does, as it starts)."""
        await self._store.add_schema(SCHEMA)

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
        readings: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
        live: list[tuple[Any, ...]] = []
        marks: list[tuple[str, str, str, int]] = []
        for site, gateway, epoch, last_seq, items in batches:
            marks.append((site, gateway, epoch, last_seq))
            for item in items:
                value = _json_value(item.value)
                row = (
                    item.device,
                    item.name,
                    value,
                    item.sensed_at,
                    item.received_at,
                    int(item.historical),
                )
                (readings if item.kind == "reading" else events).append(row)
                if item.kind == "reading":  # a replay too, unless something newer is known
                    live.append((item.device, item.name, value, item.sensed_at))
        statements: list[Statement] = [
            (INSERT_READING, readings),
            (INSERT_EVENT, events),
            (UPSERT_DEVICE_STATE, live),
            (UPSERT_SEQUENCE, marks),
        ]
        await self._store.save_batch(statements)

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


def _json_value(value: object) -> str:
    """`json.dumps(value)`, without its general machinery for the scalars readings carry."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float) and math.isfinite(value):
        return float.__repr__(value)
    return json.dumps(value)
