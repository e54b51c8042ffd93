"""The unwatched-zone alarm: a staffed zone with no armed console open is a trouble alert.

Every staff console page tells the hub that it is there and whether it can sound: it opens its
live stream as `GET /api/stream?console=<id>&armed=0|1` and reports a change of its sound with
`POST /api/consoles/armed` (hub/console/presence_routes.py, docs/console-station.md). `Consoles`
keeps them in memory while their stream is open; a stream that ends (the page closed, the network
gone, the session ended) takes its console away at once. A hub restart starts with none: the
pages reconnect within seconds, and the grace below covers that.

A console **watches** a zone while its stream is open, it is armed, and its signed-in user sees
the alerts of that zone (`Principal.sees_place`: a nurse of the east wing watches the east
wing; someone who sees every site watches every zone of every site).

A zone is **staffed** while a running shift of its site's roster covers it (`Roster.on_duty`,
as the escalation reaches people) and it is not one of the roster's `unstaffed_zones`. A site
without a roster has no staffed zones: it is never an alarm.

A staffed zone that no console watches starts a durable grace timer (kind `console_grace`,
keyed `<site>/<zone>`, the watch setting `console_grace_s`, default 60 s). If the zone is still
staffed and unwatched when it fires, the trouble alert `zone_unwatched` opens with the subject
`zone:<site>/<zone>` ("No console is watching West wing") and escalates like any other alert.
It resolves by itself (outcome `self_cleared`) as soon as a console watches the zone or the
zone stops being staffed. The timer is consumed in the alert's own transaction, so a restart
neither loses nor repeats it; at start every staffed zone gets a full grace again, since no
console has had the time to reconnect.

Each rostered site has one more durable timer (kind `console_shift`, keyed by the site) for its
next shift change, when zones start or stop being staffed. A registry change checks every site.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from hub.access.permissions import Principal
from hub.alerts.lifecycle import ACTIVE_STATES, AlertService, Trigger
from hub.core.clock import Clock
from hub.core.timers import Timer, Timers
from hub.escalation.roster import Roster
from hub.escalation.roster_watch import subject_of, zone_of
from hub.registry.index import Registry
from hub.registry.models import Zone
from hub.watch.settings import WatchPolicy

log = logging.getLogger("carewatch.hub.console_watch")

RULE: Final = "zone_unwatched"
GRACE: Final = "console_grace"
SHIFT: Final = "console_shift"
# What a console page may call itself (it makes a random UUID once per page load).
CONSOLE_ID: Final = r"^[A-Za-z0-9-]{8,64}$"


@dataclass(slots=True)
class Console:
    """One console page with its live stream(s) open: who signed in, and whether it can sound.

    `owner` names the session (or API token) that opened it; `since` is when it connected or
    its sound last changed (hub clock)."""

    id: str
    principal: Principal
    owner: str
    armed: bool
    since: float
    streams: set[int] = field(default_factory=set)

    def covers(self, site: str, zone: str) -> bool:
        """Whether its user sees the alerts of the zone (it watches it while armed)."""
        return self.principal.can("alerts.read") and self.principal.sees_place(site, zone)

    def watches(self, site: str, zone: str) -> bool:
        return self.armed and self.covers(site, zone)


class Consoles:
    """The consoles connected now, in memory; `changed` is set at every change."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._consoles: dict[str, Console] = {}
        self._streams = itertools.count(1)
        self.changed = asyncio.Event()

    def open(
        self, console_id: str, principal: Principal, owner: str, armed: bool
    ) -> Callable[[], None]:
        """A stream of the console opened; call what it returns when the stream ends (it is
        synchronous: it runs as the stream is cancelled). Another session that opens the same
        console id (a sign-in on the same page) takes the console over."""
        now = self._clock.now()
        known = self._consoles.get(console_id)
        if known is None or known.owner != owner:
            known = Console(console_id, principal, owner, armed, now)
            self._consoles[console_id] = known
        elif known.armed != armed:
            known.armed, known.since = armed, now
        stream = next(self._streams)
        known.streams.add(stream)
        self.changed.set()
        return lambda: self._close(console_id, stream)

    def _close(self, console_id: str, stream: int) -> None:
        """A stream ended; the console is gone with its last stream."""
        known = self._consoles.get(console_id)
        if known is None or stream not in known.streams:
            return
        known.streams.discard(stream)
        if not known.streams:
            del self._consoles[console_id]
        self.changed.set()

    def arm(self, console_id: str, owner: str, armed: bool) -> bool:
        """Set whether the console can sound; False when `owner` has no such console open."""
        known = self._consoles.get(console_id)
        if known is None or known.owner != owner:
            return False
        if known.armed != armed:
            known.armed, known.since = armed, self._clock.now()
            self.changed.set()
        return True

    def listed(self) -> list[Console]:
        """Every console, oldest first."""
        return sorted(self._consoles.values(), key=lambda c: (c.since, c.id))

    def watching(self, site: str, zone: str) -> int:
        """How many consoles watch the zone now."""
        return sum(1 for c in self._consoles.values() if c.watches(site, zone))


@dataclass(frozen=True, slots=True)
class ZoneWatch:
    """A zone as the console watch sees it now."""

    site: str
    zone: Zone
    staffed: bool
    watched_by: int


class ConsoleWatch:
    """Opens and clears `zone_unwatched` alerts as consoles come and go and shifts change."""

    def __init__(
        self,
        consoles: Consoles,
        roster: Roster,
        registry: Registry,
        alerts: AlertService,
        timers: Timers,
        policy: WatchPolicy,
        clock: Clock,
    ) -> None:
        self.consoles = consoles
        self.registry = registry
        self.clock = clock
        self._roster = roster
        self._alerts = alerts
        self._timers = timers
        self._policy = policy
        self._lock = asyncio.Lock()
        timers.on(GRACE, self._grace_over)
        timers.on(SHIFT, self._shift_change)

    def staffed(self, site: str, zone: str, at: float) -> bool:
        config = self._roster.site(site)
        return (
            config is not None
            and zone not in config.unstaffed_zones
            and bool(self._roster.on_duty(site, at, zone))
        )

    def zones(self, at: float) -> list[ZoneWatch]:
        """Every zone of every site, staffed or not, and how many consoles watch it."""
        return [
            ZoneWatch(
                site,
                zone,
                self.staffed(site, zone.id, at),
                self.consoles.watching(site, zone.id),
            )
            for site, zones in sorted(self._zones().items())
            for zone in zones
        ]

    async def start(self) -> None:
        """Check every site, giving each staffed zone its full grace (no console has had the
        time to reconnect since the hub started), and set each site's shift-change timer."""
        await self._check(restart=True)

    async def check_all(self) -> None:
        """Check every site again (the registry changed): alerts of zones or sites gone clear."""
        await self._check(restart=False)

    async def run(self, stop: asyncio.Event) -> None:
        """Check every site whenever a console comes, goes, or changes its sound."""
        changed = self.consoles.changed
        while not stop.is_set():
            await _either(changed, stop)
            if stop.is_set():
                return
            changed.clear()
            try:
                async with self._lock:
                    await self._settle(self._sites(), self.clock.now(), restart=False)
            except Exception:  # a failed check must not end the watch; the next change retries
                log.exception("checking the consoles' zones failed")

    def _sites(self) -> list[str]:
        return sorted(set(self.registry.sites) | set(self._roster.sites()))

    def _zones(self) -> dict[str, list[Zone]]:
        """Every site's zones in the registry, in id order (one pass over them all)."""
        found: dict[str, list[Zone]] = {site: [] for site in self.registry.sites}
        for zone in sorted(self.registry.data.all(Zone), key=lambda z: z.id):
            found.setdefault(zone.site, []).append(zone)
        return found

    async def _check(self, *, restart: bool) -> None:
        now = self.clock.now()
        sites = self._sites()
        async with self._lock:
            await self._clear_gone(now)
            await self._settle(sites, now, restart=restart)
            for site in sites:
                await self._schedule(site, now)

    async def _shift_change(self, timer: Timer) -> None:
        now = self.clock.now()
        async with self._lock:
            await self._settle([timer.key], now, restart=False)
            await self._schedule(timer.key, now)

    async def _schedule(self, site: str, now: float) -> None:
        due = self._roster.next_change(site, now) if self._roster.site(site) else None
        if due is None:
            await self._timers.cancel(SHIFT, site)
        else:
            await self._timers.set(SHIFT, site, due, {})

    async def _clear_gone(self, now: float) -> None:
        """Clear the alerts of zones that are no longer in the registry."""
        known = {(zone.site, zone.id) for zones in self._zones().values() for zone in zones}
        for alert in await self._alerts.records.page(ACTIVE_STATES, limit=None):
            place = zone_of(str(alert["subject"]))
            if alert["rule"] == RULE and place is not None and place not in known:
                await self._alerts.condition_cleared(RULE, alert["subject"], now)
                log.info("zone gone from the registry: console alarm cleared", extra=_ctx(*place))

    async def _settle(self, sites: list[str], now: float, *, restart: bool) -> None:
        """For every zone of `sites`: clear what is watched or not staffed, and start the grace
        of a staffed zone nobody watches (again at a restart)."""
        zones = self._zones()
        for site in sites:
            for zone in zones.get(site, []):
                if not self.staffed(site, zone.id, now):
                    await self._no_alarm(site, zone.id, now, "nobody is on duty there now")
                elif self.consoles.watching(site, zone.id):
                    await self._no_alarm(site, zone.id, now, "a console is watching it")
                else:
                    await self._unwatched(site, zone, now, restart)

    async def _unwatched(self, site: str, zone: Zone, now: float, restart: bool) -> None:
        key = f"{site}/{zone.id}"
        if self._alerts.is_active(RULE, subject_of(site, zone.id)):
            return
        pending = self._timers.pending(GRACE, key)
        if pending is not None and not restart:
            return
        grace = self._policy.settings(site, zone.id, None).console_grace_s
        since = pending.payload.get("since", now) if pending is not None else now
        await self._timers.set(
            GRACE, key, now + grace, {"site": site, "zone": zone.id, "since": since}
        )
        log.info(
            "%s has no console watching: alarm in %g s unless one connects",
            zone.name,
            grace,
            extra=_ctx(site, zone.id),
        )

    async def _no_alarm(self, site: str, zone: str, now: float, why: str) -> None:
        if await self._timers.cancel(GRACE, f"{site}/{zone}"):
            log.info("no console alarm: %s", why, extra=_ctx(site, zone))
        subject = subject_of(site, zone)
        if self._alerts.is_active(RULE, subject):
            await self._alerts.condition_cleared(RULE, subject, now)
            log.info("console alarm cleared: %s", why, extra=_ctx(site, zone))

    async def _grace_over(self, timer: Timer) -> None:
        site, zone_id = str(timer.payload["site"]), str(timer.payload["zone"])
        async with self._lock:
            now = self.clock.now()
            zone = next((z for z in self._zones().get(site, []) if z.id == zone_id), None)
            if (
                zone is None
                or not self.staffed(site, zone_id, now)
                or self.consoles.watching(site, zone_id)
                or self._alerts.is_active(RULE, subject_of(site, zone_id))
            ):
                return
            await self._open(site, zone, timer, now)

    async def _open(self, site: str, zone: Zone, timer: Timer, now: float) -> None:
        why = f"No console is watching {zone.name}"
        log.warning(why, extra=_ctx(site, zone.id))
        await self._alerts.trigger(
            Trigger(
                rule=RULE,
                priority="trouble",
                site=site,
                subject=subject_of(site, zone.id),
                sensed_at=now,
                received_at=now,
                test=self._policy.settings(site, zone.id, None).maintenance,
                detail={
                    "zone": zone.id,
                    "zone_name": zone.name,
                    "why": why,
                    "unwatched_since": timer.payload.get("since"),
                },
                consumes=(timer.kind, timer.key),
                zone_name=zone.name,
            )
        )


def _ctx(site: str, zone: str) -> dict[str, Any]:
    return {"site": site, "zone": zone, "rule": RULE}


async def _either(first: asyncio.Event, second: asyncio.Event) -> None:
    waits = [asyncio.create_task(first.wait()), asyncio.create_task(second.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
