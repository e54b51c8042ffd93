"""Who may see and do what: roles, their permissions, and scopes over sites, zones and residents.

Every route declares the permission it needs with `Depends(require("..."))`. A role without
it gets 403 with a sentence a person can read (`refusal`): what the permission lets one do and
who may ("Only installers or administrators can run a walk test. A member of the care staff
may not do this."), never the permission's code. An object outside the caller's scope is
answered 404, exactly like a missing one, so that nobody learns which alerts or residents exist
elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

from fastapi import HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub.registry.index import Registry
from hub.registry.models import Bed, Room

Role = Literal["admin", "supervisor", "staff", "installer", "family"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)
Permission = Literal[
    "alerts.read",
    "alerts.act",
    "health.read",
    "figures.read",
    "roster.read",
    "registry.read",
    "registry.write",
    "residents.write",
    "devices.read",
    "provision",
    "walktest",
    "users.manage",
    "family",
]
PERMISSIONS: Final[tuple[Permission, ...]] = get_args(Permission)
ALL_SITES: Final = "*"
# What each permission lets a person do, in words (for refusals).
PERMISSION_WORDS: Final[Mapping[Permission, str]] = {
    "alerts.read": "see alerts",
    "alerts.act": "acknowledge or resolve alerts",
    "health.read": "see residents' health data",
    "figures.read": "see response-time figures",
    "roster.read": "see the staff roster",
    "registry.read": "see the sites, rooms and beds",
    "registry.write": "change sites, rooms, beds and devices",
    "residents.write": "admit, move or discharge residents",
    "devices.read": "see the devices",
    "provision": "set up gateways and devices",
    "walktest": "run a walk test",
    "users.manage": "manage user accounts",
    "family": "use the family app",
}
# Roles as people say them: all of them ("Only installers …"), one of them ("An installer …").
ROLE_PLURALS: Final[Mapping[Role, str]] = {
    "staff": "care staff",
    "supervisor": "supervisors",
    "installer": "installers",
    "family": "family members",
    "admin": "administrators",
}
ROLE_ONE: Final[Mapping[Role, str]] = {
    "staff": "a member of the care staff",
    "supervisor": "a supervisor",
    "installer": "an installer",
    "family": "a family member",
    "admin": "an administrator",
}

ROLE_PERMISSIONS: Final[Mapping[Role, frozenset[Permission]]] = {
    "admin": frozenset(PERMISSIONS) - {"family"},
    "supervisor": frozenset(
        {
            "alerts.read",
            "alerts.act",
            "health.read",
            "figures.read",
            "roster.read",
            "registry.read",
            "residents.write",
            "devices.read",
        }
    ),
    "staff": frozenset(
        {"alerts.read", "alerts.act", "health.read", "registry.read", "devices.read"}
    ),
    # Installers see places and devices and their test results, never health data.
    "installer": frozenset(
        {"registry.read", "registry.write", "devices.read", "provision", "walktest"}
    ),
    "family": frozenset({"family"}),
}


class Grant(BaseModel):
    """A role and what it reaches: `sites` (or "*" for all), `zones` as "site/zone", `residents`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role
    sites: tuple[str, ...] = ()
    zones: tuple[str, ...] = ()
    residents: tuple[str, ...] = ()

    @field_validator("zones")
    @classmethod
    def _site_slash_zone(cls, zones: tuple[str, ...]) -> tuple[str, ...]:
        for zone in zones:
            site, _, name = zone.partition("/")
            if not site or not name or "/" in name:
                raise ValueError(f"zone {zone!r} must be written SITE/ZONE")
        return zones

    def problems(self) -> list[str]:
        """What does not fit the role: a family member needs residents and nothing else."""
        places = bool(self.sites or self.zones)
        if self.role == "family":
            if not self.residents:
                return ["a family member needs at least one resident (residents: [CODE])"]
            if places:
                return ["a family member is scoped to residents only, not sites or zones"]
            return []
        if self.residents:
            return [f"residents: scope only family members, not a {self.role}"]
        if self.role != "admin" and not places:
            return [f'a {self.role} needs sites (or "*" for all) or zones']
        return []


class GrantFields(BaseModel):
    """The scope fields as they appear in the config file and the API, checked together."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    sites: list[str] = Field(default_factory=list, max_length=500)
    zones: list[str] = Field(default_factory=list, max_length=500)
    residents: list[str] = Field(default_factory=list, max_length=50)

    def grant(self) -> Grant:
        return Grant(
            role=self.role,
            sites=tuple(self.sites),
            zones=tuple(self.zones),
            residents=tuple(self.residents),
        )


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of a request: a user through the web, or an API token acting for its grant."""

    username: str
    name: str
    grant: Grant
    via: Literal["console", "api", "push"] = "console"

    @property
    def role(self) -> Role:
        return self.grant.role

    @property
    def permissions(self) -> frozenset[Permission]:
        return ROLE_PERMISSIONS[self.grant.role]

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    @property
    def all_sites(self) -> bool:
        return self.grant.role == "admin" or ALL_SITES in self.grant.sites

    def sees_site(self, site: str) -> bool:
        """The whole site: its figures, its site-wide alerts, every zone."""
        return self.all_sites or site in self.grant.sites

    def sees_place(self, site: str, zone: str | None) -> bool:
        if self.sees_site(site):
            return True
        return zone is not None and f"{site}/{zone}" in self.grant.zones

    def touches_site(self, site: str) -> bool:
        """At least a part of the site (a zone-scoped nurse still sees the site's name)."""
        return self.sees_site(site) or any(z.startswith(f"{site}/") for z in self.grant.zones)

    def sees_resident(self, code: str) -> bool:
        """Family scope only; staff reach residents through their beds (`resident_visible`)."""
        return self.grant.role == "admin" or code in self.grant.residents

    def sees_alert(self, alert: Mapping[str, Any]) -> bool:
        if self.grant.role == "family":
            code = alert.get("resident_code")
            return bool(code) and code in self.grant.residents and not alert.get("test")
        if not self.can("alerts.read"):
            return False
        return self.sees_place(str(alert["site"]), alert.get("zone"))

    def visible_alerts(self, alerts: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        return [alert for alert in alerts if self.sees_alert(alert)]


def bed_place(registry: Registry, bed_code: str) -> tuple[str, str] | None:
    """(site, zone) of a bed now."""
    data = registry.data
    bed = data.find(Bed, (bed_code,))
    if bed is None:
        return None
    room = data.find(Room, (bed.site, bed.room))
    return (bed.site, room.zone) if room is not None else None


def resident_visible(principal: Principal, registry: Registry, code: str) -> bool:
    """A resident is visible to their family, and to staff of the place of their bed now.

    A resident with no bed (waiting, discharged) is visible to admins and to those who see
    every site.
    """
    if principal.grant.role == "family":
        return principal.sees_resident(code)
    if not principal.can("health.read") and not principal.can("residents.write"):
        return False
    binding = registry.data.current_binding(code)
    if binding is None:
        return principal.all_sites
    place = bed_place(registry, binding.bed)
    return place is not None and principal.sees_place(*place)


def role_words(role: Role) -> str:
    """One person of a role, as people say it: "a supervisor", "a member of the care staff"."""
    return ROLE_ONE[role]


def either(words: Iterable[str]) -> str:
    """ "a", "a or b", "a, b or c"."""
    listed = list(words)
    return ", ".join(listed[:-1]) + " or " + listed[-1] if len(listed) > 1 else "".join(listed)


def who_may(permissions: Iterable[Permission]) -> str:
    """The roles holding any of `permissions`, in words: "installers or administrators"."""
    wanted = set(permissions)
    return either(
        plural for role, plural in ROLE_PLURALS.items() if ROLE_PERMISSIONS[role] & wanted
    )


def refusal(
    role: Role, permissions: Iterable[Permission], doing: str | None = None, also: str = ""
) -> str:
    """Why a caller of `role` is refused, as a sentence: who may do it (the roles holding any of
    `permissions`, and `also` others) and what (`doing`, else what the permissions let one do).
    "Only installers or administrators can run a walk test. An installer may not do this." """
    wanted = list(permissions)
    what = doing or either(dict.fromkeys(PERMISSION_WORDS[p] for p in wanted))
    who = f"{who_may(wanted).replace(' or ', ', ')} or {also}" if also else who_may(wanted)
    one = role_words(role)
    return f"Only {who} can {what}. {one[:1].upper()}{one[1:]} may not do this."


def not_found(what: str) -> HTTPException:
    return HTTPException(404, f"no {what}")


Dependency = Callable[[Request], Coroutine[Any, Any, Principal]]


async def authenticated(request: Request) -> Principal:
    """Any signed-in user or valid token; 401 otherwise."""
    principal: Principal = await request.app.state.auth.principal(request)
    return principal


def require(*permissions: Permission, doing: str | None = None) -> Dependency:
    """A dependency that lets through callers holding any one of `permissions`; the others are
    refused with a sentence (`refusal`), saying `doing` if given ("see the staff roster")."""
    unknown = set(permissions) - set(PERMISSIONS)
    if unknown or not permissions:
        raise ValueError(f"unknown permissions {sorted(unknown)}")

    async def dependency(request: Request) -> Principal:
        principal = await authenticated(request)
        if not any(principal.can(p) for p in permissions):
            raise HTTPException(403, refusal(principal.role, permissions, doing))
        return principal

    dependency.permissions = permissions  # type: ignore[attr-defined]
    return dependency
