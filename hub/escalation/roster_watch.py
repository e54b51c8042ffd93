"""The uncovered-zone alarm: a zone that nobody on the running shifts covers is a trouble alert.

At the start and end of every shift of a site's roster (and when the hub starts, in the middle
of a shift or not), each zone of the site in the registry is checked against the assignments
of the shifts running at that moment (`Roster.on_duty`: the same people the escalation's
`on_duty_zone` reaches). A zone that nobody covers opens the trouble alert `zone_uncovered`
with the subject `zone:<site>/<zone>`; once a later shift covers it, the alert resolves by
itself (outcome `self_cleared`), like a device that comes back online.

- Only the sites listed under `roster.sites` are watched: a site without a roster has nobody on
  duty at all, which the escalation's "nobody reached" alarm shows when it matters.
- Zones listed in the site's `unstaffed_zones` (family beds at home) are never an alarm.
- Each site has one durable timer (kind `roster_shift`, keyed by the site) for its next shift
  change, so a hub restart neither loses nor repeats one; times come from the hub's clock.
- A change to the registry (a zone added or removed) checks every site again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any, Final

from hub.alerts.lifecycle import ACTIVE_STATES, AlertService, Trigger
from hub.core.clock import Clock
from hub.core.timers import Timer, Timers
from hub.escalation.roster import Roster
from hub.registry.index import Registry
from hub.registry.models import Zone
from hub.watch.settings import WatchPolicy

log = logging.getLogger("carewatch.hub.roster_watch")

KIND: Final = "roster_shift"
RULE: Final = "zone_uncovered"


def subject_of(site: str, zone: str) -> str:
    return f"zone:{site}/{zone}"


def zone_of(subject: str) -> tuple[str, str] | None:
    """(site, zone) of a `zone:<site>/<zone>` subject; None for any other subject."""
    if not subject.startswith("zone:"):
        return None
    site, _, zone = subject.removeprefix("zone:").partition("/")
    return (site, zone) if site and zone else None


def site_zones(registry: Registry, site: str) -> list[Zone]:
    """The site's zones in the registry, in id order."""
    return sorted((z for z in registry.data.all(Zone) if z.site == site), key=lambda z: z.id)


def uncovered(roster: Roster, site: str, at: float, zones: Iterable[str]) -> list[str]:
    """The zones (of `zones`) that no assignment of the shifts running at `at` covers, except
    those the site's roster lists as unstaffed. Empty for a site without a roster."""
    config = roster.site(site)
    if config is None:
        return []
    return [
        zone
        for zone in zones
        if zone not in config.unstaffed_zones and not roster.on_duty(site, at, zone)
    ]


class RosterWatch:
    """Opens and clears `zone_uncovered` alerts at every shift change of every rostered site."""

    def __init__(
        self,
        roster: Roster,
        registry: Registry,
        alerts: AlertService,
        timers: Timers,
        policy: WatchPolicy,
        clock: Clock,
    ) -> None:
        self._roster = roster
        self._registry = registry
        self._alerts = alerts
        self._timers = timers
        self._policy = policy
        self._clock = clock
        self._lock = asyncio.Lock()
        timers.on(KIND, self._shift_change)

    async def check_all(self) -> None:
        """Check every site now and set each rostered site's timer for its next shift change;
        alerts of sites or zones that are no longer rostered are cleared."""
        now = self._clock.now()
        sites = set(self._registry.sites) | set(self._roster.sites())
        async with self._lock:
            await self._settle(sorted(sites), now)
            for site in sorted(sites):
                await self._schedule(site, now)

    async def _shift_change(self, timer: Timer) -> None:
        now = self._clock.now()
        async with self._lock:
            await self._settle([timer.key], now)
            await self._schedule(timer.key, now)

    async def _schedule(self, site: str, now: float) -> None:
        due = self._roster.next_change(site, now) if self._roster.site(site) else None
        if due is None:
            await self._timers.cancel(KIND, site)
        else:
            await self._timers.set(KIND, site, due, {})

    async def _settle(self, sites: list[str], now: float) -> None:
        """Open the alerts of the zones uncovered now and clear the others, for `sites`."""
        wanted: dict[str, tuple[str, Zone]] = {}
        for site in sites:
            zones = {zone.id: zone for zone in site_zones(self._registry, site)}
            for zone_id in uncovered(self._roster, site, now, zones):
                wanted[subject_of(site, zone_id)] = (site, zones[zone_id])
        for alert in await self._active():
            place = zone_of(str(alert["subject"]))
            if place is not None and place[0] in sites and alert["subject"] not in wanted:
                await self._alerts.condition_cleared(RULE, alert["subject"], now)
                log.info("zone %s/%s is covered again", *place)
        for subject, (site, zone) in wanted.items():
            if not self._alerts.is_active(RULE, subject):
                await self._open(site, zone, subject, now)

    async def _active(self) -> list[dict[str, Any]]:
        listed = await self._alerts.records.page(ACTIVE_STATES, limit=None)
        return [alert for alert in listed if alert["rule"] == RULE]

    async def _open(self, site: str, zone: Zone, subject: str, now: float) -> None:
        shifts = [run.shift.name for run in self._roster.running(site, now)]
        if shifts:
            why = f"no one on the {' and '.join(shifts)} shift covers {zone.name}"
        else:
            why = f"no shift is running: no one covers {zone.name}"
        log.warning("zone uncovered: %s", why, extra={"site": site, "rule": RULE})
        await self._alerts.trigger(
            Trigger(
                rule=RULE,
                priority="trouble",
                site=site,
                subject=subject,
                sensed_at=now,
                received_at=now,
                test=self._policy.settings(site, zone.id, None).maintenance,
                detail={"zone": zone.id, "zone_name": zone.name, "shifts": shifts, "why": why},
                zone_name=zone.name,
            )
        )
