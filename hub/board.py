"""The bed board: one tile per bed with its state, its resident and when that state began.

A tile's state, first match wins:

- `alert`: an active alert about the bed that needs a person (not a test, not a trouble alert);
- `offline`: a bed sensor reported offline or silent, or its gateway offline;
- `empty`: nobody is bound to the bed;
- `in_bed` / `out_of_bed`: what the bed's sensor last said (`occupancy` from a pressure pad,
  else `presence` from a radar over the bed);
- `unknown`: no reading yet.

The edge repeats unchanged readings, so "since" is the time the value last changed, not the time
it was last heard. The board keeps that per device in memory, fed by the watch's item observers,
and seeds it at its first use from the readings of the last `SEED_WINDOW_S`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal

from device_profiles import load_profile
from hub.alerts import ACTIVE_STATES
from hub.registry import Placement, Registry
from hub.registry_models import Bed, Device, Resident, Room, Zone
from hub.store import Store, StoredItem

TileState = Literal["alert", "offline", "empty", "in_bed", "out_of_bed", "unknown"]
# A pressure pad says whether someone is in the bed; a radar over the bed says someone is there.
OCCUPANCY_READINGS: Final = ("occupancy", "presence")
SEED_WINDOW_S: Final = 2 * 86400.0
# Consoles poll the board every few seconds; one computation serves them all for this long.
REUSE_S: Final = 1.0
PlaceFilter = Callable[[str, str | None], bool]
HideAlert = Callable[[dict[str, Any]], bool]

SEED_QUERY = """
WITH recent AS (
    SELECT device, name, value, sensed_at FROM readings
    WHERE name IN ('occupancy', 'presence') AND sensed_at >= ?
),
last AS (
    SELECT device, name, value, max(sensed_at) AS at FROM recent GROUP BY device, name
),
flip AS (
    SELECT l.device, l.name, l.value, l.at,
        (SELECT max(r.sensed_at) FROM recent r
         WHERE r.device = l.device AND r.name = l.name AND r.value != l.value) AS other_at
    FROM last l
)
SELECT f.device, f.name, f.value, f.at, f.other_at,
    (SELECT min(r.sensed_at) FROM recent r
     WHERE r.device = f.device AND r.name = f.name
       AND r.sensed_at > coalesce(f.other_at, -1)) AS changed_at
FROM flip f
"""


@dataclass
class _Seen:
    """A device's last occupancy value, when it changed to that value, and when last heard."""

    value: bool
    changed_at: float
    heard_at: float
    exact: bool = True


@dataclass(frozen=True, slots=True)
class _Live:
    """What the store says right now, read once per board and indexed for the tiles."""

    health: dict[str, dict[str, Any]]
    gateways: dict[tuple[str, str], tuple[str, float]]
    bed_alerts: dict[str, list[dict[str, Any]]]
    # device, or (site, gateway) -> when it was last heard, for active offline alerts
    silent_devices: dict[str, float]
    silent_gateways: dict[tuple[str, str], float]


class BedBoard:
    def __init__(self, store: Store, registry: Registry, hide_alert: HideAlert | None = None):
        self._store = store
        self._registry = registry
        self._hidden = hide_alert or (lambda alert: False)
        self._seen: dict[tuple[str, str], _Seen] = {}
        self._seeded = False
        self._seed_lock = asyncio.Lock()
        self._computed: tuple[float, list[dict[str, Any]]] | None = None

    # --- change tracking ------------------------------------------------------------------

    async def observe(self, item: StoredItem, place: Placement) -> None:
        """A watch item observer: note occupancy readings of bed devices."""
        if (
            item.kind == "reading"
            and item.name in OCCUPANCY_READINGS
            and isinstance(item.value, bool)
            and place.bed is not None
        ):
            self.note(item.device, item.name, item.value, item.sensed_at)

    def note(self, device: str, reading: str, value: bool, at: float) -> None:
        seen = self._seen.get((device, reading))
        if seen is None:
            self._seen[(device, reading)] = _Seen(value, at, at)
            return
        if at < seen.heard_at:
            return  # a replay older than what is known changes nothing now
        seen.heard_at = at
        if value != seen.value:
            seen.value, seen.changed_at, seen.exact = value, at, True
            self._computed = None

    async def seed(self, now: float) -> None:
        """Last values and their change times from the stored readings, once."""
        async with self._seed_lock:
            if self._seeded:
                return
            async with self._store.db.execute(SEED_QUERY, (now - SEED_WINDOW_S,)) as cur:
                rows = await cur.fetchall()
            for row in rows:
                key = (str(row["device"]), str(row["name"]))
                value = json.loads(row["value"])
                if key in self._seen or not isinstance(value, bool):
                    continue  # heard live since the hub started: that is newer
                self._seen[key] = _Seen(
                    value,
                    float(row["changed_at"]),
                    float(row["at"]),
                    exact=row["other_at"] is not None,
                )
            self._seeded = True

    # --- tiles ----------------------------------------------------------------------------

    async def tiles(self, now: float, visible: PlaceFilter) -> list[dict[str, Any]]:
        """Every bed the caller may see, as a tile, ordered by site, zone, room and bed."""
        if self._computed is None or not 0 <= now - self._computed[0] < REUSE_S:
            self._computed = (now, await self._all_tiles(now))
        return [t for t in self._computed[1] if visible(t["site"], t["zone"])]

    async def _all_tiles(self, now: float) -> list[dict[str, Any]]:
        await self.seed(now)
        data = self._registry.data
        by_bed: dict[str, list[Device]] = {}
        for device in data.all(Device):
            if device.bed is not None:
                by_bed.setdefault(device.bed, []).append(device)
        live = await self._live()
        tiles = []
        for bed in data.all(Bed):
            room = data.find(Room, (bed.site, bed.room))
            if room is None:
                continue
            zone = data.find(Zone, (bed.site, room.zone))
            tiles.append(self._tile(bed, room, zone, by_bed.get(bed.code, []), live))
        tiles.sort(key=lambda t: (t["site"], t["zone_name"], t["room_name"], t["bed"]))
        return tiles

    async def _live(self) -> _Live:
        async with self._store.db.execute(
            "SELECT site, gateway, state, changed_at FROM gateway_status"
        ) as cur:
            gateways = {
                (str(r["site"]), str(r["gateway"])): (str(r["state"]), float(r["changed_at"]))
                for r in await cur.fetchall()
            }
        active = await self._store.alerts(ACTIVE_STATES, None)
        bed_alerts: dict[str, list[dict[str, Any]]] = {}
        silent_devices: dict[str, float] = {}
        silent_gateways: dict[tuple[str, str], float] = {}
        for alert in active:
            if alert["test"] or self._hidden(alert):
                continue
            if alert["rule"] == "device_offline" and alert["device"] is not None:
                silent_devices[alert["device"]] = float(alert["sensed_at"])
            elif alert["rule"] == "gateway_offline" and alert["gateway"] is not None:
                silent_gateways[(alert["site"], alert["gateway"])] = float(alert["sensed_at"])
            elif alert["bed"] is not None and alert["priority"] != "trouble":
                bed_alerts.setdefault(alert["bed"], []).append(alert)
        health = await self._store.device_health()
        return _Live(health, gateways, bed_alerts, silent_devices, silent_gateways)

    def _tile(
        self, bed: Bed, room: Room, zone: Zone | None, devices: list[Device], live: _Live
    ) -> dict[str, Any]:
        data = self._registry.data
        occupant = data.occupant(bed.code)
        resident = data.find(Resident, (occupant.resident,)) if occupant else None
        sensors = [d for d in devices if _senses_occupancy(d.profile)]
        alerts = live.bed_alerts.get(bed.code, [])
        offline = _offline(bed.site, sensors, live)
        seen = self._occupancy(sensors)
        state: TileState
        since: float | None
        exact = True
        if alerts:
            state, since = "alert", min(a["opened_at"] for a in alerts)
        elif offline:
            state, since = "offline", min(at for _, at in offline)
        elif resident is None:
            history = data.bed_history.get(bed.code)
            state, since = "empty", (history[-1].end if history else None)
        elif seen is None:
            state, since = "unknown", None
        else:
            state = "in_bed" if seen.value else "out_of_bed"
            since, exact = seen.changed_at, seen.exact
        return {
            "bed": bed.code,
            "label": bed.label,
            "site": bed.site,
            "zone": room.zone,
            "zone_name": zone.name if zone else room.zone,
            "room": room.id,
            "room_name": room.name,
            "state": state,
            "since": since,
            "since_exact": exact,
            "in_bed": None if seen is None else seen.value,
            "resident_code": resident.code if resident else None,
            "resident_name": resident.name if resident else None,
            "alerts": [
                {"id": a["id"], "rule": a["rule"], "priority": a["priority"], "state": a["state"]}
                for a in sorted(alerts, key=lambda a: a["opened_at"])
            ],
            "offline": [why for why, _ in offline],
            "sensors": [d.id for d in sensors],
        }

    def _occupancy(self, sensors: Iterable[Device]) -> _Seen | None:
        """A pressure pad's word first, else the radar's; the latest heard of each kind."""
        for reading in OCCUPANCY_READINGS:
            heard = [s for d in sensors if (s := self._seen.get((d.id, reading))) is not None]
            if heard:
                return max(heard, key=lambda s: s.heard_at)
        return None


def _senses_occupancy(profile: str) -> bool:
    return any(rule.reading in OCCUPANCY_READINGS for rule in load_profile(profile).rules)


def _offline(site: str, sensors: list[Device], live: _Live) -> list[tuple[str, float]]:
    """Why the bed cannot be watched now, and since when: (reason, time) pairs."""
    reasons: dict[str, float] = {}
    for device in sensors:
        gateway = (site, device.gateway)
        status = live.gateways.get(gateway)
        if status is not None and status[0] == "offline":
            reasons[f"gateway {device.gateway} offline"] = status[1]
        elif gateway in live.silent_gateways:
            reasons[f"gateway {device.gateway} not heard"] = live.silent_gateways[gateway]
        health = live.health.get(device.id)
        if health is not None and not health["online"]:
            reasons[f"sensor {device.id} offline"] = float(
                health["last_seen"] or health["reported_at"]
            )
        elif device.id in live.silent_devices:
            reasons[f"sensor {device.id} not heard"] = live.silent_devices[device.id]
    return list(reasons.items())
