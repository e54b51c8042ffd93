"""The roster view: who covers which zones now and on the next shift, and what reaches them.

`GET /api/roster[?site=…]` answers, for each site, the shifts running now and the shift(s) that
start next, with each zone's cover and each person's channels:

- console: how many live consoles the person has open now (`AlertBus.connected_users`), and
  whether their access shows the zones they cover (a nurse rostered on the west wing whose
  account sees only the east wing is not shown the west wing's alerts);
- phone push: their subscriptions (`push_subscriptions`) and when a phone last confirmed a
  push (`confirmed_at`). A phone counts as reachable while it confirmed a push, or subscribed,
  within `roster.push_confirm_within_h` (default 24 h), and its last push did not fail;
- a disabled account is reached by nothing.

A zone is `uncovered` when no assignment of the shifts covers it, `unreachable` (now only) when
it is covered but nothing reaches any of the people who cover it, `unstaffed` when the site's
roster lists it in `unstaffed_zones`, else `covered`.

Who may see it: callers with `roster.read` (supervisors, admins) for the sites they reach, and
the charge nurses named in a site's roster for that site (`alerts.read` and the roster's word).
Any other site is answered 404, like one that does not exist. The page is `/roster`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, Literal, Protocol

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import HTMLResponse, Response

from hub.access.permissions import Principal, not_found, refusal, require
from hub.access.users import UserStore
from hub.core.clock import Clock
from hub.core.store import Store
from hub.escalation.roster import Roster, Run
from hub.escalation.roster_watch import site_zones
from hub.http.deps import part
from hub.http.web_files import listed_file, web_file
from hub.notify import records as push_records
from hub.registry.index import Registry

PAGE_FILES: Final = frozenset({"roster.js"})
RosterReader = Annotated[
    Principal, Depends(require("roster.read", "alerts.read", doing="see the staff roster"))
]
When = Literal["now", "next"]


class LiveConsoles(Protocol):
    """What the view needs of the alert bus (hub.alerts.AlertBus)."""

    def connected_users(self) -> dict[str, int]: ...


@dataclass(frozen=True, slots=True)
class PushRow:
    created_at: float
    last_result: str | None
    last_at: float | None
    failures: int
    confirmed_at: float | None


def phone_status(row: PushRow, now: float, within_s: float) -> str:
    """`confirmed` (a push confirmed within the limit), `new` (subscribed within it, nothing
    confirmed yet), `failing` (its last push failed) or `stale` (silent for too long)."""
    if row.failures > 0:
        return "failing"
    if row.confirmed_at is not None and now - row.confirmed_at <= within_s:
        return "confirmed"
    if row.confirmed_at is None and now - row.created_at <= within_s:
        return "new"
    return "stale"


def push_reach(rows: Sequence[PushRow], now: float, within_s: float) -> dict[str, Any]:
    """A person's phones: reachable when one of them is `confirmed` or `new`."""
    statuses = [phone_status(row, now, within_s) for row in rows]
    order = ("confirmed", "new", "failing", "stale")
    best = min(statuses, key=order.index) if statuses else "none"
    confirmed = [row.confirmed_at for row in rows if row.confirmed_at is not None]
    attempts = [row for row in rows if row.last_at is not None]
    last = max(attempts, key=lambda row: row.last_at or 0.0) if attempts else None
    return {
        "subscriptions": len(rows),
        "reachable": best in ("confirmed", "new"),
        "status": best,
        "confirmed_at": max(confirmed) if confirmed else None,
        "subscribed_at": max((row.created_at for row in rows), default=None),
        "last_at": last.last_at if last else None,
        "last_result": last.last_result if last else None,
    }


@dataclass
class _Duty:
    """One person's place on the shifts shown."""

    user: str
    shifts: list[dict[str, Any]] = field(default_factory=list)
    zones: dict[When, set[str] | None] = field(default_factory=dict)  # None: the whole site


class RosterView:
    """Builds the roster document from the roster, the registry, the bus and the record."""

    def __init__(
        self,
        roster: Roster,
        registry: Registry,
        store: Store,
        consoles: LiveConsoles,
        users: UserStore,
        clock: Clock,
    ) -> None:
        self.roster = roster
        self.registry = registry
        self.store = store
        self.consoles = consoles
        self.users = users
        self.clock = clock

    @property
    def within_s(self) -> float:
        return self.roster.config.push_confirm_within_h * 3600

    async def document(self, sites: Iterable[str]) -> dict[str, Any]:
        now = self.clock.now()
        return {
            "at": now,
            "push_confirm_within_h": self.roster.config.push_confirm_within_h,
            "sites": [await self.site(site, now) for site in sites],
        }

    async def site(self, site: str, now: float) -> dict[str, Any]:
        running = self.roster.running(site, now)
        upcoming = self.roster.next_runs(site, now)
        next_at = upcoming[0].start_at if upcoming else None
        duties: dict[str, _Duty] = {}
        for run in running:
            self._collect(duties, "now", run)
        for run in upcoming:
            self._collect(duties, "next", run)
        people = {user: await self._person(site, duty, now) for user, duty in duties.items()}
        zones = site_zones(self.registry, site)
        now_zones = self._zones(site, zones, now, people, reach=True)
        next_zones = self._zones(site, zones, next_at, people, reach=False)
        registered = self.registry.sites.get(site)
        config = self.roster.site(site)
        return {
            "site": site,
            "name": registered.name if registered else site,
            "rostered": config is not None,
            "unstaffed_zones": list(config.unstaffed_zones) if config else [],
            "now": {"shifts": [self._shift(run) for run in running], "zones": now_zones},
            "next": {
                "at": next_at,
                "shifts": [self._shift(run) for run in upcoming],
                "zones": next_zones,
            },
            "people": list(people.values()),
            "uncovered_now": [z["zone"] for z in now_zones if z["status"] == "uncovered"],
            "unreachable_now": [z["zone"] for z in now_zones if z["status"] == "unreachable"],
            "uncovered_next": [z["zone"] for z in next_zones if z["status"] == "uncovered"],
            "unreachable_people": [p["user"] for p in people.values() if not p["reachable"]],
        }

    def _collect(self, duties: dict[str, _Duty], when: When, run: Run) -> None:
        shift = run.shift
        for assignment in shift.assignments:
            duty = duties.setdefault(assignment.user, _Duty(assignment.user))
            covers = None if not assignment.zones else set(assignment.zones)
            before = duty.zones.get(when, set())
            duty.zones[when] = None if before is None or covers is None else before | covers
            duty.shifts.append(
                {
                    "shift": shift.name,
                    "when": when,
                    "zones": None if covers is None else sorted(covers),
                    "charge_nurse": False,
                }
            )
        if shift.charge_nurse is not None:
            duty = duties.setdefault(shift.charge_nurse, _Duty(shift.charge_nurse))
            duty.shifts.append(
                {"shift": shift.name, "when": when, "zones": None, "charge_nurse": True}
            )

    async def _person(self, site: str, duty: _Duty, now: float) -> dict[str, Any]:
        user = await self.users.get(duty.user)
        disabled = user is None or user.disabled
        open_consoles = self.consoles.connected_users().get(duty.user, 0)
        grant = user.grant if user is not None else None
        viewer = Principal(duty.user, user.name, grant) if user and grant else None
        covered: set[str] = set()
        whole_site = False
        for zones in duty.zones.values():
            if zones is None:
                whole_site = True
            else:
                covered |= zones
        if whole_site:
            covered = {zone.id for zone in site_zones(self.registry, site)}
        hidden = sorted(z for z in covered if viewer is None or not viewer.sees_place(site, z))
        push = push_reach(await self._push_rows(duty.user), now, self.within_s)
        problems = []
        if user is None:
            problems.append("not a hub user")
        elif user.disabled:
            problems.append("account disabled")
        if hidden and not disabled:
            problems.append(f"their access does not show {', '.join(self._names(site, hidden))}")
        if push["status"] == "stale":
            problems.append("phone has not confirmed a push within the limit")
        elif push["status"] == "failing":
            problems.append("the last push to their phone failed")
        console_ok = open_consoles > 0 and not disabled
        push_ok = bool(push["reachable"]) and not disabled
        return {
            "user": duty.user,
            "name": user.name if user is not None else duty.user,
            "role": grant.role if grant is not None else None,
            "disabled": disabled,
            "shifts": duty.shifts,
            "console": {"open": open_consoles, "reachable": console_ok},
            "push": {**push, "reachable": push_ok},
            "hidden_zones": hidden,
            "reachable": console_ok or push_ok,
            "channels": [name for name, ok in (("console", console_ok), ("push", push_ok)) if ok],
            "problems": problems,
        }

    def _names(self, site: str, zones: Iterable[str]) -> list[str]:
        known = {zone.id: zone.name for zone in site_zones(self.registry, site)}
        return [known.get(zone, zone) for zone in zones]

    def _zones(
        self,
        site: str,
        zones: Sequence[Any],
        at: float | None,
        people: dict[str, dict[str, Any]],
        *,
        reach: bool,
    ) -> list[dict[str, Any]]:
        config = self.roster.site(site)
        rows = []
        for zone in zones:
            staff = self.roster.on_duty(site, at, zone.id) if at is not None else []
            reachable = [
                user
                for user in staff
                if user in people
                and people[user]["reachable"]
                and zone.id not in people[user]["hidden_zones"]
            ]
            if config is not None and zone.id in config.unstaffed_zones:
                status = "unstaffed"
            elif not staff:
                status = "uncovered"
            elif reach and not reachable:
                status = "unreachable"
            else:
                status = "covered"
            rows.append(
                {
                    "zone": zone.id,
                    "name": zone.name,
                    "kind": zone.kind,
                    "covered_by": staff,
                    "reachable_by": reachable,
                    "status": status,
                }
            )
        return rows

    def _shift(self, run: Run) -> dict[str, Any]:
        shift = run.shift
        return {
            "name": shift.name,
            "start": run.start_at,
            "end": run.end_at,
            "charge_nurse": shift.charge_nurse,
            "assignments": [
                {"user": a.user, "zones": list(a.zones) or None} for a in shift.assignments
            ],
        }

    async def _push_rows(self, username: str) -> list[PushRow]:
        rows = await push_records.phones_of(self.store, username)
        return [
            PushRow(
                created_at=float(row[0]),
                last_result=row[1],
                last_at=row[2],
                failures=int(row[3]),
                confirmed_at=row[4],
            )
            for row in rows
        ]


def readable_sites(
    caller: Principal, roster: Roster, registry: Registry, site: str | None
) -> list[str]:
    """The sites whose roster the caller may see: 404 for a site out of reach, 403 for staff
    who are not a charge nurse of it."""
    if site is not None:
        if site not in registry.sites or not caller.touches_site(site):
            raise not_found(f"site {site!r}")
        candidates = [site]
    else:
        candidates = sorted(s for s in registry.sites if caller.touches_site(s))
    if caller.can("roster.read"):
        return candidates
    allowed = [s for s in candidates if roster.is_charge_nurse(s, caller.username)]
    if not allowed:
        also = "the site's charge nurses"
        raise HTTPException(403, refusal(caller.role, ["roster.read"], also=also))
    return allowed


router = APIRouter()


@router.get("/roster", response_class=HTMLResponse)
async def page() -> Response:
    return web_file("roster.html")


@router.get("/roster/{name}")
async def page_file(name: str) -> Response:
    return listed_file(name, PAGE_FILES)


@router.get("/api/roster")
async def roster(
    caller: RosterReader,
    view: Annotated[RosterView, Depends(part(RosterView))],
    site: str | None = None,
) -> dict[str, Any]:
    """Who covers which zones now and next, and what reaches each of them."""
    return await view.document(readable_sites(caller, view.roster, view.registry, site))
