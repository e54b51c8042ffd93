"""HTTP routes of signing in: sign in, sign out, and who the caller is (their name, role,
permissions, the CSRF token of their session and the sites they reach)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from hub.access.auth import Authenticator
from hub.access.permissions import Principal, authenticated
from hub.http.deps import part
from hub.registry.index import Registry


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


Caller = Annotated[Principal, Depends(authenticated)]
Auth = Annotated[Authenticator, Depends(part(Authenticator))]
Registries = Annotated[Registry, Depends(part(Registry))]

router = APIRouter()


def whoami(caller: Principal, csrf: str, registry: Registry) -> dict[str, Any]:
    return {
        "user": caller.username,
        "name": caller.name,
        **caller.grant.model_dump(),
        "permissions": sorted(caller.permissions),
        "csrf_token": csrf,
        "sites": [
            {"id": site.id, "name": site.name}
            for site in registry.sites.values()
            if caller.touches_site(site.id)
        ],
    }


@router.post("/api/login")
async def login(
    body: LoginRequest, request: Request, auth: Auth, registry: Registries
) -> dict[str, Any]:
    user = await auth.login(request, body.username, body.password)
    csrf = await auth.start_session(request, user)
    return whoami(Principal(user.username, user.name, user.grant), csrf, registry)


@router.post("/api/logout")
async def logout(request: Request, caller: Caller, auth: Auth) -> dict[str, str]:
    await auth.end_session(request)  # every copy of the cookie, not just this browser's
    await auth.record(caller.username, "logout", {})
    return {"user": caller.username}


@router.get("/api/me")
async def me(request: Request, caller: Caller, registry: Registries) -> dict[str, Any]:
    return whoami(caller, str(request.session.get("csrf", "")), registry)
