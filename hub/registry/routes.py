"""The registry's HTTP API: sites, zones, rooms, beds, residents, gateways and devices.

Every kind has list (`GET /api/<kind>s`, `?site=` to filter), get, create (`POST`) and update
(`PATCH`, only the fields given); the device list (`GET /api/devices`, `devices.read`) carries
each device's health as last reported. Keys scoped to a site are addressed `/<site>/<id>`:
`/api/zones/sunrise/east`. Residents are admitted, transferred and discharged with
`POST /api/residents/<code>/admit|transfer|discharge`; a CSV document is imported with
`POST /api/registry/import/<residents|beds|devices>`. Every change is written to the audit log
under the caller's name. `GET /api/registry/coverage` says which rules each bed's devices can
drive, with a warning for each rule switched on that they cannot (docs/rules-and-devices.md);
a bed read alone carries its own (`rules`, `warnings`).

Who may do what (hub/access/permissions.py, docs/access.md): places and devices are read with
`registry.read` and changed with `registry.write`; residents are read with `health.read` (or
`residents.write`) and changed, admitted, transferred and discharged with `residents.write`.
Lists hold only what the caller's scope reaches; a record outside it is answered 404 exactly
like a missing one, and a change that would touch a place outside it is refused whole with 404.
Callers who may not read health data (installers) never see who is in a bed.

Refusals answer 403 (role without the right), 404 (unknown record), 409 (code in use, bed
occupied) or 422 (invalid fields), with a `detail` a person can act on; a refused import lists
each bad row under `problems`.
"""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict

from contract.wire import Time
from hub.access.permissions import Dependency, Permission, Principal, refusal, require
from hub.access.scope import (
    missing,
    readable,
    resident_reachable,
    scope_check,
    seen_bed,
    shown_record,
)
from hub.http.deps import part
from hub.registry.contact_urls import masked_contacts
from hub.registry.csv_import import ImportRejected, RowProblem
from hub.registry.data import RegistryData
from hub.registry.index import Placement, Registry
from hub.registry.models import (
    RECORD_KINDS,
    Bed,
    BedCode,
    Conflict,
    Device,
    NotFound,
    RecordBase,
    Resident,
    Room,
    Site,
    Zone,
)
from hub.registry.service import Actor, RegistryService
from hub.telemetry.records import TelemetryRecords

PLURALS = {f"{kind}s": record for kind, record in RECORD_KINDS.items()}
Fields = Annotated[dict[str, Any], Body()]

ResidentWriter = Annotated[Principal, Depends(require("residents.write"))]
PlaceReader = Annotated[Principal, Depends(require("registry.read"))]
Importer = Annotated[
    Principal,
    Depends(require("registry.write", "residents.write", doing="import records from a file")),
]
Service = Annotated[RegistryService, Depends(part(RegistryService))]
DeviceReader = Annotated[Principal, Depends(require("devices.read"))]


def _actor(caller: Principal) -> Actor:
    return Actor(caller.username, caller.via)


class BindRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bed: BedCode
    at: Time | None = None


class DischargeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: Time | None = None


def unseen_rows(caller: Principal, registry: Registry, what: str, text: str) -> None:
    """Refuse CSV rows naming a place outside the caller's scope (a site, zone, room or bed),
    or a code in use there, before the import's own checks would say what is there: where a
    bed is, whose a code is, what another site's zone or room is called."""
    problems: list[RowProblem] = []
    rows = csv.DictReader(io.StringIO(text))
    for row in rows:
        cells = {str(name).strip().lower(): (value or "").strip() for name, value in row.items()}
        try:
            problem = _unseen_in_row(caller, registry, what, cells)
        except NotFound as exc:  # refused whole, as the scope check refuses such a change
            raise NotFound(f"{what}: line {rows.line_num}: {exc}") from None
        if problem is not None:
            problems.append(RowProblem(rows.line_num, problem))
    if problems:
        raise ImportRejected(what, problems)


def _unseen_in_row(
    caller: Principal, registry: Registry, what: str, cells: dict[str, str]
) -> str | None:
    data = registry.data
    existing: RecordBase | None = None
    if what == "residents" and cells.get("code"):
        existing = data.find(Resident, (cells["code"],))
    elif what == "beds" and cells.get("bed"):
        existing = data.find(Bed, (cells["bed"],))
    if existing is not None and not readable(caller, registry, existing):
        return f"{existing.KIND} {'/'.join(existing.key)} is already in use"
    place = _unseen_place(caller, data, what, cells)
    if place is not None:
        return place
    if what != "beds" and cells.get("bed"):
        try:
            seen_bed(data, caller, cells["bed"])
        except NotFound as exc:
            return str(exc)
    return None


def _unseen_place(
    caller: Principal, data: RegistryData, what: str, cells: dict[str, str]
) -> str | None:
    """A beds or devices row's site, zone or room outside the caller's scope: NotFound, worded
    as if it did not exist; a room id taken in a zone they do not see is in use."""
    site = cells.get("site")
    if what not in ("beds", "devices") or not site:
        return None
    if not caller.touches_site(site):
        raise missing(Site, (site,))
    zone = cells.get("zone")
    if what == "beds" and zone and not caller.sees_place(site, zone):
        raise missing(Zone, (site, zone))
    room = data.find(Room, (site, cells.get("room", "")))
    if room is not None and not caller.sees_place(room.site, room.zone):
        if what == "beds":
            return f"room {site}/{room.id} is already in use"
        raise missing(Room, room.key)
    return None


def shown(
    caller: Principal, service: RegistryService, record: RecordBase, history: bool
) -> dict[str, Any]:
    """A record as the caller may see it (hub/access/scope.py), a resident's contacts masked
    for those who may not change residents."""
    if isinstance(record, Resident) and not caller.can("residents.write"):
        # Apprise URLs carry passwords and tokens
        return masked_contacts(service.describe(record, history=history))
    return shown_record(caller, service, record, history)


# --- routes -------------------------------------------------------------------------------


router = APIRouter(prefix="/api")


def _record_routes(
    plural: str, kind: type[RecordBase], reading: Dependency, writing: Dependency
) -> None:
    def lookup(registry: Registry, key: str, caller: Principal) -> Any:
        parts = tuple(key.split("/"))
        if len(parts) != len(kind.KEY):
            raise NotFound(f"a {kind.KIND} is addressed by {'/'.join(kind.KEY)}, not {key!r}")
        record = registry.data.find(kind, parts)
        if record is None or not readable(caller, registry, record):
            raise missing(kind, parts)
        return record

    # A key of one part stops at the next "/": /api/residents/{code}/timeline is another route.
    key_param = "{key:path}" if len(kind.KEY) > 1 else "{key}"
    # The permission differs by kind, so the dependency is given as a default, not Annotated.
    may_read, may_write = Depends(reading), Depends(writing)
    if kind is not Device:  # GET /api/devices is the device list below, with health

        @router.get(f"/{plural}", name=f"list_{plural}")
        async def list_records(
            service: Service, site: str | None = None, caller: Principal = may_read
        ) -> dict[str, Any]:
            registry = service.registry
            records = sorted(registry.data.all(kind), key=lambda r: r.key)
            if site is not None and "site" in kind.model_fields:
                records = [r for r in records if getattr(r, "site", None) == site]
            visible = [r for r in records if readable(caller, registry, r)]
            listed: dict[str, Any] = {plural: [shown(caller, service, r, False) for r in visible]}
            if plural == "sites":
                listed["organisation"] = registry.organisation
            return listed

    @router.get(f"/{plural}/{key_param}", name=f"get_{kind.KIND}")
    async def get_record(
        key: str, service: Service, caller: Principal = may_read
    ) -> dict[str, Any]:
        return shown(caller, service, lookup(service.registry, key, caller), True)

    def unseen_clash(registry: Registry, body: dict[str, Any], caller: Principal) -> None:
        """A code in use outside the caller's scope is refused without saying where or whose."""
        key = tuple(str(body.get(name)) for name in kind.KEY)
        existing = registry.data.find(kind, key)
        if existing is not None and not readable(caller, registry, existing):
            raise Conflict(f"{kind.KIND} {'/'.join(key)} is already in use")

    @router.post(f"/{plural}", name=f"create_{kind.KIND}", status_code=201)
    async def create_record(
        body: Fields, service: Service, caller: Principal = may_write
    ) -> dict[str, Any]:
        registry = service.registry
        unseen_clash(registry, body, caller)
        seen_bed(registry.data, caller, body.get("bed"))
        record = await service.create(kind, body, _actor(caller), scope_check(caller))
        return shown(caller, service, record, True)

    @router.patch(f"/{plural}/{key_param}", name=f"update_{kind.KIND}")
    async def update_record(
        key: str, body: Fields, service: Service, caller: Principal = may_write
    ) -> dict[str, Any]:
        old = lookup(service.registry, key, caller)
        seen_bed(service.registry.data, caller, body.get("bed"))
        record = await service.update(kind, old.key, body, _actor(caller), scope_check(caller))
        return shown(caller, service, record, True)


def _kind_routes() -> None:
    for plural, kind in PLURALS.items():
        if kind is Resident:
            reading = require("health.read", "residents.write", doing="see residents")
            writing = require("residents.write")
        else:
            reading, writing = require("registry.read"), require("registry.write")
        _record_routes(plural, kind, reading, writing)


_kind_routes()


def reachable(registry: Registry, code: str, caller: Principal) -> None:
    if registry.data.find(Resident, (code,)) is None or not resident_reachable(
        caller, registry.data, code
    ):
        raise missing(Resident, (code,))


def resident(service: RegistryService, code: str) -> dict[str, Any]:
    return service.describe(service.registry.data.get(Resident, (code,)), history=True)


@router.post("/residents/{code}/admit")
async def admit(
    code: str, body: BindRequest, caller: ResidentWriter, service: Service
) -> dict[str, Any]:
    reachable(service.registry, code, caller)
    seen_bed(service.registry.data, caller, body.bed)
    await service.admit(code, body.bed, body.at, _actor(caller), scope_check(caller))
    return resident(service, code)


@router.post("/residents/{code}/transfer")
async def transfer(
    code: str, body: BindRequest, caller: ResidentWriter, service: Service
) -> dict[str, Any]:
    reachable(service.registry, code, caller)
    seen_bed(service.registry.data, caller, body.bed)
    await service.transfer(code, body.bed, body.at, _actor(caller), scope_check(caller))
    return resident(service, code)


@router.post("/residents/{code}/discharge")
async def discharge(
    code: str, caller: ResidentWriter, service: Service, body: DischargeRequest | None = None
) -> dict[str, Any]:
    reachable(service.registry, code, caller)
    at = (body or DischargeRequest()).at
    await service.discharge(code, at, _actor(caller), scope_check(caller))
    return resident(service, code)


@router.post("/registry/import/{what}")
async def import_csv(
    what: str, request: Request, caller: Importer, service: Service
) -> dict[str, Any]:
    needed: Permission = "residents.write" if what == "residents" else "registry.write"
    if not caller.can(needed):
        raise HTTPException(403, refusal(caller.role, [needed]))
    text = (await request.body()).decode("utf-8-sig", errors="replace")
    if not caller.all_sites:
        unseen_rows(caller, service.registry, what, text)
    counts = await service.import_csv(what, text, _actor(caller), scope_check(caller))
    return {"imported": counts}


@router.get("/registry/coverage")
async def rule_coverage(
    caller: PlaceReader,
    service: Service,
    site: str | None = None,
    zone: str | None = None,
    bed: str | None = None,
    gateway: str | None = None,
) -> dict[str, Any]:
    """Which rules the devices of each bed the caller sees can drive (`beds`, each rule
    `driven`, `off` or `cannot`), and the `warnings` for rules on that they cannot drive,
    of beds, bathrooms and zones; narrowed to a site, zone, bed or gateway."""
    data = service.registry.data
    if site is not None and not caller.touches_site(site):
        raise missing(Site, (site,))
    if bed is not None:
        found = data.find(Bed, (bed,))
        if found is None or not readable(caller, service.registry, found):
            raise missing(Bed, (bed,))
    # A whole site of thousands of beds takes a while: off the event loop.
    covered = await asyncio.to_thread(
        service.coverage,
        site=site,
        zone=zone,
        bed=bed,
        gateway=gateway,
        visible=caller.sees_place,
    )
    return covered.as_dict()


@router.get("/devices")
async def list_devices(
    caller: DeviceReader,
    telemetry: Annotated[TelemetryRecords, Depends(part(TelemetryRecords))],
    service: Service,
) -> dict[str, list[dict[str, Any]]]:
    """The devices the caller may see, where they are, and their health as last reported."""
    health = await telemetry.device_health()
    devices = [
        {**_device_view(place, caller), "health": health.get(place.device)}
        for place in service.registry.devices()
        if caller.sees_place(place.site, place.zone)
    ]
    return {"devices": devices}


def _device_view(place: Placement, caller: Principal) -> dict[str, Any]:
    """Where a device is; who it watches only for those who may read health data."""
    view = asdict(place)
    if not caller.can("health.read"):
        view.update(resident_code=None, resident_name=None)
    return view
