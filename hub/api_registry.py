"""The registry's HTTP API: sites, zones, rooms, beds, residents, gateways and devices.

Every kind has list (`GET /api/<kind>s`, `?site=` to filter), get, create (`POST`) and update
(`PATCH`, only the fields given). Keys scoped to a site are addressed `/<site>/<id>`:
`/api/zones/sunrise/east`. Residents are admitted, transferred and discharged with
`POST /api/residents/<code>/admit|transfer|discharge`; a CSV document is imported with
`POST /api/registry/import/<residents|beds|devices>`. Every write needs a logged-in caller (and
the CSRF header with a session cookie) and is written to the audit log under the caller's name.

Refusals answer 404 (unknown record), 409 (code in use, bed occupied) or 422 (invalid fields),
with a `detail` a person can act on; a refused import lists each bad row under `problems`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from hub.access import Principal, authenticated
from hub.registry_csv import ImportRejected
from hub.registry_models import (
    RECORD_KINDS,
    BedCode,
    Conflict,
    Device,
    NotFound,
    RecordBase,
    RegistryError,
    Resident,
)
from hub.registry_service import Actor, RegistryService

PLURALS = {f"{kind}s": record for kind, record in RECORD_KINDS.items()}
Fields = Annotated[dict[str, Any], Body()]


Caller = Annotated[Principal, Depends(authenticated)]


def _actor(caller: Principal) -> Actor:
    return Actor(caller.username, caller.via)


class BindRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bed: BedCode
    at: float | None = None


class DischargeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: float | None = None


def install_registry_api(app: FastAPI, service: RegistryService) -> None:
    app.add_exception_handler(RegistryError, _refused)
    app.include_router(registry_router(service))


async def _refused(_: Request, exc: Exception) -> JSONResponse:
    body: dict[str, Any] = {"detail": str(exc)}
    status = 422
    if isinstance(exc, NotFound):
        status = 404
    elif isinstance(exc, Conflict):
        status = 409
    elif isinstance(exc, ImportRejected):
        body["problems"] = [asdict(problem) for problem in exc.problems]
    return JSONResponse(body, status_code=status)


def registry_router(service: RegistryService) -> APIRouter:
    router = APIRouter(prefix="/api")
    for plural, kind in PLURALS.items():
        _record_routes(router, service, plural, kind)
    _binding_routes(router, service)

    @router.post("/registry/import/{what}")
    async def import_csv(what: str, request: Request, caller: Caller) -> dict[str, Any]:
        text = (await request.body()).decode("utf-8-sig", errors="replace")
        return {"imported": await service.import_csv(what, text, _actor(caller))}

    return router


def _record_routes(
    router: APIRouter, service: RegistryService, plural: str, kind: type[RecordBase]
) -> None:
    def lookup(key: str) -> Any:
        parts = tuple(key.split("/"))
        if len(parts) != len(kind.KEY):
            raise NotFound(f"a {kind.KIND} is addressed by {'/'.join(kind.KEY)}, not {key!r}")
        return service.registry.data.get(kind, parts)

    if kind is not Device:  # GET /api/devices is hub.api's device list, with health

        @router.get(f"/{plural}", name=f"list_{plural}")
        async def list_records(_: Caller, site: str | None = None) -> dict[str, Any]:
            listed: dict[str, Any] = {plural: service.listing(kind, site)}
            if plural == "sites":
                listed["organisation"] = service.registry.organisation
            return listed

    @router.get(f"/{plural}/{{key:path}}", name=f"get_{kind.KIND}")
    async def get_record(key: str, _: Caller) -> dict[str, Any]:
        return service.describe(lookup(key), history=True)

    @router.post(f"/{plural}", name=f"create_{kind.KIND}", status_code=201)
    async def create_record(body: Fields, caller: Caller) -> dict[str, Any]:
        record = await service.create(kind, body, _actor(caller))
        return service.describe(record, history=True)

    @router.patch(f"/{plural}/{{key:path}}", name=f"update_{kind.KIND}")
    async def update_record(key: str, body: Fields, caller: Caller) -> dict[str, Any]:
        record = await service.update(kind, lookup(key).key, body, _actor(caller))
        return service.describe(record, history=True)


def _binding_routes(router: APIRouter, service: RegistryService) -> None:
    def resident(code: str) -> dict[str, Any]:
        return service.describe(service.registry.data.get(Resident, (code,)), history=True)

    @router.post("/residents/{code}/admit")
    async def admit(code: str, body: BindRequest, caller: Caller) -> dict[str, Any]:
        await service.admit(code, body.bed, body.at, _actor(caller))
        return resident(code)

    @router.post("/residents/{code}/transfer")
    async def transfer(code: str, body: BindRequest, caller: Caller) -> dict[str, Any]:
        await service.transfer(code, body.bed, body.at, _actor(caller))
        return resident(code)

    @router.post("/residents/{code}/discharge")
    async def discharge(
        code: str, caller: Caller, body: DischargeRequest | None = None
    ) -> dict[str, Any]:
        await service.discharge(code, (body or DischargeRequest()).at, _actor(caller))
        return resident(code)
