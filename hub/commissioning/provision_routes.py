"""Provisioning through the API: gateways with their credentials, devices, and bed labels.

- `POST /api/provision/gateways` `{site, gateway, name?}`: registers the gateway (if new), sets
  a new broker password and its ACL block, and answers with the bundle's files (`edge.yaml`
  holds the password: this answer is the only place it is shown).
- `POST /api/provision/devices` `{site, gateway, id, profile, mac?, key?, port?, bed?, room?,
  role?}`: checks the device as `carewatch provision device` does and registers it.
- `GET /api/labels/{site}.pdf`: a sheet of every bed's label; `GET /api/labels/bed/{code}.png`:
  one label.

Every route needs the `provision` permission (installers, admins) and a place in the caller's
scope: a gateway of a site they see whole, a device for a bed or room of their sites or zones,
the labels of the beds they see. Anything else is answered 404, like a missing one; other
refusals answer like the registry's (404, 409, 422).
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from hub.access.permissions import Principal, bed_place, require
from hub.access.scope import missing, readable, shown_record
from hub.commissioning.provisioning import Address, DeviceRequest, Provisioner
from hub.http.deps import part
from hub.registry.index import Registry
from hub.registry.labels import bed_png, label_for, site_labels, site_pdf
from hub.registry.models import Bed, Room, Site
from hub.registry.service import Actor

Caller = Annotated[Principal, Depends(require("provision"))]
Provisioning = Annotated[Provisioner, Depends(part(Provisioner))]


class GatewayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: str
    gateway: str
    name: str | None = None


class DeviceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: str
    gateway: str
    id: str
    profile: str
    mac: str | None = None
    key: str | None = None
    port: str | None = None
    bed: str | None = None
    room: str | None = None
    role: str | None = None


def check_device_place(caller: Principal, registry: Registry, body: DeviceBody) -> None:
    """404 unless the device's bed or room is in the caller's scope (or unknown: the
    provisioner then says what is missing)."""
    if not caller.touches_site(body.site):
        raise missing(Site, (body.site,))
    if body.bed is not None:
        place = bed_place(registry, body.bed)
        if place is not None and not caller.sees_place(*place):
            raise missing(Bed, (body.bed,))
    elif body.room is not None:
        room = registry.data.find(Room, (body.site, body.room))
        if room is not None and not caller.sees_place(room.site, room.zone):
            raise missing(Room, (body.site, body.room))


router = APIRouter(prefix="/api")


def seen_bed(registry: Registry, code: str, caller: Principal) -> str:
    if not bed_place_seen(caller, registry, code):
        raise missing(Bed, (code,))
    return code


@router.post("/provision/gateways", status_code=201)
async def gateway(
    body: GatewayRequest, caller: Caller, provisioner: Provisioning
) -> dict[str, Any]:
    if not caller.sees_site(body.site):
        raise missing(Site, (body.site,))
    actor = Actor(caller.username, caller.via)
    with tempfile.TemporaryDirectory(prefix="carewatch-bundle-") as out:
        bundle = await provisioner.gateway(body.site, body.gateway, Path(out), actor, body.name)
        files = {path.name: path.read_text(encoding="utf-8") for path in bundle.files}
    return {"username": bundle.username, "files": files}


@router.post("/provision/devices", status_code=201)
async def device(body: DeviceBody, caller: Caller, provisioner: Provisioning) -> dict[str, Any]:
    registry = provisioner.service.registry
    check_device_place(caller, registry, body)
    request = DeviceRequest(
        site=body.site,
        gateway=body.gateway,
        id=body.id,
        profile=body.profile,
        address=Address(body.mac, body.key, body.port),
        bed=body.bed,
        room=body.room,
        role=body.role,
    )
    created = await provisioner.device(
        request,
        Actor(caller.username, caller.via),
        visible=lambda other: readable(caller, registry, other),
    )
    return shown_record(caller, provisioner.service, created, True)


@router.get("/labels/bed/{code}.png")
async def bed_label(code: str, caller: Caller, provisioner: Provisioning) -> Response:
    registry = provisioner.service.registry
    label = label_for(registry, seen_bed(registry, code, caller), provisioner.public_url)
    return Response(await asyncio.to_thread(bed_png, label), media_type="image/png")


@router.get("/labels/{site}.pdf")
async def site_sheet(site: str, caller: Caller, provisioner: Provisioning) -> Response:
    if not caller.touches_site(site):
        raise missing(Site, (site,))
    registry = provisioner.service.registry
    every = site_labels(registry, site, provisioner.public_url)
    labels = [label for label in every if bed_place_seen(caller, registry, label.code)]
    pdf = await asyncio.to_thread(site_pdf, labels)
    headers = {"Content-Disposition": f'inline; filename="{site}-labels.pdf"'}
    return Response(pdf, media_type="application/pdf", headers=headers)


def bed_place_seen(caller: Principal, registry: Registry, code: str) -> bool:
    place = bed_place(registry, code)
    return place is not None and caller.sees_place(*place)
