"""Provisioning through the API: gateways with their credentials, devices, and bed labels.

- `POST /api/provision/gateways` `{site, gateway, name?}`: registers the gateway (if new), sets
  a new broker password and its ACL block, and answers with the bundle's files (`edge.yaml`
  holds the password: this answer is the only place it is shown).
- `POST /api/provision/devices` `{site, gateway, id, profile, mac?, key?, port?, bed?, room?,
  role?}`: checks the device as `carewatch provision device` does and registers it.
- `GET /api/labels/{site}.pdf`: a sheet of every bed's label; `GET /api/labels/bed/{code}.png`:
  one label.

Every route needs a logged-in caller; refusals answer like the registry's (404, 409, 422).
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from hub.access import Principal, require
from hub.labels import bed_png, label_for, site_labels, site_pdf
from hub.provisioning import Address, DeviceRequest, Provisioner
from hub.registry_service import Actor

Caller = Annotated[Principal, Depends(require("provision"))]


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


def provision_routes(provisioner: Provisioner) -> APIRouter:
    router = APIRouter(prefix="/api")

    @router.post("/provision/gateways", status_code=201)
    async def gateway(body: GatewayRequest, caller: Caller) -> dict[str, Any]:
        actor = Actor(caller.username, caller.via)
        with tempfile.TemporaryDirectory(prefix="carewatch-bundle-") as out:
            bundle = await provisioner.gateway(body.site, body.gateway, Path(out), actor, body.name)
            files = {path.name: path.read_text(encoding="utf-8") for path in bundle.files}
        return {"username": bundle.username, "files": files}

    @router.post("/provision/devices", status_code=201)
    async def device(body: DeviceBody, caller: Caller) -> dict[str, Any]:
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
        created = await provisioner.device(request, Actor(caller.username, caller.via))
        return provisioner.service.describe(created, history=True)

    @router.get("/labels/bed/{code}.png")
    async def bed_label(code: str, _: Caller) -> Response:
        label = label_for(provisioner.service.registry, code, provisioner.public_url)
        return Response(await asyncio.to_thread(bed_png, label), media_type="image/png")

    @router.get("/labels/{site}.pdf")
    async def site_sheet(site: str, _: Caller) -> Response:
        labels = site_labels(provisioner.service.registry, site, provisioner.public_url)
        pdf = await asyncio.to_thread(site_pdf, labels)
        headers = {"Content-Disposition": f'inline; filename="{site}-labels.pdf"'}
        return Response(pdf, media_type="application/pdf", headers=headers)

    return router
