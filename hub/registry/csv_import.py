"""Bulk import of residents, beds and devices from CSV: every row checked, all or nothing.

Rows are applied in order to a working copy of the registry, so a row may use what an earlier
row created (a bed, then a resident admitted to it). A row that is wrong is reported with its
line number and the reason, and the import goes on checking the rest; if any row was wrong,
nothing at all is imported. Empty cells count as not given. Column names are case-insensitive.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Final

from hub.registry.data import Change, RegistryData
from hub.registry.models import (
    Bed,
    Device,
    Gateway,
    RegistryError,
    Resident,
    Room,
    Site,
    Zone,
    parse_record,
)

Row = dict[str, str]
_CONTACT: Final = re.compile(r"^contact([1-9])_(name|relation|phone|email|user|notify)$")


@dataclass(frozen=True, slots=True)
class RowProblem:
    line: int
    problem: str


class ImportRejected(RegistryError):
    """Some rows were wrong; nothing was imported."""

    def __init__(self, what: str, problems: list[RowProblem]) -> None:
        self.problems = problems
        super().__init__(
            f"{what}: {len(problems)} problem(s), nothing was imported: "
            + "; ".join(f"line {p.line}: {p.problem}" for p in problems)
        )

    def extra(self) -> dict[str, Any]:
        return {"problems": [asdict(problem) for problem in self.problems]}


def _given(row: Row, *columns: str, rename: dict[str, str] | None = None) -> dict[str, str]:
    """The row's non-empty cells among `columns`, under their record field names."""
    names = rename or {}
    return {names.get(c, c): row[c] for c in columns if c in row}


def _resident_row(data: RegistryData, row: Row, at: float) -> list[Change]:
    fields: dict[str, object] = {**_given(row, "code", "name", "care_level")}
    if "flags" in row:
        fields["flags"] = [flag for flag in re.split(r"[;,\s]+", row["flags"]) if flag]
    fields["contacts"] = _contacts(row)
    resident = parse_record(Resident, fields)
    changes = [data.create(resident)]
    if "bed" in row:
        changes += data.admit(resident.code, row["bed"], at)
    return changes


def _contacts(row: Row) -> list[dict[str, object]]:
    numbered: dict[int, dict[str, object]] = {}
    for column, value in row.items():
        match = _CONTACT.match(column)
        if match:
            field = match[2]
            # Several Apprise URLs in one cell, separated by spaces (a URL has none).
            numbered.setdefault(int(match[1]), {})[field] = (
                value.split() if field == "notify" else value
            )
    return [numbered[n] for n in sorted(numbered)]


def _bed_row(data: RegistryData, row: Row, at: float) -> list[Change | None]:
    site, zone, room = row["site"], row["zone"], row["room"]
    changes: list[Change | None] = []
    if "site_name" in row:
        changes.append(data.ensure(Site, {"id": site, "name": row["site_name"]}))
    zone_fields = _given(
        row, "zone_name", "zone_kind", rename={"zone_name": "name", "zone_kind": "kind"}
    )
    changes.append(data.ensure(Zone, {"site": site, "id": zone, **zone_fields}, {"name": zone}))
    room_fields = _given(
        row, "room_name", "room_kind", rename={"room_name": "name", "room_kind": "kind"}
    )
    changes.append(
        data.ensure(Room, {"site": site, "id": room, "zone": zone, **room_fields}, {"name": room})
    )
    bed = {"code": row["bed"], "site": site, "room": room, **_given(row, "label")}
    changes.append(data.create(parse_record(Bed, bed)))
    return changes


def _device_row(data: RegistryData, row: Row, at: float) -> list[Change | None]:
    gateway = {
        "site": row["site"],
        "id": row["gateway"],
        **_given(row, "gateway_name", rename={"gateway_name": "name"}),
    }
    device = parse_record(
        Device, _given(row, "id", "site", "gateway", "profile", "bed", "room", "role")
    )
    return [data.ensure(Gateway, gateway), data.create(device)]


@dataclass(frozen=True, slots=True)
class Layout:
    required: tuple[str, ...]
    optional: tuple[str, ...]
    apply: Callable[[RegistryData, Row, float], list[Change] | list[Change | None]]

    def check_header(self, header: list[str]) -> str | None:
        unknown = [
            c for c in header if c not in self.optional + self.required and not _CONTACT.match(c)
        ]
        missing = [c for c in self.required if c not in header]
        if missing:
            return f"missing column(s) {', '.join(missing)}"
        if unknown:
            allowed = ", ".join(self.required + self.optional)
            return f"unknown column(s) {', '.join(unknown)}; the columns are {allowed}"
        return None


LAYOUTS: Final[dict[str, Layout]] = {
    "residents": Layout(("code", "name"), ("care_level", "flags", "bed"), _resident_row),
    "beds": Layout(
        ("site", "zone", "room", "bed"),
        ("label", "site_name", "zone_name", "zone_kind", "room_name", "room_kind"),
        _bed_row,
    ),
    "devices": Layout(
        ("id", "site", "gateway", "profile"), ("bed", "room", "role", "gateway_name"), _device_row
    ),
}


def import_csv(data: RegistryData, what: str, text: str, at: float) -> list[Change]:
    """Apply every row of a CSV document to `data`; raise ImportRejected if any row is wrong."""
    layout = LAYOUTS.get(what)
    if layout is None:
        raise RegistryError(f"cannot import {what!r}; choose one of {', '.join(LAYOUTS)}")
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    header = [cell.strip().lower() for cell in next(reader, [])]
    problem = layout.check_header(header) if header else "the file is empty"
    if problem is not None:
        raise ImportRejected(what, [RowProblem(1, problem)])
    changes: list[Change] = []
    problems: list[RowProblem] = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        try:
            changes += _apply_row(layout, data, header, cells, at)
        except RegistryError as exc:
            problems.append(RowProblem(reader.line_num, str(exc)))
    if problems:
        raise ImportRejected(what, problems)
    if not changes:
        raise ImportRejected(what, [RowProblem(1, "no rows to import")])
    return changes


def _apply_row(
    layout: Layout, data: RegistryData, header: list[str], cells: list[str], at: float
) -> list[Change]:
    if len(cells) > len(header):
        raise RegistryError(f"{len(cells)} cells, but the header names {len(header)} columns")
    row = {name: cell.strip() for name, cell in zip(header, cells, strict=False) if cell.strip()}
    missing = [c for c in layout.required if c not in row]
    if missing:
        raise RegistryError(f"empty {', '.join(missing)}")
    return [change for change in layout.apply(data, row, at) if change is not None]
