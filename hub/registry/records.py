"""The registry's tables in the hub's SQLite database, written with their audit records.

One table per record kind (`registry_site`, `registry_zone`, …, `registry_binding`), with the
record's fields as columns; list fields (a resident's flags and contacts) are stored as JSON.
Partial unique indexes keep, as a last line of defence, one open binding per bed and per
resident.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Final, get_origin

from hub.core.audit import AuditEntry
from hub.core.store import Store
from hub.registry.data import Change, RegistryData
from hub.registry.models import RECORD_KINDS, Binding, Record, RecordBase, record_fields

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS registry_site (id TEXT PRIMARY KEY, name TEXT NOT NULL, phone TEXT);
CREATE TABLE IF NOT EXISTS registry_zone (
    site TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL,
    PRIMARY KEY (site, id)
);
CREATE TABLE IF NOT EXISTS registry_room (
    site TEXT NOT NULL, id TEXT NOT NULL, zone TEXT NOT NULL, name TEXT NOT NULL,
    kind TEXT NOT NULL, PRIMARY KEY (site, id)
);
CREATE TABLE IF NOT EXISTS registry_bed (
    code TEXT PRIMARY KEY, site TEXT NOT NULL, room TEXT NOT NULL, label TEXT
);
CREATE TABLE IF NOT EXISTS registry_resident (
    code TEXT PRIMARY KEY, name TEXT NOT NULL, care_level TEXT,
    flags TEXT NOT NULL, contacts TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS registry_gateway (
    site TEXT NOT NULL, id TEXT NOT NULL, name TEXT, PRIMARY KEY (site, id)
);
CREATE TABLE IF NOT EXISTS registry_device (
    id TEXT PRIMARY KEY, site TEXT NOT NULL, gateway TEXT NOT NULL, profile TEXT NOT NULL,
    bed TEXT, room TEXT, role TEXT,
    CHECK ((bed IS NULL) != (room IS NULL))
);
CREATE TABLE IF NOT EXISTS registry_binding (
    resident TEXT NOT NULL, bed TEXT NOT NULL, "start" REAL NOT NULL, "end" REAL,
    start_reason TEXT NOT NULL, end_reason TEXT,
    PRIMARY KEY (resident, "start")
);
CREATE UNIQUE INDEX IF NOT EXISTS registry_binding_open_bed
    ON registry_binding (bed) WHERE "end" IS NULL;
CREATE UNIQUE INDEX IF NOT EXISTS registry_binding_open_resident
    ON registry_binding (resident) WHERE "end" IS NULL;
"""


def _table(kind: type[RecordBase]) -> str:
    return f"registry_{kind.KIND}"


def _columns(kind: type[RecordBase]) -> list[str]:
    return list(kind.model_fields)


def _json_columns(kind: type[RecordBase]) -> set[str]:
    return {name for name, f in kind.model_fields.items() if get_origin(f.annotation) is list}


def _upsert_sql(kind: type[RecordBase]) -> str:
    columns = _columns(kind)
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    keys = ", ".join(f'"{c}"' for c in kind.KEY)
    updates = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c not in kind.KEY)
    return (
        f"INSERT INTO {_table(kind)} ({names}) VALUES ({marks}) "
        f"ON CONFLICT ({keys}) DO UPDATE SET {updates}"
    )


def _row(record: RecordBase) -> tuple[Any, ...]:
    fields = record_fields(record)
    return tuple(
        json.dumps(value) if isinstance(value, list) else value for value in fields.values()
    )


class RegistryRecords:
    def __init__(self, store: Store) -> None:
        self.store = store

    @classmethod
    async def open(cls, store: Store) -> RegistryRecords:
        await store.add_schema(SCHEMA)
        return cls(store)

    async def load(self) -> RegistryData:
        records: list[Record] = []
        for kind in RECORD_KINDS.values():
            records.extend(await self._read(kind))  # type: ignore[arg-type]
        bindings: list[Binding] = await self._read(Binding)  # type: ignore[assignment]
        return RegistryData.loaded(records, bindings)

    async def _read(self, kind: type[RecordBase]) -> list[RecordBase]:
        names = ", ".join(f'"{c}"' for c in _columns(kind))
        as_json = _json_columns(kind)
        async with self.store.db.execute(f"SELECT {names} FROM {_table(kind)}") as cur:
            rows = await cur.fetchall()
        return [
            kind.model_validate(
                {k: json.loads(row[k]) if k in as_json else row[k] for k in row.keys()}
            )
            for row in rows
        ]

    async def save(self, changes: Sequence[Change], audit: Sequence[AuditEntry]) -> None:
        """Store the changed records and their audit records in one transaction.

        Records are written kind by kind, each kind in the order of the changes, so that a
        transfer's ended binding is written before the binding that replaces it.
        """
        by_kind: dict[type[RecordBase], list[tuple[Any, ...]]] = defaultdict(list)
        for change in changes:
            by_kind[type(change.record)].append(_row(change.record))
        async with self.store.transaction() as db:
            for kind, rows in by_kind.items():
                await db.executemany(_upsert_sql(kind), rows)
            await self.store.audit.record(audit)
