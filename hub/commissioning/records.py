"""The commissioning tables and all their SQL: walk tests and their results (`WalkTestRecords`),
and how each provisioned device is heard (`ProvisionRecords`). Only the commissioning folder
writes them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from hub.core.store import Store

WALKTEST_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS walktests (
    id INTEGER PRIMARY KEY,
    site TEXT NOT NULL,
    gateway TEXT,
    started_by TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_by TEXT,
    ended_at REAL
);
CREATE TABLE IF NOT EXISTS walktest_results (
    test_id INTEGER NOT NULL REFERENCES walktests (id),
    device TEXT NOT NULL,
    passed_at REAL NOT NULL,
    rssi INTEGER,
    battery REAL,
    trigger TEXT NOT NULL,
    PRIMARY KEY (test_id, device)
);
"""
PROVISION_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS provision_device (
    id TEXT PRIMARY KEY, address TEXT UNIQUE, key TEXT, port TEXT
);
"""
# device, passed_at, rssi, battery, trigger
ResultRow = tuple[str, float, int | None, float | None, str]


class WalkTestRecords:
    """Walk tests and the devices that passed each one."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def create(self) -> None:
        await self._store.add_schema(WALKTEST_SCHEMA)

    async def tests(self) -> list[dict[str, Any]]:
        """Every walk test, oldest first, as its row."""
        async with self._store.db.execute("SELECT * FROM walktests ORDER BY id") as cur:
            return [dict(row) for row in await cur.fetchall()]

    async def results(self, test_id: int) -> list[dict[str, Any]]:
        """The devices that passed the walk test: device, passed_at, trigger, rssi, battery."""
        async with self._store.db.execute(
            "SELECT device, passed_at, trigger, rssi, battery FROM walktest_results "
            "WHERE test_id = ?",
            (test_id,),
        ) as cur:
            return [dict(row) for row in await cur.fetchall()]

    async def start(self, site: str, gateway: str | None, user: str, at: float) -> int:
        """Record a walk test started; its id."""
        async with self._store.transaction() as db:
            cur = await db.execute(
                "INSERT INTO walktests (site, gateway, started_by, started_at) "
                "VALUES (?, ?, ?, ?) RETURNING id",
                (site, gateway, user, at),
            )
            row = await cur.fetchone()
        return int(row[0])

    async def stop(self, test_id: int, user: str, at: float) -> None:
        async with self._store.transaction() as db:
            await db.execute(
                "UPDATE walktests SET ended_by = ?, ended_at = ? WHERE id = ?",
                (user, at, test_id),
            )

    async def passed(self, test_id: int, result: ResultRow) -> None:
        """Record a device passed; the first time counts."""
        async with self._store.transaction() as db:
            await db.execute(
                "INSERT INTO walktest_results "
                "(test_id, device, passed_at, rssi, battery, trigger) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (test_id, device) DO NOTHING",
                (test_id, *result),
            )

    async def save_signal(
        self, test_id: int, signals: Sequence[tuple[str, int | None, float | None]]
    ) -> None:
        """Keep the signal strength and battery (device, rssi, battery) of passed devices."""
        async with self._store.transaction() as db:
            await db.executemany(
                "UPDATE walktest_results SET rssi = ?, battery = ? "
                "WHERE test_id = ? AND device = ?",
                [(rssi, battery, test_id, device) for device, rssi, battery in signals],
            )


class ProvisionRecords:
    """How each provisioned device is heard: its BLE address and key, or its serial port.

    The provisioner may be built without its asynchronous `open` (the web app's is), so the
    table is made the first time it is asked.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._created = False

    async def create(self) -> None:
        if not self._created:
            await self._store.add_schema(PROVISION_SCHEMA)
            self._created = True

    async def save(
        self, device: str, address: str | None, key: str | None, port: str | None
    ) -> None:
        await self.create()
        async with self._store.transaction() as db:
            # The device's earlier entry goes, and so does another's with the same address.
            await db.execute(
                "DELETE FROM provision_device WHERE id = ? OR address = ?", (device, address)
            )
            await db.execute(
                "INSERT INTO provision_device (id, address, key, port) VALUES (?, ?, ?, ?)",
                (device, address, key, port),
            )

    async def addresses(self) -> dict[str, tuple[str | None, str | None, str | None]]:
        """(address, key, port) of every provisioned device, by device id."""
        await self.create()
        async with self._store.db.execute(
            "SELECT id, address, key, port FROM provision_device"
        ) as cursor:
            rows = await cursor.fetchall()
        return {row[0]: (row[1], row[2], row[3]) for row in rows}
